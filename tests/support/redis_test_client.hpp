// What the Redis client's own integration tests share (common_redis_*, sentinel_*, cluster_*):
// client options that fail over fast, running a test coroutine to its end on an io_context of
// its own, a pause inside one, and the relay's shard channel names.
#pragma once

#include "common/redis.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <string>
#include <vector>

namespace warmline::test {

// Options for `url` with short timeouts and backoff: the tests stay fast without changing what
// they prove. `name` shows in CLIENT LIST.
inline redis::client_options fast_client_options(const std::string& url, const std::string& name) {
    using namespace std::chrono_literals;
    redis::client_options o;
    o.where = redis::endpoint::parse(url);
    o.connect_timeout = 1000ms;
    o.backoff_initial = 5ms;
    o.backoff_max = 100ms;
    o.command_timeout = 2000ms;
    o.name = name;
    return o;
}

// Run `body` on an io_context in this thread; it must finish within `limit`, and afterwards
// nothing the clients left behind (watches, node connections) may keep the io_context busy.
inline void run_to_end(std::function<boost::asio::awaitable<void>(boost::asio::any_io_executor)> body,
                       std::chrono::seconds limit) {
    using namespace std::chrono_literals;
    boost::asio::io_context ioc;
    auto done = boost::asio::co_spawn(ioc, body(ioc.get_executor()), boost::asio::use_future);
    ioc.run_for(limit);
    REQUIRE_MESSAGE(done.wait_for(0s) == std::future_status::ready, "the test coroutine did not finish");
    done.get();
    CHECK_MESSAGE(ioc.stopped(), "something kept the io_context busy after the clients were stopped");
}

inline boost::asio::awaitable<void> pause(std::chrono::milliseconds d) {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
    co_await t.async_wait(boost::asio::use_awaitable);
}

// The relay's 256 shard channels of one relay node: wl:relaynode:{bXX}:<node>, XX = 00..ff.
inline std::vector<std::string> relay_shard_channels(const std::string& node) {
    std::vector<std::string> out;
    for (int b = 0; b < 256; ++b) {
        char bucket[3];
        std::snprintf(bucket, sizeof bucket, "%02x", b);
        out.push_back("wl:relaynode:{b" + std::string(bucket) + "}:" + node);
    }
    return out;
}

}  // namespace warmline::test
