// Integration tests of common/replica_acks against a real primary and replica: a write is
// confirmed once the replica has it, a stalled replica gets no confirmation, callers arriving
// together share one WAIT, and a write whose connection was replaced before its WAIT is never
// confirmed (a WAIT on a new connection covers none of the old one's writes).
#include "common/argv.hpp"
#include "common/redis.hpp"
#include "common/replica_acks.hpp"
#include "tests/support/redis_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using warmline::argv;
using warmline::replica_acks;
using warmline::test::redis_server;

namespace {

struct primary_and_replica {
    redis_server primary{{"--repl-diskless-sync-delay", "0"}};
    redis_server replica{{"--replicaof", "127.0.0.1", std::to_string(primary.port())}};
    primary_and_replica() { warmline::test::wait_until_replicating(primary, replica); }
};

std::shared_ptr<warmline::redis::any_client> client_for(asio::io_context& ioc, const redis_server& server) {
    warmline::redis::client_options o;
    o.where = warmline::redis::endpoint::parse(server.url());
    o.backoff_initial = 5ms;
    o.backoff_max = 50ms;
    auto c = warmline::redis::any_client::create(ioc.get_executor(), o);
    c->start();
    return c;
}

// A primary with a replica, a client of the primary and replica_acks over it, confirming after
// one replica within `timeout`.
struct acks_fixture {
    primary_and_replica r;
    asio::io_context ioc;
    std::shared_ptr<warmline::redis::any_client> c = client_for(ioc, r.primary);
    replica_acks acks;
    explicit acks_fixture(std::chrono::milliseconds timeout) : acks(ioc.get_executor(), c, 1, timeout, "test") {}

    // Run `body` on the io_context once the client is connected; it must finish in time.
    void run(std::function<asio::awaitable<void>()> body) {
        auto done = asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                co_await c->wait_connected(5s);
                co_await body();
                c->stop();
            },
            asio::use_future);
        ioc.run_for(15s);
        REQUIRE_MESSAGE(done.wait_for(0s) == std::future_status::ready, "the test coroutine did not finish");
        done.get();
    }
};

// Write `key` over `c`, then ask `acks` whether a replica has it.
asio::awaitable<bool> write_and_confirm(warmline::redis::any_client& c, replica_acks& acks, std::string key) {
    const auto link = acks.link(key);
    co_await c.command(argv("SET", key, "v"));
    co_return co_await acks.confirmed(key, link);
}

}  // namespace

TEST_CASE("replica acks: a write is confirmed once the replica has it, and not while the replica is stalled" *
          doctest::timeout(60)) {
    acks_fixture f(300ms);
    auto& [r, ioc, c, acks] = f;
    f.run([&]() -> asio::awaitable<void> {
        CHECK(co_await write_and_confirm(*c, acks, "wl:test:a"));
        CHECK(r.replica.cmd({"GET", "wl:test:a"}) == "v");

        r.replica.pause();
        const auto t0 = std::chrono::steady_clock::now();
        CHECK_FALSE(co_await write_and_confirm(*c, acks, "wl:test:b"));
        CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);  // it waited out the timeout
        r.replica.resume();
        CHECK(co_await write_and_confirm(*c, acks, "wl:test:c"));
    });
}

TEST_CASE("replica acks: callers that write together share one WAIT" * doctest::timeout(60)) {
    acks_fixture f(1000ms);
    auto& [r, ioc, c, acks] = f;
    f.run([&]() -> asio::awaitable<void> {
        std::vector<std::future<bool>> all;
        for (int i = 0; i < 50; ++i)
            all.push_back(asio::co_spawn(ioc, write_and_confirm(*c, acks, "wl:test:" + std::to_string(i)),
                                         asio::use_future));
        // the callers run on this thread: wait for them without blocking it
        asio::steady_timer t(ioc);
        for (auto& f : all)
            while (f.wait_for(0s) != std::future_status::ready) {
                t.expires_after(1ms);
                co_await t.async_wait(asio::use_awaitable);
            }
        int confirmed = 0;
        for (auto& f : all) confirmed += f.get() ? 1 : 0;
        CHECK(confirmed == 50);
        CHECK(acks.rounds() >= 1);
        CHECK(acks.rounds() < 50);  // a WAIT per round trip, not per write
    });
}

TEST_CASE("replica acks: a write whose connection was replaced before its WAIT is not confirmed" *
          doctest::timeout(60)) {
    acks_fixture f(300ms);
    auto& [r, ioc, c, acks] = f;
    f.run([&]() -> asio::awaitable<void> {
        const auto link = acks.link("wl:test:x");
        CHECK(link != 0);
        co_await c->command(argv("SET", "wl:test:x", "v"));
        // as when Sentinel names a new primary between the write and its WAIT: the WAIT goes
        // over a new connection, which has written nothing and so "has" every replica at once
        r.primary.cmd({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (acks.link("wl:test:x") == link || acks.link("wl:test:x") == 0) {
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            asio::steady_timer t(ioc, 2ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        CHECK(acks.link("wl:test:x") > link);

        CHECK_FALSE(co_await acks.confirmed("wl:test:x", link));
        // a write on the new connection is confirmed as usual
        CHECK(co_await write_and_confirm(*c, acks, "wl:test:y"));
        // and a write made over no connection never is
        CHECK_FALSE(co_await acks.confirmed("wl:test:z", 0));
    });
}
