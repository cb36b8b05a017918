// Integration tests of redis::cluster_client against a real Redis Cluster (tests/support/
// redis_cluster: three primaries, three replicas, cluster-node-timeout 1000 ms): keys spread over
// every shard, a slot moved by hand (SETSLOT MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE) followed
// through ASK and then MOVED, Lua scripts on the shard of their hash tag, and a SIGKILLed primary
// replaced by its replica. Every wait polls an observable condition with a deadline.
#include "common/redis.hpp"
#include "tests/support/redis_cluster.hpp"
#include "tests/support/redis_test_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace warmline::redis;
using warmline::test::redis_cluster;

namespace {

client_options options_for(const std::string& url) {
    auto o = warmline::test::fast_client_options(url, "cluster-test");
    return o;
}

void run(std::function<asio::awaitable<void>(asio::any_io_executor)> body, std::chrono::seconds limit = 40s) {
    warmline::test::run_to_end(std::move(body), limit);
}

using warmline::test::pause;

asio::awaitable<std::shared_ptr<cluster_client>> started_client(asio::any_io_executor ex, const redis_cluster& c) {
    auto client = cluster_client::create(ex, options_for(c.url()));
    client->start();
    co_await client->wait_connected(5s);
    co_return client;
}

// A command as a vector, built without a braced list: GCC 12 miscompiles braced lists in a
// statement that co_awaits.
template <typename... Words>
std::vector<std::string> cmd(Words&&... words) {
    std::vector<std::string> out;
    (out.emplace_back(std::forward<Words>(words)), ...);
    return out;
}

}  // namespace

TEST_CASE("cluster client: keys spread over all three shards and each reads back" * doctest::timeout(60)) {
    redis_cluster cluster;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto client = co_await started_client(ex, cluster);
        CHECK(client->connected());
        constexpr int n = 300;

        // One pipeline spanning every shard, replies in the order sent.
        std::vector<std::vector<std::string>> sets;
        for (int i = 0; i < n; ++i) sets.push_back(cmd("SET", "spread:" + std::to_string(i), "v" + std::to_string(i)));
        const auto set_replies = co_await client->pipeline(std::move(sets));
        REQUIRE(set_replies.size() == n);
        for (const auto& r : set_replies) CHECK(r.as_string() == "OK");

        for (int i = 0; i < n; ++i) {
            const auto v = co_await client->command(cmd("GET", "spread:" + std::to_string(i)));
            CHECK(v.as_string() == "v" + std::to_string(i));
        }
        std::vector<std::vector<std::string>> gets;
        for (int i = n - 1; i >= 0; --i) gets.push_back(cmd("GET", "spread:" + std::to_string(i)));
        const auto got = co_await client->pipeline(std::move(gets));
        REQUIRE(got.size() == n);
        for (int i = 0; i < n; ++i) CHECK(got[static_cast<std::size_t>(i)].as_string() == "v" + std::to_string(n - 1 - i));

        // Every key sits on the primary that serves its slot, and every shard got some.
        const auto primaries = cluster.primaries();
        REQUIRE(primaries.size() == 3);
        long long total = 0;
        for (auto p : primaries) {
            const long long keys = std::stoll(cluster.cmd(p, {"DBSIZE"}));
            MESSAGE("primary on port " << cluster.port(p) << " holds " << keys << " keys");
            CHECK(keys > 0);
            total += keys;
        }
        CHECK(total == n);
        CHECK(client->stats().moved == 0);  // the map was right from the start
        // A command without keys goes to some primary.
        CHECK((co_await client->command(cmd("PING"))).as_string() == "PONG");
        // An error reply is still a reply_error.
        co_await client->command(cmd("SET", "spread:list", "x"));
        bool threw = false;
        try {
            co_await client->command(cmd("LPUSH", "spread:list", "y"));
        } catch (const reply_error& e) {
            threw = std::string(e.what()).starts_with("WRONGTYPE");
        }
        CHECK(threw);
        client->stop();
    });

    // Many coroutines on four threads share one client (its map and node table are shared).
    {
        asio::io_context ioc;
        auto client = cluster_client::create(ioc.get_executor(), options_for(cluster.url()));
        client->start();
        std::vector<std::future<void>> workers;
        for (int w = 0; w < 8; ++w) {
            workers.push_back(asio::co_spawn(
                asio::make_strand(ioc),
                [client, w]() -> asio::awaitable<void> {
                    co_await client->wait_connected(5s);
                    for (int i = 0; i < 50; ++i) {
                        const std::string key = "par:" + std::to_string(w) + ":" + std::to_string(i);
                        co_await client->command(cmd("SET", key, std::to_string(i)));
                        const auto v = co_await client->command(cmd("GET", key));
                        if (v.as_string() != std::to_string(i)) throw std::runtime_error("wrong value read back");
                    }
                },
                asio::use_future));
        }
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) threads.emplace_back([&] { ioc.run_for(30s); });
        for (auto& f : workers) {
            REQUIRE(f.wait_for(30s) == std::future_status::ready);
            CHECK_NOTHROW(f.get());
        }
        client->stop();
        for (auto& t : threads) t.join();
        CHECK(ioc.stopped());
    }
}

