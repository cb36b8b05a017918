// Group-committed WAIT for common/replica_acks.hpp.
#include "common/replica_acks.hpp"

#include "common/argv.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

namespace warmline {
namespace asio = boost::asio;
using std::chrono::steady_clock;

replica_acks::replica_acks(asio::any_io_executor ex, std::shared_ptr<redis::any_client> redis, int replicas,
                           std::chrono::milliseconds timeout, std::string who, std::chrono::milliseconds degrade_after)
    : ex_(std::move(ex)),
      redis_(std::move(redis)),
      replicas_(replicas),
      timeout_(timeout),
      who_(std::move(who)),
      degrade_after_(degrade_after) {}

asio::awaitable<bool> replica_acks::confirmed(std::string key, std::uint64_t link) {
    if (link == 0) co_return false;  // the write went over no connection we know of
    const std::string node = redis_->node_of(key);
    auto& l = lanes_[node];
    if (l.degraded) {
        ++degraded_;
        if (!l.probing && steady_clock::now() - l.probed >= std::chrono::seconds(1)) {
            l.probing = true;
            asio::co_spawn(ex_, probe(node, std::move(key)), asio::detached);
        }
        co_return true;
    }
    if (!l.next) {
        l.next = std::make_shared<round>(ex_);
        l.next->key = std::move(key);
    }
    auto mine = l.next;
    if (!l.running) {
        l.running = true;
        asio::co_spawn(ex_, run(node), asio::detached);
    }
    if (!mine->done) {
        boost::system::error_code ec;
        co_await mine->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));  // cancelled when done
    }
    if (mine->link != link) co_return false;  // the WAIT covered another connection's writes
    if (mine->ok) co_return true;
    if (!l.degraded) co_return false;
    ++degraded_;
    co_return true;
}

void replica_acks::heard(lane& l, bool confirmed, time_point sent) {
    if (confirmed) {
        if (l.silent_since != time_point{}) spdlog::info("{}: the replicas confirm writes again", who_);
        l.silent_since = {};
        l.degraded = false;
        return;
    }
    if (l.silent_since == time_point{}) l.silent_since = sent;
    if (l.degraded || degrade_after_.count() == 0 || steady_clock::now() - l.silent_since < degrade_after_) return;
    l.degraded = true;
    l.probed = steady_clock::now();
    spdlog::warn("{}: no replica has confirmed a write for {} ms: writes go on without them (degraded) until "
                 "{} are attached again",
                 who_, std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - l.silent_since).count(),
                 replicas_);
}

asio::awaitable<void> replica_acks::run(std::string node) {
    // a round's callers all wrote before its WAIT; those whose write went over this connection
    // are covered by it
    auto& l = lanes_[node];
    while (l.next) {
        auto r = std::exchange(l.next, nullptr);
        ++rounds_;
        long long have = 0;
        const auto sent = steady_clock::now();
        const std::uint64_t before = redis_->link_id_near(r->key);
        try {
            auto v = co_await redis_->command_near(r->key, argv("WAIT", std::to_string(replicas_),
                                                                 std::to_string(timeout_.count())));
            have = v.as_int();
        } catch (const std::exception& e) {
            spdlog::debug("{}: WAIT failed: {}", who_, e.what());
        }
        const std::uint64_t after = redis_->link_id_near(r->key);
        r->link = before == after ? before : 0;
        r->ok = have >= replicas_ && r->link != 0;
        if (have < replicas_) spdlog::warn("{}: {} of {} replicas confirmed a write in time", who_, have, replicas_);
        heard(l, have >= replicas_, sent);
        r->done = true;
        r->wake.cancel();
    }
    l.running = false;
}

asio::awaitable<void> replica_acks::probe(std::string node, std::string key) {
    // ROLE on a primary: {"master", offset, {{ip, port, acked offset}, ...}}: the replicas
    // attached now. It does not block the connection, as a WAIT would.
    auto& l = lanes_[node];
    std::size_t attached = 0;
    try {
        auto v = co_await redis_->command_near(key, argv("ROLE"));
        if (v.elements.size() >= 3 && v.elements[0].as_string() == "master") attached = v.elements[2].elements.size();
    } catch (const std::exception& e) {
        spdlog::debug("{}: ROLE failed: {}", who_, e.what());
    }
    l.probing = false;
    l.probed = steady_clock::now();
    if (attached >= static_cast<std::size_t>(replicas_) && l.degraded) {
        spdlog::info("{}: {} replicas attached again: writes wait for them again", who_, attached);
        l.degraded = false;  // the next round's WAIT says whether they really confirm
    }
}

}  // namespace warmline
