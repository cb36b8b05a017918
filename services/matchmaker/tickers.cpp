// The timer loops of services/matchmaker/tickers.hpp.
#include "services/matchmaker/tickers.hpp"

#include "services/matchmaker/messages.hpp"
#include "services/matchmaker/sessions.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

namespace warmline::matchmaker {

namespace asio = boost::asio;
using v1::ServerMessage;

tickers::tickers(asio::io_context& ioc, const service_settings& s, const catalogue& cat, store& st,
                 peer_registry& peers, std::string node, std::function<bool()> settled)
    : ioc_(ioc),
      settings_(s),
      catalogue_(cat),
      store_(st),
      peers_(peers),
      node_(std::move(node)),
      settled_(std::move(settled)) {}

void tickers::start() {
    auto spawn = [&](asio::awaitable<void> (tickers::*loop)()) {
        asio::co_spawn(ioc_, (this->*loop)(), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("a matchmaker timer loop ended: {}", ex.what());
            }
        });
    };
    spawn(&tickers::heartbeat_loop);
    spawn(&tickers::sweep_loop);
    spawn(&tickers::position_loop);
    spawn(&tickers::stats_loop);
    spawn(&tickers::history_loop);
    spawn(&tickers::session_loop);
    spawn(&tickers::memory_loop);
}

void tickers::stop() {
    stopping_ = true;
    for (auto& t : timers_) t->cancel();
}

std::shared_ptr<asio::steady_timer> tickers::timer() {
    auto t = std::make_shared<asio::steady_timer>(ioc_);
    timers_.push_back(t);
    return t;
}

asio::awaitable<bool> tickers::tick(asio::steady_timer& t, std::chrono::milliseconds every) {
    boost::system::error_code ec;
    t.expires_after(every);
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return !stopping_;
}

asio::awaitable<void> tickers::heartbeat_loop() {
    auto t = timer();
    const auto every = std::chrono::milliseconds(std::max<std::int64_t>(50, settings_.store.node_lease_ms / 3));
    for (;;) {
        bool renewed = false;
        try {
            co_await store_.heartbeat(node_);
            renewed = true;
        } catch (const redis::unavailable&) {
            // reported by /readyz; if this lasts past the lease, other processes expire our clients
        } catch (const std::exception& e) {
            spdlog::warn("heartbeat failed: {}", e.what());
        }
        // not renewed (e.g. not connected yet at start): try again soon, not a third of a lease later
        if (!co_await tick(*t, renewed ? every : std::min(every, std::chrono::milliseconds(100)))) break;
    }
}

asio::awaitable<void> tickers::sweep_loop() {
    auto t = timer();
    while (co_await tick(*t, settings_.sweep_interval)) {
        if (!settled_()) continue;
        try {
            co_await store_.sweep_all();
        } catch (const redis::unavailable&) {
            // reported by /readyz; the next tick tries again
        } catch (const std::exception& e) {
            spdlog::error("sweep failed: {}", e.what());
        }
    }
}

asio::awaitable<void> tickers::position_loop() {
    auto t = timer();
    while (co_await tick(*t, settings_.position_interval)) {
        try {
            co_await positions();
        } catch (const redis::unavailable& e) {
            spdlog::debug("queue positions unavailable: {}", e.what());  // an outage says so once already
        } catch (const std::exception& e) {
            spdlog::warn("queue positions unavailable: {}", e.what());
        }
    }
}

