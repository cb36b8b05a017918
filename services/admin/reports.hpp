// Chat reports for the safety team: what `warmline-admin reports list|show` reads. A report holds
// the messages its reporter (the seeker, or the listener) chose to send in plaintext
// (report_chat.lua writes it), so it is only ever printed to the person running the command,
// never logged.
#pragma once

#include "common/redis.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace warmline::admin {

struct report_summary {
    std::string session;  // the report's id: the chat's session id, with ":l" for the listener's
    std::int64_t at_ms = 0;
    std::string listener;
    int messages = 0;
    std::string by;       // "seeker" or "listener"
    bool blocked = false; // a listener's report that blocked the seeker
};

struct report {
    std::string session;
    std::map<std::string, std::string> fields;  // listener, topic, lang, started, ended, reason, at, ...
    v1::ReportChat messages;                    // only `messages` is set
};

class reports {
public:
    explicit reports(redis::client& r) : redis_(r) {}
    // The newest reports first, at most `limit`.
    boost::asio::awaitable<std::vector<report_summary>> recent(int limit);
    // One report by its id (the session id for the seeker's, "<session>:l" for the listener's),
    // or nothing if there is none (or it expired after 90 days).
    boost::asio::awaitable<std::optional<report>> find(std::string session);

private:
    redis::client& redis_;
};

// "2027-01-15 21:30:05 UTC"
std::string utc_time(std::int64_t unix_ms);
// Untrusted text made safe for a terminal: control characters (newlines and escapes included)
// are written as \n, \t or \xNN, C1 controls and bidirectional overrides as \u{XXXX}, and bytes
// that are not UTF-8 as \xNN, so a report can neither move the cursor, recolour the screen nor
// show its text in another order than it was written.
std::string printable(const std::string& text);
// The whole report as text for a person to read.
std::string render(const report& r);

// Printed wherever a report's messages are shown: they are the reporter's own copy, which no one
// can check (docs/e2e.md, "Reports are unverified").
inline constexpr const char* unverified_note =
    "UNVERIFIED:  these words are the reporter's own copy of the chat. Warmline cannot prove who wrote them "
    "(the relay only ever saw them sealed), so read them as the reporter's account, not as evidence.";

}  // namespace warmline::admin
