// Integration tests of the asynchronous Redis client and subscriber against a real redis-server
// started per test case: commands, errors, pipelines, scripts, fail-fast while Redis is down,
// reconnection after restarts and CLIENT KILL, pub/sub with resubscription (channels and shard
// channels), and lifetimes.
#include "common/argv.hpp"
#include "common/crypto.hpp"
#include "common/redis.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/redis_test_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace warmline::redis;
using warmline::argv;
using warmline::test::redis_server;

namespace {

// Commands are spelled with argv(...) rather than braced lists: GCC 12 rejects a braced list in
// any statement that co_awaits (see common/argv.hpp).

client_options options_for(const std::string& url) {
    client_options o;
    o.where = endpoint::parse(url);
    o.connect_timeout = 1000ms;
    // Short backoff keeps reconnection tests fast without changing what they prove.
    o.backoff_initial = 5ms;
    o.backoff_max = 50ms;
    return o;
}

// Run `body` on an io_context in this thread. It must finish in time, and afterwards nothing the
// clients left behind (timers, socket watches) may keep the io_context busy.
void run(std::function<asio::awaitable<void>(asio::any_io_executor)> body) {
    asio::io_context ioc;
    auto done = asio::co_spawn(ioc, body(ioc.get_executor()), asio::use_future);
    ioc.run_for(8s);
    REQUIRE_MESSAGE(done.wait_for(0s) == std::future_status::ready, "the test coroutine did not finish");
    done.get();
    CHECK_MESSAGE(ioc.stopped(), "something kept the io_context busy after the clients were gone");
}

// The what() of an E thrown by `op`, or nullopt if it completed. Other exceptions propagate.
template <typename E, typename T>
asio::awaitable<std::optional<std::string>> thrown(asio::awaitable<T> op) {
    try {
        co_await std::move(op);
    } catch (const E& e) {
        co_return std::string(e.what());
    }
    co_return std::nullopt;
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

// Poll a condition that only Redis can see (e.g. "a client is blocked"), bounded in time.
asio::awaitable<bool> eventually(std::function<bool()> condition, std::chrono::milliseconds limit = 3000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) co_return false;
        co_await pause(2ms);
    }
    co_return true;
}

// Counts notify() calls; a coroutine on the same thread waits for the n-th without sleeping.
class signal_counter {
public:
    explicit signal_counter(asio::any_io_executor ex) : timer_(std::move(ex)) {}
    void notify() {
        ++count_;
        timer_.cancel();
    }
    int count() const { return count_; }
    asio::awaitable<bool> wait_for(int n, std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (count_ < n) {
            if (std::chrono::steady_clock::now() >= deadline) co_return false;
            timer_.expires_at(deadline);
            co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        co_return true;
    }

private:
    asio::steady_timer timer_;
    int count_ = 0;
};

// One "field:value" line of INFO <section>.
std::string info_field(const redis_server& server, const std::string& section, const std::string& field) {
    const std::string text = server.cmd({"INFO", section});
    const auto at = text.find("\n" + field + ":");
    if (at == std::string::npos) return {};
    const auto start = at + field.size() + 2;
    return text.substr(start, text.find_first_of("\r\n", start) - start);
}

// How many times Redis ran `command` (e.g. "script|load") since the last CONFIG RESETSTAT.
int command_calls(const redis_server& server, const std::string& command) {
    const std::string stats = info_field(server, "commandstats", "cmdstat_" + command);
    if (stats.empty()) return 0;
    return std::stoi(stats.substr(stats.find("calls=") + 6));
}

struct pending_result {
    bool done = false;
    std::optional<std::string> unavailable_error;
};

asio::awaitable<void> record_outcome(asio::awaitable<value> op, std::shared_ptr<pending_result> r) {
    r->unavailable_error = co_await thrown<unavailable>(std::move(op));
    r->done = true;
}

// Start a command that blocks in Redis (BLPOP on an empty list) and report how it ended.
std::shared_ptr<pending_result> start_blocked_command(asio::any_io_executor ex, client& c) {
    auto result = std::make_shared<pending_result>();
    asio::co_spawn(ex, record_outcome(c.command({"BLPOP", "wl:never", "0"}), result), asio::detached);
    return result;
}

}  // namespace

