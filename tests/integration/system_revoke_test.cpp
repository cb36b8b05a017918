// Revocation and rotation bite at once, across processes: two matchmakers and two relays (real
// processes, a real Redis). A revoke ends the listener's chat (both relay connections closed, the
// seeker told and served first by the next listener), closes their open offer and every
// matchmaker connection of theirs on both processes; a rotated token ends the sessions signed in
// with the old one, a listener's or a supervisor's; and a process that hears of neither (only
// Redis changed) closes those sessions at its next session check (--session-check-ms).
#include "tests/integration/system_fixture.hpp"

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;
using namespace std::chrono_literals;

namespace {

std::string sign_in_error(std::uint16_t port, const std::string& token) {
    peer p(port);
    auto r = p.call(R"("listenerSignIn":{"token":")" + token + "\"}");
    return r.has_error() ? v1::ErrorCode_Name(r.error().code()) : std::string("signed in");
}

}  // namespace

TEST_CASE("revoke: a revoked listener is closed out on every process, their chat ends and its seeker is served "
          "first" * doctest::timeout(90)) {
    stack s(2, 2, {"--session-check-ms=300"});
    auto& mm_a = s.matchmakers[0];
    auto& mm_b = s.matchmakers[1];
    auto l = s.f.listener({"anxiety"}, {"en"}, 2, /*available=*/false);
    peer l_a(mm_a.port), l_b(mm_b.port);  // two tabs, on two processes
    listener_sign_in(l_a, l.token);
    REQUIRE(l_b.call(R"("listenerSignIn":{"token":")" + l.token + "\"}").has_listener_welcome());

    // a chat, its sides on different relays
    peer s1(mm_b.port);
    const std::string sid1 = seeker_hello(s1);
    REQUIRE(s1.call(R"("requestChat":{"topic":"anxiety","language":"en"})").has_request_queued());
    const std::string first_offer = offer_id(l_a);
    relay_sides chat(accept(l_a, s1, first_offer), s.relays[0].port, s.relays[1].port);
    auto& [s1_relay, l_relay] = chat;
    // an open offer, and someone waiting behind it
    peer s2(mm_a.port), s3(mm_a.port);
    const std::string sid2 = seeker_hello(s2);
    REQUIRE(s2.call(R"("requestChat":{"topic":"anxiety","language":"en"})").has_request_queued());
    REQUIRE(offer_id(l_a) != first_offer);
    const std::string sid3 = seeker_hello(s3);
    REQUIRE(s3.call(R"("requestChat":{"topic":"anxiety","language":"en"})").has_request_queued());

    s.f.run(s.f.accounts->revoke(l.id));

    // every connection of theirs closes, on both matchmakers and on the relay
    CHECK(close_code_within(l_a.ws, 5s) == 4003);
    CHECK(close_code_within(l_b.ws, 5s) == 4003);
    CHECK(close_code_within(l_relay.ws, 10s) == 1000);
    // the seeker is told kindly and put back at the front of the line
    auto ended = s1.until([](const M& m) { return m.has_chat_ended(); }, 5s);
    CHECK(ended.chat_ended().requeued());
    CHECK(close_code_within(s1_relay.ws, 10s) == 1000);
    CHECK(sign_in_error(mm_a.port, l.token) == "UNAUTHENTICATED");

    // the next listener is offered the seeker of the ended chat first, then the one whose offer closed
    auto next = s.f.listener({"anxiety"}, {"en"}, 1, /*available=*/false);
    peer n(mm_b.port);
    listener_sign_in(n, next.token);
    CHECK(s.f.field("wl:offer:" + offer_id(n), "seeker") == sid1);
    CHECK(s.f.server.cmd({"ZRANGE", "wl:q:anxiety:en", "0", "-1"}) == sid2 + "\n" + sid3);
    CHECK(s.invariant_violations().empty());
}

TEST_CASE("rotation: a new token ends the sessions signed in with the old one, on every process, heard of or not" *
          doctest::timeout(90)) {
    stack s(2, 1, {"--session-check-ms=300"});
    auto& mm_a = s.matchmakers[0];
    auto& mm_b = s.matchmakers[1];
    auto l = s.f.listener({"anxiety"}, {"en"}, 1, /*available=*/false);
    auto sup = s.f.run(s.f.accounts->create_supervisor("Rotation supervisor"));
    peer l_a(mm_a.port), l_b(mm_b.port), watch(mm_a.port);
    listener_sign_in(l_a, l.token);
    listener_sign_in(l_b, l.token);
    REQUIRE(watch.call(R"("supervisorSignIn":{"token":")" + sup.token + "\"}").has_stats());

    const std::string fresh = s.f.run(s.f.accounts->rotate_token(l.id));
    CHECK(close_code_within(l_a.ws, 5s) == 4003);
    CHECK(close_code_within(l_b.ws, 5s) == 4003);
    CHECK(sign_in_error(mm_b.port, l.token) == "UNAUTHENTICATED");
    peer again(mm_b.port);
    listener_sign_in(again, fresh);
    // the supervisor's dashboard was not touched; their own rotation closes it
    CHECK(watch.until([](const M& m) { return m.has_stats(); }, 5s).has_stats());
    s.f.run(s.f.accounts->rotate_token(sup.id));
    CHECK(close_code_within(watch.ws, 5s) == 4003);

    // a change no process hears of (only Redis knows): the session check closes the session
    s.f.server.cmd({"HSET", "wl:listener:" + l.id, "token", std::string(64, '0')});
    CHECK(close_code_within(again.ws, 5s) == 4003);
    CHECK(s.invariant_violations().empty());
}
