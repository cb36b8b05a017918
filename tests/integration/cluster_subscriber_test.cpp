// Integration tests of redis::cluster_subscriber against a real Redis Cluster (tests/support/
// redis_cluster: three primaries, three replicas, cluster-node-timeout 1000 ms): the relay's 256
// shard channels spread over the primaries of their slots, a slot moved by hand (Redis drops
// the channel, which follows the slot), and a SIGKILLed primary whose channels move to the
// replica that takes over. Every wait polls an observable condition with a deadline.
#include "common/redis.hpp"
#include "tests/support/redis_cluster.hpp"
#include "tests/support/redis_test_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace warmline::redis;
using warmline::test::redis_cluster;

namespace {

void run(std::function<asio::awaitable<void>(asio::any_io_executor)> body, std::chrono::seconds limit = 40s) {
    warmline::test::run_to_end(std::move(body), limit);
}

using warmline::test::relay_shard_channels;

// What the handlers saw, shared so that handlers never outlive it. Handlers run on the node
// connections' strands, but the io_context has one thread, so no lock is needed.
struct inbox {
    explicit inbox(asio::any_io_executor ex) : wake(std::move(ex)) {}
    std::map<std::string, std::vector<std::string>> by_channel;
    int received = 0;
    int resubscribed = 0;
    std::vector<bool> states;
    asio::steady_timer wake;

    void notify() { wake.cancel(); }
    // Until `done()` holds; false after `limit`.
    asio::awaitable<bool> until(std::function<bool()> done, std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) co_return false;
            wake.expires_at(std::min(deadline, std::chrono::steady_clock::now() + 50ms));
            co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        co_return true;
    }
};

std::shared_ptr<cluster_subscriber> subscribed(asio::any_io_executor ex, const redis_cluster& cluster,
                                               const std::vector<std::string>& channels, std::shared_ptr<inbox> box) {
    auto s = cluster_subscriber::create(ex, warmline::test::fast_client_options(cluster.url(), "shard-test"));
    for (const auto& c : channels)
        s->ssubscribe(c, [box](std::string_view channel, std::string_view payload) {
            box->by_channel[std::string(channel)].emplace_back(payload);
            ++box->received;
            box->notify();
        });
    s->on_resubscribed([box] {
        ++box->resubscribed;
        box->notify();
    });
    s->on_state_change([box](bool up) { box->states.push_back(up); });
    s->start();
    return s;
}

asio::awaitable<std::shared_ptr<cluster_client>> started_publisher(asio::any_io_executor ex,
                                                                  const redis_cluster& cluster) {
    auto publisher = cluster_client::create(ex, warmline::test::fast_client_options(cluster.url(), "shard-pub"));
    publisher->start();
    co_await publisher->wait_connected(5s);
    co_return publisher;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

// SPUBLISH `payload` to every channel through a cluster_client; how many subscribers each reached.
asio::awaitable<std::vector<long long>> spublish_all(cluster_client& c, const std::vector<std::string>& channels,
                                                     const std::string& payload) {
    std::vector<std::vector<std::string>> cmds;
    for (const auto& ch : channels) {
        std::vector<std::string> cmd;
        cmd.push_back("SPUBLISH");
        cmd.push_back(ch);
        cmd.push_back(payload);
        cmds.push_back(std::move(cmd));
    }
    const auto replies = co_await c.pipeline(std::move(cmds));
    std::vector<long long> out;
    for (const auto& r : replies) out.push_back(r.is_error() ? -1 : r.as_int());
    co_return out;
}

int count_of(const std::vector<long long>& v, long long x) { return static_cast<int>(std::count(v.begin(), v.end(), x)); }

bool every_channel_has(const inbox& box, const std::vector<std::string>& channels, const std::string& payload) {
    return std::all_of(channels.begin(), channels.end(), [&](const std::string& c) {
        auto it = box.by_channel.find(c);
        return it != box.by_channel.end() && std::find(it->second.begin(), it->second.end(), payload) != it->second.end();
    });
}

}  // namespace

