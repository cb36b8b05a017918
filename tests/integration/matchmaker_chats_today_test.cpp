// "Chats today" for listeners: chats accepted since midnight of the listener's own clock (the
// offset of their last sign-in), counted from accept times kept in Redis for two days, in every
// ListenerProfile the service sends.
#include "tests/integration/matchmaker_fixture.hpp"
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"

#include "common/crypto.hpp"

#include <doctest/doctest.h>

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;

namespace {

constexpr std::int64_t hour = 3600 * 1000;
constexpr std::int64_t day = 24 * hour;

// A UTC midnight a little after the fixtures' start time.
std::int64_t next_utc_midnight(std::int64_t now) { return (now / day + 1) * day; }

// One chat with the listener at the fixture's current time: a seeker asks, the listener
// accepts, the chat ends (so the listener has room for the next one).
void one_chat(matchmaker_fixture& f, const std::string& lid) {
    auto sid = f.seeker();
    f.request(sid, "anxiety", "en");
    REQUIRE(f.offered_listener(sid) == lid);
    auto chat = f.run(f.store->accept_offer(lid, f.offer_of(sid)));
    REQUIRE(chat);
    REQUIRE(f.run(f.store->end_chat("seeker", sid, chat.value->session_id)));
}

}  // namespace

TEST_CASE("matchmaker: chats today count from midnight of the listener's clock" * doctest::timeout(20)) {
    matchmaker_fixture f;
    const std::int64_t midnight = next_utc_midnight(f.now);  // 00:00 UTC of "day 1"
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    const std::string hash = crypto::sha256_hex(l.token);
    for (std::int64_t at : {midnight - 30 * hour, midnight - 22 * hour, midnight - 3 * hour, midnight - 90 * 60 * 1000}) {
        f.now = at;
        one_chat(f, l.id);
    }
    f.now = midnight - 30 * 60 * 1000;  // 23:30 UTC of day 0
    auto today = [&] { return f.run(f.store->listener_profile(l.id)).chats_today; };

    SUBCASE("without an offset, the day starts at midnight UTC") {
        CHECK(today() == 3);  // 02:00, 21:00 and 22:30 UTC; not 18:00 the day before
    }
    SUBCASE("east of UTC, today started before midnight UTC") {
        REQUIRE(f.run(f.store->listener_sign_in(hash, "n1", 120)));  // 01:30 of day 1 there
        CHECK(today() == 1);  // only 22:30 UTC = 00:30 local
    }
    SUBCASE("west of UTC, today started after midnight UTC") {
        REQUIRE(f.run(f.store->listener_sign_in(hash, "n1", -300)));  // 18:30 of day 0 there
        CHECK(today() == 2);  // 21:00 and 22:30 UTC; 02:00 UTC was 21:00 the day before
    }
    SUBCASE("the last sign-in's offset wins") {
        REQUIRE(f.run(f.store->listener_sign_in(hash, "n1", 120)));
        REQUIRE(f.run(f.store->listener_sign_in(hash, "n2", -300)));
        CHECK(f.field("wl:listener:" + l.id, "utc_offset") == "-300");
        CHECK(today() == 2);
    }
    SUBCASE("a new day starts from zero") {
        REQUIRE(f.run(f.store->listener_sign_in(hash, "n1", 0)));
        f.now = midnight + 1;
        CHECK(today() == 0);
    }
}

TEST_CASE("matchmaker: accept times are kept two days and expire with the listener's quiet" *
          doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"anxiety"}, {"en"}, 1);
    const std::string key = "wl:listener:" + l.id + ":accepts";
    const std::int64_t start = f.now;
    one_chat(f, l.id);
    f.now = start + 47 * hour;
    one_chat(f, l.id);
    CHECK(f.server.cmd({"ZCARD", key}) == "2");
    auto ttl = std::stoll(f.server.cmd({"TTL", key}));
    CHECK(ttl > 47 * 3600);
    CHECK(ttl <= 48 * 3600);
    f.now = start + 49 * hour;  // the first accept is now more than 48 h old
    one_chat(f, l.id);
    CHECK(f.server.cmd({"ZCARD", key}) == "2");
    CHECK(f.server.cmd({"ZSCORE", key, f.server.cmd({"ZRANGE", key, "0", "0"})}) == std::to_string(start + 47 * hour));
    auto bad = check_invariants(f.server);
    CHECK(bad.empty());
}

