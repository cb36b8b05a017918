// Who is there, against a real redis-server and the service's own scripts: a seeker whose
// connection is gone is never offered (and keeps its place), a listener is present while any of
// their connections on any process is open, a process that was cut off confirms its clients
// when it is back (node_sync), and a sweep after an outage moves the clocks that ran meanwhile.
#include "tests/integration/matchmaker_fixture.hpp"
#include "tests/integration/matchmaker_invariants.hpp"

#include "common/crypto.hpp"

#include <doctest/doctest.h>

using namespace warmline;
using warmline::test::matchmaker_fixture;
using warmline::test::require_consistent;

namespace {


std::int64_t redis_now_ms(const test::redis_server& r) {
    auto t = test::lines(r.cmd({"TIME"}));
    return std::stoll(t.at(0)) * 1000 + std::stoll(t.at(1)) / 1000;
}

}  // namespace

TEST_CASE("presence: a seeker whose connection dropped is not offered, and back within the grace "
          "keeps its place" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto early = f.seeker("n1");
    f.request(early, "grief", "de");
    f.now += 10;
    auto late = f.seeker("n1");
    f.request(late, "grief", "de");
    const std::string score = f.server.cmd({"ZSCORE", "wl:q:grief:de", early});

    f.run(f.store->connection_lost("seeker", early, "n1"));
    CHECK(f.field("wl:seeker:" + early, "parked") == "1");
    CHECK(f.server.cmd({"ZSCORE", "wl:q:grief:de", early}).empty());
    require_consistent(f.server);

    // a listener arrives: the seeker who is there gets the offer, not the one who is away
    auto l = f.listener({"grief"}, {"de"}, 1);
    CHECK(f.seeker_state(late) == "offered");
    CHECK(f.seeker_state(early) == "queued");
    REQUIRE(f.run(f.store->decline_offer(l.id, f.offer_of(late))));

    // back on another process: at its original score, and matched with the listener who is free
    auto back = f.run(f.store->seeker_resume("hash-" + early, "n2"));
    REQUIRE(back);
    CHECK(back.value->state == "offered");
    CHECK(f.offered_listener(early) == l.id);
    CHECK(f.field("wl:seeker:" + early, "parked") == "0");
    CHECK(f.field("wl:seeker:" + early, "score") == score);
    CHECK(f.server.cmd({"ZSCORE", "wl:gone", early}).empty());
    require_consistent(f.server);
}

TEST_CASE("presence: an open offer is withdrawn when its seeker's connection drops, and the seeker "
          "goes back to its place when it returns" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    auto a = f.seeker("n1");
    f.request(a, "anxiety", "en");
    REQUIRE(f.seeker_state(a) == "offered");
    const std::string oid = f.offer_of(a);
    f.now += 5;
    auto b = f.seeker("n1");
    f.request(b, "anxiety", "en");

    f.run(f.store->connection_lost("seeker", a, "n1"));
    // the listener is not left holding an offer for someone who is gone: it goes to the next
    CHECK(f.server.cmd({"EXISTS", "wl:offer:" + oid}) == "0");
    CHECK(f.seeker_state(a) == "queued");
    CHECK(f.seeker_state(b) == "offered");
    CHECK(f.offered_listener(b) == l.id);
    // a withdrawn offer is nobody's decline: the listener may be offered this seeker again
    CHECK(f.server.cmd({"EXISTS", "wl:seeker:" + a + ":declined"}) == "0");
    require_consistent(f.server);

    REQUIRE(f.run(f.store->seeker_resume("hash-" + a, "n1")));
    CHECK(f.seeker_state(a) == "queued");
    CHECK_FALSE(f.server.cmd({"ZSCORE", "wl:q:anxiety:en", a}).empty());
    // the listener's next free slot goes to a, who asked first
    REQUIRE(f.run(f.store->decline_offer(l.id, f.offer_of(b))));
    CHECK(f.seeker_state(a) == "offered");
    require_consistent(f.server);
}

