// Reports by several listeners about one seeker put the seeker's requests on hold, against a real
// redis-server on a hand-moved clock: counted per seeker and per address bucket, each listener
// once, within a window; a held request waits outside the queues (no listener is offered it), is
// told how long, and is matched by the sweep once the hold is over.
#include "tests/integration/matchmaker_fixture.hpp"
#include "tests/integration/matchmaker_invariants.hpp"

#include <doctest/doctest.h>

using namespace warmline;
using warmline::test::matchmaker_fixture;
using warmline::test::require_consistent;

namespace {

constexpr std::int64_t hold_ms = 30 * 60 * 1000;
constexpr std::int64_t window_ms = 24 * 3600 * 1000LL;

matchmaker::store_settings hold_settings() {
    auto s = matchmaker_fixture::defaults();
    s.hold_after_reports = 2;
    s.hold_after_address_reports = 3;
    s.hold_ms = hold_ms;
    s.reported_window_ms = window_ms;
    return s;
}

// A request from address bucket `addr` (the hash the handlers compute).
matchmaker::queued_result ask(matchmaker_fixture& f, const std::string& sid, const std::string& addr) {
    auto r = f.run(f.store->request_chat(sid, "anxiety", "en", 1, "", 0, addr));
    if (!r) throw std::runtime_error(r.error.code + ": " + r.error.message);
    return *r.value;
}

// `sid` (from `addr`) chats with a new listener, who reports them (without blocking) and ends it.
void reported_by_a_listener(matchmaker_fixture& f, const std::string& sid, const std::string& addr) {
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    auto q = ask(f, sid, addr);
    REQUIRE(q.state == "offered");
    REQUIRE(f.offered_listener(sid) == l.id);
    auto c = f.run(f.store->accept_offer(l.id, f.offer_of(sid)));
    REQUIRE(c);
    REQUIRE(f.run(f.store->report_chat("listener", l.id, c.value->session_id, "", R"({"messages":[]})", 0)));
    REQUIRE(f.run(f.store->end_chat("listener", l.id, c.value->session_id)));
    // off duty, so that the next request has only the listener the test makes available
    REQUIRE(f.run(f.store->set_availability(l.id, false)));
}

}  // namespace

TEST_CASE("holds: a seeker reported by two listeners waits out the hold, told how long, then is matched" *
          doctest::timeout(30)) {
    matchmaker_fixture f(hold_settings());
    auto s = f.seeker();
    reported_by_a_listener(f, s, "addrA");
    // one listener's report is not enough
    auto free = f.listener({"anxiety"}, {"en"}, 1);
    auto once = ask(f, s, "addrA");
    CHECK(once.state == "offered");
    CHECK(once.held_s == 0);
    REQUIRE(f.run(f.store->cancel_request(s)));
    REQUIRE(f.run(f.store->set_availability(free.id, false)));

    f.now += 60 * 1000;
    reported_by_a_listener(f, s, "addrA");
    REQUIRE(f.run(f.store->set_availability(free.id, true)));
    auto held = ask(f, s, "addrA");
    CHECK(held.state == "queued");
    CHECK(held.held_s == hold_ms / 1000);  // from the latest report, which was just now
    CHECK(f.offer_of(s).empty());
    CHECK(f.server.cmd({"ZCARD", "wl:q:anxiety:en"}) == "0");  // not in the queue: no listener sees it
    // the hold survives the seeker's connection dropping and coming back
    f.run(f.store->connection_lost("seeker", s, "n1"));
    auto back = f.run(f.store->seeker_resume("hash-" + s, "n1"));
    REQUIRE(back);
    CHECK(f.offer_of(s).empty());
    // a listener who becomes available does not get it either
    REQUIRE(f.run(f.store->set_availability(free.id, false)));
    REQUIRE(f.run(f.store->set_availability(free.id, true)));
    CHECK(f.offer_of(s).empty());
    auto p = f.run(f.store->positions({s}));
    REQUIRE(p.size() == 1);
    CHECK(p[0].held_s == hold_ms / 1000);
    f.now += hold_ms - 1000;
    f.run(f.store->sweep_all());
    CHECK(f.offer_of(s).empty());
    CHECK(f.run(f.store->positions({s}))[0].held_s == 1);

    f.now += 1000;
    f.run(f.store->sweep_all());
    CHECK(f.seeker_state(s) == "offered");
    CHECK(f.offered_listener(s) == free.id);
    require_consistent(f.server);
}

TEST_CASE("holds: counted per address bucket too (a new identity from there is held), each listener once, "
          "within the window" * doctest::timeout(30)) {
    matchmaker_fixture f(hold_settings());
    // two seekers of one address, reported by two listeners: below the address's threshold of 3
    auto a = f.seeker(), b = f.seeker();
    reported_by_a_listener(f, a, "addrA");
    reported_by_a_listener(f, b, "addrA");
    auto free = f.listener({"anxiety"}, {"en"}, 3);
    auto fresh = f.seeker();
    CHECK(ask(f, fresh, "addrA").held_s == 0);
    REQUIRE(f.run(f.store->cancel_request(fresh)));
    REQUIRE(f.run(f.store->set_availability(free.id, false)));
    // a third listener reports a seeker from there: every seeker of that address is held
    auto c = f.seeker();
    reported_by_a_listener(f, c, "addrA");
    REQUIRE(f.run(f.store->set_availability(free.id, true)));
    auto newcomer = f.seeker();
    CHECK(ask(f, newcomer, "addrA").held_s == hold_ms / 1000);
    // another address is not
    auto elsewhere = f.seeker();
    auto q = ask(f, elsewhere, "addrB");
    CHECK(q.held_s == 0);
    CHECK(q.state == "offered");
    // reports older than the window no longer count
    REQUIRE(f.run(f.store->cancel_request(newcomer)));
    f.now += window_ms + 1;
    auto later = ask(f, newcomer, "addrA");
    CHECK(later.held_s == 0);
    CHECK(later.state == "offered");
    require_consistent(f.server);
}

TEST_CASE("holds: a listener who reports one seeker twice counts once" * doctest::timeout(30)) {
    matchmaker_fixture f(hold_settings());
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    auto s = f.seeker();
    for (int i = 0; i < 2; ++i) {
        REQUIRE(ask(f, s, "addrA").state == "offered");
        auto chat = f.run(f.store->accept_offer(l.id, f.offer_of(s)));
        REQUIRE(chat);
        REQUIRE(f.run(f.store->report_chat("listener", l.id, chat.value->session_id, "", R"({"messages":[]})", 0)));
        REQUIRE(f.run(f.store->end_chat("listener", l.id, chat.value->session_id)));
    }
    CHECK(f.server.cmd({"ZCARD", "wl:seeker:" + s + ":reported"}) == "1");
    CHECK(ask(f, s, "addrA").held_s == 0);
}