TEST_CASE("matchmaker ws: every listener profile carries chats today, by the sign-in's offset" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    manual_clock clock;
    const std::int64_t midnight = next_utc_midnight(clock.now());
    clock.set(midnight - 2 * hour);  // 22:00 UTC; 01:00 of the next day at UTC+3
    running_matchmaker mm(f.server.url(), manual_clock_settings(fast_settings()), {}, clock.fn());
    std::string token = f.listener({"anxiety"}, {"en"}, 1, /*available=*/false).token;

    peer listener(mm.port());
    SUBCASE("an offset outside -840..840 is refused with a sentence") {
        for (const char* off : {"841", "-841", "100000"}) {
            auto e = listener.call(R"("listenerSignIn":{"token":")" + token + R"(","utcOffsetMin":)" + off + "}");
            REQUIRE(e.has_error());
            CHECK(e.error().code() == v1::INVALID_ARGUMENT);
            CHECK(e.error().message().find("-840 to 840") != std::string::npos);
        }
        // still unsigned: a good sign-in works on the same connection
        CHECK(listener.call(R"("listenerSignIn":{"token":")" + token + R"(","utcOffsetMin":-840})").has_listener_welcome());
    }
    SUBCASE("welcome, status replies and pushes count the chats of the local day") {
        auto welcome = listener.call(R"("listenerSignIn":{"token":")" + token + R"(","utcOffsetMin":180})");
        REQUIRE(welcome.has_listener_welcome());
        CHECK(welcome.listener_welcome().profile().chats_today() == 0);
        REQUIRE(listener.call(R"("setAvailability":{"available":true})").has_status_changed());

        // one chat at 22:00 UTC (01:00 local: today) and one the evening before (yesterday there)
        auto chat = [&](std::int64_t at) {
            clock.set(at);
            peer seeker(mm.port());
            seeker.call(R"("seekerHello":{})");
            seeker.call(R"("requestChat":{"topic":"anxiety","language":"en"})");
            auto offer = listener.until([](const M& m) { return m.has_offer(); });
            auto started = listener.call(R"("acceptOffer":{"offerId":")" + offer.offer().offer_id() + "\"}");
            REQUIRE(started.has_chat_started());
            REQUIRE(seeker.call(R"("endChat":{"sessionId":")" + started.chat_started().session_id() + "\"}").has_ok());
            listener.until([](const M& m) { return m.has_chat_ended(); });
        };
        chat(midnight - 4 * hour);  // 20:00 UTC = 23:00 local, the day before
        chat(midnight - 2 * hour);  // 22:00 UTC = 01:00 local
        clock.set(midnight - 1 * hour);

        auto status = listener.call(R"("setAvailability":{"available":true})");
        REQUIRE(status.has_status_changed());
        CHECK(status.status_changed().profile().chats_today() == 1);  // UTC would say 2

        peer tab(mm.port());
        auto again = tab.call(R"("listenerSignIn":{"token":")" + token + R"(","utcOffsetMin":0})");
        REQUIRE(again.has_listener_welcome());
        CHECK(again.listener_welcome().profile().chats_today() == 2);  // now counted in UTC

        // a push carries the count too (here the one before a revocation closes the tabs)
        REQUIRE(f.run(f.store->admin_update(f.server.cmd({"SMEMBERS", "wl:listeners"}), "", "", "", 0, true)));
        auto pushed = tab.until([](const M& m) { return m.has_status_changed() && m.request_id().empty(); });
        CHECK(pushed.status_changed().profile().chats_today() == 2);
    }
    CHECK(check_invariants(f.server).empty());
}
