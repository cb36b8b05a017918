// Logging setup for every service: spdlog to stderr, as plain lines or one JSON object per line.
// What may be logged: ids, counts, durations, error codes. Never message bodies, tokens, ticket
// or key material: callers pass those through redact() if they must mention one at all.
#pragma once

#include <string>
#include <string_view>

namespace warmline::log {

// format: "plain" or "json"; level: trace, debug, info, warn, error, off.
// Throws std::invalid_argument with a sentence if either is unknown.
void init(const std::string& service, const std::string& format, const std::string& level);

// A stand-in for a secret in a log line: its length only.
std::string redact(std::string_view secret);

// JSON string escaping (quotes not included), shared by the JSON log format and HTTP APIs.
std::string json_escape(std::string_view s);

}  // namespace warmline::log
