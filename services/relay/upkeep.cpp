// The relay's upkeep, for services/relay/service.hpp: the timer loops (idle chats, presence and
// this process's lease) and the recovery after a Redis outage (the sides it holds confirmed,
// every chat caught up from its log, clients told).
#include "services/relay/service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace warmline::relay {
namespace asio = boost::asio;
using v1::RelayServerMessage;

asio::awaitable<void> service::recover() {
    // the sides it holds first (they were judged gone if the lease ran out), then the catch-up.
    // A side that says hello while node_sync is on its way is not in the list node_sync got,
    // and if its hello.lua ran first, node_sync lets it go: the other side's messages would then
    // be published to nobody until something else woke the chat. (A side that closes meanwhile
    // is the same in reverse.) So: wait for hellos on their way, sync, and again until no hello
    // began during a sync and the sides held are the sides synced.
    std::vector<participant_ptr> all;
    std::vector<std::string> synced;
    bool have_synced = false;
    std::uint64_t begun = 0;  // hellos begun before the last sync
    for (int round = 0; round < 20; ++round) {
        if (hellos_in_flight_ > 0) {
            // woken when the last one is done; a hello waits on Redis at most its command timeout
            hellos_done_->expires_after(std::chrono::seconds(5));
            boost::system::error_code ec;
            co_await hellos_done_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        all.clear();
        {
            std::lock_guard lock(mutex_);
            for (auto& [_, p] : by_side_) all.push_back(p);
        }
        std::vector<std::string> sides;
        for (auto& p : all) sides.push_back(p->session + "|" + p->role + "|" + p->conn_id);
        std::sort(sides.begin(), sides.end());
        if (have_synced && sides == synced && hellos_begun_ == begun) break;
        begun = hellos_begun_;
        co_await store_.node_sync(presence(), sides);
        synced = std::move(sides);
        have_synced = true;
    }
    bool failed = false;
    for (auto& p : all) {
        // a chat that ended while events could not reach this process: say so and close
        if (!co_await store_.chat_open(p->session)) {
            RelayServerMessage m;
            m.mutable_ended()->set_session_id(p->session);
            push(p, m);
            if (auto c = p->conn.lock()) c->close(1000, "chat ended");
            continue;
        }
        // the other side's key may have been published while events could not reach us
        if (!p->has_peer_key && p->welcomed) {
            if (auto key = co_await store_.peer_key(p->session, p->role); !key.empty()) {
                RelayServerMessage m;
                m.mutable_peer_key()->set_public_key(key);
                p->has_peer_key = true;
                push(p, m);
            }
        }
        if (!co_await catch_up(p)) failed = true;
    }
    if (failed) throw redis::unavailable("a chat could not catch up from its log yet");
}

void service::tell_all(const RelayServerMessage& m) {
    std::vector<participant_ptr> all;
    {
        std::lock_guard lock(mutex_);
        for (auto& [_, p] : by_conn_)
            if (p->greeted) all.push_back(p);
    }
    for (auto& p : all) push(p, m);
}

asio::awaitable<bool> service::tick(asio::steady_timer& t, std::chrono::milliseconds every) {
    t.expires_after(every);
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return !stopped_;
}

asio::awaitable<void> service::idle_loop() {
    auto t = idle_timer_;
    while (co_await tick(*t, settings_.idle_sweep_interval)) {
        try {
            auto since = store_.now_ms() - settings_.idle_limit.count();
            if (int n = co_await store_.end_idle(since, 100, settings_.idle_sweep_interval.count(), node_); n > 0)
                metrics_.counter("warmline_relay_idle_ended_total", "Chats ended because nobody wrote").fetch_add(n);
        } catch (const std::exception& e) {
            spdlog::warn("relay: idle sweep failed: {}", e.what());
        }
    }
}

asio::awaitable<void> service::presence_loop() {
    auto t = presence_timer_;
    while (co_await tick(*t, settings_.presence_interval)) {
        // after an outage, only once this process has said which sides it holds
        if (!recovery_->settled()) continue;
        try {
            co_await store_.presence(presence());
        } catch (const redis::unavailable&) {
            // reported by /readyz; the recovery after the outage comes first
        } catch (const std::exception& e) {
            spdlog::warn("relay: presence sweep failed: {}", e.what());
        }
    }
}

}  // namespace warmline::relay
