// Script calls and reply parsing for services/matchmaker/store.hpp.
#include "services/matchmaker/store.hpp"

#include "common/argv.hpp"
#include "common/crypto.hpp"
#include "common/keys.hpp"
#include "services/matchmaker/lua_sources.hpp"

#include <set>
#include <stdexcept>

namespace warmline::matchmaker {
namespace asio = boost::asio;

namespace {

// The scripts that answer a person's request and may change something for them: their reply is
// a promise, kept through a failover with keep_on_replicas. (The clock's work, leases and reads
// need no WAIT: what they change is recomputed after a failover.)
bool promises(const std::string& script) {
    static const std::set<std::string, std::less<>> names{
        "seeker_hello", "request_chat",  "cancel_request", "rate_chat",   "report_chat", "listener_sign_in",
        "set_availability", "set_preferences", "accept_offer", "decline_offer", "end_chat", "admin_update",
        "support", "review"};
    return names.contains(script);
}

bool is_refusal(const redis::value& v) { return str_at(v, 0) == "err"; }

hello_result to_hello(const redis::value& v) {
    return hello_result{str_at(v, 1), str_at(v, 2),          str_at(v, 3),        str_at(v, 4),
                        str_at(v, 5), str_at(v, 6) == "1", !str_at(v, 7).empty(), str_at(v, 8) == "0",
                        str_at(v, 9)};
}

}  // namespace

store::store(std::shared_ptr<redis::client> redis, store_settings s, clock_fn now)
    : redis_(std::move(redis)), settings_(s), now_(std::move(now)), scripts_(lua_sources()) {}

void store::keep_on_replicas(asio::any_io_executor ex, std::shared_ptr<redis::client> writes, int replicas,
                             std::chrono::milliseconds timeout, std::chrono::milliseconds degrade_after) {
    if (replicas <= 0) return;
    writes_ = std::move(writes);
    acks_ = std::make_unique<replica_acks>(std::move(ex), redis::any_client::of(writes_), replicas, timeout,
                                           "matchmaker", degrade_after);
}

asio::awaitable<redis::value> store::run(std::string name, std::vector<std::string> args) {
    // the layout of services/matchmaker/lua/lib.lua: now, TTL, offer timeout, grace, id salt,
    // decline cool-down, crisis widening
    auto full = warmline::argv(std::to_string(now_()), std::to_string(settings_.state_ttl_s),
                               std::to_string(settings_.offer_timeout_ms), std::to_string(settings_.grace_ms),
                               crypto::random_id().substr(0, 12) + "-", std::to_string(settings_.decline_cooldown_ms),
                               std::to_string(settings_.crisis_widen_ms));
    for (auto& a : args) full.push_back(std::move(a));
    std::vector<std::string> no_keys;
    const bool wait = acks_ && promises(name);
    const std::uint64_t link = wait ? acks_->link("") : 0;
    auto& over = wait ? *writes_ : *redis_;  // a WAIT must follow its write on one connection
    redis::value v = co_await over.eval(scripts_.at(name), std::move(no_keys), std::move(full));
    // a refusal changed nothing, so it promises nothing
    if (wait && !is_refusal(v) && !co_await acks_->confirmed("", link))
        throw redis::unavailable("the change was not confirmed by a replica in time");
    co_return v;
}

asio::awaitable<outcome<bool>> store::run_ok(std::string name, std::vector<std::string> args) {
    auto v = co_await run(name, std::move(args));
    outcome<bool> out;
    if (!refused(v, out.error)) out.value = true;
    co_return out;
}

asio::awaitable<outcome<hello_result>> store::seeker_new(std::string seeker_id, std::string resume_hash,
                                                         std::string node) {
    auto v = co_await run("seeker_hello", argv("new", std::move(seeker_id), std::move(resume_hash), std::move(node),
                                               std::to_string(settings_.node_lease_ms)));
    outcome<hello_result> out;
    if (!refused(v, out.error)) out.value = to_hello(v);
    co_return out;
}

asio::awaitable<outcome<hello_result>> store::seeker_resume(std::string resume_hash, std::string node) {
    auto v = co_await run("seeker_hello",
                          argv("resume", std::move(resume_hash), "", std::move(node), std::to_string(settings_.node_lease_ms)));
    outcome<hello_result> out;
    if (!refused(v, out.error)) out.value = to_hello(v);
    co_return out;
}

asio::awaitable<outcome<queued_result>> store::request_chat(std::string seeker_id, std::string topic,
                                                            std::string language, int tier,
                                                            std::string preferred_listener_id,
                                                            std::int64_t widen_after_ms, std::string address_hash,
                                                            std::string region) {
    auto v = co_await run("request_chat",
                          argv(std::move(seeker_id), std::move(topic), std::move(language), std::to_string(tier),
                               std::move(preferred_listener_id), std::to_string(settings_.preferred_window_ms),
                               std::to_string(widen_after_ms), std::move(address_hash),
                               std::to_string(settings_.reported_window_ms),
                               std::to_string(settings_.hold_after_reports),
                               std::to_string(settings_.hold_after_address_reports), std::to_string(settings_.hold_ms),
                               std::move(region)));
    outcome<queued_result> out;
    if (!refused(v, out.error))
        out.value = queued_result{str_at(v, 1), static_cast<std::uint32_t>(int_at(v, 2)),
                                  static_cast<std::uint32_t>(int_at(v, 3)), int_at(v, 4) == 1,
                                  static_cast<std::uint32_t>(int_at(v, 5))};
    co_return out;
}

asio::awaitable<outcome<bool>> store::cancel_request(std::string seeker_id) {
    return run_ok("cancel_request", argv(std::move(seeker_id)));
}

asio::awaitable<outcome<bool>> store::rate_chat(std::string seeker_id, std::string session_id, int stars,
                                                std::string comment, bool block) {
    return run_ok("rate_chat", argv(std::move(seeker_id), std::move(session_id), std::to_string(stars),
                                std::move(comment), block ? "1" : "0"));
}

asio::awaitable<outcome<bool>> store::report_chat(std::string role, std::string id, std::string session_id,
                                                  std::string reason, std::string messages_json, int message_count,
                                                  bool block) {
    return run_ok("report_chat", argv(std::move(role), std::move(id), std::move(session_id), std::move(reason),
                                      std::move(messages_json), std::to_string(message_count),
                                      std::to_string(settings_.report_ttl_s), block ? "1" : "0",
                                      std::to_string(settings_.reported_window_ms),
                                      std::to_string(settings_.suspend_after_reports),
                                      std::to_string(settings_.suspend_window_ms)));
}

asio::awaitable<outcome<std::string>> store::support(std::vector<std::string> args) {
    auto v = co_await run("support", std::move(args));
    outcome<std::string> out;
    if (!refused(v, out.error)) out.value = str_at(v, 1);
    co_return out;
}

asio::awaitable<outcome<bool>> store::support_say(std::string role, std::string id, std::string support_id,
                                                  std::uint64_t seq, std::string ciphertext) {
    return run_ok("support_say", argv(std::move(role), std::move(id), std::move(support_id), std::to_string(seq),
                                      std::move(ciphertext)));
}

asio::awaitable<outcome<std::string>> store::listener_sign_in(std::string token_hash, std::string node,
                                                              int utc_offset_min) {
    auto v = co_await run("listener_sign_in",
                          argv(std::move(token_hash), std::move(node), std::to_string(utc_offset_min),
                               std::to_string(settings_.node_lease_ms)));
    outcome<std::string> out;
    if (!refused(v, out.error)) out.value = str_at(v, 1);
    co_return out;
}

asio::awaitable<listener_record> store::listener_profile(std::string listener_id) {
    auto v = co_await run("listener_profile", argv(std::move(listener_id)));
    listener_record out;
    out.chats_today = static_cast<std::uint32_t>(int_at(v, 1));
    if (v.elements.size() > 2) {
        const auto& h = v.elements[2].elements;
        for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.fields[h[i].as_string()] = h[i + 1].as_string();
    }
    co_return out;
}

asio::awaitable<outcome<bool>> store::set_availability(std::string listener_id, bool available) {
    return run_ok("set_availability", argv(std::move(listener_id), available ? "1" : "0"));
}

asio::awaitable<outcome<bool>> store::set_preferences(std::string listener_id, std::string topics_csv,
                                                      std::string languages_csv, int max_chats) {
    return run_ok("set_preferences", argv(std::move(listener_id), std::move(topics_csv), std::move(languages_csv),
                                      std::to_string(max_chats)));
}

asio::awaitable<outcome<chat_result>> store::accept_offer(std::string listener_id, std::string offer_id) {
    auto v = co_await run("accept_offer", argv(std::move(listener_id), std::move(offer_id),
                                               std::to_string(settings_.node_lease_ms)));
    outcome<chat_result> out;
    if (!refused(v, out.error)) out.value = chat_result{str_at(v, 1), str_at(v, 2), str_at(v, 3), str_at(v, 4), str_at(v, 5) == "0"};
    co_return out;
}

asio::awaitable<outcome<bool>> store::decline_offer(std::string listener_id, std::string offer_id) {
    return run_ok("decline_offer", argv(std::move(listener_id), std::move(offer_id)));
}

asio::awaitable<outcome<ended_result>> store::end_chat(std::string role, std::string id, std::string session_id) {
    auto v = co_await run("end_chat", argv(std::move(role), std::move(id), std::move(session_id)));
    outcome<ended_result> out;
    if (!refused(v, out.error)) out.value = ended_result{str_at(v, 1), str_at(v, 2)};
    co_return out;
}

asio::awaitable<void> store::connection_lost(std::string role, std::string id, std::string node,
                                             std::size_t remaining) {
    co_await run("connection_lost", argv(std::move(role), std::move(id), std::move(node), std::to_string(remaining)));
}

asio::awaitable<void> store::node_sync(std::string node, std::vector<std::string> seekers,
                                       std::vector<std::pair<std::string, std::size_t>> listeners) {
    auto args = argv(std::move(node), std::to_string(settings_.node_lease_ms), std::to_string(seekers.size()));
    for (auto& s : seekers) args.push_back(std::move(s));
    for (auto& [lid, count] : listeners) {
        args.push_back(lid);
        args.push_back(std::to_string(count));
    }
    co_await run("node_sync", std::move(args));
}

asio::awaitable<outcome<bool>> store::admin_update(std::string listener_id, std::string name,
                                                   std::string topics_csv, std::string languages_csv, int cap,
                                                   bool revoke, wellbeing_limits wellbeing) {
    auto opt = [](const std::optional<int>& v) { return v ? std::to_string(*v) : std::string(); };
    return run_ok("admin_update", argv(std::move(listener_id), std::move(name), std::move(topics_csv),
                                   std::move(languages_csv), std::to_string(cap), revoke ? "1" : "0",
                                   opt(wellbeing.chats_per_day), opt(wellbeing.break_after_chats),
                                   opt(wellbeing.break_after_min), opt(wellbeing.break_min)));
}

asio::awaitable<std::int64_t> store::sweep() {
    auto v = co_await run("sweep", argv(std::to_string(settings_.sweep_limit), std::to_string(settings_.node_lease_ms)));
    co_return int_at(v, 1);
}

asio::awaitable<void> store::sweep_all() {
    for (int round = 0; round < 50; ++round)
        if (co_await sweep() == 0) break;
}

asio::awaitable<void> store::heartbeat(std::string node) {
    co_await run("heartbeat", argv(std::move(node), std::to_string(settings_.node_lease_ms)));
}

asio::awaitable<std::vector<std::int64_t>> store::queue_versions(const std::vector<std::string>& queues) {
    std::vector<std::int64_t> out;
    if (queues.empty()) co_return out;
    std::vector<std::string> cmd{"MGET"};
    for (const auto& q : queues) {
        const auto colon = q.find(':');  // "<topic>:<lang>"
        cmd.push_back(keys::queue_version(q.substr(0, colon), q.substr(colon + 1)));
    }
    auto v = co_await redis_->command(std::move(cmd));
    for (const auto& e : v.elements) out.push_back(e.is_nil() ? 0 : e.as_int());
    co_return out;
}

asio::awaitable<std::vector<position>> store::positions(std::vector<std::string> seeker_ids) {
    std::vector<position> out;
    if (seeker_ids.empty()) co_return out;
    auto v = co_await run("positions", std::move(seeker_ids));
    for (std::size_t i = 1; i + 3 < v.elements.size(); i += 4)
        out.push_back(position{static_cast<std::uint32_t>(v.elements[i].as_int()),
                               static_cast<std::uint32_t>(v.elements[i + 1].as_int()), v.elements[i + 2].as_int() == 1,
                               static_cast<std::uint32_t>(v.elements[i + 3].as_int())});
    co_return out;
}

asio::awaitable<stats_result> store::stats(const std::vector<std::string>& topics,
                                                     const std::vector<std::string>& languages) {
    auto join = [](const std::vector<std::string>& xs) {
        std::string s;
        for (const auto& x : xs) s += (s.empty() ? "" : ",") + x;
        return s;
    };
    auto v = co_await run("stats", argv(join(topics), join(languages)));
    stats_result out;
    if (v.elements.size() > 1) {
        out.wait_p50_ms = int_at(v.elements[1], 0);
        out.wait_p90_ms = int_at(v.elements[1], 1);
        out.available = static_cast<std::uint32_t>(int_at(v.elements[1], 2));
        out.busy = static_cast<std::uint32_t>(int_at(v.elements[1], 3));
        out.away = static_cast<std::uint32_t>(int_at(v.elements[1], 4));
        out.crisis_p50_ms = int_at(v.elements[1], 5);
        out.crisis_p90_ms = int_at(v.elements[1], 6);
        out.reports_open = static_cast<std::uint32_t>(int_at(v.elements[1], 7));
    }
    auto& rows = out.rows;
    for (std::size_t i = 2; i < v.elements.size(); ++i) {
        const auto& r = v.elements[i];
        queue_row q;
        q.topic = str_at(r, 0);
        q.language = str_at(r, 1);
        q.waiting = static_cast<std::uint32_t>(int_at(r, 2));
        q.longest_wait_ms = int_at(r, 3);
        q.wait_p50_ms = int_at(r, 4);
        q.wait_p90_ms = int_at(r, 5);
        q.available = static_cast<std::uint32_t>(int_at(r, 6));
        q.busy = static_cast<std::uint32_t>(int_at(r, 7));
        q.away = static_cast<std::uint32_t>(int_at(r, 8));
        q.chats = static_cast<std::uint32_t>(int_at(r, 9));
        q.accepted = static_cast<std::uint64_t>(int_at(r, 10));
        q.declined = static_cast<std::uint64_t>(int_at(r, 11));
        q.timed_out = static_cast<std::uint64_t>(int_at(r, 12));
        q.abandoned = static_cast<std::uint64_t>(int_at(r, 13));
        q.unservable = static_cast<std::uint32_t>(int_at(r, 14));
        q.crisis_waiting = static_cast<std::uint32_t>(int_at(r, 15));
        q.crisis_overdue = static_cast<std::uint32_t>(int_at(r, 16));
        q.crisis_chats = static_cast<std::uint32_t>(int_at(r, 17));
        q.crisis_p50_ms = int_at(r, 18);
        q.crisis_p90_ms = int_at(r, 19);
        rows.push_back(std::move(q));
    }
    co_return out;
}

asio::awaitable<bool> store::stats_history_due(std::int64_t at_ms, std::int64_t step_ms) {
    auto v = co_await redis_->command(argv("ZREVRANGE", keys::stats_history(), "0", "0", "WITHSCORES"));
    if (v.elements.size() < 2) co_return true;
    co_return v.elements[1].as_int() / step_ms < at_ms / step_ms;
}

asio::awaitable<bool> store::stats_history_add(std::int64_t at_ms, std::string sample, std::int64_t step_ms,
                                               std::int64_t keep_ms) {
    auto v = co_await run("stats_history", argv(std::to_string(at_ms), std::move(sample), std::to_string(step_ms),
                                                std::to_string(keep_ms)));
    co_return int_at(v, 1) == 1;
}

asio::awaitable<std::vector<std::string>> store::stats_history(std::int64_t since_ms) {
    auto v = co_await redis_->command(argv("ZRANGEBYSCORE", keys::stats_history(), std::to_string(since_ms), "+inf"));
    std::vector<std::string> out;
    for (auto& e : v.elements) out.push_back(std::move(e.str));
    co_return out;
}

asio::awaitable<bool> store::count_use(std::string what, std::string address_hash, std::int64_t window_ms,
                                      std::int64_t limit) {
    auto v = co_await run("count_use", argv(std::move(what), std::move(address_hash), std::to_string(window_ms),
                                            std::to_string(limit)));
    co_return int_at(v, 1) == 1;
}

asio::awaitable<std::vector<std::int64_t>> store::crisis_per_minute(int minutes) {
    const std::int64_t now_minute = now_() / 60000;
    std::vector<std::string> cmd{"MGET"};
    for (int i = 0; i < minutes; ++i) cmd.push_back(keys::crisis_minute(std::to_string(now_minute - i)));
    auto v = co_await redis_->command(std::move(cmd));
    std::vector<std::int64_t> out;
    for (const auto& e : v.elements) out.push_back(e.is_nil() ? 0 : e.as_int());
    co_return out;
}

asio::awaitable<std::map<std::string, std::string>> store::hash(std::string key) {
    auto v = co_await redis_->command(argv("HGETALL", std::move(key)));
    std::map<std::string, std::string> out;
    for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2)
        out[v.elements[i].as_string()] = v.elements[i + 1].as_string();
    co_return out;
}

