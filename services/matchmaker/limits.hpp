// Abuse resistance for anonymous access, the parts that need no database: the name a client
// address bucket is counted under in Redis (a keyed hash, so Redis never holds an address), and
// the crisis spike rule behind the supervisors' alert. The counting itself is count_use.lua,
// called by the request handlers (handlers.cpp) through store::count_use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace warmline::matchmaker {

// The per-address limits of a matchmaker process (0: that limit is off). Counted over every
// process, in fixed windows of the Unix clock.
struct address_limits {
    int new_seekers_per_min = 0;     // SeekerHello without a resume token
    int requests_per_min = 0;        // RequestChat
    int crisis_per_hour = 0;         // RequestChat with crisis; beyond it queued as a normal request
    bool any() const { return new_seekers_per_min > 0 || requests_per_min > 0 || crisis_per_hour > 0; }
};

// HMAC-SHA256 of the bucket ("a.b.c.d", "x:x:x:x::/64") under the deployment's secret, its first
// 22 base64url characters (132 bits): the same on every process, and no way back to the address without the secret
// (an unkeyed hash of the 2^32 IPv4 addresses is reversed in minutes).
std::string address_hash(const std::string& secret, const std::string& bucket);

// Crisis requests of the last five minutes against the usual five minutes (the mean over the
// hour before them), from per-minute counts newest first (the current minute first; 65 of them).
struct crisis_trend {
    std::uint32_t last_5m = 0;
    std::uint32_t usual_5m = 0;  // rounded up
    bool spike = false;          // last_5m >= alert_min (> 0) and >= factor × the usual
};
crisis_trend crisis_trend_of(const std::vector<std::int64_t>& per_minute_newest_first, int alert_min,
                             double factor);

}  // namespace warmline::matchmaker