TEST_CASE("presence: a listener stays available while any connection on any process is open" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"work"}, {"en"}, 2);
    const auto hash = crypto::sha256_hex(l.token);
    REQUIRE(f.run(f.store->listener_sign_in(hash, "n1")));
    REQUIRE(f.run(f.store->listener_sign_in(hash, "n1")));  // a second tab on n1
    REQUIRE(f.run(f.store->listener_sign_in(hash, "n2")));
    CHECK(f.server.cmd({"HGET", "wl:listener:" + l.id + ":conns", "n1"}) == "2");

    // the tab on n2 closes: n1 still has two
    f.run(f.store->connection_lost("listener", l.id, "n2", 0));
    CHECK(f.field("wl:listener:" + l.id, "status") == "available");
    // one of n1's two closes
    f.run(f.store->connection_lost("listener", l.id, "n1", 1));
    CHECK(f.field("wl:listener:" + l.id, "status") == "available");
    CHECK(f.server.cmd({"HGET", "wl:listener:" + l.id + ":conns", "n1"}) == "1");
    // the last one closes
    f.run(f.store->connection_lost("listener", l.id, "n1", 0));
    CHECK(f.field("wl:listener:" + l.id, "status") == "away");
    CHECK(f.server.cmd({"EXISTS", "wl:listener:" + l.id + ":conns"}) == "0");
    require_consistent(f.server);
}

TEST_CASE("presence: a process that was cut off confirms its live clients, lets go of those that "
          "left meanwhile, and gets back what the others took from it" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto stayed = f.seeker("n1");
    auto left = f.seeker("n1");
    auto long_gone = f.seeker("n1");
    f.request(stayed, "loneliness", "en");
    f.request(left, "loneliness", "en");
    f.request(long_gone, "loneliness", "fr");
    auto l = f.listener({"work"}, {"en"}, 1);
    REQUIRE(f.run(f.store->listener_sign_in(crypto::sha256_hex(l.token), "n1")));

    // other processes judged n1 dead: its clients were let go
    f.server.cmd({"ZADD", "wl:nodes", "1", "n1"});
    f.run(f.store->sweep_all());
    CHECK(f.field("wl:seeker:" + stayed, "parked") == "1");
    CHECK(f.field("wl:listener:" + l.id, "status") == "away");
    // long enough for the grace to end: the requests were abandoned
    f.now += f.settings.grace_ms + 1;
    f.run(f.store->sweep_all());
    REQUIRE(f.seeker_state(stayed) == "idle");

    // n1 is back and still holds `stayed`, `long_gone` and the listener; `left` closed meanwhile
    f.run(f.store->node_sync("n1", {stayed, long_gone}, {{l.id, 1}}));
    CHECK(f.seeker_state(stayed) == "queued");
    CHECK(f.seeker_state(long_gone) == "queued");
    CHECK_FALSE(f.server.cmd({"ZSCORE", "wl:q:loneliness:en", stayed}).empty());
    CHECK(f.server.cmd({"ZSCORE", "wl:waiting:loneliness:en", stayed}) != "");
    CHECK(f.seeker_state(left) == "idle");
    CHECK(f.field("wl:listener:" + l.id, "status") == "available");
    CHECK(f.field("wl:seeker:" + stayed, "node") == "n1");
    CHECK_FALSE(f.server.cmd({"ZSCORE", "wl:nodes", "n1"}).empty());
    require_consistent(f.server);

    // a client of n1 that closed while Redis could not be told is let go at the next sync
    f.run(f.store->node_sync("n1", {stayed}, {}));
    CHECK(f.field("wl:seeker:" + long_gone, "parked") == "1");
    CHECK_FALSE(f.server.cmd({"ZSCORE", "wl:gone", long_gone}).empty());
    CHECK(f.field("wl:listener:" + l.id, "status") == "away");
    require_consistent(f.server);
}

