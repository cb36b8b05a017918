// Listeners' wellbeing limits, against a real redis-server on a hand-moved clock: a daily cap and
// breaks (after N chats, after M minutes on duty) set by an admin and enforced by the matchmaker.
// At the limit the listener is set away, their open offers go back to their seekers at once, no
// new offer reaches them, and going available is refused until tomorrow or the break is over;
// a break runs from when their last open chat ends.
#include "tests/integration/matchmaker_fixture.hpp"
#include "tests/integration/matchmaker_invariants.hpp"

#include "services/matchmaker/messages.hpp"

#include <doctest/doctest.h>

using namespace warmline;
using warmline::test::matchmaker_fixture;
using warmline::test::require_consistent;

namespace {

constexpr std::int64_t minute = 60 * 1000;

// A listener with these limits (set the way warmline-admin does), available.
admin::created limited(matchmaker_fixture& f, int max_chats, matchmaker::wellbeing_limits w) {
    auto l = f.listener({"anxiety"}, {"en"}, max_chats, /*available=*/false);
    REQUIRE(f.run(f.store->admin_update(l.id, "", "", "", 0, false, w)));
    REQUIRE(f.run(f.store->set_availability(l.id, true)));
    return l;
}

std::string chat_with(matchmaker_fixture& f, const std::string& lid, const std::string& sid) {
    REQUIRE(f.offered_listener(sid) == lid);
    auto c = f.run(f.store->accept_offer(lid, f.offer_of(sid)));
    REQUIRE(c);
    return c.value->session_id;
}

v1::ListenerProfile profile(matchmaker_fixture& f, const std::string& lid) {
    return matchmaker::profile_from(lid, f.run(f.store->listener_profile(lid)));
}

}  // namespace

TEST_CASE("wellbeing: a daily cap stops offers at the cap, is refused until tomorrow, then lifts" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    matchmaker::wellbeing_limits w;
    w.chats_per_day = 2;
    auto l = limited(f, 2, w);
    auto s1 = f.seeker(), s2 = f.seeker(), s3 = f.seeker();
    f.request(s1, "anxiety", "en");
    auto c1 = chat_with(f, l.id, s1);
    f.request(s2, "anxiety", "en");
    chat_with(f, l.id, s2);
    // the second chat was the day's last: away, and the third seeker is not offered to them
    CHECK(profile(f, l.id).status() == v1::AWAY);
    CHECK(profile(f, l.id).chats_per_day() == 2);
    CHECK(profile(f, l.id).chats_today() == 2);
    auto q = f.request(s3, "anxiety", "en");
    CHECK(q.state == "queued");
    CHECK(q.nobody);
    REQUIRE(f.run(f.store->end_chat("listener", l.id, c1)));
    auto again = f.run(f.store->set_availability(l.id, true));
    REQUIRE_FALSE(again);
    CHECK(again.error.code == "WRONG_STATE");
    CHECK(again.error.message == "That's your 2 chats for today. Thank you! You can take chats again tomorrow.");
    CHECK(f.seeker_state(s3) == "queued");
    // tomorrow (UTC here: no offset was given at sign-in)
    f.now += 24 * 3600 * 1000LL;
    REQUIRE(f.run(f.store->set_availability(l.id, true)));
    CHECK(f.offered_listener(s3) == l.id);
    require_consistent(f.server);
}

TEST_CASE("wellbeing: a break after N chats withdraws open offers, waits for open chats to end, then runs its "
          "length" * doctest::timeout(30)) {
    matchmaker_fixture f;
    matchmaker::wellbeing_limits w;
    w.break_after_chats = 2;
    w.break_min = 10;
    auto l = limited(f, 3, w);
    auto s1 = f.seeker(), s2 = f.seeker(), s3 = f.seeker(), s4 = f.seeker();
    for (const auto& s : {s1, s2, s3}) f.request(s, "anxiety", "en");
    const std::string third_offer = f.offer_of(s3);
    REQUIRE_FALSE(third_offer.empty());
    auto c1 = chat_with(f, l.id, s1);
    auto c2 = chat_with(f, l.id, s2);
    // the second chat made the break due: the open offer went back to its seeker, at once
    auto p = profile(f, l.id);
    CHECK(p.status() == v1::AWAY);
    CHECK(p.break_due());
    CHECK(p.break_until_unix_ms() == 0);  // not resting while chats are open
    CHECK(p.chats_since_break() == 2);
    CHECK(f.seeker_state(s3) == "queued");
    auto late = f.run(f.store->accept_offer(l.id, third_offer));
    CHECK_FALSE(late);
    CHECK(f.request(s4, "anxiety", "en").state == "queued");
    auto early = f.run(f.store->set_availability(l.id, true));
    REQUIRE_FALSE(early);
    CHECK(early.error.message == "Your break starts when your open chats end.");

    REQUIRE(f.run(f.store->end_chat("listener", l.id, c1)));
    CHECK(profile(f, l.id).break_until_unix_ms() == 0);
    f.now += 5 * minute;
    REQUIRE(f.run(f.store->end_chat("seeker", s2, c2)));
    // the break runs from the last chat's end
    CHECK(profile(f, l.id).break_until_unix_ms() == f.now + 10 * minute);
    f.now += 10 * minute - 1;
    auto resting = f.run(f.store->set_availability(l.id, true));
    REQUIRE_FALSE(resting);
    CHECK(resting.error.message == "You are on a break for 1 more minute. Rest well.");
    f.now += 1;
    REQUIRE(f.run(f.store->set_availability(l.id, true)));
    p = profile(f, l.id);
    CHECK_FALSE(p.break_due());
    CHECK(p.chats_since_break() == 0);
    // the seekers who waited meanwhile are offered to them again, oldest first
    CHECK(f.offered_listener(s3) == l.id);
    CHECK(f.offered_listener(s4) == l.id);
    require_consistent(f.server);
}

