// Redis Sentinel with everything running: a primary, a replica and three sentinels; two
// matchmakers and two relays given only the sentinels (redis-sentinel://...), the relays
// acknowledging a message once the replica has it (--ack-replicas 1) and the matchmakers answering
// a change once the replica has it too (degraded after 5 s without one); live chats, seekers
// waiting. First a SENTINEL FAILOVER, then the new primary killed with SIGKILL (and started
// again, to come back as a replica). After each: nobody waiting is dropped or moved, every chat
// goes on, every acknowledged message reaches the other side in order, the invariants hold.
// The test reports the time from the kill to the first relayed message and the first match.
#include "tests/integration/system_fixture.hpp"
#include "tests/support/redis_sentinel.hpp"

#include <thread>

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;
using R = v1::RelayServerMessage;
using clock_type = std::chrono::steady_clock;

namespace {

// A command for a poll: "" when the server cut the connection. Redis closes every client
// connection when it changes role (a primary demoted by a failover), so a poll that lands on
// that moment is answered with a reset, which means "not yet", not a failure.
std::string polled(const redis_server& r, const std::vector<std::string>& args) {
    try {
        return r.cmd(args);
    } catch (const std::exception&) {
        return {};
    }
}

// The data server that says it is master now (the roles swap on a failover).
redis_server& master_of(sentinel_cluster& sc) {
    for (auto* r : {&sc.primary(), &sc.replica()})
        if (r->running() && polled(*r, {"ROLE"}).rfind("master", 0) == 0) return *r;
    FAIL("no server is master");
    return sc.primary();
}

// Every sentinel names `port` as the master, and that server says so.
bool switched_to(sentinel_cluster& sc, std::uint16_t port) {
    for (std::size_t i = 0; i < sc.sentinel_count(); ++i)
        if (sc.master_port_by(i) != port) return false;
    return true;
}

template <class Pred>
void wait_for(const char* what, std::chrono::seconds limit, Pred done) {
    const auto deadline = clock_type::now() + limit;
    while (!done()) {
        REQUIRE_MESSAGE(clock_type::now() < deadline, what);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition
    }
}

// A listener made with warmline-admin through the sentinels (the admin tool follows them too).
std::string listener_token(const stack& s, const std::string& topic) {
    child_process admin({WARMLINE_BINARY_DIR "/services/admin/warmline-admin", "listener", "create", "--name",
                         "Failover " + topic, "--topics", topic, "--languages", "en", "--max-chats", "4",
                         "--redis-url=" + s.redis_url, "--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json"},
                        s.log);
    auto token = admin.wait_for("token: ", std::chrono::seconds(30));
    CHECK(admin.wait(std::chrono::seconds(30)) == 0);
    return token;
}

// One live chat, seen from both ends of the relay protocol.
struct live_chat {
    std::unique_ptr<relay_peer> seeker, listener;
    std::uint64_t acked = 0;     // the seeker's messages acknowledged so far (1..acked)
    std::uint64_t received = 0;  // the listener has 1..received, in order

    // The seeker's next message, sent until acknowledged: refusals while Redis fails over
    // (UNAVAILABLE, also when the replica has not confirmed it yet) are sent again.
    void say(std::chrono::seconds limit) {
        const std::uint64_t seq = acked + 1;
        const auto deadline = clock_type::now() + limit;
        for (;;) {
            auto r = seeker->send_sealed(seq, "sealed-" + std::to_string(seq));
            if (r.has_ack()) break;
            REQUIRE_MESSAGE(r.has_error(), r.DebugString());
            // with acks on a replica, no acknowledged message is lost: the relay never asks
            // for one that came before
            REQUIRE_MESSAGE(r.error().code() != v1::WRONG_STATE, "an acknowledged message was lost: " << r.DebugString());
            REQUIRE_MESSAGE(clock_type::now() < deadline, "message " << seq << " was never acknowledged");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition
        }
        acked = seq;
    }
    // The listener gets every acknowledged message, once, in order.
    void heard_all(std::chrono::seconds limit = std::chrono::seconds(20)) {
        while (received < acked) {
            auto d = listener->next_delivery(limit);
            REQUIRE_MESSAGE(d.seq() == received + 1, "delivered " << d.seq() << " after " << received);
            CHECK(d.ciphertext() == "sealed-" + std::to_string(d.seq()));
            received = d.seq();
        }
    }
};

struct waiting_seeker {
    std::unique_ptr<peer> p;
    std::string id, score;
};

}  // namespace

