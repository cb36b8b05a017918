// The matchmaker's flows against a real redis-server, through the same Lua scripts the service
// runs, on a clock the test moves by hand (no test waits real time for a timeout).
#include "tests/integration/matchmaker_fixture.hpp"
#include "tests/integration/matchmaker_invariants.hpp"

#include "common/crypto.hpp"

#include <doctest/doctest.h>

using namespace warmline;
using warmline::test::matchmaker_fixture;
using warmline::test::require_consistent;

TEST_CASE("matchmaker: crisis requests first, then the oldest" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto a = f.seeker(), b = f.seeker(), c = f.seeker();
    f.request(a, "anxiety", "en");
    f.now += 10;
    f.request(b, "anxiety", "en");
    f.now += 10;
    f.request(c, "anxiety", "en", /*crisis=*/true);
    CHECK(f.seeker_state(a) == "queued");
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    CHECK(f.seeker_state(c) == "offered");
    CHECK(f.offered_listener(c) == l.id);
    auto chat = f.run(f.store->accept_offer(l.id, f.offer_of(c)));
    REQUIRE(chat);
    CHECK(f.seeker_state(a) == "queued");
    REQUIRE(f.run(f.store->end_chat("listener", l.id, chat.value->session_id)));
    CHECK(f.seeker_state(a) == "offered");  // the older of the two normal requests
    CHECK(f.seeker_state(b) == "queued");
    require_consistent(f.server);
}

TEST_CASE("matchmaker: the listener idle longest gets the offer" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l1 = f.listener({"grief"}, {"en"}, 2);
    f.now += 5;
    auto l2 = f.listener({"grief"}, {"en"}, 2);
    auto a = f.seeker(), b = f.seeker(), c = f.seeker();
    f.now += 5;
    f.request(a, "grief", "en");
    CHECK(f.offered_listener(a) == l1.id);
    f.now += 5;
    f.request(b, "grief", "en");
    CHECK(f.offered_listener(b) == l2.id);
    f.now += 5;
    f.request(c, "grief", "en");
    CHECK(f.offered_listener(c) == l1.id);
    require_consistent(f.server);
}

TEST_CASE("matchmaker: a listener never holds more chats plus offers than their max" * doctest::timeout(20)) {
    matchmaker_fixture f;
    std::vector<std::string> seekers;
    for (int i = 0; i < 5; ++i) {
        seekers.push_back(f.seeker());
        f.request(seekers.back(), "loneliness", "en");
        f.now += 1;
    }
    auto l = f.listener({"loneliness"}, {"en"}, 2);
    CHECK(f.field("wl:listener:" + l.id, "offers") == "2");
    CHECK(f.seeker_state(seekers[0]) == "offered");
    CHECK(f.seeker_state(seekers[1]) == "offered");
    CHECK(f.seeker_state(seekers[2]) == "queued");
    auto chat = f.run(f.store->accept_offer(l.id, f.offer_of(seekers[0])));
    REQUIRE(chat);
    CHECK(f.seeker_state(seekers[2]) == "queued");  // one chat + one offer = 2 = max
    REQUIRE(f.run(f.store->end_chat("seeker", seekers[0], chat.value->session_id)));
    CHECK(f.seeker_state(seekers[2]) == "offered");
    require_consistent(f.server);
}

TEST_CASE("matchmaker: seekers meet only listeners of their topic and language" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety"}, {"en"}, 3);
    auto es = f.seeker(), grief = f.seeker(), ok = f.seeker();
    f.request(es, "anxiety", "es");
    f.request(grief, "grief", "en");
    f.request(ok, "anxiety", "en");
    CHECK(f.seeker_state(es) == "queued");
    CHECK(f.seeker_state(grief) == "queued");
    CHECK(f.offered_listener(ok) == l.id);
    require_consistent(f.server);
}

