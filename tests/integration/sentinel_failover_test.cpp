// Integration tests of the Redis client and subscriber through Redis Sentinel, against real
// processes (tests/support/redis_sentinel: a primary, a replica, three sentinels): finding the
// master, a SENTINEL FAILOVER, a SIGKILLed primary, dead, stalled and misled sentinels, and a
// write that reaches a demoted master (READONLY). Every wait polls an observable condition with
// a deadline.
#include "common/argv.hpp"
#include "common/redis.hpp"
#include "tests/support/redis_sentinel.hpp"
#include "tests/support/redis_test_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace warmline::redis;
using warmline::argv;
using warmline::test::sentinel_cluster;

namespace {

client_options options_for(const std::string& url) {
    auto o = warmline::test::fast_client_options(url, "sentinel-test");
    o.sentinel_timeout = 300ms;
    return o;
}

void run(std::function<asio::awaitable<void>(asio::any_io_executor)> body, std::chrono::seconds limit = 40s) {
    warmline::test::run_to_end(std::move(body), limit);
}

using warmline::test::pause;

// Poll a condition (on Redis, on a sentinel) until it holds, bounded in time.
asio::awaitable<bool> eventually(std::function<bool()> condition, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) co_return false;
        co_await pause(20ms);
    }
    co_return true;
}

// The port of the server the client's commands reach, and what ROLE says there; nullopt while
// the client cannot tell (it is reconnecting).
asio::awaitable<std::optional<std::pair<unsigned, std::string>>> where_commands_go(client& c) {
    try {
        const value port = co_await c.command(argv("CONFIG", "GET", "port"));
        const value role = co_await c.command(argv("ROLE"));
        co_return std::pair<unsigned, std::string>(std::stoul(port.elements.at(1).as_string()),
                                                   role.elements.at(0).as_string());
    } catch (const unavailable&) {
        co_return std::nullopt;
    }
}

// Poll until the client's commands reach the master on `port`.
asio::awaitable<bool> served_by_master_on(client& c, std::uint16_t port, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        const auto at = co_await where_commands_go(c);
        if (at && at->first == port && at->second == "master") co_return true;
        co_await pause(20ms);
    }
    co_return false;
}

// Messages received by a subscriber, and a way to wait for the n-th without sleeping. Held by
// shared_ptr: the subscriber's handler may outlive the test's coroutine until stop() has run.
struct inbox : std::enable_shared_from_this<inbox> {
    explicit inbox(asio::any_io_executor ex) : timer(std::move(ex)) {}
    std::vector<std::string> payloads;
    asio::steady_timer timer;

    subscriber::handler handler() {
        return [self = shared_from_this()](std::string_view, std::string_view payload) {
            self->payloads.emplace_back(payload);
            self->timer.cancel();
        };
    }
    asio::awaitable<bool> wait_for(std::size_t n, std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (payloads.size() < n) {
            if (std::chrono::steady_clock::now() >= deadline) co_return false;
            timer.expires_at(deadline);
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        co_return true;
    }
};

std::string numsub(warmline::test::redis_server& server, const std::string& channel) {
    return server.cmd({"PUBSUB", "NUMSUB", channel});
}

}  // namespace