TEST_CASE("failover: under Sentinel, a forced failover and a killed primary drop nobody, wedge no chat and lose "
          "no acknowledged message" * doctest::timeout(240)) {
    sentinel_cluster sc;
    stack s(2, 2, {"--node-lease-ms=3000", "--grace-ms=30000", "--ack-replicas=1", "--ack-timeout-ms=500"},
            {"--ack-replicas=1", "--ack-timeout-ms=500", "--rate-burst=100000", "--rate-per-second=100000"},
            sc.url());
    auto& mm_a = s.matchmakers[0];
    auto& mm_b = s.matchmakers[1];

    // listeners: one for the chats (anxiety), one kept free for the match after the kill (work)
    peer chats_listener(mm_a.port), spare_listener(mm_b.port);
    listener_sign_in(chats_listener, listener_token(s, "anxiety"));
    listener_sign_in(spare_listener, listener_token(s, "work"));

    // three chats, seekers on both matchmakers, sides on both relays
    std::vector<live_chat> chats(3);
    std::vector<std::unique_ptr<peer>> chat_seekers;
    for (std::size_t i = 0; i < chats.size(); ++i) {
        chat_seekers.push_back(std::make_unique<peer>(i % 2 ? mm_b.port : mm_a.port));
        auto& sp = *chat_seekers.back();
        seeker_hello(sp);
        REQUIRE(sp.call(R"("requestChat":{"topic":"anxiety","language":"en"})").has_request_queued());
        const auto oid = chats_listener.until([](const M& m) { return m.has_offer(); }, std::chrono::seconds(5))
                             .offer()
                             .offer_id();
        auto l = chats_listener.call(R"("acceptOffer":{"offerId":")" + oid + "\"}");
        REQUIRE(l.has_chat_started());
        auto sk = sp.until([](const M& m) { return m.has_chat_started(); }, std::chrono::seconds(5));
        chats[i].seeker = std::make_unique<relay_peer>(s.relays[i % 2].port, sk.chat_started().relay_ticket());
        chats[i].listener = std::make_unique<relay_peer>(s.relays[(i + 1) % 2].port, l.chat_started().relay_ticket());
        REQUIRE(chats[i].seeker->hello(std::string(32, 's')).has_welcome());
        REQUIRE(chats[i].listener->hello(std::string(32, 'l')).has_welcome());
        for (int k = 0; k < 3; ++k) chats[i].say(std::chrono::seconds(5));
        chats[i].heard_all();
    }

    // two seekers waiting whom nobody can take (grief in English has no listener)
    std::vector<waiting_seeker> waiting(2);
    for (std::size_t i = 0; i < waiting.size(); ++i) {
        waiting[i].p = std::make_unique<peer>(i % 2 ? mm_b.port : mm_a.port);
        waiting[i].id = seeker_hello(*waiting[i].p);
        REQUIRE(waiting[i].p->call(R"("requestChat":{"topic":"grief","language":"en"})").has_request_queued());
        waiting[i].score = master_of(sc).cmd({"ZSCORE", "wl:q:grief:en", waiting[i].id});
        REQUIRE_FALSE(waiting[i].score.empty());
    }
    REQUIRE(check_invariants(master_of(sc)).empty());

    auto everyone_kept = [&](const char* after) {
        INFO("after ", after);
        REQUIRE(s.all_ready(std::chrono::seconds(60)));
        auto& m = master_of(sc);
        for (auto& w : waiting) {
            CAPTURE(w.id);
            CHECK(m.cmd({"HGET", "wl:seeker:" + w.id, "state"}) == "queued");
            CHECK(m.cmd({"ZSCORE", "wl:q:grief:en", w.id}) == w.score);
            CHECK(m.cmd({"ZSCORE", "wl:gone", w.id}).empty());
        }
        // every chat goes on: a new message each, and every acknowledged one arrives in order
        for (auto& c : chats) {
            c.say(std::chrono::seconds(30));
            c.heard_all();
        }
        auto bad = check_invariants(m);
        for (auto& b : bad) MESSAGE(b);
        CHECK(bad.empty());
    };

    // ---- 1. a forced failover, with the chats writing through it
    const std::uint16_t first_primary = sc.primary().port(), first_replica = sc.replica().port();
    REQUIRE(sc.sentinel_cmd(0, {"SENTINEL", "FAILOVER", sentinel_cluster::master_name}) == "OK");
    for (auto& c : chats) c.say(std::chrono::seconds(30));
    wait_for("the sentinels did not switch to the replica", std::chrono::seconds(30),
             [&] { return switched_to(sc, first_replica); });
    wait_for("the old primary did not become a replica of the new one", std::chrono::seconds(30), [&] {
        return polled(sc.primary(), {"INFO", "replication"}).find("master_link_status:up") != std::string::npos;
    });
    everyone_kept("SENTINEL FAILOVER");

    // ---- 2. the new primary killed with SIGKILL
    const auto killed_at = clock_type::now();
    sc.replica().crash();
    // the first relayed message after it: sent until the relay takes it (with the only replica
    // gone with the primary's promotion, it is stored and delivered but not acknowledged until
    // a replica is back), then delivered
    auto& first = chats[0];
    const std::uint64_t next = first.acked + 1;
    for (;;) {
        auto r = first.seeker->send_sealed(next, "sealed-" + std::to_string(next));
        if (r.has_ack() || (r.has_error() && r.error().message().find("standby") != std::string::npos)) break;
        REQUIRE_MESSAGE(clock_type::now() - killed_at < std::chrono::seconds(60), "no relay took a message");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition
    }
    first.heard_all();  // what was acknowledged before
    auto d = first.listener->next_delivery(std::chrono::seconds(30));
    REQUIRE(d.seq() == next);
    first.received = next;
    first.acked = next;  // delivered, and acknowledged once a replica is back (below)
    const auto message_s = std::chrono::duration<double>(clock_type::now() - killed_at).count();
    // the first match after it: a new seeker for the spare listener
    peer late(mm_b.port);
    for (;;) {
        auto hello = late.call(R"("seekerHello":{})");
        if (hello.has_seeker_welcome()) break;
        REQUIRE_MESSAGE(clock_type::now() - killed_at < std::chrono::seconds(60), "no matchmaker took a seeker");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition
    }
    for (;;) {
        auto q = late.call(R"("requestChat":{"topic":"work","language":"en"})");
        if (q.has_request_queued()) break;
        REQUIRE_MESSAGE(clock_type::now() - killed_at < std::chrono::seconds(60), "no matchmaker queued a seeker");
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition
    }
    const auto offer = spare_listener.until([](const M& m) { return m.has_offer(); }, std::chrono::seconds(30));
    REQUIRE(spare_listener.call(R"("acceptOffer":{"offerId":")" + offer.offer().offer_id() + "\"}").has_chat_started());
    const auto match_s = std::chrono::duration<double>(clock_type::now() - killed_at).count();
    MESSAGE("from SIGKILL of the primary to the first relayed message: " << message_s << " s; to the first match: "
                                                                        << match_s << " s");
    CHECK(sc.primary().port() == first_primary);
    wait_for("the sentinels did not switch back to the first primary", std::chrono::seconds(30),
             [&] { return switched_to(sc, first_primary); });

    // the killed server comes back as a replica; acknowledgements resume
    sc.replica().restart();
    wait_for("the killed server did not come back as a replica", std::chrono::seconds(60), [&] {
        return polled(sc.replica(), {"INFO", "replication"}).find("master_link_status:up") != std::string::npos;
    });
    everyone_kept("SIGKILL of the primary");
}