TEST_CASE("cluster subscriber: 256 shard channels spread over the three primaries, each on the primary of its "
          "slot with one connection per primary, and SPUBLISH reaches every one" *
          doctest::timeout(60)) {
    redis_cluster cluster;
    const auto channels = relay_shard_channels("n1");
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto box = std::make_shared<inbox>(ex);
        const auto started = std::chrono::steady_clock::now();
        auto s = subscribed(ex, cluster, channels, box);
        co_await s->wait_subscribed(10s);
        MESSAGE("start -> 256 channels confirmed: "
                << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
                << " ms");
        CHECK(s->connected());

        // Each primary holds exactly the channels of its own slots, over one connection.
        std::size_t total = 0;
        for (auto p : cluster.primaries()) {
            const auto here = lines(cluster.cmd(p, {"PUBSUB", "SHARDCHANNELS"}));
            CHECK(!here.empty());
            for (const auto& c : here) CHECK(cluster.primary_of(key_slot(c)) == p);
            total += here.size();
            const auto clients = lines(cluster.cmd(p, {"CLIENT", "LIST", "TYPE", "pubsub"}));
            CHECK(clients.size() == 1);
            CHECK(clients.at(0).find("name=shard-test:events") != std::string::npos);
            MESSAGE("primary " << cluster.port(p) << ": " << here.size() << " channels");
        }
        CHECK(total == channels.size());
        for (auto r : cluster.primaries())
            if (auto replica = cluster.replica_of(r)) CHECK(cluster.cmd(*replica, {"PUBSUB", "SHARDCHANNELS"}).empty());

        auto publisher = co_await started_publisher(ex, cluster);
        const auto reached = co_await spublish_all(*publisher, channels, "hello");
        CHECK(count_of(reached, 1) == 256);
        const bool all = co_await box->until([&] { return box->received == 256; }, 5s);
        REQUIRE(all);
        CHECK(every_channel_has(*box, channels, "hello"));
        for (const auto& [channel, got] : box->by_channel) CHECK(got.size() == 1);
        CHECK(box->resubscribed == 0);
        CHECK(box->states == std::vector<bool>{true});
        s->stop();
        publisher->stop();
    });
}