TEST_CASE("redis client: a command round-trips binary strings, integers, nil and arrays" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(server.url()));
        c->start();
        co_await c->wait_connected(3s);
        CHECK(c->connected());
        CHECK(c->last_error().empty());

        const std::string binary("a\0b\r\nc", 6);
        const value ok = co_await c->command(argv("SET", "wl:k", binary));
        CHECK(ok.type == value::kind::status);
        CHECK(ok.str == "OK");
        const value got = co_await c->command(argv("GET", "wl:k"));
        CHECK(got.type == value::kind::string);
        CHECK(got.as_string() == binary);
        CHECK(server.cmd({"STRLEN", "wl:k"}) == "6");

        const value missing = co_await c->command(argv("GET", "wl:missing"));
        CHECK(missing.is_nil());
        const value n = co_await c->command(argv("INCRBY", "wl:n", "41"));
        CHECK(n.type == value::kind::integer);
        CHECK(n.as_int() == 41);

        co_await c->command(argv("RPUSH", "wl:l", "x", "y"));
        const value list = co_await c->command(argv("LRANGE", "wl:l", "0", "-1"));
        REQUIRE(list.type == value::kind::array);
        REQUIRE(list.elements.size() == 2);
        CHECK(list.elements[0].str == "x");
        CHECK(list.elements[1].str == "y");

        const auto empty = co_await thrown<std::invalid_argument>(c->command(std::vector<std::string>()));
        CHECK(empty.has_value());
    });
}

TEST_CASE("redis client: an error reply throws reply_error and the connection stays usable" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(server.url()));
        c->start();
        co_await c->wait_connected(3s);
        co_await c->command(argv("SET", "wl:s", "abc"));

        const auto wrongtype = co_await thrown<reply_error>(c->command(argv("LPUSH", "wl:s", "x")));
        REQUIRE(wrongtype.has_value());
        CHECK(wrongtype->starts_with("WRONGTYPE"));
        const auto unknown = co_await thrown<reply_error>(c->command(argv("NO-SUCH-COMMAND")));
        REQUIRE(unknown.has_value());
        CHECK(unknown->starts_with("ERR"));

        const auto modal = co_await thrown<std::invalid_argument>(c->command(argv("subscribe", "wl:x")));
        CHECK(modal.has_value());

        const value pong = co_await c->command(argv("PING"));
        CHECK(pong.str == "PONG");
        CHECK(c->connected());
    });
}

TEST_CASE("redis client: a pipeline returns every reply in order, with an error reply as a value" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(server.url()));
        c->start();
        co_await c->wait_connected(3s);
        co_await c->command(argv("SET", "wl:str", "text"));

        // Even indices echo their index, odd ones count, and index 500 fails in the middle.
        std::vector<std::vector<std::string>> cmds;
        for (int i = 0; i < 1000; ++i) {
            if (i == 500)
                cmds.push_back({"LPUSH", "wl:str", "x"});
            else if (i % 2 == 0)
                cmds.push_back({"ECHO", std::to_string(i)});
            else
                cmds.push_back({"INCR", "wl:ctr"});
        }
        const auto replies = co_await c->pipeline(cmds);
        REQUIRE(replies.size() == 1000);
        int out_of_order = 0;
        for (int i = 0; i < 1000; ++i) {
            const value& r = replies[static_cast<std::size_t>(i)];
            if (i == 500) {
                CHECK(r.is_error());
                CHECK(r.str.starts_with("WRONGTYPE"));
            } else if (i % 2 == 0) {
                out_of_order += r.type != value::kind::string || r.str != std::to_string(i);
            } else {
                out_of_order += r.type != value::kind::integer || r.integer != (i + 1) / 2;
            }
        }
        CHECK(out_of_order == 0);
        CHECK(server.cmd({"GET", "wl:ctr"}) == "500");

        const auto none = co_await c->pipeline({});
        CHECK(none.empty());
        std::vector<std::vector<std::string>> with_empty(2);
        with_empty[0].push_back("PING");
        const auto bad = co_await thrown<std::invalid_argument>(c->pipeline(std::move(with_empty)));
        CHECK(bad.has_value());
    });
}