TEST_CASE("cluster client: a slot being moved is followed through ASK during the move and MOVED after it" *
          doctest::timeout(60)) {
    redis_cluster cluster;
    const std::uint16_t slot = key_slot("{moving}");
    const auto src = cluster.primary_of(slot);
    REQUIRE(src.has_value());
    const auto primaries = cluster.primaries();
    const std::size_t dst = primaries.at(0) != *src ? primaries.at(0) : primaries.at(1);
    const std::string src_id = cluster.node_id(*src);
    const std::string dst_id = cluster.node_id(dst);
    const std::string slot_text = std::to_string(slot);

    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto client = co_await started_client(ex, cluster);
        CHECK((co_await client->command(cmd("SET", "{moving}:a", "1"))).as_string() == "OK");
        CHECK(client->slot_owner(slot)->port == cluster.port(*src));

        // The move begins: dst imports, src migrates.
        REQUIRE(cluster.cmd(dst, {"CLUSTER", "SETSLOT", slot_text, "IMPORTING", src_id}) == "OK");
        REQUIRE(cluster.cmd(*src, {"CLUSTER", "SETSLOT", slot_text, "MIGRATING", dst_id}) == "OK");

        // A key still on src is served there; a new key goes to dst through ASK.
        CHECK((co_await client->command(cmd("GET", "{moving}:a"))).as_string() == "1");
        CHECK(client->stats().asked == 0);
        CHECK((co_await client->command(cmd("SET", "{moving}:b", "2"))).as_string() == "OK");
        CHECK(client->stats().asked == 1);
        CHECK(cluster.cmd(dst, {"CLUSTER", "COUNTKEYSINSLOT", slot_text}) == "1");
        CHECK(cluster.cmd(*src, {"CLUSTER", "COUNTKEYSINSLOT", slot_text}) == "1");
        CHECK((co_await client->command(cmd("GET", "{moving}:b"))).as_string() == "2");
        // ASK leaves the map alone.
        CHECK(client->slot_owner(slot)->port == cluster.port(*src));
        CHECK(client->stats().moved == 0);
        // In a pipeline, the command that gets ASK is retried on dst; the other is answered by src.
        {
            std::vector<std::vector<std::string>> mixed;
            mixed.push_back(cmd("GET", "{moving}:b"));
            mixed.push_back(cmd("GET", "{moving}:a"));
            mixed.push_back(cmd("GET", "spread-nowhere"));
            const auto replies = co_await client->pipeline(std::move(mixed));
            REQUIRE(replies.size() == 3);
            CHECK(replies[0].as_string() == "2");
            CHECK(replies[1].as_string() == "1");
            CHECK(replies[2].is_nil());
            CHECK(client->slot_owner(slot)->port == cluster.port(*src));
        }

        // The old key moves too; it is found on dst through ASK.
        REQUIRE(cluster.cmd(*src, {"MIGRATE", "127.0.0.1", std::to_string(cluster.port(dst)), "", "0", "5000", "KEYS",
                                   "{moving}:a"}) == "OK");
        const auto asked_before = client->stats().asked;
        CHECK((co_await client->command(cmd("GET", "{moving}:a"))).as_string() == "1");
        CHECK(client->stats().asked == asked_before + 1);
        // A script on a key of the moving slot follows ASK too, and is loaded on dst on the way.
        const script s("return redis.call('GET', KEYS[1])");
        CHECK((co_await client->eval(s, cmd("{moving}:b"), cmd())).as_string() == "2");

        // The move ends: the slot is dst's, everywhere.
        REQUIRE(cluster.cmd(dst, {"CLUSTER", "SETSLOT", slot_text, "NODE", dst_id}) == "OK");
        REQUIRE(cluster.cmd(*src, {"CLUSTER", "SETSLOT", slot_text, "NODE", dst_id}) == "OK");
        for (auto p : primaries)
            if (p != dst && p != *src) cluster.cmd(p, {"CLUSTER", "SETSLOT", slot_text, "NODE", dst_id});

        CHECK((co_await client->command(cmd("GET", "{moving}:a"))).as_string() == "1");
        CHECK(client->stats().moved >= 1);
        CHECK(client->slot_owner(slot)->port == cluster.port(dst));
        // From now on the map is right: no more redirections for this slot.
        const auto moved = client->stats().moved;
        const auto asked = client->stats().asked;
        std::vector<std::vector<std::string>> both;
        both.push_back(cmd("GET", "{moving}:a"));
        both.push_back(cmd("GET", "{moving}:b"));
        const auto replies = co_await client->pipeline(std::move(both));
        CHECK(replies.at(0).as_string() == "1");
        CHECK(replies.at(1).as_string() == "2");
        CHECK(client->stats().moved == moved);
        CHECK(client->stats().asked == asked);
        client->stop();
    });
}

