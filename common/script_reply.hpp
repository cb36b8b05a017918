// How every Warmline Lua script answers, and reading it back: {'ok', ...} or
// {'err', code, message}, where code is a warmline.v1.ErrorCode name and message a sentence for
// the person (common/lua/base.lua's err()).
#pragma once

#include "common/redis.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace warmline {

// A script's refusal: code is a warmline.v1.ErrorCode name, message is for the person.
struct refusal {
    std::string code;
    std::string message;
};

// What a script step gave: a value, or the script's refusal.
template <class T>
struct outcome {
    std::optional<T> value;
    refusal error;
    explicit operator bool() const { return value.has_value(); }
};

std::string str_at(const redis::value& v, std::size_t i);  // element i as a string, '' if absent
std::int64_t int_at(const redis::value& v, std::size_t i);  // element i as an integer, 0 if absent
// True (and `r` filled) for {'err', code, message}; throws std::runtime_error on a reply of
// another shape.
bool refused(const redis::value& v, refusal& r);

}  // namespace warmline