TEST_CASE("redis client: eval loads a new script on NOSCRIPT, then runs it from the cache, and "
          "recovers after SCRIPT FLUSH" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(server.url()));
        c->start();
        co_await c->wait_connected(3s);
        server.cmd({"CONFIG", "RESETSTAT"});

        // A unique comment keeps the script out of any cache a previous run could have filled.
        const script counter("-- " + warmline::crypto::random_id() +
                             "\nreturn {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}");
        CHECK(server.cmd({"SCRIPT", "EXISTS", counter.sha1()}) == "0");

        const value first = co_await c->eval(counter, argv("wl:evals"), argv("hello"));
        REQUIRE(first.type == value::kind::array);
        REQUIRE(first.elements.size() == 3);
        CHECK(first.elements[0].str == "wl:evals");
        CHECK(first.elements[1].str == "hello");
        CHECK(first.elements[2].integer == 1);
        // Loaded under the SHA1 we computed locally, exactly once.
        CHECK(server.cmd({"SCRIPT", "EXISTS", counter.sha1()}) == "1");
        CHECK(command_calls(server, "script|load") == 1);

        const value second = co_await c->eval(counter, argv("wl:evals"), argv("again"));
        REQUIRE(second.elements.size() == 3);
        CHECK(second.elements[2].integer == 2);
        CHECK(command_calls(server, "script|load") == 1);  // the cached path loads nothing
        CHECK(command_calls(server, "evalsha") == 3);      // NOSCRIPT, retry, cached

        server.cmd({"SCRIPT", "FLUSH"});
        const value third = co_await c->eval(counter, argv("wl:evals"), argv("flushed"));
        REQUIRE(third.elements.size() == 3);
        CHECK(third.elements[2].integer == 3);
        CHECK(command_calls(server, "script|load") == 2);

        const script failing("return redis.error_reply('WLTEST failed on purpose')");
        const auto err = co_await thrown<reply_error>(c->eval(failing, {}, {}));
        REQUIRE(err.has_value());
        CHECK(err->find("WLTEST failed on purpose") != std::string::npos);
    });
}

TEST_CASE("redis client: with nothing listening, commands fail fast and wait_connected gives up "
          "naming the reason" *
          doctest::timeout(10)) {
    const auto port = warmline::test::free_port();
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for("redis://127.0.0.1:" + std::to_string(port)));
        c->start();
        const auto waited = co_await thrown<unavailable>(c->wait_connected(100ms));
        REQUIRE(waited.has_value());
        CHECK(waited->find("refused") != std::string::npos);
        CHECK_FALSE(c->connected());
        CHECK(c->last_error().find("refused") != std::string::npos);

        const auto started = std::chrono::steady_clock::now();
        const auto failed = co_await thrown<unavailable>(c->command(argv("PING")));
        CHECK(failed.has_value());
        CHECK(std::chrono::steady_clock::now() - started < 100ms);
        std::vector<std::vector<std::string>> one(1, argv("PING"));
        const auto piped = co_await thrown<unavailable>(c->pipeline(std::move(one)));
        CHECK(piped.has_value());
    });
}

TEST_CASE("redis client: a server that accepts but never answers hits the connect timeout" *
          doctest::timeout(10)) {
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        // The kernel completes the TCP handshake for the listen backlog; nobody ever replies.
        asio::ip::tcp::acceptor silent(ex, {asio::ip::make_address("127.0.0.1"), 0});
        auto opts = options_for("redis://127.0.0.1:" + std::to_string(silent.local_endpoint().port()));
        opts.connect_timeout = 100ms;
        auto c = client::create(ex, opts);
        c->start();
        const auto waited = co_await thrown<unavailable>(c->wait_connected(400ms));
        REQUIRE(waited.has_value());
        CHECK(c->last_error().find("no connection within 100 ms") != std::string::npos);
        CHECK_FALSE(c->connected());
    });
}