TEST_CASE("cluster client: a Lua script with a hash-tagged key runs on the shard of its tag" * doctest::timeout(60)) {
    // With a password, so every node connection's AUTH is exercised too.
    redis_cluster::options o;
    o.password = "clu5ter-pw";
    redis_cluster cluster(o);
    // One tag per primary.
    std::map<std::size_t, std::string> tag_of;
    for (int i = 0; tag_of.size() < 3 && i < 1000; ++i) {
        const std::string tag = "t" + std::to_string(i);
        const auto p = cluster.primary_of(key_slot(tag));
        REQUIRE(p.has_value());
        tag_of.try_emplace(*p, tag);
    }
    REQUIRE(tag_of.size() == 3);
    const script s(
        "redis.call('SET', KEYS[1], ARGV[1])\n"
        "redis.call('SET', KEYS[2], ARGV[1])\n"
        "return redis.call('GET', KEYS[2])");

    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto client = co_await started_client(ex, cluster);
        for (const auto& [primary, tag] : tag_of) {
            const std::string k1 = "{" + tag + "}:one", k2 = "{" + tag + "}:two";
            auto keys = cmd(k1, k2);
            auto args = cmd("x-" + tag);
            CHECK((co_await client->eval(s, std::move(keys), std::move(args))).as_string() == "x-" + tag);
            // The keys are on the primary that serves the tag's slot; the script was loaded
            // there (NOSCRIPT on first use) and on no primary not yet used.
            CHECK(cluster.cmd(primary, {"EXISTS", k1, k2}) == "2");
            CHECK(cluster.cmd(primary, {"SCRIPT", "EXISTS", s.sha1()}) == "1");
        }
        // Flushed on one node, the script is loaded there again on the next call.
        const auto& [first_primary, first_tag] = *tag_of.begin();
        REQUIRE(cluster.cmd(first_primary, {"SCRIPT", "FLUSH"}) == "OK");
        auto again_keys = cmd("{" + first_tag + "}:one", "{" + first_tag + "}:two");
        CHECK((co_await client->eval(s, std::move(again_keys), cmd("again"))).as_string() == "again");
        // Keys of two slots in one script are refused by Redis, as a reply_error.
        bool cross_slot = false;
        try {
            auto two_slots = cmd("{" + tag_of.begin()->second + "}:x", "{" + tag_of.rbegin()->second + "}:x");
            co_await client->eval(s, std::move(two_slots), cmd("v"));
        } catch (const reply_error& e) {
            cross_slot = std::string(e.what()).find("CROSSSLOT") != std::string::npos ||
                         std::string(e.what()).find("slot") != std::string::npos;
        }
        CHECK(cross_slot);
        client->stop();
    });
}

