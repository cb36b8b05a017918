// Reading Lua script replies for common/script_reply.hpp, and the system clock (common/clock.hpp).
#include "common/script_reply.hpp"

#include "common/clock.hpp"

#include <chrono>
#include <stdexcept>

namespace warmline {

std::int64_t system_now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string str_at(const redis::value& v, std::size_t i) {
    return i < v.elements.size() ? v.elements[i].as_string() : std::string();
}

std::int64_t int_at(const redis::value& v, std::size_t i) {
    return i < v.elements.size() ? v.elements[i].as_int() : 0;
}

bool refused(const redis::value& v, refusal& r) {
    if (v.type != redis::value::kind::array || v.elements.empty())
        throw std::runtime_error("a Lua script returned an unexpected reply");
    if (v.elements[0].as_string() == "ok") return false;
    r = refusal{str_at(v, 1), str_at(v, 2)};
    return true;
}

}  // namespace warmline