TEST_CASE("redis client: while Redis is down commands throw unavailable, and it reconnects when "
          "Redis returns on the same port" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(server.url()));
        c->start();
        co_await c->wait_connected(3s);
        co_await c->command(argv("SET", "wl:persisted", "yes"));

        server.kill();
        // Whether the client notices the close first or sends into the dead socket first, the
        // command must end in unavailable (and a write into it must not raise SIGPIPE).
        const auto lost = co_await thrown<unavailable>(c->command(argv("PING")));
        CHECK(lost.has_value());
        {
            const bool ok = co_await eventually([&] { return !c->connected(); });
            CHECK(ok);
        }
        CHECK_FALSE(c->last_error().empty());

        // Fail fast, no queueing while down.
        const auto started = std::chrono::steady_clock::now();
        const auto down = co_await thrown<unavailable>(c->command(argv("GET", "wl:persisted")));
        CHECK(down.has_value());
        CHECK(std::chrono::steady_clock::now() - started < 100ms);
        const auto timed_out = co_await thrown<unavailable>(c->wait_connected(30ms));
        CHECK(timed_out.has_value());

        server.restart();
        co_await c->wait_connected(3s);
        CHECK(c->connected());
        CHECK(c->last_error().empty());
        const value back = co_await c->command(argv("GET", "wl:persisted"));
        CHECK(back.str == "yes");  // same server directory, so the AOF brought the key back
    });
}

TEST_CASE("redis client: CLIENT KILL fails the command in flight with unavailable and the client "
          "reconnects on a new connection" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(server.url()));
        c->start();
        co_await c->wait_connected(3s);
        const long long first_id = (co_await c->command(argv("CLIENT", "ID"))).as_int();

        auto blocked = start_blocked_command(ex, *c);
        {
            const bool ok = co_await eventually([&] { return info_field(server, "clients", "blocked_clients") == "1"; });
            REQUIRE(ok);
        }
        // Our client is the only normal one: the side door's own connection is skipped.
        CHECK(server.cmd({"CLIENT", "KILL", "TYPE", "normal"}) == "1");

        {
            const bool ok = co_await eventually([&] { return blocked->done; });
            REQUIRE(ok);
        }
        CHECK(blocked->unavailable_error.has_value());

        co_await c->wait_connected(3s);
        const long long second_id = (co_await c->command(argv("CLIENT", "ID"))).as_int();
        CHECK(second_id != first_id);
        CHECK(c->last_error().empty());
    });
}

TEST_CASE("redis client: stop() or dropping the client fails a pending command and leaves nothing "
          "running" *
          doctest::timeout(10)) {
    redis_server server;
    bool drop = false;
    SUBCASE("stop()") { drop = false; }
    SUBCASE("dropping the last reference") { drop = true; }
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = client::create(ex, options_for(server.url()));
        c->start();
        co_await c->wait_connected(3s);
        auto blocked = start_blocked_command(ex, *c);
        {
            const bool ok = co_await eventually([&] { return info_field(server, "clients", "blocked_clients") == "1"; });
            REQUIRE(ok);
        }

        if (drop) {
            c.reset();
        } else {
            c->stop();
            const auto after = co_await thrown<unavailable>(c->command(argv("PING")));
            CHECK(after.has_value());
            CHECK_FALSE(c->connected());
            CHECK(c->last_error() == "client stopped");
        }
        {
            const bool ok = co_await eventually([&] { return blocked->done; });
            REQUIRE(ok);
        }
        CHECK(blocked->unavailable_error.has_value());
        // Redis sees the connection go away, too.
        {
            const bool ok = co_await eventually([&] { return info_field(server, "clients", "connected_clients") == "1"; });
            CHECK(ok);
        }
    });
}

TEST_CASE("redis client: destroying the io_context with a connected client and a pending command "
          "frees everything" *
          doctest::timeout(10)) {
    // A service that shuts down its io_context before the Redis client: nothing may crash or leak
    // (AddressSanitizer's leak check guards the second half of this test).
    redis_server server;
    auto ioc = std::make_unique<asio::io_context>();
    auto c = client::create(ioc->get_executor(), options_for(server.url()));
    auto s = subscriber::create(ioc->get_executor(), options_for(server.url()));
    c->start();
    s->subscribe("wl:shutdown", [](std::string_view, std::string_view) {});
    s->start();
    auto ready = asio::co_spawn(
        *ioc,
        [](std::shared_ptr<client> c, std::shared_ptr<subscriber> s) -> asio::awaitable<void> {
            co_await c->wait_connected(3s);
            co_await s->wait_subscribed(3s);
        }(c, s),
        asio::use_future);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (ready.wait_for(0s) != std::future_status::ready && std::chrono::steady_clock::now() < deadline)
        ioc->run_one_for(50ms);
    REQUIRE(ready.wait_for(0s) == std::future_status::ready);
    ready.get();

    auto pending = asio::co_spawn(*ioc, c->command(argv("BLPOP", "wl:never", "0")), asio::use_future);
    while (info_field(server, "clients", "blocked_clients") != "1" && std::chrono::steady_clock::now() < deadline)
        ioc->run_one_for(10ms);
    REQUIRE(info_field(server, "clients", "blocked_clients") == "1");

    c.reset();
    s.reset();
    ioc.reset();
    CHECK_THROWS(pending.get());
    // The sockets were closed: Redis soon sees only the side door's own connection.
    const auto closed_by = std::chrono::steady_clock::now() + 2s;
    while (info_field(server, "clients", "connected_clients") != "1" && std::chrono::steady_clock::now() < closed_by)
        std::this_thread::sleep_for(2ms);
    CHECK(info_field(server, "clients", "connected_clients") == "1");
}