TEST_CASE("redis sentinel: the client and the subscriber find the master through the sentinels" *
          doctest::timeout(60)) {
    sentinel_cluster cluster;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto o = options_for(cluster.url() + "/2");
        auto c = client::create(ex, o);
        auto s = subscriber::create(ex, o);
        auto box = std::make_shared<inbox>(ex);
        s->subscribe("wl:sentinel", box->handler());
        c->start();
        s->start();
        co_await c->wait_connected(5s);
        co_await s->wait_subscribed(5s);

        const auto at = co_await where_commands_go(*c);
        REQUIRE(at.has_value());
        CHECK(at->first == cluster.primary().port());
        CHECK(at->second == "master");
        // The URL's database is selected on the master.
        co_await c->command(argv("SET", "wl:sentinel:k", "v"));
        CHECK(cluster.primary().cmd({"INFO", "keyspace"}).find("db2:keys=1") != std::string::npos);
        // The subscriber is on the master too, and messages reach it.
        CHECK(numsub(cluster.primary(), "wl:sentinel") == "wl:sentinel\n1");
        co_await c->command(argv("PUBLISH", "wl:sentinel", "hello"));
        const bool received = co_await box->wait_for(1, 3s);
        REQUIRE(received);
        CHECK(box->payloads[0] == "hello");
        // Connections are named as before, and the watch on a sentinel is named too.
        CHECK(cluster.primary().cmd({"CLIENT", "LIST"}).find("name=sentinel-test:cmd") != std::string::npos);
        CHECK(cluster.primary().cmd({"CLIENT", "LIST"}).find("name=sentinel-test:events") != std::string::npos);
        c->stop();
        s->stop();
    });
}

TEST_CASE("redis sentinel: the URL's password authenticates to the master and is never sent to a "
          "sentinel" *
          doctest::timeout(60)) {
    sentinel_cluster::options co;
    co.password = "pw-for-the-master";
    sentinel_cluster cluster(co);
    const std::string scheme = "redis-sentinel://";
    const std::string url = scheme + ":" + co.password + "@" + cluster.url().substr(scheme.size());
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(url));
        auto s = subscriber::create(ex, options_for(url));
        s->subscribe("wl:sentinel", [](std::string_view, std::string_view) {});
        c->start();
        s->start();
        co_await c->wait_connected(5s);
        co_await s->wait_subscribed(5s);
        const bool found = co_await served_by_master_on(*c, cluster.primary().port(), 3s);
        REQUIRE(found);
        c->stop();
        s->stop();
    });
    // These sentinels require no password, so an AUTH sent to one would be answered with an
    // error, and counted (a sentinel's INFO has no per-command statistics).
    for (std::size_t i = 0; i < cluster.sentinel_count(); ++i)
        CHECK(cluster.sentinel_cmd(i, {"INFO", "stats"}).find("total_error_replies:0") != std::string::npos);
}

TEST_CASE("redis sentinel: after SENTINEL FAILOVER commands reach the promoted replica and the "
          "subscriber receives what is published there" *
          doctest::timeout(60)) {
    sentinel_cluster cluster;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto o = options_for(cluster.url());
        auto c = client::create(ex, o);
        auto s = subscriber::create(ex, o);
        auto box = std::make_shared<inbox>(ex);
        s->subscribe("wl:sentinel", box->handler());
        c->start();
        s->start();
        co_await c->wait_connected(5s);
        co_await s->wait_subscribed(5s);
        const bool on_primary = co_await served_by_master_on(*c, cluster.primary().port(), 3s);
        REQUIRE(on_primary);
        co_await c->command(argv("PUBLISH", "wl:sentinel", "before"));
        const bool received_before = co_await box->wait_for(1, 3s);
        REQUIRE(received_before);

        CHECK(cluster.sentinel_cmd(1, {"SENTINEL", "FAILOVER", sentinel_cluster::master_name}) == "OK");
        // The old master keeps accepting writes until Sentinel demotes it seconds later: the
        // client must not wait for that, but follow +switch-master.
        const bool on_promoted = co_await served_by_master_on(*c, cluster.replica().port(), 20s);
        REQUIRE(on_promoted);
        co_await c->command(argv("SET", "wl:sentinel:after", "1"));
        CHECK(cluster.replica().cmd({"GET", "wl:sentinel:after"}) == "1");

        // The subscriber follows too: once it is subscribed on the new master, what is published
        // there reaches it.
        const bool moved = co_await eventually(
            [&] { return numsub(cluster.replica(), "wl:sentinel") == "wl:sentinel\n1"; }, 20s);
        REQUIRE(moved);
        co_await s->wait_subscribed(5s);
        co_await c->command(argv("PUBLISH", "wl:sentinel", "after"));
        const bool received_after = co_await box->wait_for(2, 3s);
        REQUIRE(received_after);
        CHECK(box->payloads.back() == "after");
        c->stop();
        s->stop();
    });
}