TEST_CASE("matchmaker: a declined seeker keeps its place and goes to another listener" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l1 = f.listener({"work"}, {"de"}, 1);
    auto a = f.seeker();
    f.request(a, "work", "de");
    std::string score = f.server.cmd({"HGET", "wl:seeker:" + a, "score"});
    f.now += 1;
    auto b = f.seeker();
    f.request(b, "work", "de");
    REQUIRE(f.offered_listener(a) == l1.id);
    REQUIRE(f.run(f.store->decline_offer(l1.id, f.offer_of(a))));
    // back in the queue ahead of b, and not offered to l1 again: b is
    CHECK(f.seeker_state(a) == "queued");
    CHECK(f.server.cmd({"ZSCORE", "wl:q:work:de", a}) == score);
    CHECK(f.offered_listener(b) == l1.id);
    auto l2 = f.listener({"work"}, {"de"}, 1);
    CHECK(f.offered_listener(a) == l2.id);
    CHECK(f.field("wl:stats:work:de", "declined") == "1");
    require_consistent(f.server);
}

TEST_CASE("matchmaker: an offer that times out sets the listener away and re-queues the seeker" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l1 = f.listener({"general"}, {"en"}, 1);
    auto a = f.seeker();
    f.request(a, "general", "en");
    std::string first = f.offer_of(a);
    REQUIRE(f.offered_listener(a) == l1.id);
    f.now += f.settings.offer_timeout_ms - 1;
    f.run(f.store->sweep_all());
    CHECK(f.offer_of(a) == first);  // not yet
    auto l2 = f.listener({"general"}, {"en"}, 1);
    f.now += 2;
    f.run(f.store->sweep_all());
    CHECK(f.field("wl:listener:" + l1.id, "status") == "away");
    CHECK(f.offered_listener(a) == l2.id);
    CHECK(f.field("wl:stats:general:en", "timed_out") == "1");
    // a late accept of the expired offer is refused
    auto late = f.run(f.store->accept_offer(l1.id, first));
    CHECK_FALSE(late);
    CHECK(late.error.code == "NOT_FOUND");
    require_consistent(f.server);
}

TEST_CASE("matchmaker: accepting after the deadline, before the sweep, is refused" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"general"}, {"en"}, 1);
    auto a = f.seeker();
    f.request(a, "general", "en");
    f.now += f.settings.offer_timeout_ms + 1;
    auto r = f.run(f.store->accept_offer(l.id, f.offer_of(a)));
    CHECK_FALSE(r);
    CHECK(r.error.code == "WRONG_STATE");
    CHECK(f.seeker_state(a) == "queued");
    CHECK(f.field("wl:listener:" + l.id, "status") == "away");
    require_consistent(f.server);
}

TEST_CASE("matchmaker: cancelling withdraws an open offer and frees the listener" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"general"}, {"en"}, 1);
    auto a = f.seeker(), b = f.seeker();
    f.request(a, "general", "en");
    f.now += 1;
    f.request(b, "general", "en");
    REQUIRE(f.seeker_state(a) == "offered");
    REQUIRE(f.run(f.store->cancel_request(a)));
    CHECK(f.seeker_state(a) == "idle");
    CHECK(f.offered_listener(b) == l.id);
    auto again = f.run(f.store->cancel_request(a));
    CHECK_FALSE(again);
    CHECK(again.error.code == "WRONG_STATE");
    require_consistent(f.server);
}

TEST_CASE("matchmaker: a dropped seeker keeps its place for the grace period, then is abandoned" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto a = f.seeker("n1");
    f.request(a, "grief", "es");
    f.run(f.store->connection_lost("seeker", a, "n1"));
    f.now += f.settings.grace_ms - 1;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(a) == "queued");
    auto back = f.run(f.store->seeker_resume("hash-" + a, "n2"));
    REQUIRE(back);
    CHECK(back.value->seeker_id == a);
    CHECK(back.value->state == "queued");
    CHECK(back.value->resumed);
    f.run(f.store->connection_lost("seeker", a, "n2"));
    f.now += f.settings.grace_ms + 1;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(a) == "idle");
    CHECK(f.field("wl:stats:grief:es", "abandoned") == "1");
    CHECK(f.server.cmd({"ZCARD", "wl:q:grief:es"}) == "0");
    auto unknown = f.run(f.store->seeker_resume("no-such-hash", "n1"));
    CHECK_FALSE(unknown);
    CHECK(unknown.error.code == "RESUME_FAILED");
}