TEST_CASE("redis client: it authenticates and selects the database from the URL, and a refused "
          "password is reported without repeating it" *
          doctest::timeout(10)) {
    redis_server server({"--requirepass", "s3cret-pw"});
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto good = client::create(
            ex, options_for("redis://:s3cret-pw@127.0.0.1:" + std::to_string(server.port()) + "/3"));
        good->start();
        co_await good->wait_connected(3s);
        const value info = co_await good->command(argv("CLIENT", "INFO"));
        CHECK(info.as_string().find(" db=3 ") != std::string::npos);
        co_await good->command(argv("SET", "wl:in-db-3", "1"));
        CHECK(server.cmd({"EXISTS", "wl:in-db-3"}) == "0");  // the side door uses database 0

        auto bad = client::create(
            ex, options_for("redis://:not-the-pw-xyzzy@127.0.0.1:" + std::to_string(server.port())));
        bad->start();
        const auto refused = co_await thrown<unavailable>(bad->wait_connected(300ms));
        REQUIRE(refused.has_value());
        CHECK(refused->find("handshake refused") != std::string::npos);
        CHECK(refused->find("xyzzy") == std::string::npos);
        CHECK(bad->last_error().find("xyzzy") == std::string::npos);
        CHECK_FALSE(bad->connected());
    });
}

TEST_CASE("redis client: callers on many threads each resume on their own executor" * doctest::timeout(10)) {
    redis_server server;
    asio::io_context ioc;
    auto c = client::create(ioc.get_executor(), options_for(server.url()));
    c->start();
    std::atomic<int> wrong_executor{0};
    std::atomic<int> not_increasing{0};

    auto worker = [&](asio::strand<asio::io_context::executor_type> strand) -> asio::awaitable<void> {
        co_await c->wait_connected(3s);
        long long last = 0;
        for (int i = 0; i < 250; ++i) {
            const long long now = (co_await c->command(argv("INCR", "wl:shared"))).as_int();
            wrong_executor += !strand.running_in_this_thread();
            not_increasing += now <= last;
            last = now;
        }
    };
    std::vector<std::future<void>> done;
    for (int i = 0; i < 4; ++i) {
        auto strand = asio::make_strand(ioc.get_executor());
        done.push_back(asio::co_spawn(strand, worker(strand), asio::use_future));
    }
    auto guard = asio::make_work_guard(ioc);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) threads.emplace_back([&] { ioc.run_for(9s); });
    bool finished = true;
    for (auto& f : done) finished = finished && f.wait_for(8s) == std::future_status::ready;
    c.reset();
    guard.reset();
    if (!finished) ioc.stop();
    for (auto& t : threads) t.join();

    REQUIRE(finished);
    for (auto& f : done) f.get();
    CHECK(wrong_executor == 0);
    CHECK(not_increasing == 0);
    CHECK(server.cmd({"GET", "wl:shared"}) == "1000");
}

namespace {

// What a subscriber's handlers saw; shared so handlers never outlive it.
struct inbox {
    explicit inbox(asio::any_io_executor ex) : received(ex), resubscribed(std::move(ex)) {}
    std::vector<std::pair<std::string, std::string>> messages;
    signal_counter received;
    signal_counter resubscribed;
};

subscriber::handler record_into(std::shared_ptr<inbox> box) {
    return [box](std::string_view channel, std::string_view payload) {
        box->messages.emplace_back(channel, payload);
        box->received.notify();
    };
}

}  // namespace

