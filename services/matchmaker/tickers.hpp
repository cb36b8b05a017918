// The matchmaker's clock-driven work, each a loop on its own timer: the heartbeat that keeps
// this process's lease, the sweep (timeouts, widening, dead processes), queue positions for
// this process's waiting seekers, the supervisors' live stats, one sample per step of their
// stats history, and the session check (sessions.hpp). All idempotent, so every process runs them and none is special.
//
// Threading: the loops run on the io_context the object is given (one I/O thread).
#pragma once

#include "common/catalogue.hpp"
#include "services/matchmaker/peers.hpp"
#include "services/matchmaker/settings.hpp"
#include "services/matchmaker/store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace warmline::matchmaker {

class tickers {
public:
    // settled(): false while this process is recovering from an outage (recovery.hpp): the sweep
    // waits, because it would judge other processes and seekers on evidence it has not seen.
    tickers(boost::asio::io_context& ioc, const service_settings& s, const catalogue& cat, store& st,
            peer_registry& peers, std::string node, std::function<bool()> settled);

    // Redis's memory as last read (every 10 s): for the gauges and the alert before it fills.
    std::int64_t redis_used_memory() const { return redis_used_.load(); }
    std::int64_t redis_maxmemory() const { return redis_max_.load(); }

    void start();
    void stop();
    // Offer this process's sample of the stats history for the current step; true if it was
    // the one stored. The history loop calls it; tests call it to take samples on their clock.
    boost::asio::awaitable<bool> sample_history();

private:
    boost::asio::awaitable<void> heartbeat_loop();
    boost::asio::awaitable<void> sweep_loop();
    boost::asio::awaitable<void> position_loop();
    boost::asio::awaitable<void> stats_loop();
    boost::asio::awaitable<void> history_loop();
    boost::asio::awaitable<void> session_loop();
    boost::asio::awaitable<void> memory_loop();
    boost::asio::awaitable<void> positions();
    // Wait `every` on t; false once stop() was called.
    boost::asio::awaitable<bool> tick(boost::asio::steady_timer& t, std::chrono::milliseconds every);
    std::shared_ptr<boost::asio::steady_timer> timer();

    boost::asio::io_context& ioc_;
    const service_settings& settings_;
    const catalogue& catalogue_;
    store& store_;
    peer_registry& peers_;
    std::string node_;
    std::function<bool()> settled_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::int64_t> redis_used_{0}, redis_max_{0};
    std::vector<std::shared_ptr<boost::asio::steady_timer>> timers_;
};

}  // namespace warmline::matchmaker