TEST_CASE("matchmaker: seekers of a process whose lease runs out on Redis's clock start their grace "
          "period, and its listeners' connections there are gone" *
          doctest::timeout(20)) {
    auto s = matchmaker_fixture::defaults();
    s.node_lease_ms = 300;
    matchmaker_fixture f(s);
    f.run(f.store->heartbeat("alive"));
    f.run(f.store->heartbeat("dead"));
    auto a = f.seeker("dead");
    f.request(a, "anxiety", "de");
    // one listener only on the dead process, one also on a live one
    auto gone = f.listener({"anxiety"}, {"en"}, 1);
    auto both = f.listener({"grief"}, {"en"}, 1);
    f.run(f.store->listener_sign_in(crypto::sha256_hex(gone.token), "dead"));
    f.run(f.store->listener_sign_in(crypto::sha256_hex(both.token), "dead"));
    f.run(f.store->listener_sign_in(crypto::sha256_hex(both.token), "alive"));
    // the hand-moved clock is not what leases run on: an hour of it changes nothing
    f.now += 3600 * 1000;
    f.run(f.store->sweep_all());
    CHECK_FALSE(f.server.cmd({"ZSCORE", "wl:nodes", "dead"}).empty());
    CHECK(f.field("wl:listener:" + gone.id, "status") == "available");
    // Redis's clock passes the lease: only "alive" renews
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!f.server.cmd({"ZSCORE", "wl:nodes", "dead"}).empty()) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        f.run(f.store->heartbeat("alive"));
        f.run(f.store->sweep_all());
    }
    CHECK(f.seeker_state(a) == "queued");
    CHECK(f.field("wl:seeker:" + a, "parked") == "1");
    CHECK(f.field("wl:listener:" + gone.id, "status") == "away");
    CHECK(f.field("wl:listener:" + gone.id, "away_why") == "node");
    CHECK(f.field("wl:listener:" + both.id, "status") == "available");  // still connected elsewhere
    CHECK(f.server.cmd({"HGETALL", "wl:listener:" + both.id + ":conns"}) == "alive\n1");
    f.now += f.settings.grace_ms + 1;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(a) == "idle");
    require_consistent(f.server);
}

TEST_CASE("matchmaker: a request widens to any topic in its language after its topic's wait" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    auto a = f.seeker();
    f.request(a, "grief", "en", false, "", /*widen_ms=*/1000);
    CHECK(f.seeker_state(a) == "queued");
    f.now += 999;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(a) == "queued");
    f.now += 2;
    f.run(f.store->sweep_all());
    CHECK(f.offered_listener(a) == l.id);
    // a topic that never widens stays with its own listeners
    auto b = f.seeker();
    f.request(b, "work", "en", false, "", 0);
    f.now += 10'000'000;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(b) == "queued");
    require_consistent(f.server);
}

TEST_CASE("matchmaker: a named listener gets the seeker within the window, then anyone" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l1 = f.listener({"relationships"}, {"en"}, 1);
    f.now += 1;
    auto l2 = f.listener({"relationships"}, {"en"}, 1);
    auto a = f.seeker();
    f.request(a, "relationships", "en", false, l2.id);
    CHECK(f.offered_listener(a) == l2.id);
    CHECK(f.field("wl:offer:" + f.offer_of(a), "preferred") == "1");

    // when the named listener is busy the seeker waits for them, not for l1
    auto b = f.seeker();
    f.request(b, "relationships", "en", false, l2.id);
    CHECK(f.seeker_state(b) == "queued");
    f.now += f.settings.preferred_window_ms + 1;
    f.run(f.store->sweep_all());
    // the offer to l2 for `a` timed out too (same clock), so l2 is away; l1 takes one of them
    CHECK((f.offered_listener(b) == l1.id || f.offered_listener(a) == l1.id));
    require_consistent(f.server);
}

