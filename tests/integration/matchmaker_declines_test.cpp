// Declines and misses never strand a seeker, against a real redis-server on a hand-moved clock:
// a seeker nobody available may take is told so (no estimate), a decline or a miss lasts a
// cool-down after which the listener may be offered the seeker again, a crisis request nobody
// took widens to every listener of its language, and supervisors see both.
#include "tests/integration/matchmaker_fixture.hpp"
#include "tests/integration/matchmaker_invariants.hpp"

#include <doctest/doctest.h>

using namespace warmline;
using warmline::test::matchmaker_fixture;
using warmline::test::require_consistent;

namespace {


matchmaker::position position_of(matchmaker_fixture& f, const std::string& sid) {
    auto p = f.run(f.store->positions({sid}));
    REQUIRE(p.size() == 1);
    return p[0];
}

matchmaker::queue_row row_of(matchmaker_fixture& f, const std::string& topic, const std::string& lang) {
    auto rows = f.run(f.store->stats({topic}, {lang})).rows;
    REQUIRE(rows.size() == 1);
    return rows[0];
}

}  // namespace

TEST_CASE("declines: the only listener declines a crisis request; the seeker is told nobody can take it "
          "now, and is offered to them again after the cool-down" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    auto s = f.seeker();
    auto q = f.request(s, "anxiety", "en", /*crisis=*/true);
    REQUIRE(q.state == "offered");
    CHECK_FALSE(q.nobody);
    REQUIRE(f.run(f.store->decline_offer(l.id, f.offer_of(s))));

    // waiting, and honestly: nobody available may take it, so no estimate
    CHECK(f.seeker_state(s) == "queued");
    auto p = position_of(f, s);
    CHECK(p.position == 1);
    CHECK(p.nobody);
    CHECK(p.estimate_s == 0);
    CHECK(row_of(f, "anxiety", "en").unservable == 1);
    // switching available off and on is not a way around the cool-down
    REQUIRE(f.run(f.store->set_availability(l.id, false)));
    REQUIRE(f.run(f.store->set_availability(l.id, true)));
    CHECK(f.seeker_state(s) == "queued");

    f.now += f.settings.decline_cooldown_ms - 1;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(s) == "queued");
    f.now += 2;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(s) == "offered");
    CHECK(f.offered_listener(s) == l.id);
    CHECK(row_of(f, "anxiety", "en").unservable == 0);
    require_consistent(f.server);
}

TEST_CASE("declines: a missed offer sets the listener away; back within the cool-down they are not "
          "offered that seeker, after it they are" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"grief"}, {"en"}, 1);
    auto s = f.seeker();
    f.request(s, "grief", "en");
    f.now += f.settings.offer_timeout_ms + 1;
    f.run(f.store->sweep_all());
    CHECK(f.field("wl:listener:" + l.id, "status") == "away");
    CHECK(position_of(f, s).nobody);
    REQUIRE(f.run(f.store->set_availability(l.id, true)));
    CHECK(f.seeker_state(s) == "queued");
    CHECK(position_of(f, s).nobody);
    f.now += f.settings.decline_cooldown_ms;
    f.run(f.store->sweep_all());
    CHECK(f.offered_listener(s) == l.id);
    require_consistent(f.server);
}

TEST_CASE("declines: with nobody online who covers the pair the seeker is told so; once someone is, "
          "even busy, the estimate counts again" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto first = f.seeker();
    f.request(first, "work", "pt-BR");
    auto s = f.seeker();
    auto q = f.request(s, "work", "pt-BR");
    CHECK(q.nobody);
    CHECK(q.estimate_s == 0);
    CHECK(row_of(f, "work", "pt-BR").unservable == 2);
    // a listener arrives and takes `first`: busy, but there, so `s` is not told "nobody"
    auto l = f.listener({"work"}, {"pt-BR"}, 1);
    REQUIRE(f.offered_listener(first) == l.id);
    REQUIRE(f.run(f.store->accept_offer(l.id, f.offer_of(first))));
    auto p = position_of(f, s);
    CHECK(p.position == 1);
    CHECK_FALSE(p.nobody);
    CHECK(row_of(f, "work", "pt-BR").unservable == 0);
    // the listener goes away: nobody again
    REQUIRE(f.run(f.store->set_availability(l.id, false)));
    CHECK(position_of(f, s).nobody);
    require_consistent(f.server);
}

TEST_CASE("declines: a blocked listener never counts as someone who may take the seeker" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"relationships"}, {"en"}, 1);
    auto s = f.seeker();
    f.request(s, "relationships", "en");
    auto chat = f.run(f.store->accept_offer(l.id, f.offer_of(s)));
    REQUIRE(chat);
    REQUIRE(f.run(f.store->end_chat("seeker", s, chat.value->session_id)));
    REQUIRE(f.run(f.store->rate_chat(s, chat.value->session_id, 1, "", true)));
    auto q = f.request(s, "relationships", "en");
    CHECK(q.state == "queued");
    CHECK(q.nobody);
    f.now += f.settings.decline_cooldown_ms * 10;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(s) == "queued");
    CHECK(position_of(f, s).nobody);
}

