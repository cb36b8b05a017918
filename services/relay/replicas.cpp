// Group-committed WAIT for services/relay/replicas.hpp.
#include "services/relay/replicas.hpp"

#include "common/argv.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

namespace warmline::relay {
namespace asio = boost::asio;

replica_acks::replica_acks(asio::any_io_executor ex, std::shared_ptr<redis::any_client> redis, int replicas,
                           std::chrono::milliseconds timeout)
    : ex_(std::move(ex)), redis_(std::move(redis)), replicas_(replicas), timeout_(timeout) {}

asio::awaitable<bool> replica_acks::confirmed(std::string key) {
    // callers run on the same single I/O thread: no lock
    const std::string node = redis_->node_of(key);
    auto& l = lanes_[node];
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
    co_return mine->ok;
}

asio::awaitable<void> replica_acks::run(std::string node) {
    // a round's callers all wrote (on this node's connection) before its WAIT
    auto& l = lanes_[node];
    while (l.next) {
        auto r = std::exchange(l.next, nullptr);
        ++rounds_;
        long long have = 0;
        try {
            auto v = co_await redis_->command_near(r->key, argv("WAIT", std::to_string(replicas_),
                                                                 std::to_string(timeout_.count())));
            have = v.as_int();
        } catch (const std::exception& e) {
            spdlog::debug("relay: WAIT failed: {}", e.what());
        }
        r->ok = have >= replicas_;
        if (!r->ok) spdlog::warn("relay: {} of {} replicas confirmed a write in time", have, replicas_);
        r->done = true;
        r->wake.cancel();
    }
    l.running = false;
}

}  // namespace warmline::relay