TEST_CASE("redis subscriber: PUBLISHed messages reach the handler with channel and binary payload "
          "intact" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto box = std::make_shared<inbox>(ex);
        auto s = subscriber::create(ex, options_for(server.url()));
        s->subscribe("wl:a", record_into(box));
        s->start();
        co_await s->wait_subscribed(3s);
        CHECK(s->connected());

        const std::string binary("x\0y\r\n", 5);
        CHECK(server.cmd({"PUBLISH", "wl:a", binary}) == "1");
        {
            const bool ok = co_await box->received.wait_for(1, 3s);
            REQUIRE(ok);
        }
        CHECK(box->messages[0].first == "wl:a");
        CHECK(box->messages[0].second == binary);

        // A channel added while connected is subscribed at once.
        s->subscribe("wl:b", record_into(box));
        co_await s->wait_subscribed(3s);
        CHECK(server.cmd({"PUBLISH", "wl:b", "second"}) == "1");
        CHECK(server.cmd({"PUBLISH", "wl:elsewhere", "nobody"}) == "0");
        {
            const bool ok = co_await box->received.wait_for(2, 3s);
            REQUIRE(ok);
        }
        CHECK(box->messages[1] == std::pair<std::string, std::string>("wl:b", "second"));
        CHECK(box->resubscribed.count() == 0);  // a first subscription is not a resubscription
    });
}

TEST_CASE("redis subscriber: after Redis restarts it subscribes again and calls on_resubscribed" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto box = std::make_shared<inbox>(ex);
        auto s = subscriber::create(ex, options_for(server.url()));
        s->subscribe("wl:events", record_into(box));
        s->on_resubscribed([box] { box->resubscribed.notify(); });
        s->start();
        co_await s->wait_subscribed(3s);
        CHECK(box->resubscribed.count() == 0);

        server.restart();
        {
            const bool ok = co_await box->resubscribed.wait_for(1, 5s);
            REQUIRE(ok);
        }
        CHECK(s->connected());
        co_await s->wait_subscribed(100ms);
        // Redis itself knows the subscription again.
        CHECK(server.cmd({"PUBSUB", "NUMSUB", "wl:events"}) == "wl:events\n1");
        CHECK(server.cmd({"PUBLISH", "wl:events", "after restart"}) == "1");
        {
            const bool ok = co_await box->received.wait_for(1, 3s);
            REQUIRE(ok);
        }
        CHECK(box->messages.back().second == "after restart");
        CHECK(box->resubscribed.count() == 1);
    });
}

TEST_CASE("redis client: a command to a stalled Redis (SIGSTOP) fails within the command timeout, "
          "and the client is back when Redis resumes" *
          doctest::timeout(15)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto o = options_for(server.url());
        o.command_timeout = 300ms;
        o.connect_timeout = 300ms;
        auto states = std::make_shared<std::vector<bool>>();
        auto c = client::create(ex, o);
        c->on_state_change([states](bool up) { states->push_back(up); });
        c->start();
        co_await c->wait_connected(3s);
        co_await c->command(argv("SET", "wl:before", "1"));

        server.pause();
        const auto started = std::chrono::steady_clock::now();
        const auto stalled = co_await thrown<unavailable>(c->command(argv("GET", "wl:before")));
        const auto waited = std::chrono::steady_clock::now() - started;
        CHECK(stalled.has_value());
        // the deadline, not TCP: well under a second, and not before the deadline either
        CHECK(waited >= 290ms);
        CHECK(waited < 1500ms);
        CHECK_FALSE(c->connected());
        CHECK(c->last_error().find("no reply from Redis within 300 ms") != std::string::npos);

        server.resume();
        co_await c->wait_connected(5s);
        CHECK((co_await c->command(argv("GET", "wl:before"))).str == "1");
        // up, down, up: the owner hears of the new session
        REQUIRE(states->size() == 3);
        CHECK(((*states)[0] && !(*states)[1] && (*states)[2]));
    });
}

TEST_CASE("redis client: a slow command within the deadline is not cut, and its connection is kept" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto o = options_for(server.url());
        o.command_timeout = 600ms;
        auto c = client::create(ex, o);
        c->start();
        co_await c->wait_connected(3s);
        const long long id = (co_await c->command(argv("CLIENT", "ID"))).as_int();
        // a script that takes about 200 ms of Redis's time, twice in a row: every reply is in time
        for (int i = 0; i < 2; ++i)
            co_await c->command(argv("EVAL", "local t = redis.call('TIME'); local s = t[1] * 1e6 + t[2]; "
                                             "repeat local u = redis.call('TIME') until u[1] * 1e6 + u[2] - s > 200000 "
                                             "return 1",
                                     "0"));
        CHECK((co_await c->command(argv("CLIENT", "ID"))).as_int() == id);
    });
}