TEST_CASE("wellbeing: a break after M minutes on duty is called by the sweep; time away as long as a break "
          "counts as one" * doctest::timeout(30)) {
    matchmaker_fixture f;
    matchmaker::wellbeing_limits w;
    w.break_after_min = 60;
    w.break_min = 15;
    auto l = limited(f, 1, w);
    const auto started = f.now;
    CHECK(profile(f, l.id).on_duty_since_unix_ms() == started);
    // a short pause does not reset the duty clock
    f.now += 20 * minute;
    REQUIRE(f.run(f.store->set_availability(l.id, false)));
    f.now += 5 * minute;
    REQUIRE(f.run(f.store->set_availability(l.id, true)));
    CHECK(profile(f, l.id).on_duty_since_unix_ms() == started);
    f.now = started + 60 * minute - 1;
    f.run(f.store->sweep_all());
    CHECK_FALSE(profile(f, l.id).break_due());
    f.now += 1;
    f.run(f.store->sweep_all());
    auto p = profile(f, l.id);
    CHECK(p.break_due());
    CHECK(p.status() == v1::AWAY);
    CHECK(p.break_until_unix_ms() == f.now + 15 * minute);  // no chat open: the rest starts now
    auto s = f.seeker();
    CHECK(f.request(s, "anxiety", "en").state == "queued");
    f.now += 15 * minute;
    REQUIRE(f.run(f.store->set_availability(l.id, true)));
    CHECK(profile(f, l.id).on_duty_since_unix_ms() == f.now);
    CHECK(f.offered_listener(s) == l.id);
    REQUIRE(f.run(f.store->decline_offer(l.id, f.offer_of(s))));

    // away at least a break long: a new stretch starts when they come back
    const auto second = f.now;
    f.now += 40 * minute;
    REQUIRE(f.run(f.store->set_availability(l.id, false)));
    f.now += 15 * minute;
    REQUIRE(f.run(f.store->set_availability(l.id, true)));
    CHECK(profile(f, l.id).on_duty_since_unix_ms() == f.now);
    f.now = second + 60 * minute;  // the old stretch's hour would be up now
    f.run(f.store->sweep_all());
    CHECK_FALSE(profile(f, l.id).break_due());
    require_consistent(f.server);
}

TEST_CASE("wellbeing: warmline-admin's accounts set the limits at creation and refuse values out of range" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    admin::listener_spec spec{"Rae", "", {"grief"}, {"en"}, 2, {}};
    spec.wellbeing.chats_per_day = 6;
    spec.wellbeing.break_after_min = 120;
    auto c = f.run(f.accounts->create_listener(spec));
    auto p = profile(f, c.id);
    CHECK(p.chats_per_day() == 6);
    CHECK(p.break_after_min() == 120);
    CHECK(p.break_after_chats() == 0);
    CHECK(p.break_min() == 15);  // the default length
    admin::listener_edit e;
    e.wellbeing.chats_per_day = 0;  // off again; the others as they were
    e.wellbeing.break_min = 20;
    f.run(f.accounts->edit_listener(c.id, e));
    p = profile(f, c.id);
    CHECK(p.chats_per_day() == 0);
    CHECK(p.break_after_min() == 120);
    CHECK(p.break_min() == 20);
    admin::listener_edit bad;
    bad.wellbeing.break_after_chats = 101;
    CHECK_THROWS_WITH_AS(f.run(f.accounts->edit_listener(c.id, bad)), "--break-after-chats must be from 0 (none) to 100",
                         std::invalid_argument);
}
