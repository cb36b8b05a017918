// Replies and pushes built from the store's reads, for services/matchmaker/messages.hpp.
#include "services/matchmaker/messages.hpp"

#include "common/argv.hpp"
#include "common/codec.hpp"
#include "common/keys.hpp"
#include "common/ticket.hpp"
#include "services/matchmaker/limits.hpp"

#include <algorithm>

namespace warmline::matchmaker {

namespace {

std::vector<std::string> csv(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        auto end = s.find(',', start);
        if (end == std::string::npos) end = s.size();
        if (end > start) out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

std::int64_t to_int(const std::string& s) {
    try {
        return s.empty() ? 0 : std::stoll(s);
    } catch (...) {
        return 0;
    }
}

const std::string& field(const std::map<std::string, std::string>& m, const std::string& k) {
    static const std::string empty;
    auto it = m.find(k);
    return it == m.end() ? empty : it->second;
}

std::uint32_t seconds(std::int64_t ms) { return static_cast<std::uint32_t>(std::max<std::int64_t>(0, ms) / 1000); }

}  // namespace

v1::ChatStarted chat_started(const service_settings& s, std::int64_t now_ms, const std::string& session,
                             v1::Role role, const std::string& topic, const std::string& language, bool crisis) {
    v1::ChatStarted c;
    c.set_session_id(session);
    c.set_role(role);
    c.set_relay_url(s.relay_url);
    c.set_relay_ticket(ticket::sign(s.ticket_secret,
                                    ticket::claims{session, role == v1::SEEKER ? ticket::role::seeker : ticket::role::listener,
                                                   now_ms + s.ticket_ttl.count()}));
    c.set_topic(topic);
    c.set_language(language);
    c.set_crisis(crisis);
    return c;
}

v1::Offer offer_from(const std::map<std::string, std::string>& o, const std::string& oid, std::int64_t now_ms) {
    v1::Offer offer;
    offer.set_offer_id(oid);
    offer.set_topic(field(o, "topic"));
    offer.set_language(field(o, "lang"));
    offer.set_crisis(field(o, "tier") == "0");
    offer.set_deadline_unix_ms(to_int(field(o, "deadline")));
    const std::string& enq = field(o, "enq_ms");
    offer.set_waited_s(seconds(now_ms - (enq.empty() ? now_ms : to_int(enq))));
    offer.set_preferred(field(o, "preferred") == "1");
    return offer;
}

v1::ListenerProfile profile_from(const std::string& lid, const listener_record& record) {
    const auto& l = record.fields;
    v1::ListenerProfile pr;
    pr.set_listener_id(lid);
    pr.set_name(field(l, "name"));
    pr.set_handle(field(l, "handle"));
    for (auto& t : csv(field(l, "topics"))) pr.add_trained_topics(t);
    for (auto& x : csv(field(l, "langs"))) pr.add_trained_languages(x);
    pr.set_max_chats_cap(static_cast<std::uint32_t>(to_int(field(l, "cap"))));
    for (auto& t : csv(field(l, "atopics").empty() ? field(l, "topics") : field(l, "atopics"))) pr.add_topics(t);
    for (auto& x : csv(field(l, "alangs").empty() ? field(l, "langs") : field(l, "alangs"))) pr.add_languages(x);
    pr.set_max_chats(static_cast<std::uint32_t>(to_int(field(l, "max"))));
    pr.set_status(field(l, "status") == "available" ? v1::AVAILABLE : v1::AWAY);
    pr.set_chats(static_cast<std::uint32_t>(to_int(field(l, "chats"))));
    pr.set_offers(static_cast<std::uint32_t>(to_int(field(l, "offers"))));
    pr.set_chats_today(record.chats_today);
    pr.set_chats_per_day(static_cast<std::uint32_t>(to_int(field(l, "day_cap"))));
    pr.set_break_after_chats(static_cast<std::uint32_t>(to_int(field(l, "break_chats"))));
    pr.set_break_after_min(static_cast<std::uint32_t>(to_int(field(l, "break_after_min"))));
    const auto break_min = to_int(field(l, "break_min"));
    pr.set_break_min(static_cast<std::uint32_t>(break_min > 0 ? break_min : 15));
    pr.set_chats_since_break(static_cast<std::uint32_t>(to_int(field(l, "since_break"))));
    pr.set_break_due(field(l, "break_due") == "1");
    if (pr.break_due()) pr.set_break_until_unix_ms(to_int(field(l, "rest_until")));
    pr.set_on_duty_since_unix_ms(to_int(field(l, "duty_since")));
    pr.set_suspended(field(l, "suspended") == "1");
    return pr;
}

v1::ChatEnded ended_from(const std::string& session, const std::map<std::string, std::string>& c) {
    v1::ChatEnded e;
    e.set_session_id(session);
    const std::string& by = field(c, "ended_by");
    if (by == "seeker") e.set_ended_by(v1::SEEKER);
    else if (by == "listener") e.set_ended_by(v1::LISTENER);
    else e.set_reason(by);
    const std::string& lost = field(c, "lost");
    if (lost == "s") e.set_lost(v1::SEEKER);
    else if (lost == "l") e.set_lost(v1::LISTENER);
    return e;
}

v1::StatsSnapshot snapshot_from(const stats_result& result, std::int64_t now_ms) {
    v1::StatsSnapshot snap;
    snap.set_at_unix_ms(now_ms);
    v1::QueueStats total;
    total.set_topic("*");
    total.set_language("*");
    for (const auto& r : result.rows) {
        auto* q = snap.add_queues();
        q->set_topic(r.topic);
        q->set_language(r.language);
        q->set_seekers_waiting(r.waiting);
        q->set_longest_wait_s(seconds(r.longest_wait_ms));
        q->set_wait_p50_s(seconds(r.wait_p50_ms));
        q->set_wait_p90_s(seconds(r.wait_p90_ms));
        q->set_listeners_available(r.available);
        q->set_listeners_busy(r.busy);
        q->set_listeners_away(r.away);
        q->set_chats_active(r.chats);
        q->set_offers_accepted(r.accepted);
        q->set_offers_declined(r.declined);
        q->set_offers_timed_out(r.timed_out);
        q->set_requests_abandoned(r.abandoned);
        q->set_shortage(r.waiting > 0 && r.available == 0 && r.busy == 0);
        q->set_seekers_unservable(r.unservable);
        q->set_crisis_waiting(r.crisis_waiting);
        q->set_crisis_overdue(r.crisis_overdue);
        q->set_crisis_chats_active(r.crisis_chats);
        q->set_crisis_wait_p50_s(seconds(r.crisis_p50_ms));
        q->set_crisis_wait_p90_s(seconds(r.crisis_p90_ms));
        total.set_seekers_unservable(total.seekers_unservable() + r.unservable);
        total.set_crisis_waiting(total.crisis_waiting() + r.crisis_waiting);
        total.set_crisis_overdue(total.crisis_overdue() + r.crisis_overdue);
        total.set_crisis_chats_active(total.crisis_chats_active() + r.crisis_chats);
        total.set_seekers_waiting(total.seekers_waiting() + r.waiting);
        total.set_longest_wait_s(std::max(total.longest_wait_s(), q->longest_wait_s()));
        total.set_chats_active(total.chats_active() + r.chats);
        total.set_offers_accepted(total.offers_accepted() + r.accepted);
        total.set_offers_declined(total.offers_declined() + r.declined);
        total.set_offers_timed_out(total.offers_timed_out() + r.timed_out);
        total.set_requests_abandoned(total.requests_abandoned() + r.abandoned);
        total.set_shortage(total.shortage() || q->shortage());
    }
    // listeners are counted once each in the total, not once per pair they cover
    total.set_listeners_available(result.available);
    total.set_listeners_busy(result.busy);
    total.set_listeners_away(result.away);
    total.set_wait_p50_s(seconds(result.wait_p50_ms));
    total.set_wait_p90_s(seconds(result.wait_p90_ms));
    total.set_crisis_wait_p50_s(seconds(result.crisis_p50_ms));
    total.set_crisis_wait_p90_s(seconds(result.crisis_p90_ms));
    *snap.mutable_total() = total;
    return snap;
}

std::size_t code_points(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
    return n;
}

std::string report_problem(const v1::ReportChat& r) {
    constexpr int max_messages = 50;
    if (code_points(r.reason()) > 500) return "The reason can be at most 500 characters.";
    if (r.messages_size() > max_messages) return "A report can include at most 50 messages.";
    for (const auto& m : r.messages()) {
        if (m.from() != v1::SEEKER && m.from() != v1::LISTENER)
            return "Each reported message needs to say who sent it (SEEKER or LISTENER).";
        if (code_points(m.text()) > 2000) return "Each reported message can be at most 2,000 characters.";
    }
    return {};
}

bool all_zero(const v1::QueueStats& q) {
    v1::QueueStats numbers = q;
    numbers.clear_topic();
    numbers.clear_language();
    return numbers.ByteSizeLong() == 0;
}

boost::asio::awaitable<v1::ListenerProfile> read_profile(store& st, std::string lid) {
    co_return profile_from(lid, co_await st.listener_profile(lid));
}

boost::asio::awaitable<std::optional<v1::SupportUpdate>> read_support(store& st, std::string id) {
    auto h = co_await st.hash(keys::support(id));
    if (h.empty()) co_return std::nullopt;
    v1::SupportUpdate u;
    u.set_support_id(id);
    const auto& state = field(h, "state");
    u.set_state(state == "waiting" ? v1::SUPPORT_WAITING : state == "answered" ? v1::SUPPORT_ANSWERED : v1::SUPPORT_CLOSED);
    u.set_listener_id(field(h, "listener"));
    u.set_asked_unix_ms(to_int(field(h, "asked")));
    u.set_listener_key(field(h, "lkey"));
    u.set_supervisor_id(field(h, "supervisor"));
    u.set_supervisor_key(field(h, "skey"));
    const auto& by = field(h, "closed_by");
    if (by == "listener") u.set_closed_by(v1::LISTENER);
    else if (by == "supervisor") u.set_closed_by(v1::SUPERVISOR);
    auto listener = co_await st.hash(keys::listener(u.listener_id()));
    u.set_listener_name(field(listener, "name"));
    u.set_listener_open_chats(static_cast<std::uint32_t>(to_int(field(listener, "chats"))));
    if (!u.supervisor_id().empty()) {
        auto supervisor = co_await st.hash(keys::supervisor(u.supervisor_id()));
        u.set_supervisor_name(field(supervisor, "name"));
    }
    co_return u;
}

namespace {

// The hash of report `id` (the session id, with ":l" for the listener's report).
std::string report_key(const std::string& id) {
    const bool by_listener = id.size() > 2 && id.compare(id.size() - 2, 2, ":l") == 0;
    return by_listener ? keys::listener_report(id.substr(0, id.size() - 2)) : keys::report(id);
}

// An HGETALL or an HMGET's reply as field -> value (absent fields left out).
std::map<std::string, std::string> fields_of(const redis::value& v, const std::vector<std::string>& names = {}) {
    std::map<std::string, std::string> out;
    if (names.empty()) {
        for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2)
            out[v.elements[i].as_string()] = v.elements[i + 1].as_string();
    } else {
        for (std::size_t i = 0; i < names.size() && i < v.elements.size(); ++i)
            if (!v.elements[i].is_nil()) out[names[i]] = v.elements[i].as_string();
    }
    return out;
}

const std::vector<std::string> report_listener_fields{"name", "suspended", "revoked"};

// A report and its listener's account (the fields above) as the review queue shows them.
v1::ReportView report_view(const std::string& id, const std::map<std::string, std::string>& h,
                           const std::map<std::string, std::string>& listener) {
    v1::ReportView r;
    r.set_report_id(id);
    r.set_by(field(h, "by") == "listener" ? v1::LISTENER : v1::SEEKER);
    r.set_listener_id(field(h, "listener"));
    r.set_topic(field(h, "topic"));
    r.set_language(field(h, "lang"));
    r.set_started_unix_ms(to_int(field(h, "started")));
    r.set_ended_unix_ms(to_int(field(h, "ended")));
    r.set_at_unix_ms(to_int(field(h, "at")));
    r.set_reason(field(h, "reason"));
    v1::ReportChat messages;
    std::string why;
    if (!field(h, "messages").empty() && codec::from_json(field(h, "messages"), messages, why))
        *r.mutable_messages() = messages.messages();
    r.set_blocked(field(h, "blocked") == "1");
    const auto& status = field(h, "status");
    r.set_status(status == "reviewed"    ? v1::REPORT_REVIEWED
                 : status == "actioned"  ? v1::REPORT_ACTIONED
                 : status == "dismissed" ? v1::REPORT_DISMISSED
                                         : v1::REPORT_OPEN);
    r.set_reviewed_by(field(h, "reviewed_by"));
    r.set_reviewed_unix_ms(to_int(field(h, "reviewed_at")));
    r.set_note(field(h, "note"));
    r.set_listener_name(field(listener, "name"));
    r.set_listener_suspended(field(listener, "suspended") == "1");
    r.set_listener_revoked(field(listener, "revoked") == "1");
    return r;
}

}  // namespace

boost::asio::awaitable<std::optional<v1::ReportView>> read_report(store& st, std::string id) {
    std::vector<std::string> one{std::move(id)};  // (GCC 12: no braced lists inside a co_await)
    auto list = co_await read_reports(st, std::move(one));
    if (list.reports_size() == 0) co_return std::nullopt;
    co_return list.reports(0);
}

// Two pipelined round trips whatever the number: the reports, then their listeners.
boost::asio::awaitable<v1::ReportList> read_reports(store& st, std::vector<std::string> ids) {
    v1::ReportList out;
    if (ids.empty()) co_return out;
    std::vector<std::vector<std::string>> reads;
    for (const auto& id : ids) reads.push_back(argv("HGETALL", report_key(id)));
    auto reports = co_await st.redis().pipeline(std::move(reads));
    std::vector<std::map<std::string, std::string>> found;
    std::vector<std::string> found_ids;
    std::vector<std::vector<std::string>> accounts;
    for (std::size_t i = 0; i < reports.size() && i < ids.size(); ++i) {
        auto h = fields_of(reports[i]);
        if (h.empty()) continue;  // expired since it was indexed
        auto cmd = argv("HMGET", keys::listener(field(h, "listener")));
        cmd.insert(cmd.end(), report_listener_fields.begin(), report_listener_fields.end());
        accounts.push_back(std::move(cmd));
        found_ids.push_back(ids[i]);
        found.push_back(std::move(h));
    }
    if (found.empty()) co_return out;
    auto listeners = co_await st.redis().pipeline(std::move(accounts));
    for (std::size_t i = 0; i < found.size() && i < listeners.size(); ++i)
        *out.add_reports() = report_view(found_ids[i], found[i], fields_of(listeners[i], report_listener_fields));
    co_return out;
}

boost::asio::awaitable<v1::ReportList> read_reports(store& st, bool include_closed, int limit) {
    auto cmd = argv("ZREVRANGE", include_closed ? keys::reports() : keys::reports_open(), "0", std::to_string(limit - 1));
    auto index = co_await st.redis().command(std::move(cmd));
    std::vector<std::string> ids;
    for (const auto& id : index.elements) ids.push_back(id.as_string());
    co_return co_await read_reports(st, std::move(ids));
}

boost::asio::awaitable<std::vector<v1::SupportUpdate>> read_open_support(store& st) {
    std::vector<v1::SupportUpdate> out;
    // (GCC 12: no braced lists inside a co_await's operands)
    auto cmd = argv("ZRANGEBYSCORE", keys::supports(), std::to_string(st.now_ms() - store::support_keep_s * 1000), "+inf");
    auto ids = co_await st.redis().command(std::move(cmd));
    for (const auto& id : ids.elements) {
        auto u = co_await read_support(st, id.as_string());
        if (u && u->state() != v1::SUPPORT_CLOSED) out.push_back(std::move(*u));
    }
    co_return out;
}

boost::asio::awaitable<v1::ServerMessage> read_listener_welcome(store& st, const service_settings& s,
                                                                 std::string lid) {
    v1::ServerMessage out;
    auto* w = out.mutable_listener_welcome();
    *w->mutable_profile() = co_await read_profile(st, lid);
    auto account = co_await st.hash(keys::listener(lid));
    const std::string open_support = field(account, "support");
    if (!open_support.empty()) {
        auto u = co_await read_support(st, open_support);
        if (u && u->state() != v1::SUPPORT_CLOSED) *w->mutable_support() = std::move(*u);
    }
    for (auto& oid : co_await st.members(keys::listener_offers(lid))) {
        auto o = co_await st.hash(keys::offer(oid));
        if (!o.empty()) *w->add_open_offers() = offer_from(o, oid, st.now_ms());
    }
    for (auto& session : co_await st.members(keys::listener_chats(lid))) {
        auto c = co_await st.hash(keys::session(session));
        if (c["state"] == "active")
            *w->add_open_chats() =
                chat_started(s, st.now_ms(), session, v1::LISTENER, c["topic"], c["lang"], c["tier"] == "0");
    }
    co_return out;
}

boost::asio::awaitable<v1::StatsSnapshot> read_snapshot(store& st, const catalogue& cat) {
    auto result = co_await st.stats(cat.topic_ids(), cat.language_tags());
    auto snapshot = snapshot_from(result, st.now_ms());
    const auto trend =
        crisis_trend_of(co_await st.crisis_per_minute(65), st.settings().crisis_alert_min, st.settings().crisis_alert_factor);
    snapshot.set_crisis_requests_5m(trend.last_5m);
    snapshot.set_crisis_requests_usual_5m(trend.usual_5m);
    snapshot.set_crisis_spike(trend.spike);
    snapshot.set_reports_open(result.reports_open);
    co_return snapshot;
}

}  // namespace warmline::matchmaker