TEST_CASE("redis client: connections are named in CLIENT LIST" * doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto o = options_for(server.url());
        o.name = "warmline-test-7";
        auto c = client::create(ex, o);
        auto s = subscriber::create(ex, o);
        s->subscribe("wl:x", [](std::string_view, std::string_view) {});
        c->start();
        s->start();
        co_await c->wait_connected(3s);
        co_await s->wait_subscribed(3s);
        const std::string list = server.cmd({"CLIENT", "LIST"});
        CHECK(list.find("name=warmline-test-7:cmd") != std::string::npos);
        CHECK(list.find("name=warmline-test-7:events") != std::string::npos);
        s->stop();
        c->stop();
    });
}

TEST_CASE("redis subscriber: a stalled Redis is noticed by its PINGs, and it resubscribes when Redis "
          "resumes" *
          doctest::timeout(20)) {
    // The same probe and recovery whichever kind of channel the subscriber holds.
    bool shard = false;
    SUBCASE("a channel") {}
    SUBCASE("a shard channel only") { shard = true; }
    const std::string publish = shard ? "SPUBLISH" : "PUBLISH";
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto o = options_for(server.url());
        o.command_timeout = 300ms;
        o.connect_timeout = 300ms;
        auto box = std::make_shared<inbox>(ex);
        auto states = std::make_shared<std::vector<bool>>();
        auto s = subscriber::create(ex, o);
        if (shard)
            s->ssubscribe("wl:events", record_into(box));
        else
            s->subscribe("wl:events", record_into(box));
        s->on_resubscribed([box] { box->resubscribed.notify(); });
        s->on_state_change([states](bool up) { states->push_back(up); });
        s->start();
        co_await s->wait_subscribed(3s);

        // Many PINGs on a healthy connection: answered each time, never mistaken for a stall,
        // and messages still arrive among them.
        co_await pause(1500ms);
        CHECK(s->connected());
        CHECK(states->size() == 1);
        CHECK(server.cmd({publish, "wl:events", "between pings"}) == "1");
        {
            const bool ok = co_await box->received.wait_for(1, 3s);
            REQUIRE(ok);
        }

        server.pause();
        const auto paused = std::chrono::steady_clock::now();
        {
            const bool ok = co_await eventually([&] { return !s->connected(); }, 2s);
            CHECK(ok);
        }
        MESSAGE(publish << ": SIGSTOP -> reported down in "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - paused)
                               .count()
                        << " ms");
        server.resume();
        {
            const bool ok = co_await box->resubscribed.wait_for(1, 5s);
            REQUIRE(ok);
        }
        CHECK(server.cmd({publish, "wl:events", "after the stall"}) == "1");
        {
            const bool ok = co_await box->received.wait_for(2, 3s);
            REQUIRE(ok);
        }
        CHECK(box->messages.back().second == "after the stall");
        REQUIRE(states->size() == 3);
        CHECK(((*states)[0] && !(*states)[1] && (*states)[2]));
        s->stop();
    });
}

namespace {

int line_count(const std::string& text) {
    if (text.empty()) return 0;
    return static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
}

}  // namespace