asio::awaitable<store::memory> store::redis_memory() {
    const std::string info = (co_await redis_->command(argv("INFO", "memory"))).as_string();
    const auto field = [&](const std::string& name) -> std::int64_t {
        const auto at = info.find("\n" + name + ":");
        if (at == std::string::npos) return 0;
        return std::stoll(info.substr(at + name.size() + 2));
    };
    co_return memory{field("used_memory"), field("maxmemory")};
}

asio::awaitable<std::vector<std::string>> store::current_tokens(std::vector<std::string> owners) {
    std::vector<std::vector<std::string>> cmds;
    for (const auto& o : owners) {
        const bool listener = o.rfind("listener:", 0) == 0;
        const std::string id = o.substr(o.find(':') + 1);
        cmds.push_back(argv("HMGET", listener ? keys::listener(id) : keys::supervisor(id), "token", "revoked"));
    }
    std::vector<std::string> out;
    if (cmds.empty()) co_return out;
    for (const auto& v : co_await redis_->pipeline(std::move(cmds)))
        out.push_back(v.is_error() || str_at(v, 1) == "1" ? std::string() : str_at(v, 0));
    co_return out;
}

asio::awaitable<std::vector<std::string>> store::members(std::string key) {
    auto v = co_await redis_->command(argv("SMEMBERS", std::move(key)));
    std::vector<std::string> out;
    for (const auto& e : v.elements) out.push_back(e.as_string());
    co_return out;
}