TEST_CASE("cluster subscriber: when a slot moves to another primary, Redis drops its channel and the channel "
          "follows the slot, with on_resubscribed" *
          doctest::timeout(60)) {
    redis_cluster cluster;
    const auto channels = relay_shard_channels("n2");
    const std::string moving = channels.at(0x2a);
    const std::uint16_t slot = key_slot(moving);
    const auto src = cluster.primary_of(slot);
    REQUIRE(src.has_value());
    const auto primaries = cluster.primaries();
    const std::size_t dst = primaries.at(0) != *src ? primaries.at(0) : primaries.at(1);
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto box = std::make_shared<inbox>(ex);
        auto s = subscribed(ex, cluster, channels, box);
        co_await s->wait_subscribed(10s);
        CHECK(cluster.cmd(*src, {"PUBSUB", "SHARDNUMSUB", moving}) == moving + "\n1");

        // The slot holds no keys, so it moves with SETSLOT NODE alone, on every primary.
        const std::string dst_id = cluster.node_id(dst);
        REQUIRE(cluster.cmd(dst, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", dst_id}) == "OK");
        REQUIRE(cluster.cmd(*src, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", dst_id}) == "OK");
        for (auto p : primaries)
            if (p != dst && p != *src) cluster.cmd(p, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", dst_id});

        const bool moved = co_await box->until(
            [&] {
                return box->resubscribed >= 1 && s->connected() &&
                       cluster.cmd(dst, {"PUBSUB", "SHARDNUMSUB", moving}) == moving + "\n1";
            },
            10s);
        REQUIRE(moved);
        CHECK(cluster.cmd(*src, {"PUBSUB", "SHARDNUMSUB", moving}) == moving + "\n0");
        CHECK(cluster.cmd(dst, {"SPUBLISH", moving, "after the move"}) == "1");
        const bool got = co_await box->until([&] { return every_channel_has(*box, {moving}, "after the move"); }, 5s);
        CHECK(got);
        s->stop();
    });
}

TEST_CASE("cluster subscriber: after a primary is SIGKILLed, its channels are subscribed on the replica that "
          "takes over, on_resubscribed fires, and SPUBLISH reaches every channel again" *
          doctest::timeout(90)) {
    redis_cluster cluster;
    const auto channels = relay_shard_channels("n3");
    const auto victim = cluster.primary_of(key_slot(channels.at(0)));
    REQUIRE(victim.has_value());
    const auto heir = cluster.replica_of(*victim);
    REQUIRE(heir.has_value());
    std::set<std::string> victims_channels;
    for (const auto& c : channels)
        if (cluster.primary_of(key_slot(c)) == *victim) victims_channels.insert(c);

    run(
        [&](asio::any_io_executor ex) -> asio::awaitable<void> {
            auto box = std::make_shared<inbox>(ex);
            auto s = subscribed(ex, cluster, channels, box);
            co_await s->wait_subscribed(10s);
            auto publisher = co_await started_publisher(ex, cluster);
            CHECK(count_of(co_await spublish_all(*publisher, channels, "before"), 1) == 256);
            {
                const bool all = co_await box->until([&] { return box->received == 256; }, 5s);
                REQUIRE(all);
            }

            cluster.node(*victim).crash();
            const auto killed = std::chrono::steady_clock::now();
            {
                const bool down = co_await box->until([&] { return !s->connected(); }, 5s);
                CHECK(down);
            }
            const bool back = co_await box->until([&] { return box->resubscribed >= 1 && s->connected(); }, 30s);
            REQUIRE_MESSAGE(back, "the channels were not subscribed again within 30 s of the SIGKILL");
            MESSAGE("SIGKILL -> every channel confirmed again, on_resubscribed called: "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed)
                           .count()
                    << " ms (" << victims_channels.size() << " channels moved)");

            const auto on_heir = lines(cluster.cmd(*heir, {"PUBSUB", "SHARDCHANNELS"}));
            CHECK(std::set<std::string>(on_heir.begin(), on_heir.end()) == victims_channels);
            CHECK(box->resubscribed == 1);

            // The publisher follows the failover too; each channel has its one subscriber again.
            std::vector<long long> reached;
            const auto deadline = std::chrono::steady_clock::now() + 15s;
            while (true) {
                try {
                    reached = co_await spublish_all(*publisher, channels, "after");
                    break;
                } catch (const unavailable&) {
                    REQUIRE(std::chrono::steady_clock::now() < deadline);
                }
            }
            CHECK(count_of(reached, 1) == 256);
            const bool all = co_await box->until([&] { return every_channel_has(*box, channels, "after"); }, 5s);
            CHECK(all);
            CHECK(box->states.size() == 3);  // up, down, up
            s->stop();
            publisher->stop();
        },
        60s);
}

TEST_CASE("cluster subscriber: only a redis-cluster:// endpoint makes one, and it fails to wait when no node answers" *
          doctest::timeout(20)) {
    {
        asio::io_context ioc;
        CHECK_THROWS_AS(cluster_subscriber::create(ioc.get_executor(),
                                                   warmline::test::fast_client_options("redis://127.0.0.1:1", "x")),
                        std::invalid_argument);
    }
    const std::string url = "redis-cluster://127.0.0.1:" + std::to_string(warmline::test::free_port());
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto s = cluster_subscriber::create(ex, warmline::test::fast_client_options(url, "shard-test"));
        s->ssubscribe("wl:relaynode:{b00}:n4", [](std::string_view, std::string_view) {});
        s->start();
        bool failed = false;
        try {
            co_await s->wait_subscribed(300ms);
        } catch (const unavailable&) {
            failed = true;
        }
        CHECK(failed);
        CHECK_FALSE(s->connected());
        s->stop();
    });
}
