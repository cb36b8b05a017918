// Relay tickets: what the matchmaker hands each side of a new chat so the relay can admit them
// without a Redis lookup of who they are. A ticket is "v1.<session>.<role>.<expiry ms>.<mac>",
// the MAC an HMAC-SHA256 under a secret the matchmaker and relay share.
#pragma once

#include <cstdint>
#include <string>

namespace warmline::ticket {

enum class role { seeker, listener };

struct claims {
    std::string session_id;
    role who = role::seeker;
    std::int64_t expires_unix_ms = 0;
};

enum class verdict { ok, malformed, bad_signature, expired };

std::string sign(const std::string& secret, const claims& c);
// Checks shape, MAC (constant time) and expiry against now_unix_ms.
verdict verify(const std::string& secret, const std::string& ticket, std::int64_t now_unix_ms, claims& out);
const char* to_string(verdict v);

}  // namespace warmline::ticket