asio::awaitable<void> store::audit(std::string event, std::string actor, std::string subject) {
    // append-only: entries leave only by age (MINID, approximate: whole nodes at a time)
    const std::string min_id = std::to_string(std::max<std::int64_t>(0, now_() - settings_.audit_keep_ms));
    co_await redis_->command(argv("XADD", keys::audit(), "MINID", "~", min_id, "*", "event", std::move(event), "actor",
                                  std::move(actor), "subject", std::move(subject), "at", std::to_string(now_())));
}

asio::awaitable<std::vector<std::vector<std::pair<std::string, std::string>>>> store::audit_log(int limit) {
    auto v = co_await redis_->command(argv("XREVRANGE", keys::audit(), "+", "-", "COUNT", std::to_string(limit)));
    std::vector<std::vector<std::pair<std::string, std::string>>> out;
    for (const auto& entry : v.elements) {
        if (entry.elements.size() < 2) continue;
        std::vector<std::pair<std::string, std::string>> fields;
        const auto& kv = entry.elements[1].elements;
        for (std::size_t i = 0; i + 1 < kv.size(); i += 2) fields.emplace_back(kv[i].as_string(), kv[i + 1].as_string());
        out.push_back(std::move(fields));
    }
    co_return out;
}

asio::awaitable<outcome<std::string>> store::review(std::string who, std::string report_id, std::string status,
                                                    std::string action, std::string note) {
    auto v = co_await run("review", argv(std::move(who), std::move(report_id), std::move(status), std::move(action),
                                         std::move(note)));
    outcome<std::string> out;
    if (!refused(v, out.error)) out.value = str_at(v, 1);
    co_return out;
}

asio::awaitable<std::string> store::token_owner(std::string token_hash) {
    auto v = co_await redis_->command(argv("GET", keys::token(token_hash)));
    co_return v.is_nil() ? std::string() : v.as_string();
}

asio::awaitable<std::string> store::listener_by_handle(std::string handle) {
    auto v = co_await redis_->command(argv("GET", keys::handle(handle)));
    co_return v.is_nil() ? std::string() : v.as_string();
}

}  // namespace warmline::matchmaker
