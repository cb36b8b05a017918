// The query string of a request target: application/x-www-form-urlencoded pairs, percent-decoded.
// Pure; net.cpp parses every request's target with it, and a libFuzzer target feeds it anything
// (tests/fuzz/http_fuzz.cpp).
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace warmline::net {

// '+' is a space and %XX a byte. A malformed escape is kept as it was sent rather than refused;
// the handler validates values anyway.
std::string percent_decode(std::string_view s);

// "a=1&b=2" (without the '?'). The first occurrence of a repeated key wins, so a parameter
// appended to a signed URL cannot override the one that was signed.
std::map<std::string, std::string> parse_query(std::string_view q);

}  // namespace warmline::net
