// Relay tickets: signed, bound to session, role and expiry; any change is refused.
#include "common/ticket.hpp"

#include <doctest/doctest.h>

using namespace warmline::ticket;

TEST_CASE("ticket: a signed ticket verifies and yields its claims") {
    std::string t = sign("secret-secret-secret-secret-secret", {"c42", role::listener, 2000});
    claims c;
    REQUIRE(verify("secret-secret-secret-secret-secret", t, 1000, c) == verdict::ok);
    CHECK(c.session_id == "c42");
    CHECK(c.who == role::listener);
    CHECK(c.expires_unix_ms == 2000);
}

TEST_CASE("ticket: expired, forged, altered and malformed tickets are refused") {
    const std::string key = "secret-secret-secret-secret-secret";
    std::string t = sign(key, {"c42", role::seeker, 2000});
    claims c;
    CHECK(verify(key, t, 2000, c) == verdict::expired);
    CHECK(verify("another-secret-another-secret-xx", t, 1000, c) == verdict::bad_signature);
    std::string other_session = t;
    other_session.replace(3, 3, "c43");
    CHECK(verify(key, other_session, 1000, c) == verdict::bad_signature);
    std::string other_role = t;
    other_role.replace(other_role.find(".s."), 3, ".l.");
    CHECK(verify(key, other_role, 1000, c) == verdict::bad_signature);
    CHECK(verify(key, "v1.c42.s.notanumber.mac", 1000, c) == verdict::malformed);
    CHECK(verify(key, "", 1000, c) == verdict::malformed);
    CHECK(verify(key, "v2.c42.s.2000.mac", 1000, c) == verdict::malformed);
}