TEST_CASE("matchmaker: a seeker who blocked a listener is never offered to them again" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"general"}, {"en"}, 1);
    auto a = f.seeker();
    f.request(a, "general", "en");
    auto chat = f.run(f.store->accept_offer(l.id, f.offer_of(a)));
    REQUIRE(chat);
    auto early = f.run(f.store->rate_chat(a, chat.value->session_id, 2, "", true));
    CHECK_FALSE(early);
    CHECK(early.error.code == "WRONG_STATE");
    REQUIRE(f.run(f.store->end_chat("seeker", a, chat.value->session_id)));
    REQUIRE(f.run(f.store->rate_chat(a, chat.value->session_id, 2, "not a fit", true)));
    auto twice = f.run(f.store->rate_chat(a, chat.value->session_id, 5, "", false));
    CHECK_FALSE(twice);
    CHECK(f.field("wl:listener:" + l.id, "rating_count") == "1");
    f.request(a, "general", "en", false, /*pref=*/l.id);  // naming a blocked listener names nobody
    CHECK(f.seeker_state(a) == "queued");
    CHECK(f.field("wl:seeker:" + a, "pref").empty());
    auto other = f.listener({"general"}, {"en"}, 1);
    CHECK(f.offered_listener(a) == other.id);
    require_consistent(f.server);
}

TEST_CASE("matchmaker: listeners narrow topics and max chats only within what they are trained for" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety", "grief"}, {"en", "es"}, 2);
    auto bad_topic = f.run(f.store->set_preferences(l.id, "work", "", 0));
    CHECK_FALSE(bad_topic);
    CHECK(bad_topic.error.code == "PERMISSION_DENIED");
    auto too_many = f.run(f.store->set_preferences(l.id, "", "", 3));
    CHECK_FALSE(too_many);
    REQUIRE(f.run(f.store->set_preferences(l.id, "grief", "es", 1)));
    auto a = f.seeker(), b = f.seeker();
    f.request(a, "anxiety", "en");
    f.request(b, "grief", "es");
    CHECK(f.seeker_state(a) == "queued");
    CHECK(f.offered_listener(b) == l.id);
    require_consistent(f.server);
}

TEST_CASE("matchmaker: a revoked listener leaves every queue and cannot sign in" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    REQUIRE(f.run(f.store->listener_sign_in(crypto::sha256_hex(l.token), "n1")));
    f.run(f.accounts->revoke(l.id));
    auto r = f.run(f.store->listener_sign_in(crypto::sha256_hex(l.token), "n1"));
    CHECK_FALSE(r);
    CHECK(r.error.code == "UNAUTHENTICATED");
    CHECK(f.server.cmd({"ZCARD", "wl:avail:anxiety:en"}) == "0");
    auto a = f.seeker();
    f.request(a, "anxiety", "en");
    CHECK(f.seeker_state(a) == "queued");
}

TEST_CASE("matchmaker: stats count waiting seekers, shortages and outcomes, never people" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto a = f.seeker(), b = f.seeker();
    f.request(a, "grief", "de");
    f.now += 30'000;
    auto rows = f.run(f.store->stats({"grief"}, {"de"})).rows;
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].waiting == 1);
    CHECK(rows[0].longest_wait_ms == 30'000);
    CHECK(rows[0].available == 0);
    auto l = f.listener({"grief"}, {"de"}, 2);
    auto chat = f.run(f.store->accept_offer(l.id, f.offer_of(a)));
    REQUIRE(chat);
    f.request(b, "grief", "de");
    auto result = f.run(f.store->stats({"grief"}, {"de"}));
    rows = result.rows;
    CHECK(rows[0].waiting == 1);  // b, being offered, is still waiting
    CHECK(result.wait_p50_ms == 30'000);
    CHECK(result.busy == 1);  // the listener, counted once
    CHECK(result.available + result.away == 0);
    CHECK(rows[0].chats == 1);
    CHECK(rows[0].accepted == 1);
    CHECK(rows[0].wait_p50_ms == 30'000);
    CHECK(rows[0].busy == 1);  // one chat + one offer = max 2
}

TEST_CASE("matchmaker: a chat nobody ends is closed by the sweep and frees the listener" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"general"}, {"en"}, 1);
    auto a = f.seeker(), b = f.seeker();
    f.request(a, "general", "en");
    auto chat = f.run(f.store->accept_offer(l.id, f.offer_of(a)));
    REQUIRE(chat);
    f.request(b, "general", "en");
    f.now += f.settings.state_ttl_s * 500 - 1;
    f.run(f.store->sweep_all());
    CHECK(f.field("wl:session:" + chat.value->session_id, "state") == "active");
    f.now += 2;
    f.run(f.store->sweep_all());
    CHECK(f.field("wl:session:" + chat.value->session_id, "state") == "ended");
    CHECK(f.field("wl:session:" + chat.value->session_id, "ended_by") == "expired");
    CHECK(f.field("wl:listener:" + l.id, "chats") == "0");
    CHECK(f.offered_listener(b) == l.id);
    require_consistent(f.server);
}

