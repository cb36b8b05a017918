// Replies and scripts: hiredis's redisReply copied into a value that outlives the callback, the
// value's typed readers, and a script's locally computed SHA1. No Asio here.
#include "common/redis.hpp"
#include "common/redis/detail.hpp"

#include "common/crypto.hpp"

#include <hiredis/hiredis.h>

#include <charconv>

namespace warmline::redis {

namespace {

const char* kind_name(value::kind k) {
    switch (k) {
    case value::kind::nil: return "nil";
    case value::kind::integer: return "integer";
    case value::kind::string: return "string";
    case value::kind::status: return "status";
    case value::kind::error: return "error";
    case value::kind::array: return "array";
    }
    return "unknown";
}

}  // namespace

// Messages name the reply's kind but never its text: replies can hold tokens.
long long value::as_int() const {
    if (type == kind::integer) return integer;
    if (type == kind::string || type == kind::status) {
        long long parsed = 0;
        auto [end, ec] = std::from_chars(str.data(), str.data() + str.size(), parsed);
        if (!str.empty() && ec == std::errc{} && end == str.data() + str.size()) return parsed;
        throw std::runtime_error("Redis string reply is not an integer");
    }
    throw std::runtime_error(std::string("Redis reply of kind ") + kind_name(type) +
                             " is not an integer");
}

const std::string& value::as_string() const {
    static const std::string empty;
    if (type == kind::string || type == kind::status) return str;
    if (type == kind::nil) return empty;
    // Integers throw too: silently returning the empty `str` would hide a wrong reply type.
    throw std::runtime_error(std::string("Redis reply of kind ") + kind_name(type) +
                             " is not a string");
}

script::script(std::string source) : source_(std::move(source)), sha1_(crypto::sha1_hex(source_)) {}

namespace detail {

value copy_reply(const redisReply* r) {
    value v;
    switch (r->type) {
    case REDIS_REPLY_STRING:
        v.type = value::kind::string;
        v.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_STATUS:
        v.type = value::kind::status;
        v.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_ERROR:
        v.type = value::kind::error;
        v.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        v.type = value::kind::integer;
        v.integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        v.type = value::kind::array;
        v.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i) v.elements.push_back(copy_reply(r->element[i]));
        break;
    default:
        v.type = value::kind::nil;
        break;
    }
    return v;
}

void throw_error_reply(const std::string& text) {
    if (text.rfind("OOM", 0) == 0) throw out_of_memory(text);
    throw reply_error(text);
}

}  // namespace detail

}  // namespace warmline::redis
