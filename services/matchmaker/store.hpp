// The matchmaker's state in Redis, reached only through the atomic Lua scripts in lua/. Each
// member runs one script and turns its reply into a struct; every invariant (one state per
// seeker, never over a listener's max, never one seeker offered twice) is kept by the scripts.
//
// Threading: a store is safe from any thread; its awaitables complete on the caller's executor.
#pragma once

#include "common/clock.hpp"
#include "common/lua_scripts.hpp"
#include "common/redis.hpp"
#include "common/replica_acks.hpp"
#include "common/script_reply.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace warmline::matchmaker {

struct store_settings {
    std::int64_t offer_timeout_ms = 30000;
    std::int64_t state_ttl_s = 24 * 3600;  // seekers, offers, sessions: refreshed on every change
    std::int64_t grace_ms = 60000;         // a dropped seeker keeps its place this long
    std::int64_t preferred_window_ms = 120000;
    std::int64_t node_lease_ms = 5000;     // a process silent this long (on Redis's clock) is presumed dead
    // a listener who declined or missed a seeker is not offered them again for this long
    std::int64_t decline_cooldown_ms = 120000;
    // a crisis request nobody took this long goes to every available listener of its language
    // (0: only by its topic's own widening)
    std::int64_t crisis_widen_ms = 60000;
    int sweep_limit = 200;
    std::int64_t report_ttl_s = 90 * 24 * 3600;  // wl:report:<session> and the wl:reports index
    // the supervisors' crisis alert (limits.hpp, crisis_trend_of): at least this many crisis
    // requests in 5 minutes (0: no alert), and at least `factor` times the usual 5 minutes
    int crisis_alert_min = 0;
    double crisis_alert_factor = 3;
    // Listeners' reports of seekers: counted over this window, and a seeker reported by
    // `hold_after_reports` listeners, or seekers of one address bucket by `hold_after_address_reports`
    // (0: never), has its requests held for hold_ms after the latest such report.
    std::int64_t reported_window_ms = 24 * 3600 * 1000LL;
    int hold_after_reports = 0;
    int hold_after_address_reports = 0;
    std::int64_t hold_ms = 0;
    // Seekers' reports of one listener: this many within the window suspend the listener pending
    // review (0: never).
    int suspend_after_reports = 0;
    std::int64_t suspend_window_ms = 72 * 3600 * 1000LL;
    // How long the audit stream keeps an entry (XADD ... MINID).
    std::int64_t audit_keep_ms = 365 * 24 * 3600 * 1000LL;
};

struct hello_result {
    std::string seeker_id;
    std::string state;  // idle | queued | offered | chat | ended
    std::string session_id;
    std::string topic;
    std::string language;
    bool resumed = false;
    bool named_listener = false;  // the open request asked for a listener by handle
    bool crisis = false;          // the request (and so its chat) is in the crisis tier
    std::string region;           // where the seeker said they are at their last request, or ""
};

struct queued_result {
    std::string state;  // queued, or offered when a listener was found at once
    std::uint32_t position = 0;
    std::uint32_t estimate_s = 0;
    bool nobody = false;  // no listener available now may take it (no estimate then)
    std::uint32_t held_s = 0;  // on hold this many more seconds (listeners reported the seeker)
};

struct chat_result {
    std::string session_id;
    std::string seeker_id;
    std::string topic;
    std::string language;
    bool crisis = false;
};

struct ended_result {
    std::string seeker_id;
    std::string listener_id;
};

struct position {
    std::uint32_t position = 0;  // 0: not waiting
    std::uint32_t estimate_s = 0;
    bool nobody = false;         // no listener available now may take the request
    std::uint32_t held_s = 0;    // the request is on hold this many more seconds
};

struct queue_row {
    std::string topic, language;
    std::uint32_t waiting = 0;
    std::int64_t longest_wait_ms = 0, wait_p50_ms = 0, wait_p90_ms = 0;
    std::uint32_t available = 0, busy = 0, away = 0, chats = 0;
    std::uint64_t accepted = 0, declined = 0, timed_out = 0, abandoned = 0;
    std::uint32_t unservable = 0, crisis_waiting = 0, crisis_overdue = 0, crisis_chats = 0;
    std::int64_t crisis_p50_ms = 0, crisis_p90_ms = 0;
};

struct stats_result {
    std::vector<queue_row> rows;
    std::int64_t wait_p50_ms = 0, wait_p90_ms = 0;  // over every pair
    std::int64_t crisis_p50_ms = 0, crisis_p90_ms = 0;
    std::uint32_t available = 0, busy = 0, away = 0;  // listeners, each counted once
    std::uint32_t reports_open = 0;                   // the safety team's review queue
};