TEST_CASE("redis sentinel: when the primary is SIGKILLed the client recovers onto the promoted replica "
          "as soon as the switch is announced" *
          doctest::timeout(60)) {
    sentinel_cluster cluster;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto o = options_for(cluster.url());
        // A backoff far longer than the failover takes: the client must not wait it out once
        // +switch-master says where the master is.
        o.backoff_initial = 20s;
        o.backoff_max = 20s;
        auto c = client::create(ex, o);
        c->start();
        co_await c->wait_connected(5s);
        const bool on_primary = co_await served_by_master_on(*c, cluster.primary().port(), 3s);
        REQUIRE(on_primary);
        co_await c->command(argv("SET", "wl:sentinel:before", "1"));

        cluster.primary().crash();
        // Meanwhile commands fail fast with `unavailable` (callers retry), until the sentinels
        // agree the primary is down (1 s) and promote the replica (a few seconds).
        const bool on_promoted = co_await served_by_master_on(*c, cluster.replica().port(), 15s);
        REQUIRE(on_promoted);
        const value before = co_await c->command(argv("GET", "wl:sentinel:before"));
        CHECK(before.as_string() == "1");
        co_await c->command(argv("SET", "wl:sentinel:after", "2"));
        CHECK(cluster.replica().cmd({"GET", "wl:sentinel:after"}) == "2");
        c->stop();
    });
}

TEST_CASE("redis sentinel: a server that is not the master is not believed (ROLE), and the sentinel "
          "that named it is asked last from then on" *
          doctest::timeout(60)) {
    sentinel_cluster cluster;
    // A real sentinel with a wrong view of the world: it monitors the replica as the master.
    const std::size_t misled = cluster.add_sentinel_for(cluster.replica().port());
    REQUIRE(cluster.master_port_by(misled) == cluster.replica().port());
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(cluster.url({misled, 0, 1, 2})));
        c->start();
        // Were the misled sentinel asked first every time, this would never connect.
        co_await c->wait_connected(5s);
        // The very first command already reaches the master: the replica never counted as connected.
        const auto at = co_await where_commands_go(*c);
        REQUIRE(at.has_value());
        CHECK(at->first == cluster.primary().port());
        CHECK(at->second == "master");
        c->stop();
    });
}

