// The per-connection state machine: who may ask what, and request ids that cannot be reused.
#include "services/matchmaker/service.hpp"

#include <doctest/doctest.h>

using warmline::matchmaker::client_state;
using B = warmline::v1::ClientMessage::BodyCase;

TEST_CASE("client state: a connection must say who it is before anything else") {
    CHECK(client_state::allowed(client_state::role::none, B::kSeekerHello));
    CHECK(client_state::allowed(client_state::role::none, B::kListenerSignIn));
    CHECK(client_state::allowed(client_state::role::none, B::kSupervisorSignIn));
    CHECK(client_state::allowed(client_state::role::none, B::kPing));
    CHECK_FALSE(client_state::allowed(client_state::role::none, B::kRequestChat));
    CHECK_FALSE(client_state::allowed(client_state::role::none, B::kAcceptOffer));
}

TEST_CASE("client state: each role may make only its own requests") {
    CHECK(client_state::allowed(client_state::role::seeker, B::kRequestChat));
    CHECK(client_state::allowed(client_state::role::seeker, B::kEndChat));
    CHECK_FALSE(client_state::allowed(client_state::role::seeker, B::kAcceptOffer));
    CHECK_FALSE(client_state::allowed(client_state::role::seeker, B::kSeekerHello));
    CHECK(client_state::allowed(client_state::role::listener, B::kAcceptOffer));
    CHECK_FALSE(client_state::allowed(client_state::role::listener, B::kRequestChat));
    CHECK_FALSE(client_state::allowed(client_state::role::listener, B::kListenerSignIn));
    CHECK_FALSE(client_state::allowed(client_state::role::supervisor, B::kSetAvailability));
    CHECK(client_state::allowed(client_state::role::seeker, B::kReportChat));
    CHECK(client_state::allowed(client_state::role::listener, B::kReportChat));  // and may block the seeker with it
    CHECK_FALSE(client_state::allowed(client_state::role::listener, B::kRateChat));
    CHECK_FALSE(client_state::allowed(client_state::role::supervisor, B::kReportChat));
    CHECK_FALSE(client_state::allowed(client_state::role::none, B::kReportChat));
    CHECK(client_state::allowed(client_state::role::supervisor, B::kPing));
}

TEST_CASE("client state: request ids are single-use, non-empty and bounded in memory") {
    client_state s;
    // before sign-in they are checked but nothing is remembered
    CHECK(s.use_request_id("a", 3));
    CHECK(s.use_request_id("a", 3));
    CHECK_FALSE(s.use_request_id("", 3));
    s.who = client_state::role::seeker;
    CHECK(s.use_request_id("a", 3));
    CHECK_FALSE(s.use_request_id("a", 3));
    CHECK_FALSE(s.use_request_id("", 3));
    CHECK_FALSE(s.use_request_id(std::string(65, 'x'), 3));
    CHECK(s.use_request_id("b", 3));
    CHECK(s.use_request_id("c", 3));
    CHECK(s.use_request_id("d", 3));  // "a" is forgotten now
    CHECK(s.use_request_id("a", 3));
    CHECK_FALSE(s.use_request_id("d", 3));
}

TEST_CASE("client state: a burst is allowed, then requests are paced at the sustained rate") {
    client_state s;
    std::int64_t now = 1000;
    for (int i = 0; i < 5; ++i) CHECK(s.take_token(now, 5, 2));
    CHECK_FALSE(s.take_token(now, 5, 2));
    now += 499;
    CHECK_FALSE(s.take_token(now, 5, 2));  // 0.998 of a token
    now += 1;
    CHECK(s.take_token(now, 5, 2));
    now += 60'000;  // refills only up to the burst
    for (int i = 0; i < 5; ++i) CHECK(s.take_token(now, 5, 2));
    CHECK_FALSE(s.take_token(now, 5, 2));
}