asio::awaitable<void> tickers::positions() {
    std::vector<std::pair<std::string, peer_ptr>> waiting;
    for (auto& [sid, p] : peers_.seekers())
        if (p->state.waiting) waiting.emplace_back(sid, p);
    // Only seekers whose queue changed since their last position (or who named a listener,
    // or were last told long ago, as the estimate drifts with time) cost a Redis lookup.
    std::map<std::string, std::int64_t> versions;
    for (auto& [_, p] : waiting)
        if (!p->state.queue.empty()) versions.emplace(p->state.queue, 0);
    std::vector<std::string> queues;
    for (auto& [q, _] : versions) queues.push_back(q);
    auto v = co_await store_.queue_versions(queues);
    for (std::size_t i = 0; i < v.size(); ++i) versions[queues[i]] = v[i];
    const std::int64_t now = store_.now_ms();
    std::erase_if(waiting, [&](const auto& w) {
        const auto& st = w.second->state;
        return !st.named_listener && !st.queue.empty() && st.queue_version == versions[st.queue] &&
               now - st.position_at_ms < settings_.position_refresh.count();
    });
    for (std::size_t i = 0; i < waiting.size(); i += 500) {
        std::vector<std::string> ids;
        for (std::size_t j = i; j < std::min(waiting.size(), i + 500); ++j) ids.push_back(waiting[j].first);
        auto pos = co_await store_.positions(ids);
        for (std::size_t j = 0; j < pos.size(); ++j) {
            auto& p = waiting[i + j].second;
            if (!p->state.queue.empty()) p->state.queue_version = versions[p->state.queue];
            p->state.position_at_ms = now;
            if (pos[j].position == 0) continue;
            if (p->state.last_update.position() == pos[j].position &&
                p->state.last_update.estimated_wait_s() == pos[j].estimate_s &&
                p->state.last_update.no_listener_now() == pos[j].nobody &&
                p->state.last_update.held_s() / 60 == pos[j].held_s / 60)
                continue;
            ServerMessage m;
            auto* u = m.mutable_queue_update();
            u->set_position(pos[j].position);
            u->set_estimated_wait_s(pos[j].estimate_s);
            u->set_no_listener_now(pos[j].nobody);
            u->set_held_s(pos[j].held_s);
            p->state.last_update = *u;
            // when nobody can take the request now, or it is on hold, say where help is meanwhile
            if (pos[j].nobody || pos[j].held_s > 0) {
                const auto colon = p->state.queue.find(':');
                if (colon != std::string::npos)
                    *u->mutable_crisis_resources() =
                        catalogue_.crisis_resources(p->state.queue.substr(colon + 1), p->state.region);
            }
            peers_.send(p, m);
        }
    }
}

asio::awaitable<void> tickers::stats_loop() {
    auto t = timer();
    while (co_await tick(*t, settings_.stats_interval)) {
        auto watchers = peers_.supervisors();
        if (watchers.empty()) continue;
        try {
            ServerMessage m;
            *m.mutable_stats() = co_await read_snapshot(store_, catalogue_);
            for (auto& w : watchers) peers_.send(w, m);
        } catch (const std::exception& e) {
            spdlog::warn("stats unavailable: {}", e.what());
        }
    }
}

asio::awaitable<void> tickers::history_loop() {
    auto t = timer();
    const std::int64_t step = settings_.stats_history_step.count();
    std::int64_t last_step = -1;  // the step this process already offered a sample for
    for (;;) {
        std::int64_t now_step = store_.now_ms() / step;
        if (now_step != last_step) {
            try {
                co_await sample_history();
                last_step = now_step;
            } catch (const redis::unavailable&) {
                // reported by /readyz; the next tick tries again
            } catch (const std::exception& e) {
                spdlog::warn("stats history sample failed: {}", e.what());
            }
        }
        if (!co_await tick(*t, settings_.stats_interval)) break;
    }
}

asio::awaitable<void> tickers::session_loop() {
    auto t = timer();
    while (co_await tick(*t, settings_.session_check_interval)) {
        try {
            co_await close_stale_sessions(store_, peers_);
        } catch (const redis::unavailable&) {
            // reported by /readyz; the next tick tries again
        } catch (const std::exception& e) {
            spdlog::warn("session check failed: {}", e.what());
        }
    }
}

asio::awaitable<void> tickers::memory_loop() {
    auto t = timer();
    do {
        try {
            const auto m = co_await store_.redis_memory();
            redis_used_ = m.used;
            redis_max_ = m.max;
        } catch (const std::exception& e) {
            spdlog::debug("could not read Redis's memory: {}", e.what());
        }
    } while (co_await tick(*t, std::chrono::seconds(10)));
}

asio::awaitable<bool> tickers::sample_history() {
    // every process offers a sample each step; only the first is kept, so the others look first
    // rather than run the stats script for nothing (stats_history.lua still settles a race)
    if (!co_await store_.stats_history_due(store_.now_ms(), settings_.stats_history_step.count())) co_return false;
    v1::StatsSnapshot sample = co_await read_snapshot(store_, catalogue_);
    // the history is for trends: rows with nothing in them would only make every sign-in larger
    auto* rows = sample.mutable_queues();
    rows->erase(std::remove_if(rows->begin(), rows->end(), [](const v1::QueueStats& q) { return all_zero(q); }),
                rows->end());
    co_return co_await store_.stats_history_add(sample.at_unix_ms(), sample.SerializeAsString(),
                                                settings_.stats_history_step.count(),
                                                settings_.stats_history_window.count());
}

}  // namespace warmline::matchmaker
