// The clock every service reads: unix milliseconds from a function, so tests can hand a service
// or a store a clock they move by hand instead of waiting. Process leases are kept on Redis's
// own clock instead (common/lua/base.lua, redis_ms), so that no process clock decides liveness.
#pragma once

#include <cstdint>
#include <functional>

namespace warmline {

using clock_fn = std::function<std::int64_t()>;  // unix milliseconds

// The system clock in unix milliseconds.
std::int64_t system_now_ms();

}  // namespace warmline
