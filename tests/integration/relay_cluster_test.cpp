// The relay on a Redis Cluster (docs/architecture.md, "Redis Cluster for the chat path"): the
// control Redis is one server (the matchmaker's), the chat Redis a real cluster of three
// primaries and three replicas (tests/support/redis_cluster, cluster-node-timeout 1000 ms). Chats
// spread over every shard, counted where their records are; a shard's primary is SIGKILLed in
// the middle of the chats, and every line either side said reaches the other once, in order.
#include "tests/integration/chat_side.hpp"
#include "tests/support/redis_cluster.hpp"

#include <map>
#include <memory>

using namespace warmline;
using namespace warmline::test;
using client::chat_event;

namespace {

// Pump every side until `done` holds; false if it still does not after `limit`.
bool pump_all(std::vector<std::unique_ptr<side>>& sides, const std::function<bool()>& done,
              std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        for (auto& s : sides) {
            s->chat.pump(1ms);
            for (auto& e : s->chat.events()) s->seen.push_back(std::move(e));
        }
    }
    return true;
}

struct cluster_chats {
    redis_cluster cluster;
    relay_fixture f;
    std::vector<std::string> relay_args{"--chat-redis-url=" + cluster.url(), "--ack-replicas=1",
                                        "--ack-timeout-ms=500", "--redis-timeout-ms=2000",
                                        "--rate-burst=1000"};
    relay_process a{f.mm.server.url(), f.log, relay_args};
    relay_process b{f.mm.server.url(), f.log, relay_args};
    std::vector<std::string> sessions;
    std::vector<std::unique_ptr<side>> sides;  // seeker of chat i at 2i (on a), its listener at 2i+1 (on b)

    explicit cluster_chats(int n) {
        for (int i = 0; i < n; ++i) {
            if (i % 5 == 0) f.listener = {};  // a listener takes five chats at once
            auto s = f.open_chat();
            sessions.push_back(s);
            sides.push_back(std::make_unique<side>(v1::SEEKER, s, relay_url(a),
                                                   relay_fixture::ticket_for(s, ticket::role::seeker, 600000)));
            sides.push_back(std::make_unique<side>(v1::LISTENER, s, relay_url(b),
                                                   relay_fixture::ticket_for(s, ticket::role::listener, 600000)));
        }
    }
    side& seeker(std::size_t i) { return *sides[2 * i]; }
    side& listener(std::size_t i) { return *sides[2 * i + 1]; }

    // The primary that holds chat i's record now (asked of the cluster, and checked there).
    std::size_t shard_of(std::size_t i) {
        auto p = cluster.primary_of(redis::key_slot(relay_key(sessions[i])));
        REQUIRE(p);
        REQUIRE(cluster.cmd(*p, {"EXISTS", relay_key(sessions[i])}) == "1");
        return *p;
    }
};

}  // namespace

TEST_CASE("relay on a cluster: chats spread over every shard, and a shard's primary SIGKILLed mid-chat loses "
          "nothing" * doctest::timeout(240)) {
    const int n = 30;  // a shard left empty by chance: 3 x (2/3)^30, about 2e-5
    cluster_chats c(n);
    const bool secure = pump_all(c.sides, [&] {
        return std::all_of(c.sides.begin(), c.sides.end(), [](const auto& s) { return s->chat.secure(); });
    }, 30s);
    if (!secure)
        for (auto& s : c.sides)
            if (!s->chat.secure())
                for (auto& e : s->seen) MESSAGE("not secure: " << static_cast<int>(e.what) << " " << e.text);
    REQUIRE(secure);

    // every chat says three lines each way, and hears them
    std::vector<std::vector<std::string>> by_seeker(n), by_listener(n);
    auto say_round = [&](int from, int to) {
        for (int i = 0; i < n; ++i) {
            for (const auto& l : lines("seeker " + std::to_string(i), from, to)) {
                REQUIRE(c.seeker(i).chat.say(l));
                by_seeker[i].push_back(l);
            }
            for (const auto& l : lines("listener " + std::to_string(i), from, to)) {
                REQUIRE(c.listener(i).chat.say(l));
                by_listener[i].push_back(l);
            }
        }
    };
    auto all_heard = [&] {
        for (int i = 0; i < n; ++i)
            if (c.listener(i).chat.heard().size() < by_seeker[i].size() ||
                c.seeker(i).chat.heard().size() < by_listener[i].size() || c.seeker(i).chat.unreceived() ||
                c.listener(i).chat.unreceived())
                return false;
        return true;
    };
    say_round(1, 3);
    REQUIRE(pump_all(c.sides, all_heard, 30s));

    // counted where the records are: every primary holds some chats
    std::map<std::size_t, int> per_shard;
    for (int i = 0; i < n; ++i) ++per_shard[c.shard_of(i)];
    const auto primaries = c.cluster.primaries();
    REQUIRE(primaries.size() == 3);
    for (auto p : primaries) {
        INFO("chats on the primary at port ", c.cluster.port(p), ": ", per_shard[p]);
        CHECK(per_shard[p] > 0);
    }
    MESSAGE("chats per shard: " << per_shard[primaries[0]] << ", " << per_shard[primaries[1]] << ", "
                                << per_shard[primaries[2]]);

    // the primary of chat 0's shard dies in the middle of the next lines
    const auto victim = c.shard_of(0);
    std::vector<int> on_victim;
    for (int i = 0; i < n; ++i)
        if (c.shard_of(i) == victim) on_victim.push_back(i);
    say_round(4, 6);
    const auto killed_at = std::chrono::steady_clock::now();
    c.cluster.node(victim).crash();
    say_round(7, 9);

    // the first line said after the kill, of a chat on that shard, heard
    const auto& heard = c.listener(on_victim[0]).chat.heard();
    const auto after_kill = by_seeker[on_victim[0]][6];
    REQUIRE(pump_all(c.sides, [&] { return std::find(heard.begin(), heard.end(), after_kill) != heard.end(); }, 60s));
    const std::chrono::duration<double> first = std::chrono::steady_clock::now() - killed_at;
    // the promoted replica has no replica of its own until the old primary is back (as its
    // replica): sends there are delivered but not acknowledged (WAIT 1) until then
    c.cluster.node(victim).restart();
    REQUIRE(pump_all(c.sides, all_heard, 60s));
    const std::chrono::duration<double> all = std::chrono::steady_clock::now() - killed_at;
    MESSAGE("from SIGKILL of a shard primary: the first line said after it, in a chat there, heard after "
            << first.count() << " s; every line of all " << n << " chats confirmed (the old primary back as a "
            << "replica) after " << all.count() << " s");

    // every line, once, in order, and nobody was told something could not be delivered
    for (int i = 0; i < n; ++i) {
        INFO("chat ", i);
        CHECK(c.listener(i).chat.heard() == by_seeker[i]);
        CHECK(c.seeker(i).chat.heard() == by_listener[i]);
        CHECK_FALSE(c.seeker(i).saw(chat_event::kind::ended));
        for (const auto* s : {&c.seeker(i), &c.listener(i)})
            CHECK(std::none_of(s->seen.begin(), s->seen.end(), [](const chat_event& e) {
                return e.what == chat_event::kind::notice && e.text.find("could not be delivered") != std::string::npos;
            }));
    }
    // the shard's replica took over, and the old primary serves it as a replica
    CHECK(c.shard_of(on_victim[0]) != victim);
    CHECK(c.cluster.cmd(victim, {"ROLE"}).find("slave") != std::string::npos);
}