// A listener's wellbeing limits, set by an admin (lua/lib.lua, "wellbeing"): chats per day, a
// break after N chats or M minutes on duty, the break's length. 0 turns a limit off (a break of 0
// minutes is the default 15); an empty optional leaves it as it is.
struct wellbeing_limits {
    std::optional<int> chats_per_day, break_after_chats, break_after_min, break_min;
    bool any() const { return chats_per_day || break_after_chats || break_after_min || break_min; }
};

// A listener's account record (wl:listener:<lid>) and what is derived from it in the same step.
struct listener_record {
    std::map<std::string, std::string> fields;  // empty: no such listener
    std::uint32_t chats_today = 0;              // accepted since midnight of their clock
};

class store {
public:
    store(std::shared_ptr<redis::client> redis, store_settings s, clock_fn now = system_now_ms);

    // From now on a reply that changed something on a person's behalf (every member below that
    // answers a client's request) is written over `writes` and waits until `replicas` replicas
    // have the change (WAIT, at most `timeout`), and is turned into redis::unavailable if they
    // do not confirm it (unless degraded, `degrade_after`): see common/replica_acks.hpp and
    // docs/architecture.md, "Acknowledged means kept".
    void keep_on_replicas(boost::asio::any_io_executor ex, std::shared_ptr<redis::client> writes, int replicas,
                          std::chrono::milliseconds timeout, std::chrono::milliseconds degrade_after);
    const replica_acks* acks() const { return acks_.get(); }

    boost::asio::awaitable<outcome<hello_result>> seeker_new(std::string seeker_id, std::string resume_hash,
                                                             std::string node);
    boost::asio::awaitable<outcome<hello_result>> seeker_resume(std::string resume_hash, std::string node);
    // tier 0 = crisis, 1 = normal; widen_after_ms 0 = never; address_hash: the client's address
    // bucket (limits.hpp, address_hash; '' unknown), for holds after listeners' reports.
    boost::asio::awaitable<outcome<queued_result>> request_chat(std::string seeker_id, std::string topic,
                                                                std::string language, int tier,
                                                                std::string preferred_listener_id,
                                                                std::int64_t widen_after_ms,
                                                                std::string address_hash = "",
                                                                std::string region = "");
    boost::asio::awaitable<outcome<bool>> cancel_request(std::string seeker_id);
    boost::asio::awaitable<outcome<bool>> rate_chat(std::string seeker_id, std::string session_id, int stars,
                                                    std::string comment, bool block);
    // Store a side's report of its own chat (once per side). role: "seeker" or "listener"; id:
    // that side's id. messages_json is the proto3 JSON of a ReportChat holding only the
    // messages; it is plaintext the reporter chose to send, so it is stored for the safety team
    // and never logged. block (a listener only): end the chat if open, never match the two
    // again.
    boost::asio::awaitable<outcome<bool>> report_chat(std::string role, std::string id, std::string session_id,
                                                      std::string reason, std::string messages_json,
                                                      int message_count, bool block = false);

    // A listener's request for support (support.lua): the action ("ask", "answer", "end") and
    // its arguments in the script's order. The value: the support id.
    boost::asio::awaitable<outcome<std::string>> support(std::vector<std::string> args);
    // A sealed line of its side chat from one side (role "listener" or "supervisor"), passed on
    // and not stored (support_say.lua); not behind the replica WAIT, as it changes nothing.
    boost::asio::awaitable<outcome<bool>> support_say(std::string role, std::string id, std::string support_id,
                                                      std::uint64_t seq, std::string ciphertext);
    // How long a request for support is kept (and the open ones' index trimmed).
    static constexpr std::int64_t support_keep_s = 12 * 3600;

    // utc_offset_min: the listener's clock, minutes east of UTC (where their "today" starts).
    boost::asio::awaitable<outcome<std::string>> listener_sign_in(std::string token_hash, std::string node,
                                                                  int utc_offset_min = 0);
    boost::asio::awaitable<listener_record> listener_profile(std::string listener_id);
    boost::asio::awaitable<outcome<bool>> set_availability(std::string listener_id, bool available);
    boost::asio::awaitable<outcome<bool>> set_preferences(std::string listener_id, std::string topics_csv,
                                                          std::string languages_csv, int max_chats);
    boost::asio::awaitable<outcome<chat_result>> accept_offer(std::string listener_id, std::string offer_id);
    boost::asio::awaitable<outcome<bool>> decline_offer(std::string listener_id, std::string offer_id);
    // role: "seeker" or "listener".
    boost::asio::awaitable<outcome<ended_result>> end_chat(std::string role, std::string id, std::string session_id);
    // A connection of this process closed. role: "seeker" or "listener"; remaining: how many
    // connections of that listener this process still holds.
    boost::asio::awaitable<void> connection_lost(std::string role, std::string id, std::string node,
                                                 std::size_t remaining = 0);
    // After an outage: renew this process's lease and make its registry in Redis exactly these
    // live connections (seekers; listeners with their connection counts). See node_sync.lua.
    boost::asio::awaitable<void> node_sync(std::string node, std::vector<std::string> seekers,
                                           std::vector<std::pair<std::string, std::size_t>> listeners);