TEST_CASE("cluster client: after a primary is SIGKILLed, its slots are served again once its replica takes over" *
          doctest::timeout(60)) {
    redis_cluster cluster;
    const std::uint16_t slot = key_slot("{victim}");
    const auto victim = cluster.primary_of(slot);
    REQUIRE(victim.has_value());
    const auto heir = cluster.replica_of(*victim);
    REQUIRE(heir.has_value());

    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto client = co_await started_client(ex, cluster);
        CHECK((co_await client->command(cmd("SET", "{victim}:k", "before"))).as_string() == "OK");
        // The replica has the write before its primary dies.
        {
            warmline::test::redis_connection replica(cluster.node(*heir));
            REQUIRE(replica.cmd({"READONLY"}) == "OK");
            const auto deadline = std::chrono::steady_clock::now() + 5s;
            while (replica.cmd({"GET", "{victim}:k"}) != "before") {
                REQUIRE(std::chrono::steady_clock::now() < deadline);
                co_await pause(10ms);
            }
        }

        cluster.node(*victim).crash();
        const auto killed = std::chrono::steady_clock::now();

        // Poll the client itself: each try is bounded (cluster_attempts), and fails with
        // `unavailable` until the replica is promoted and the map says so.
        int unavailable_seen = 0;
        std::optional<std::string> got;
        while (!got) {
            REQUIRE_MESSAGE(std::chrono::steady_clock::now() - killed < 15s, "the slot was not served again in 15 s");
            try {
                got = (co_await client->command(cmd("GET", "{victim}:k"))).as_string();
            } catch (const unavailable&) {
                ++unavailable_seen;
            }
            if (!got) co_await pause(20ms);
        }
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed);
        MESSAGE("SIGKILL -> first successful GET on the victim's slot: " << took.count() << " ms ("
                                                                         << unavailable_seen << " unavailable)");
        CHECK(*got == "before");
        CHECK(unavailable_seen > 0);
        CHECK(client->slot_owner(slot)->port == cluster.port(*heir));
        CHECK((co_await client->command(cmd("SET", "{victim}:k", "after"))).as_string() == "OK");
        CHECK(cluster.cmd(*heir, {"GET", "{victim}:k"}) == "after");
        // Every other shard works too.
        for (int i = 0; i < 50; ++i)
            CHECK((co_await client->command(cmd("SET", "after:" + std::to_string(i), "1"))).as_string() == "OK");
        CHECK(client->stats().refreshes >= 2);
        client->stop();
    });
}

TEST_CASE("cluster client: with no node reachable, waiting and commands fail with unavailable, naming no password" *
          doctest::timeout(30)) {
    const std::string url = "redis-cluster://:n0t-in-logs@127.0.0.1:" + std::to_string(warmline::test::free_port()) +
                            ",127.0.0.1:" + std::to_string(warmline::test::free_port());
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto client = cluster_client::create(ex, options_for(url));
        client->start();
        std::string waited, commanded;
        try {
            co_await client->wait_connected(300ms);
        } catch (const unavailable& e) {
            waited = e.what();
        }
        try {
            co_await client->command(cmd("GET", "k"));
        } catch (const unavailable& e) {
            commanded = e.what();
        }
        // Refused before anything is sent: a transaction's commands could reach different nodes.
        bool refused = false;
        try {
            co_await client->command(cmd("MULTI"));
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        CHECK(refused);
        CHECK_FALSE(waited.empty());
        CHECK_FALSE(commanded.empty());
        CHECK_FALSE(client->connected());
        for (const auto& text : {waited, commanded, client->last_error()}) {
            CHECK(text.find("n0t-in-logs") == std::string::npos);
            CHECK(text.find("127.0.0.1") != std::string::npos);
        }
        client->stop();
    });
}

TEST_CASE("cluster client: only a redis-cluster:// endpoint makes one, and only a cluster_client takes one") {
    asio::io_context ioc;
    CHECK_THROWS_AS(cluster_client::create(ioc.get_executor(), options_for("redis://127.0.0.1:1")), std::invalid_argument);
    CHECK_THROWS_AS(client::create(ioc.get_executor(), options_for("redis-cluster://127.0.0.1:1")), std::invalid_argument);
    CHECK_THROWS_AS(subscriber::create(ioc.get_executor(), options_for("redis-cluster://127.0.0.1:1")),
                    std::invalid_argument);
}
