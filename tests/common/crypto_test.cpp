// Digests, HMAC and base64url against published vectors.
#include "common/crypto.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

using namespace warmline::crypto;

TEST_CASE("crypto: sha1 and sha256 match the published vectors for 'abc'") {
    CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("crypto: HMAC-SHA256 matches RFC 4231 test case 2") {
    std::string mac = hmac_sha256("Jefe", "what do ya want for nothing?");
    std::string hex;
    for (unsigned char c : mac) {
        static constexpr char digits[] = "0123456789abcdef";
        hex += digits[c >> 4];
        hex += digits[c & 0xf];
    }
    CHECK(hex == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("crypto: base64url round-trips every length and refuses foreign characters") {
    std::string s;
    for (int i = 0; i < 40; ++i) {
        CHECK(base64url_decode(base64url_encode(s)) == s);
        s += static_cast<char>(i * 37);
    }
    CHECK_THROWS_AS(base64url_decode("ab+c"), std::invalid_argument);
}

TEST_CASE("crypto: random tokens and ids are distinct and of the promised size") {
    CHECK(random_token(32).size() == 43);
    CHECK(random_token() != random_token());
    CHECK(random_id().size() == 32);
    CHECK(equal_constant_time("abc", "abc"));
    CHECK_FALSE(equal_constant_time("abc", "abd"));
    CHECK_FALSE(equal_constant_time("abc", "ab"));
}