TEST_CASE("declines: a crisis request nobody took within the crisis wait goes to every listener of its "
          "language, and supervisors are alerted while it waits" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto other_topic = f.listener({"work"}, {"de"}, 1);
    auto s = f.seeker();
    f.request(s, "grief", "de", /*crisis=*/true);  // grief/de has no listener; the catalogue widens after longer
    CHECK(f.seeker_state(s) == "queued");
    auto row = row_of(f, "grief", "de");
    CHECK(row.crisis_waiting == 1);
    CHECK(row.crisis_overdue == 0);
    f.now += f.settings.crisis_widen_ms + 1;
    f.run(f.store->sweep_all());
    CHECK(f.offered_listener(s) == other_topic.id);
    // a second crisis request with no listener of its language at all stays, and is overdue
    auto t = f.seeker();
    f.request(t, "grief", "fr", true);
    f.now += f.settings.crisis_widen_ms + 1;
    f.run(f.store->sweep_all());
    row = row_of(f, "grief", "fr");
    CHECK(row.crisis_waiting == 1);
    CHECK(row.crisis_overdue == 1);
    CHECK(row.unservable == 1);
    require_consistent(f.server);
}

TEST_CASE("declines: crisis chats and crisis waits are counted for supervisors" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety"}, {"en"}, 3);
    auto crisis = f.seeker(), normal = f.seeker();
    f.request(normal, "anxiety", "en");
    f.request(crisis, "anxiety", "en", true);
    f.now += 4000;
    REQUIRE(f.run(f.store->accept_offer(l.id, f.offer_of(crisis))));
    f.now += 6000;
    REQUIRE(f.run(f.store->accept_offer(l.id, f.offer_of(normal))));
    auto result = f.run(f.store->stats({"anxiety"}, {"en"}));
    auto row = result.rows.at(0);
    CHECK(row.chats == 2);
    CHECK(row.crisis_chats == 1);
    CHECK(row.crisis_p50_ms == 4000);
    CHECK(row.wait_p90_ms == 10000);
    CHECK(result.crisis_p90_ms == 4000);
}

TEST_CASE("declines: in a crisis, waiting for a named listener lasts no longer than the crisis wait" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto named = f.listener({"grief"}, {"en"}, 1, false);
    auto other = f.listener({"grief"}, {"en"}, 1);
    auto s = f.seeker();
    f.request(s, "grief", "en", /*crisis=*/true, named.id);
    CHECK(f.seeker_state(s) == "queued");  // only the named listener, who is away, within the window
    f.now += f.settings.crisis_widen_ms + 1;
    f.run(f.store->sweep_all());
    CHECK(f.offered_listener(s) == other.id);
    require_consistent(f.server);
}

TEST_CASE("matchmaker: a listener is offered the oldest seeker they may take, behind 100 who avoid them" *
          doctest::timeout(60)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety"}, {"en"}, 1, /*available=*/false);
    // half blocked this listener, half were declined by them (cool-down): all ahead in line
    std::vector<std::string> ahead;
    for (int i = 0; i < 100; ++i) {
        auto sid = f.seeker();
        f.request(sid, "anxiety", "en");  // (a new request forgets earlier cool-downs: set them after)
        if (i % 2) f.server.cmd({"SADD", "wl:seeker:" + sid + ":blocked", l.id});
        else f.server.cmd({"ZADD", "wl:seeker:" + sid + ":cooldown", std::to_string(f.now + 3600000), l.id});
        ahead.push_back(sid);
    }
    auto behind = f.seeker();
    f.request(behind, "anxiety", "en");
    auto last = f.seeker();
    f.request(last, "anxiety", "en");

    REQUIRE(f.run(f.store->set_availability(l.id, true)));
    CHECK(f.seeker_state(behind) == "offered");
    CHECK(f.offered_listener(behind) == l.id);
    CHECK(f.seeker_state(last) == "queued");
    for (const auto& sid : ahead) CHECK(f.seeker_state(sid) == "queued");
    require_consistent(f.server);
}

TEST_CASE("matchmaker: a seeker is offered the listener idle longest they may take, behind 40 they avoid" *
          doctest::timeout(60)) {
    matchmaker_fixture f;
    auto sid = f.seeker();
    for (int i = 0; i < 40; ++i) {
        auto avoided = f.listener({"anxiety"}, {"en"}, 1);
        f.server.cmd({"SADD", "wl:seeker:" + sid + ":blocked", avoided.id});
    }
    f.now += 1000;
    auto free = f.listener({"anxiety"}, {"en"}, 1);  // idle the shortest of all: last in line
    f.request(sid, "anxiety", "en");
    CHECK(f.seeker_state(sid) == "offered");
    CHECK(f.offered_listener(sid) == free.id);
    require_consistent(f.server);
}
