// Signing and verification of relay tickets for common/ticket.hpp.
#include "common/ticket.hpp"

#include "common/crypto.hpp"

#include <charconv>
#include <vector>

namespace warmline::ticket {
namespace {

std::string body_of(const claims& c) {
    return "v1." + c.session_id + "." + (c.who == role::seeker ? "s" : "l") + "." + std::to_string(c.expires_unix_ms);
}

}  // namespace

std::string sign(const std::string& secret, const claims& c) {
    std::string body = body_of(c);
    return body + "." + crypto::base64url_encode(crypto::hmac_sha256(secret, body));
}

verdict verify(const std::string& secret, const std::string& t, std::int64_t now_unix_ms, claims& out) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t dot; (dot = t.find('.', start)) != std::string::npos; start = dot + 1)
        parts.push_back(t.substr(start, dot - start));
    parts.push_back(t.substr(start));
    if (parts.size() != 5 || parts[0] != "v1" || parts[1].empty() || (parts[2] != "s" && parts[2] != "l"))
        return verdict::malformed;
    claims c;
    c.session_id = parts[1];
    c.who = parts[2] == "s" ? role::seeker : role::listener;
    auto [p, ec] = std::from_chars(parts[3].data(), parts[3].data() + parts[3].size(), c.expires_unix_ms);
    if (ec != std::errc{} || p != parts[3].data() + parts[3].size()) return verdict::malformed;
    std::string expected = crypto::base64url_encode(crypto::hmac_sha256(secret, body_of(c)));
    if (!crypto::equal_constant_time(expected, parts[4])) return verdict::bad_signature;
    if (c.expires_unix_ms <= now_unix_ms) return verdict::expired;
    out = c;
    return verdict::ok;
}

const char* to_string(verdict v) {
    switch (v) {
    case verdict::ok: return "ok";
    case verdict::malformed: return "the ticket is malformed";
    case verdict::bad_signature: return "the ticket's signature does not match";
    case verdict::expired: return "the ticket has expired";
    }
    return "?";
}

}  // namespace warmline::ticket