TEST_CASE("matchmaker: naming a listener does not bypass the topics they take" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety", "work"}, {"en"}, 1);
    REQUIRE(f.run(f.store->set_preferences(l.id, "work", "", 0)));
    auto a = f.seeker();
    f.request(a, "anxiety", "en", false, l.id);
    CHECK(f.seeker_state(a) == "queued");
    REQUIRE(f.run(f.store->set_preferences(l.id, "", "", 0)));  // takes anxiety again
    CHECK(f.offered_listener(a) == l.id);
    require_consistent(f.server);
}

TEST_CASE("matchmaker: queue position and an estimate from the recent service rate" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto a = f.seeker(), b = f.seeker(), c = f.seeker();
    CHECK(f.request(a, "work", "es").position == 1);
    CHECK(f.request(b, "work", "es").position == 2);
    auto unknown = f.run(f.store->positions({a, b}));
    REQUIRE(unknown.size() == 2);
    CHECK(unknown[1].position == 2);
    CHECK(unknown[1].estimate_s == 0);  // nobody served yet: no promise
    // two chats start within a minute: about one per 30 s
    auto l = f.listener({"work"}, {"es"}, 2);
    REQUIRE(f.run(f.store->accept_offer(l.id, f.offer_of(a))));
    REQUIRE(f.run(f.store->accept_offer(l.id, f.offer_of(b))));
    f.request(c, "work", "es");
    auto d = f.seeker();
    f.request(d, "work", "es");
    auto pos = f.run(f.store->positions({c, d, a}));
    CHECK(pos[0].position == 1);
    CHECK(pos[0].estimate_s == 30);
    CHECK(pos[1].position == 2);
    CHECK(pos[1].estimate_s == 60);
    CHECK(pos[2].position == 0);  // in a chat: not waiting
}

TEST_CASE("matchmaker: a queue's version moves whenever a position or estimate in it can" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto version = [&] { return f.run(f.store->queue_versions({"grief:en"})).at(0); };
    auto a = f.seeker(), b = f.seeker(), c = f.seeker();
    std::int64_t v = version();
    f.request(a, "grief", "en");  // joins
    CHECK(version() > v);
    v = version();
    f.request(b, "grief", "en");
    f.request(c, "grief", "en");
    CHECK(version() > v);
    v = version();
    REQUIRE(f.run(f.store->cancel_request(a)));  // someone ahead leaves
    CHECK(version() > v);
    v = version();
    auto l = f.listener({"grief"}, {"en"}, 1);  // b leaves the queue for an offer
    CHECK(f.seeker_state(b) == "offered");
    CHECK(version() > v);
    v = version();
    REQUIRE(f.run(f.store->accept_offer(l.id, f.offer_of(b))));  // the service rate changes
    CHECK(version() > v);
    v = version();
    // a change elsewhere leaves this queue's version alone
    f.request(f.seeker(), "anxiety", "en");
    CHECK(version() == v);
    CHECK(f.run(f.store->queue_versions({"loneliness:de"})).at(0) == 0);
    require_consistent(f.server);
}
