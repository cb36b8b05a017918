// A token bucket: `burst` requests at once, refilled at `per_second`. One per connection; the
// caller passes the time, so tests move it by hand.
#pragma once

#include <algorithm>
#include <cstdint>

namespace warmline {

class token_bucket {
public:
    // False when the request must be refused (RATE_LIMITED).
    bool take(std::int64_t now_ms, double burst, double per_second) {
        if (tokens_ < 0) {
            tokens_ = burst;
            refilled_ms_ = now_ms;
        }
        tokens_ = std::min(burst, tokens_ + static_cast<double>(now_ms - refilled_ms_) * per_second / 1000.0);
        refilled_ms_ = now_ms;
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }

private:
    double tokens_ = -1;  // -1: full on first use
    std::int64_t refilled_ms_ = 0;
};

}  // namespace warmline