    // Admin edits of a listener ('' / 0: unchanged); revoke also deletes its token.
    boost::asio::awaitable<outcome<bool>> admin_update(std::string listener_id, std::string name,
                                                       std::string topics_csv, std::string languages_csv,
                                                       int cap, bool revoke, wellbeing_limits wellbeing = {});

    // One round of the clock's work; returns how many items were handled.
    boost::asio::awaitable<std::int64_t> sweep();
    // Sweep until nothing is due (bounded).
    boost::asio::awaitable<void> sweep_all();
    boost::asio::awaitable<void> heartbeat(std::string node);
    boost::asio::awaitable<std::vector<position>> positions(std::vector<std::string> seeker_ids);
    // The versions of these queues ("topic:lang"), 0 for one never changed: one MGET.
    boost::asio::awaitable<std::vector<std::int64_t>> queue_versions(const std::vector<std::string>& queues);
    boost::asio::awaitable<stats_result> stats(const std::vector<std::string>& topics,
                                                         const std::vector<std::string>& languages);

    // Offer one sample (a binary StatsSnapshot taken at at_ms) to the stats history; kept only if
    // no process stored one in the same step (floor(at_ms / step_ms)). Samples older than keep_ms
    // are dropped. True when this one was stored.
    // Whether the step of `at_ms` has no sample yet: one cheap read, so that the processes that
    // lose the race skip computing a snapshot only to have it refused.
    boost::asio::awaitable<bool> stats_history_due(std::int64_t at_ms, std::int64_t step_ms);
    boost::asio::awaitable<bool> stats_history_add(std::int64_t at_ms, std::string sample, std::int64_t step_ms,
                                                   std::int64_t keep_ms);
    // The stored samples taken at or after since_ms, oldest first.
    boost::asio::awaitable<std::vector<std::string>> stats_history(std::int64_t since_ms);

    // Count one use of a per-address quota (count_use.lua): `what` by the address hash within a
    // fixed window of window_ms. False when the window's `limit` was reached (then not counted).
    boost::asio::awaitable<bool> count_use(std::string what, std::string address_hash, std::int64_t window_ms,
                                           std::int64_t limit);
    // Crisis requests per minute (counted by request_chat.lua) over the last `minutes` minutes,
    // newest (the current) first.
    boost::asio::awaitable<std::vector<std::int64_t>> crisis_per_minute(int minutes);

    // Plain reads for replies (not part of any invariant).
    boost::asio::awaitable<std::map<std::string, std::string>> hash(std::string key);
    boost::asio::awaitable<std::vector<std::string>> members(std::string key);
    // Append to the audit stream (wl:audit): who did what to what, when; never what they saw.
    // actor: "supervisor:<id>" or "admin:<name>"; subject: a listener, report or request id, or ''.
    // Entries older than settings().audit_keep_ms go as new ones are added.
    boost::asio::awaitable<void> audit(std::string event, std::string actor, std::string subject = "");
    // The newest `limit` entries of the audit stream, newest first: each its fields in order.
    boost::asio::awaitable<std::vector<std::vector<std::pair<std::string, std::string>>>> audit_log(int limit);
    // The safety team's review of a report (review.lua): status and action as the script names
    // them ('' to keep / none). The value: the report's listener id.
    boost::asio::awaitable<outcome<std::string>> review(std::string who, std::string report_id, std::string status,
                                                        std::string action, std::string note);
    // Redis's used_memory and maxmemory (0: no limit), from INFO memory.
    struct memory {
        std::int64_t used = 0, max = 0;
    };
    boost::asio::awaitable<memory> redis_memory();
    // The current token hash of each account ("listener:<id>" or "supervisor:<id>"), "" for one
    // revoked or gone: one pipeline, for the session check (sessions.hpp).
    boost::asio::awaitable<std::vector<std::string>> current_tokens(std::vector<std::string> owners);
    // Who a bearer token belongs to: "listener:<id>", "supervisor:<id>" or empty.
    boost::asio::awaitable<std::string> token_owner(std::string token_hash);
    boost::asio::awaitable<std::string> listener_by_handle(std::string handle);

    redis::client& redis() { return *redis_; }
    std::int64_t now_ms() const { return now_(); }
    const store_settings& settings() const { return settings_; }

private:
    boost::asio::awaitable<redis::value> run(std::string name, std::vector<std::string> args);
    boost::asio::awaitable<outcome<bool>> run_ok(std::string name, std::vector<std::string> args);

    std::shared_ptr<redis::client> redis_;
    std::shared_ptr<redis::client> writes_;  // redis_ unless keep_on_replicas gave another
    std::unique_ptr<replica_acks> acks_;     // set by keep_on_replicas
    store_settings settings_;
    clock_fn now_;
    script_set scripts_;
};

}  // namespace warmline::matchmaker
