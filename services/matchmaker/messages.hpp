// Building the matchmaker's replies and pushes from what the store reads: ChatStarted with its
// relay ticket, Offer, ListenerProfile, ListenerWelcome and the supervisors' StatsSnapshot, and
// the checks of a request that need no database. Pure functions and read-only coroutines.
#pragma once

#include <optional>
#include <vector>

#include "common/catalogue.hpp"
#include "services/matchmaker/settings.hpp"
#include "services/matchmaker/store.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace warmline::matchmaker {

// A ChatStarted for one side, with a relay ticket valid for settings.ticket_ttl from now_ms.
v1::ChatStarted chat_started(const service_settings& s, std::int64_t now_ms, const std::string& session,
                             v1::Role role, const std::string& topic, const std::string& language, bool crisis);
// An Offer from an offer's hash (wl:offer:<oid>).
v1::Offer offer_from(const std::map<std::string, std::string>& offer, const std::string& oid, std::int64_t now_ms);
v1::ListenerProfile profile_from(const std::string& lid, const listener_record& record);
// The ChatEnded of an ended chat, from its record (wl:session:<cid>: ended_by, lost).
v1::ChatEnded ended_from(const std::string& session, const std::map<std::string, std::string>& record);
v1::StatsSnapshot snapshot_from(const stats_result& result, std::int64_t now_ms);

// Characters as people count them: Unicode code points of UTF-8 text.
std::size_t code_points(const std::string& s);
// Checks of a report that need no database; an empty string when it is fine.
std::string report_problem(const v1::ReportChat& r);
// Whether every number of a queue row is zero (its topic and language aside).
bool all_zero(const v1::QueueStats& q);

// Reads for replies (not part of any invariant).
boost::asio::awaitable<v1::ListenerProfile> read_profile(store& st, std::string lid);
boost::asio::awaitable<v1::ServerMessage> read_listener_welcome(store& st, const service_settings& s,
                                                                 std::string lid);
boost::asio::awaitable<v1::StatsSnapshot> read_snapshot(store& st, const catalogue& cat);
// A request for support as stored (wl:support:<id>), with the two names; nullopt once expired.
boost::asio::awaitable<std::optional<v1::SupportUpdate>> read_support(store& st, std::string id);
// One report for the review queue (the session id, with ":l" for a listener's report); nullopt
// once expired.
boost::asio::awaitable<std::optional<v1::ReportView>> read_report(store& st, std::string id);
// The review queue, newest first: the open reports, or all kept ones.
boost::asio::awaitable<v1::ReportList> read_reports(store& st, bool include_closed, int limit);
// These reports, in this order, leaving out those that expired.
boost::asio::awaitable<v1::ReportList> read_reports(store& st, std::vector<std::string> ids);
// Every open request for support (waiting or answered), oldest first.
boost::asio::awaitable<std::vector<v1::SupportUpdate>> read_open_support(store& st);

}  // namespace warmline::matchmaker