// One cluster for three steps, least destructive first: a cluster takes seconds to start.
TEST_CASE("redis sentinel: a sentinel that does not know the name, or is stalled or dead, is passed "
          "over for the next" *
          doctest::timeout(60)) {
    sentinel_cluster cluster;

    INFO("no sentinel knows the name: wait_connected gives up with a sentence naming each");
    const std::string unknown = "redis-sentinel://127.0.0.1:" + std::to_string(cluster.sentinel_port(1)) +
                                ",127.0.0.1:" + std::to_string(warmline::test::free_port()) + "/nosuchmaster";
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(unknown));
        c->start();
        std::optional<std::string> error;
        try {
            co_await c->wait_connected(1500ms);
        } catch (const unavailable& e) {
            error = e.what();
        }
        REQUIRE(error.has_value());
        CHECK(error->find("does not know a master named 'nosuchmaster'") != std::string::npos);
        CHECK(error->find("no sentinel told where master 'nosuchmaster' is") != std::string::npos);
        CHECK(error->find("127.0.0.1:" + std::to_string(cluster.sentinel_port(1))) != std::string::npos);
        c->stop();
    }, 10s);

    INFO("a stalled (SIGSTOP) first sentinel has sentinel_timeout, then the next is asked; the one "
         "that answered is asked first on the next reconnect");
    cluster.pause_sentinel(0);
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto o = options_for(cluster.url());
        o.sentinel_timeout = 1000ms;
        auto c = client::create(ex, o);
        // Shared: the handler runs once more (down) after this coroutine has ended, at stop().
        auto downs = std::make_shared<int>(0);
        c->on_state_change([downs](bool up) { *downs += up ? 0 : 1; });
        const auto started = std::chrono::steady_clock::now();
        c->start();
        co_await c->wait_connected(5s);
        // The stalled sentinel had its full second first.
        CHECK(std::chrono::steady_clock::now() - started >= 1000ms);
        const bool found = co_await served_by_master_on(*c, cluster.primary().port(), 3s);
        REQUIRE(found);

        // Cut the connection: the reconnect asks the sentinel that answered, not the stalled one.
        cluster.primary().cmd({"CLIENT", "KILL", "TYPE", "normal"});
        const auto cut = std::chrono::steady_clock::now();
        const bool dropped = co_await eventually([&] { return *downs >= 1; }, 3s);
        REQUIRE(dropped);
        const bool back = co_await served_by_master_on(*c, cluster.primary().port(), 3s);
        REQUIRE(back);
        CHECK(std::chrono::steady_clock::now() - cut < 900ms);
        c->stop();
    });
    cluster.resume_sentinel(0);

    INFO("a dead first sentinel: the next one names the master");
    cluster.kill_sentinel(0);
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(cluster.url()));
        c->start();
        co_await c->wait_connected(5s);
        const bool found = co_await served_by_master_on(*c, cluster.primary().port(), 3s);
        REQUIRE(found);
        c->stop();
    });
}

TEST_CASE("redis sentinel: a write that reaches a demoted master fails with unavailable (READONLY) "
          "and the client reconnects to the real master" *
          doctest::timeout(60)) {
    sentinel_cluster cluster;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto o = options_for(cluster.url());
        // Long enough that the stalled sentinel's watch is not given up during the test.
        o.command_timeout = 20000ms;
        auto c = client::create(ex, o);
        c->start();
        co_await c->wait_connected(5s);
        const bool on_primary = co_await served_by_master_on(*c, cluster.primary().port(), 3s);
        REQUIRE(on_primary);

        // The client's watch is on sentinel 0 (the first in the URL): stall it, so the client
        // hears of no switch, and fail over through sentinel 1.
        cluster.pause_sentinel(0);
        CHECK(cluster.sentinel_cmd(1, {"SENTINEL", "FAILOVER", sentinel_cluster::master_name}) == "OK");
        const bool promoted = co_await eventually(
            [&] {
                return cluster.master_port_by(1) == cluster.replica().port() &&
                       cluster.master_port_by(2) == cluster.replica().port();
            },
            20s);
        REQUIRE(promoted);
        // Demote the old master by hand, as a late Sentinel or an operator would, but without
        // disconnecting its clients: the client's connection is still there, now to a replica.
        cluster.primary().cmd({"REPLICAOF", "127.0.0.1", std::to_string(cluster.replica().port())});
        CHECK(cluster.primary().cmd({"ROLE"}).starts_with("slave"));
        CHECK(c->connected());

        std::optional<std::string> refused;
        try {
            co_await c->command(argv("SET", "wl:sentinel:k", "v"));
        } catch (const unavailable& e) {
            refused = e.what();
        }
        REQUIRE(refused.has_value());
        CHECK(refused->find("READONLY") != std::string::npos);

        // It asks the sentinels again (the stalled one for sentinel_timeout, then the next) and
        // lands on the real master.
        const bool on_promoted = co_await served_by_master_on(*c, cluster.replica().port(), 10s);
        REQUIRE(on_promoted);
        co_await c->command(argv("SET", "wl:sentinel:k", "v"));
        CHECK(cluster.replica().cmd({"GET", "wl:sentinel:k"}) == "v");
        c->stop();
    });
    cluster.resume_sentinel(0);
}