TEST_CASE("redis subscriber: 256 shard channels go in one SSUBSCRIBE, and SPUBLISH reaches each one's own "
          "handler" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto channels = warmline::test::relay_shard_channels("n1");
        auto box = std::make_shared<inbox>(ex);
        auto classic = std::make_shared<inbox>(ex);
        auto s = subscriber::create(ex, options_for(server.url()));
        // Each handler checks it is called for its own channel only.
        auto misrouted = std::make_shared<int>(0);
        for (const auto& c : channels)
            s->ssubscribe(c, [box, misrouted, c](std::string_view channel, std::string_view payload) {
                if (channel != c || payload != "to " + c) ++*misrouted;
                box->messages.emplace_back(channel, payload);
                box->received.notify();
            });
        // The same name as a plain channel is another subscription, with its own handler.
        s->subscribe(channels[0], record_into(classic));
        s->start();
        co_await s->wait_subscribed(3s);
        CHECK(line_count(server.cmd({"PUBSUB", "SHARDCHANNELS"})) == 256);
        CHECK(command_calls(server, "ssubscribe") == 1);

        for (const auto& c : channels) CHECK(server.cmd({"SPUBLISH", c, "to " + c}) == "1");
        {
            const bool ok = co_await box->received.wait_for(256, 3s);
            REQUIRE(ok);
        }
        CHECK(*misrouted == 0);
        CHECK(classic->received.count() == 0);
        CHECK(server.cmd({"PUBLISH", channels[0], "plain"}) == "1");
        {
            const bool ok = co_await classic->received.wait_for(1, 3s);
            REQUIRE(ok);
        }
        CHECK(classic->messages[0].second == "plain");
        CHECK(box->received.count() == 256);

        // A shard channel added while connected is subscribed at once.
        s->ssubscribe("wl:late", record_into(box));
        co_await s->wait_subscribed(3s);
        CHECK(server.cmd({"SPUBLISH", "wl:late", "to wl:late"}) == "1");
        {
            const bool ok = co_await box->received.wait_for(257, 3s);
            REQUIRE(ok);
        }
        CHECK(box->messages.back().first == "wl:late");
        CHECK(box->resubscribed.count() == 0);
        s->stop();
    });
}

TEST_CASE("redis subscriber: after CLIENT KILL it subscribes its shard channels again and calls on_resubscribed" *
          doctest::timeout(10)) {
    redis_server server;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        const auto channels = warmline::test::relay_shard_channels("n2");
        auto box = std::make_shared<inbox>(ex);
        auto s = subscriber::create(ex, options_for(server.url()));
        for (const auto& c : channels) s->ssubscribe(c, record_into(box));
        s->on_resubscribed([box] { box->resubscribed.notify(); });
        s->start();
        co_await s->wait_subscribed(3s);

        CHECK(server.cmd({"CLIENT", "KILL", "TYPE", "pubsub"}) == "1");
        {
            const bool ok = co_await box->resubscribed.wait_for(1, 5s);
            REQUIRE(ok);
        }
        CHECK(line_count(server.cmd({"PUBSUB", "SHARDCHANNELS"})) == 256);
        for (const auto& c : channels) CHECK(server.cmd({"SPUBLISH", c, "after the kill"}) == "1");
        {
            const bool ok = co_await box->received.wait_for(256, 3s);
            REQUIRE(ok);
        }
        CHECK(box->resubscribed.count() == 1);
        s->stop();
    });
}

TEST_CASE("redis subscriber: a refused SSUBSCRIBE (ACL) leaves it unsubscribed without dropping the connection, "
          "and the other shard channels still get their messages" *
          doctest::timeout(10)) {
    redis_server server;
    REQUIRE(server.cmd({"ACL", "SETUSER", "default", "resetchannels", "&wl:allowed:*"}) == "OK");
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto box = std::make_shared<inbox>(ex);
        auto s = subscriber::create(ex, options_for(server.url()));
        s->ssubscribe("wl:allowed:1", record_into(box));
        s->start();
        co_await s->wait_subscribed(3s);
        const std::string id = server.cmd({"CLIENT", "LIST", "TYPE", "pubsub"});

        // Two refusals, one after the other: each error reply finds hiredis's error callback.
        s->ssubscribe("wl:denied:1", record_into(box));
        const auto first = co_await thrown<unavailable>(s->wait_subscribed(300ms));
        CHECK(first.has_value());
        s->ssubscribe("wl:denied:2", record_into(box));
        const auto second = co_await thrown<unavailable>(s->wait_subscribed(300ms));
        CHECK(second.has_value());
        CHECK(server.cmd({"PUBSUB", "SHARDCHANNELS"}) == "wl:allowed:1");
        CHECK(server.cmd({"SPUBLISH", "wl:allowed:1", "still here"}) == "1");
        {
            const bool ok = co_await box->received.wait_for(1, 3s);
            REQUIRE(ok);
        }
        CHECK(s->connected());
        // the same connection all along (the id is the first field of the line)
        CHECK(server.cmd({"CLIENT", "LIST", "TYPE", "pubsub"}).substr(0, 8) == id.substr(0, 8));
        s->stop();
    });
}