TEST_CASE("presence: the first sweep after an outage gives every process a fresh lease and moves "
          "grace periods and offer deadlines on by the gap" *
          doctest::timeout(20)) {
    auto s = matchmaker_fixture::defaults();
    s.node_lease_ms = 5000;
    matchmaker_fixture f(s);
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    auto a = f.seeker("n1");
    f.request(a, "anxiety", "en");
    const std::string oid = f.offer_of(a);
    const std::int64_t deadline = std::stoll(f.field("wl:offer:" + oid, "deadline"));
    auto b = f.seeker("n1");
    f.request(b, "grief", "en");
    f.run(f.store->connection_lost("seeker", b, "n1"));
    const std::int64_t grace_end = std::stoll(f.server.cmd({"ZSCORE", "wl:gone", b}));
    f.run(f.store->heartbeat("n1"));
    f.run(f.store->sweep_all());  // an ordinary sweep: nothing moves

    // nobody swept for 60 s of Redis's clock, and n1's lease ran out meanwhile
    const std::int64_t now = redis_now_ms(f.server);
    f.server.cmd({"SET", "wl:clock", std::to_string(now - 60000)});
    f.server.cmd({"ZADD", "wl:nodes", std::to_string(now - 50000), "n1"});
    f.run(f.store->sweep_all());
    // n1 is not judged dead: it gets a lease to come back and confirm its clients
    REQUIRE_FALSE(f.server.cmd({"ZSCORE", "wl:nodes", "n1"}).empty());
    CHECK(std::stoll(f.server.cmd({"ZSCORE", "wl:nodes", "n1"})) >= now + 2 * 5000);
    CHECK(f.field("wl:seeker:" + a, "conn") == "1");
    // the offer and the grace period moved on by about the gap (60 s, give or take the test's own time)
    const std::int64_t moved_deadline = std::stoll(f.field("wl:offer:" + oid, "deadline"));
    CHECK(moved_deadline - deadline >= 60000);
    CHECK(moved_deadline - deadline < 65000);
    CHECK(std::stoll(f.server.cmd({"ZSCORE", "wl:offers:due", oid})) == moved_deadline);
    const std::int64_t moved_grace = std::stoll(f.server.cmd({"ZSCORE", "wl:gone", b}));
    CHECK(moved_grace - grace_end >= 60000);
    CHECK(moved_grace - grace_end < 65000);
    require_consistent(f.server);
    (void)l;
}

TEST_CASE("presence: a seeker who left is not offered when a cool-down ends either; back, they are" *
          doctest::timeout(20)) {
    auto settings = matchmaker_fixture::defaults();
    settings.decline_cooldown_ms = settings.grace_ms / 2;  // it ends within the grace
    matchmaker_fixture f(settings);
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    auto s = f.seeker("n1");
    f.request(s, "anxiety", "en");
    REQUIRE(f.run(f.store->decline_offer(l.id, f.offer_of(s))));
    f.run(f.store->connection_lost("seeker", s, "n1"));
    f.now += f.settings.decline_cooldown_ms + 1;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(s) == "queued");
    CHECK(f.field("wl:listener:" + l.id, "offers") == "0");
    REQUIRE(f.run(f.store->seeker_resume("hash-" + s, "n1")));
    CHECK(f.offered_listener(s) == l.id);
    require_consistent(f.server);
}

TEST_CASE("presence: a request let go while its seeker was away stays let go once the seeker has said hello "
          "again, even if its process is later cut off" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto s = f.seeker("n1");
    f.request(s, "grief", "es");
    f.run(f.store->connection_lost("seeker", s, "n1"));
    f.now += f.settings.grace_ms + 1;
    f.run(f.store->sweep_all());
    REQUIRE(f.seeker_state(s) == "idle");
    REQUIRE(f.run(f.store->seeker_resume("hash-" + s, "n1")));  // told: your place was let go
    f.run(f.store->node_sync("n1", {s}, {}));
    CHECK(f.seeker_state(s) == "idle");
}
