// The matchmaker's WebSocket API, event fan-out and timers for services/matchmaker/service.hpp.
#include "services/matchmaker/service.hpp"

#include "common/argv.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "common/ticket.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>

namespace warmline::matchmaker {
namespace asio = boost::asio;
using v1::ClientMessage;
using v1::ServerMessage;

// ---- client_state ---------------------------------------------------------------------------

bool client_state::use_request_id(const std::string& id, std::size_t max_remembered) {
    if (id.empty() || id.size() > 64) return false;
    if (!used_.insert(id).second) return false;
    order_.push_back(id);
    if (order_.size() > max_remembered) {
        used_.erase(order_.front());
        order_.pop_front();
    }
    return true;
}

bool client_state::take_token(std::int64_t now_ms, double burst, double per_second) {
    return bucket_.take(now_ms, burst, per_second);
}

bool client_state::allowed(role r, ClientMessage::BodyCase body) {
    using B = ClientMessage::BodyCase;
    if (body == B::kPing || body == B::BODY_NOT_SET) return true;  // an empty body is answered INVALID_ARGUMENT
    switch (r) {
    case role::none:
        return body == B::kSeekerHello || body == B::kListenerSignIn || body == B::kSupervisorSignIn;
    case role::seeker:
        return body == B::kRequestChat || body == B::kCancelRequest || body == B::kRateChat ||
               body == B::kReportChat || body == B::kEndChat;
    case role::listener:
        return body == B::kSetAvailability || body == B::kSetPreferences || body == B::kAcceptOffer ||
               body == B::kDeclineOffer || body == B::kEndChat;
    case role::supervisor:
        return false;
    }
    return false;
}

// ---- helpers --------------------------------------------------------------------------------

namespace {

ServerMessage error_reply(v1::ErrorCode code, const std::string& message) {
    ServerMessage m;
    m.mutable_error()->set_code(code);
    m.mutable_error()->set_message(message);
    return m;
}

ServerMessage refusal_reply(const refusal& r) {
    v1::ErrorCode code = v1::INTERNAL;
    if (!v1::ErrorCode_Parse(r.code, &code)) code = v1::INTERNAL;
    return error_reply(code, r.message);
}

ServerMessage ok_reply() {
    ServerMessage m;
    m.mutable_ok();
    return m;
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        auto end = s.find(sep, start);
        if (end == std::string_view::npos) end = s.size();
        out.emplace_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

std::vector<std::string> csv(const std::string& s) {
    std::vector<std::string> out;
    for (auto& x : split(s, ','))
        if (!x.empty()) out.push_back(x);
    return out;
}

std::int64_t to_int(const std::string& s) {
    try {
        return s.empty() ? 0 : std::stoll(s);
    } catch (...) {
        return 0;
    }
}

std::string bearer(const net::http_request& req) {
    auto it = req.headers.find("authorization");
    if (it == req.headers.end() || it->second.rfind("Bearer ", 0) != 0) return {};
    return it->second.substr(7);
}

// Characters as people count them: Unicode code points of UTF-8 text.
std::size_t code_points(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
    return n;
}

// Whether every number of a queue row is zero (its topic and language aside).
bool all_zero(const v1::QueueStats& q) {
    v1::QueueStats numbers = q;
    numbers.clear_topic();
    numbers.clear_language();
    return numbers.ByteSizeLong() == 0;
}

// Checks of a report that need no database; an empty string when it is fine.
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

v1::Offer offer_from(const std::map<std::string, std::string>& o, const std::string& oid, std::int64_t now) {
    v1::Offer offer;
    offer.set_offer_id(oid);
    offer.set_topic(o.count("topic") ? o.at("topic") : "");
    offer.set_language(o.count("lang") ? o.at("lang") : "");
    offer.set_crisis(o.count("tier") && o.at("tier") == "0");
    offer.set_deadline_unix_ms(o.count("deadline") ? to_int(o.at("deadline")) : 0);
    offer.set_waited_s(static_cast<std::uint32_t>(std::max<std::int64_t>(0, now - (o.count("enq_ms") ? to_int(o.at("enq_ms")) : now)) / 1000));
    offer.set_preferred(o.count("preferred") && o.at("preferred") == "1");
    return offer;
}

}  // namespace

// ---- service --------------------------------------------------------------------------------

service::service(asio::io_context& ioc, service_settings s, catalogue cat, std::shared_ptr<redis::client> redis,
                 std::shared_ptr<redis::subscriber> events, clock_fn now)
    : ioc_(ioc),
      settings_(std::move(s)),
      catalogue_(std::move(cat)),
      redis_(std::move(redis)),
      events_(std::move(events)),
      store_(redis_, settings_.store, std::move(now)),
      node_("n" + crypto::random_id().substr(0, 12)) {
    metrics_.gauge("warmline_matchmaker_connections", "Open WebSocket connections on this process",
                   [this] {
                       std::lock_guard lock(mutex_);
                       return static_cast<double>(peers_.size());
                   });
    metrics_.gauge("warmline_matchmaker_redis_up", "1 while the Redis connection is up",
                   [this] { return redis_->connected() ? 1.0 : 0.0; });
}

void service::start() {
    // weak: the subscriber is ours, so a strong capture would be a cycle that never frees
    std::weak_ptr<service> weak = shared_from_this();
    events_->subscribe("wl:events", [weak](std::string_view, std::string_view payload) {
        if (auto self = weak.lock()) self->on_event(payload);
    });
    events_->on_resubscribed([weak] {
        if (auto self = weak.lock()) asio::co_spawn(self->ioc_, self->resync(), asio::detached);
    });
    auto spawn = [&](asio::awaitable<void> (service::*loop)()) {
        asio::co_spawn(ioc_, (this->*loop)(), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("a matchmaker timer loop ended: {}", ex.what());
            }
        });
    };
    spawn(&service::heartbeat_loop);
    spawn(&service::sweep_loop);
    spawn(&service::position_loop);
    spawn(&service::stats_loop);
    spawn(&service::history_loop);
}

void service::stop() {
    stopping_ = true;
    for (auto& t : timers_) t->cancel();
}

asio::awaitable<bool> service::tick(asio::steady_timer& t, std::chrono::milliseconds every) {
    boost::system::error_code ec;
    t.expires_after(every);
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return !stopping_;
}

asio::awaitable<void> service::heartbeat_loop() {
    auto t = std::make_shared<asio::steady_timer>(ioc_);
    timers_.push_back(t);
    auto every = std::chrono::milliseconds(std::max<std::int64_t>(50, settings_.store.node_lease_ms / 3));
    do {
        try {
            co_await store_.heartbeat(node_);
        } catch (const redis::unavailable&) {
            // reported by /readyz; if this lasts past the lease, other processes expire our clients
        } catch (const std::exception& e) {
            spdlog::warn("heartbeat failed: {}", e.what());
        }
    } while (co_await tick(*t, every));
}

asio::awaitable<void> service::sweep_loop() {
    auto t = std::make_shared<asio::steady_timer>(ioc_);
    timers_.push_back(t);
    while (co_await tick(*t, settings_.sweep_interval)) {
        try {
            co_await store_.sweep_all();
        } catch (const redis::unavailable&) {
            // reported by /readyz; the next tick tries again
        } catch (const std::exception& e) {
            spdlog::error("sweep failed: {}", e.what());
        }
    }
}

asio::awaitable<void> service::position_loop() {
    auto t = std::make_shared<asio::steady_timer>(ioc_);
    timers_.push_back(t);
    while (co_await tick(*t, settings_.position_interval)) {
        std::vector<std::pair<std::string, peer_ptr>> waiting;
        {
            std::lock_guard lock(mutex_);
            for (auto& [sid, cid] : seekers_) {
                auto it = peers_.find(cid);
                if (it != peers_.end() && it->second->state.waiting) waiting.emplace_back(sid, it->second);
            }
        }
        // Only seekers whose queue changed since their last position (or who named a listener,
        // or were last told long ago, as the estimate drifts with time) cost a Redis lookup.
        std::map<std::string, std::int64_t> versions;
        for (auto& [_, p] : waiting)
            if (!p->state.queue.empty()) versions.emplace(p->state.queue, 0);
        std::vector<std::string> queues;
        for (auto& [q, _] : versions) queues.push_back(q);
        try {
            auto v = co_await store_.queue_versions(queues);
            for (std::size_t i = 0; i < v.size(); ++i) versions[queues[i]] = v[i];
        } catch (const std::exception& e) {
            spdlog::warn("queue versions unavailable: {}", e.what());
            continue;
        }
        const std::int64_t now = store_.now_ms();
        std::erase_if(waiting, [&](const auto& w) {
            const auto& st = w.second->state;
            return !st.named_listener && !st.queue.empty() && st.queue_version == versions[st.queue] &&
                   now - st.position_at_ms < settings_.position_refresh.count();
        });
        for (std::size_t i = 0; i < waiting.size(); i += 500) {
            std::vector<std::string> ids;
            for (std::size_t j = i; j < std::min(waiting.size(), i + 500); ++j) ids.push_back(waiting[j].first);
            std::vector<position> pos;
            try {
                pos = co_await store_.positions(ids);
            } catch (const std::exception& e) {
                spdlog::warn("queue positions unavailable: {}", e.what());
                break;
            }
            for (std::size_t j = 0; j < pos.size(); ++j) {
                auto& p = waiting[i + j].second;
                if (!p->state.queue.empty()) p->state.queue_version = versions[p->state.queue];
                p->state.position_at_ms = now;
                if (pos[j].position == 0) continue;
                if (p->state.last_update.position() == pos[j].position &&
                    p->state.last_update.estimated_wait_s() == pos[j].estimate_s)
                    continue;
                ServerMessage m;
                m.mutable_queue_update()->set_position(pos[j].position);
                m.mutable_queue_update()->set_estimated_wait_s(pos[j].estimate_s);
                p->state.last_update = m.queue_update();
                send(p, m);
            }
        }
    }
}

asio::awaitable<void> service::stats_loop() {
    auto t = std::make_shared<asio::steady_timer>(ioc_);
    timers_.push_back(t);
    while (co_await tick(*t, settings_.stats_interval)) {
        std::vector<peer_ptr> watchers;
        {
            std::lock_guard lock(mutex_);
            for (auto cid : supervisors_)
                if (auto it = peers_.find(cid); it != peers_.end()) watchers.push_back(it->second);
        }
        if (watchers.empty()) continue;
        try {
            ServerMessage m;
            *m.mutable_stats() = co_await snapshot();
            for (auto& w : watchers) send(w, m);
        } catch (const std::exception& e) {
            spdlog::warn("stats unavailable: {}", e.what());
        }
    }
}

asio::awaitable<void> service::history_loop() {
    auto t = std::make_shared<asio::steady_timer>(ioc_);
    timers_.push_back(t);
    const std::int64_t step = settings_.stats_history_step.count();
    std::int64_t last_step = -1;  // the step this process already offered a sample for
    do {
        // (no `continue` here: GCC 12 can skip a co_await in a do-while's condition after one)
        std::int64_t now_step = store_.now_ms() / step;
        if (now_step != last_step) {
            try {
                co_await sample_history();
                last_step = now_step;
            } catch (const redis::unavailable&) {
                // reported by /readyz; the next tick tries again
            } catch (const std::exception& e) {
                spdlog::warn("stats history sample failed: {}", e.what());
            }
        }
    } while (co_await tick(*t, settings_.stats_interval));
}

asio::awaitable<bool> service::sample_history() {
    // every process offers a sample each step; only the first is kept, so the others look first
    // rather than run the stats script for nothing (stats_history.lua still settles a race)
    if (!co_await store_.stats_history_due(store_.now_ms(), settings_.stats_history_step.count())) co_return false;
    v1::StatsSnapshot sample = co_await snapshot();
    // the history is for trends: rows with nothing in them would only make every sign-in larger
    auto* rows = sample.mutable_queues();
    rows->erase(std::remove_if(rows->begin(), rows->end(), [](const v1::QueueStats& q) { return all_zero(q); }),
                rows->end());
    co_return co_await store_.stats_history_add(sample.at_unix_ms(), sample.SerializeAsString(),
                                                settings_.stats_history_step.count(),
                                                settings_.stats_history_window.count());
}

// ---- sending --------------------------------------------------------------------------------

void service::send(const peer_ptr& p, const ServerMessage& m) {
    if (auto c = p->conn.lock()) c->send(codec::encode(m, p->state.format), p->state.format == codec::format::binary);
}

service::peer_ptr service::seeker_peer(const std::string& sid) {
    std::lock_guard lock(mutex_);
    auto it = seekers_.find(sid);
    if (it == seekers_.end()) return nullptr;
    auto p = peers_.find(it->second);
    return p == peers_.end() ? nullptr : p->second;
}

std::vector<service::peer_ptr> service::listener_peers(const std::string& lid) {
    std::vector<peer_ptr> out;
    std::lock_guard lock(mutex_);
    auto it = listeners_.find(lid);
    if (it == listeners_.end()) return out;
    for (auto cid : it->second)
        if (auto p = peers_.find(cid); p != peers_.end()) out.push_back(p->second);
    return out;
}

void service::send_to_seeker(const std::string& sid, const ServerMessage& m) {
    if (auto p = seeker_peer(sid)) send(p, m);
}

void service::send_to_listener(const std::string& lid, const ServerMessage& m) {
    for (auto& p : listener_peers(lid)) send(p, m);
}

void service::send_offer_closed(const std::string& lid, const std::string& oid, v1::OfferOutcome outcome) {
    ServerMessage m;
    m.mutable_offer_closed()->set_offer_id(oid);
    m.mutable_offer_closed()->set_outcome(outcome);
    send_to_listener(lid, m);
}

v1::ChatStarted service::chat_started(const std::string& session, v1::Role role, const std::string& topic,
                                      const std::string& language) const {
    v1::ChatStarted c;
    c.set_session_id(session);
    c.set_role(role);
    c.set_relay_url(settings_.relay_url);
    c.set_relay_ticket(ticket::sign(settings_.ticket_secret,
                                    ticket::claims{session, role == v1::SEEKER ? ticket::role::seeker : ticket::role::listener,
                                                   store_.now_ms() + settings_.ticket_ttl.count()}));
    c.set_topic(topic);
    c.set_language(language);
    return c;
}

// ---- events from any process ----------------------------------------------------------------

void service::on_event(std::string_view payload) {
    auto f = split(payload, '|');
    const std::string& kind = f[0];
    if (kind == "offer" && f.size() >= 9) {
        ServerMessage m;
        auto* o = m.mutable_offer();
        o->set_offer_id(f[2]);
        o->set_topic(f[3]);
        o->set_language(f[4]);
        o->set_crisis(f[5] == "0");
        o->set_deadline_unix_ms(to_int(f[6]));
        o->set_waited_s(static_cast<std::uint32_t>(to_int(f[7]) / 1000));
        o->set_preferred(f[8] == "1");
        if (!listener_peers(f[1]).empty())
            metrics_.counter("warmline_offers_delivered_total", "Offers delivered to listeners on this process")
                .fetch_add(1);
        send_to_listener(f[1], m);
    } else if (kind == "offer_closed" && f.size() >= 4) {
        v1::OfferOutcome outcome = v1::OFFER_OUTCOME_UNSPECIFIED;
        if (f[3] == "accepted") outcome = v1::ACCEPTED;
        else if (f[3] == "declined") outcome = v1::DECLINED;
        else if (f[3] == "timed_out") outcome = v1::TIMED_OUT;
        else if (f[3] == "withdrawn") outcome = v1::WITHDRAWN;
        send_offer_closed(f[1], f[2], outcome);
    } else if (kind == "queued" && f.size() >= 2) {
        if (auto p = seeker_peer(f[1])) p->state.waiting = true;
    } else if (kind == "chat" && f.size() >= 7) {
        // an accepted offer: the listener's tabs see it close, the seeker sees the chat start
        send_offer_closed(f[2], f[6], v1::ACCEPTED);
        if (auto p = seeker_peer(f[1])) {
            p->state.waiting = false;
            p->state.announced_session = f[3];
            ServerMessage m;
            *m.mutable_chat_started() = chat_started(f[3], v1::SEEKER, f[4], f[5]);
            send(p, m);
        }
    } else if (kind == "ended" && f.size() >= 5) {
        ServerMessage m;
        m.mutable_chat_ended()->set_session_id(f[1]);
        m.mutable_chat_ended()->set_ended_by(f[4] == "seeker"     ? v1::SEEKER
                                             : f[4] == "listener" ? v1::LISTENER
                                                                  : v1::ROLE_UNSPECIFIED);
        if (f[4] == "idle" || f[4] == "expired") m.mutable_chat_ended()->set_reason(f[4]);
        send_to_seeker(f[2], m);
        send_to_listener(f[3], m);
    } else if (kind == "listener" && f.size() >= 3) {
        if (listener_peers(f[1]).empty()) return;
        asio::co_spawn(ioc_, push_status(f[1], f[2]), asio::detached);
    } else if (kind == "supervisor" && f.size() >= 3) {
        std::vector<std::shared_ptr<net::connection>> doomed;
        {
            std::lock_guard lock(mutex_);
            for (auto cid : supervisors_)
                if (auto it = peers_.find(cid); it != peers_.end() && it->second->state.id == f[1])
                    if (auto c = it->second->conn.lock()) doomed.push_back(c);
        }
        for (auto& c : doomed) c->close(4003, "account revoked");
    } else if (kind == "seeker_resumed" && f.size() >= 3) {
        // the seeker came back on another connection: the old one here is stale
        if (f[2] == node_) return;
        if (auto p = seeker_peer(f[1])) {
            if (auto c = p->conn.lock()) c->close(4001, "resumed elsewhere");
        }
    }
}

asio::awaitable<void> service::push_status(std::string lid, std::string reason) {
    try {
        ServerMessage m;
        *m.mutable_status_changed()->mutable_profile() = co_await profile(lid);
        if (reason == "offer_timeout")
            m.mutable_status_changed()->set_reason(
                "You missed an offer, so we set you to away. Switch back to available whenever you're ready.");
        else if (reason == "revoked")
            m.mutable_status_changed()->set_reason("This listener account has been revoked by an admin.");
        send_to_listener(lid, m);
        if (reason == "revoked")
            for (auto& p : listener_peers(lid))
                if (auto c = p->conn.lock()) c->close(4003, "account revoked");
    } catch (const std::exception& e) {
        spdlog::warn("could not tell a listener of a status change: {}", e.what());
    }
}

asio::awaitable<void> service::resync() {
    // events may have been missed while the subscriber was down: push what changed meanwhile
    std::vector<std::pair<std::string, peer_ptr>> seekers;
    std::vector<std::string> listeners;
    {
        std::lock_guard lock(mutex_);
        for (auto& [sid, cid] : seekers_)
            if (auto it = peers_.find(cid); it != peers_.end()) seekers.emplace_back(sid, it->second);
        for (auto& [lid, _] : listeners_) listeners.push_back(lid);
    }
    try {
        for (auto& [sid, p] : seekers) {
            auto s = co_await store_.hash("wl:seeker:" + sid);
            p->state.waiting = s["state"] == "queued" || s["state"] == "offered";
            if (s["state"] == "chat" && s["session"] != p->state.announced_session) {
                p->state.announced_session = s["session"];
                ServerMessage m;
                *m.mutable_chat_started() = chat_started(s["session"], v1::SEEKER, s["topic"], s["lang"]);
                send(p, m);
            }
        }
        for (auto& lid : listeners) send_to_listener(lid, co_await listener_welcome(lid));
    } catch (const std::exception& e) {
        spdlog::warn("resync after reconnect failed: {}", e.what());
    }
}

// ---- HTTP -----------------------------------------------------------------------------------

asio::awaitable<v1::StatsSnapshot> service::snapshot() {
    auto result = co_await store_.stats(catalogue_.topic_ids(), catalogue_.language_tags());
    const auto& rows = result.rows;
    v1::StatsSnapshot snap;
    snap.set_at_unix_ms(store_.now_ms());
    v1::QueueStats total;
    total.set_topic("*");
    total.set_language("*");
    std::vector<std::int64_t> p50s, p90s;
    for (const auto& r : rows) {
        auto* q = snap.add_queues();
        q->set_topic(r.topic);
        q->set_language(r.language);
        q->set_seekers_waiting(r.waiting);
        q->set_longest_wait_s(static_cast<std::uint32_t>(r.longest_wait_ms / 1000));
        q->set_wait_p50_s(static_cast<std::uint32_t>(r.wait_p50_ms / 1000));
        q->set_wait_p90_s(static_cast<std::uint32_t>(r.wait_p90_ms / 1000));
        q->set_listeners_available(r.available);
        q->set_listeners_busy(r.busy);
        q->set_listeners_away(r.away);
        q->set_chats_active(r.chats);
        q->set_offers_accepted(r.accepted);
        q->set_offers_declined(r.declined);
        q->set_offers_timed_out(r.timed_out);
        q->set_requests_abandoned(r.abandoned);
        q->set_shortage(r.waiting > 0 && r.available == 0 && r.busy == 0);
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
    total.set_wait_p50_s(static_cast<std::uint32_t>(result.wait_p50_ms / 1000));
    total.set_wait_p90_s(static_cast<std::uint32_t>(result.wait_p90_ms / 1000));
    *snap.mutable_total() = total;
    co_return snap;
}

asio::awaitable<net::http_response> service::on_http(net::http_request req) {
    net::http_response res;
    if (req.method != "GET") {
        res.status = 405;
        res.headers["Allow"] = "GET";
        res.body = R"({"error":"INVALID_ARGUMENT","message":"Only GET is served here."})";
        co_return res;
    }
    if (req.path == "/healthz") {
        res.body = R"({"status":"ok"})";
    } else if (req.path == "/readyz") {
        bool ready = redis_->connected() && events_->connected();
        res.status = ready ? 200 : 503;
        res.body = ready ? R"({"status":"ready"})"
                         : R"({"status":"not ready","redis":")" + std::string(redis_->connected() ? "up" : "down") +
                               R"(","events":")" + (events_->connected() ? "up" : "down") + R"(","error":")" +
                               log::json_escape(redis_->last_error()) + "\"}";
    } else if (req.path == "/metrics") {
        res.content_type = "text/plain; version=0.0.4";
        res.body = metrics_.render();
    } else if (req.path == "/v1/stats") {
        try {
            std::string owner = co_await store_.token_owner(crypto::sha256_hex(bearer(req)));
            if (owner.rfind("supervisor:", 0) != 0) {
                res.status = 401;
                res.body = R"({"error":"UNAUTHENTICATED","message":"Send a supervisor token as 'Authorization: Bearer <token>'."})";
                co_return res;
            }
            co_await redis_->pipeline(commands(argv("XADD", "wl:audit", "MAXLEN", "~", "100000", "*", "event",
                                                     "supervisor_stats_http", "supervisor", owner.substr(11), "at",
                                                     std::to_string(store_.now_ms()))));
            res.body = codec::to_json(co_await snapshot());
        } catch (const std::exception& e) {
            spdlog::warn("stats over HTTP failed: {}", e.what());
            res.status = 503;
            res.body = R"({"error":"UNAVAILABLE","message":"The database is unreachable; try again shortly."})";
        }
    } else if (req.path == "/v1/catalogue") {
        res.body = codec::to_json(catalogue_.proto());
    } else {
        res.status = 404;
        res.body = R"({"error":"NOT_FOUND","message":"No such page."})";
    }
    co_return res;
}

asio::awaitable<std::optional<net::http_response>> service::on_upgrade(const net::http_request& req) {
    if (req.path != "/v1/ws") {
        net::http_response res;
        res.status = 404;
        res.body = R"({"error":"NOT_FOUND","message":"The matchmaker's WebSocket is at /v1/ws."})";
        co_return res;
    }
    co_return std::nullopt;
}

// ---- WebSocket ------------------------------------------------------------------------------

void service::on_open(std::shared_ptr<net::connection> c) {
    auto p = std::make_shared<peer>();
    p->conn = c;
    std::lock_guard lock(mutex_);
    peers_[c->id()] = p;
}

void service::on_close(std::shared_ptr<net::connection> c) {
    peer_ptr p;
    {
        std::lock_guard lock(mutex_);
        auto it = peers_.find(c->id());
        if (it == peers_.end()) return;
        p = it->second;
        peers_.erase(it);
        if (p->state.who == client_state::role::seeker) {
            if (auto s = seekers_.find(p->state.id); s != seekers_.end() && s->second == c->id()) seekers_.erase(s);
            else return;  // replaced by a newer connection of the same seeker
        } else if (p->state.who == client_state::role::listener) {
            auto& set = listeners_[p->state.id];
            set.erase(c->id());
            if (!set.empty()) return;  // another tab is still open
            listeners_.erase(p->state.id);
        } else {
            supervisors_.erase(c->id());
            return;
        }
    }
    if (stopping_) return;
    std::string role = p->state.who == client_state::role::seeker ? "seeker" : "listener";
    asio::co_spawn(ioc_, [self = shared_from_this(), role, id = p->state.id]() -> asio::awaitable<void> {
        try {
            co_await self->store_.connection_lost(role, id, self->node_);
        } catch (const std::exception& e) {
            // the node lease expires the connection if this write is lost
            spdlog::warn("could not record a closed {} connection: {}", role, e.what());
        }
    }, asio::detached);
}

asio::awaitable<void> service::on_message(std::shared_ptr<net::connection> c, std::string data, bool binary) {
    peer_ptr p;
    {
        std::lock_guard lock(mutex_);
        auto it = peers_.find(c->id());
        if (it == peers_.end()) co_return;
        p = it->second;
    }
    auto fmt = binary ? codec::format::binary : codec::format::json;
    ClientMessage m;
    std::string why;
    ServerMessage reply;
    if (!codec::decode(data, fmt, m, why)) {
        metrics_.counter("warmline_bad_frames_total", "Frames that could not be parsed").fetch_add(1);
        // answered in the format of the bad frame; the connection keeps its own format
        c->send(codec::encode(error_reply(v1::MALFORMED_FRAME, why), fmt), binary);
        if (++p->state.bad_frames >= settings_.max_bad_frames) c->close(1008, "too many malformed frames");
        co_return;
    }
    if (p->state.who == client_state::role::none) p->state.format = fmt;
    if (!p->state.take_token(store_.now_ms(), settings_.rate_burst, settings_.rate_per_second)) {
        reply = error_reply(v1::RATE_LIMITED, "Too many requests at once; please slow down and try again in a moment.");
    } else if (!p->state.use_request_id(m.request_id(), settings_.max_request_ids)) {
        reply = m.request_id().empty() || m.request_id().size() > 64
                    ? error_reply(v1::INVALID_ARGUMENT, "Every request needs a request_id of 1 to 64 characters.")
                    : error_reply(v1::DUPLICATE_REQUEST_ID,
                                  "That request_id was already used on this connection; choose a new one.");
    } else if (!client_state::allowed(p->state.who, m.body_case())) {
        reply = p->state.who == client_state::role::none
                    ? error_reply(v1::UNAUTHENTICATED,
                                  "Start with seeker_hello, listener_sign_in or supervisor_sign_in.")
                    : error_reply(v1::PERMISSION_DENIED, "That request is not available in this role.");
    } else if (p->state.who != client_state::role::none && p->in_flight < settings_.requests_in_flight) {
        // Signed in: the next frame need not wait for this one's Redis round trip. Requests in
        // flight together may take effect in any order (docs/protocol.md): a client that needs
        // an order waits for the reply, as the protocol's flows do anyway.
        ++p->in_flight;
        asio::co_spawn(co_await asio::this_coro::executor, answer(p, std::move(m), true), asio::detached);
        co_return;
    } else {
        co_await answer(p, std::move(m), false);
        co_return;
    }
    reply_to(p, m.request_id(), std::move(reply));
}

asio::awaitable<void> service::answer(peer_ptr p, ClientMessage m, bool concurrent) {
    ServerMessage reply;
    try {
        reply = co_await handle(p, m);
    } catch (const redis::unavailable&) {
        reply = error_reply(v1::UNAVAILABLE, "Warmline can't reach its database for a moment. Please try again shortly.");
    } catch (const std::exception& e) {
        spdlog::error("request failed: {}", e.what());
        reply = error_reply(v1::INTERNAL, "Something went wrong on our side. Please try again.");
    }
    if (concurrent) --p->in_flight;
    reply_to(p, m.request_id(), std::move(reply));
}

void service::reply_to(const peer_ptr& p, const std::string& request_id, ServerMessage reply) {
    reply.set_request_id(request_id);
    if (reply.has_error())
        metrics_.counter("warmline_errors_total", "Errors returned to clients",
                         "code=\"" + v1::ErrorCode_Name(reply.error().code()) + "\"").fetch_add(1);
    send(p, reply);
}

asio::awaitable<ServerMessage> service::handle(peer_ptr p, const ClientMessage& m) {
    using B = ClientMessage::BodyCase;
    auto& st = p->state;
    switch (m.body_case()) {
    case B::kPing: {
        ServerMessage r;
        r.mutable_pong();
        co_return r;
    }
    case B::kSeekerHello: co_return co_await seeker_hello(p, m.seeker_hello());
    case B::kListenerSignIn: co_return co_await listener_sign_in(p, m.listener_sign_in());
    case B::kSupervisorSignIn: co_return co_await supervisor_sign_in(p, m.supervisor_sign_in());
    case B::kRequestChat: co_return co_await request_chat(p, m.request_chat());
    case B::kCancelRequest: {
        auto r = co_await store_.cancel_request(st.id);
        if (!r) co_return refusal_reply(r.error);
        st.waiting = false;
        co_return ok_reply();
    }
    case B::kRateChat: {
        const auto& rc = m.rate_chat();
        if (rc.stars() < 1 || rc.stars() > 5) co_return error_reply(v1::INVALID_ARGUMENT, "Stars go from 1 to 5.");
        if (code_points(rc.comment()) > 500)
            co_return error_reply(v1::INVALID_ARGUMENT, "A comment can be at most 500 characters.");
        auto r = co_await store_.rate_chat(st.id, rc.session_id(), static_cast<int>(rc.stars()), rc.comment(),
                                           rc.block_listener());
        co_return r ? ok_reply() : refusal_reply(r.error);
    }
    case B::kReportChat: {
        const auto& rc = m.report_chat();
        if (auto why = report_problem(rc); !why.empty()) co_return error_reply(v1::INVALID_ARGUMENT, why);
        v1::ReportChat messages;
        *messages.mutable_messages() = rc.messages();
        // the plaintext the seeker chose to send: stored for the safety team, never logged
        auto r = co_await store_.report_chat(st.id, rc.session_id(), rc.reason(), codec::to_json(messages),
                                             rc.messages_size());
        if (!r) co_return refusal_reply(r.error);
        metrics_.counter("warmline_reports_total", "Chats reported by seekers").fetch_add(1);
        co_return ok_reply();
    }
    case B::kSetAvailability: {
        auto r = co_await store_.set_availability(st.id, m.set_availability().available());
        if (!r) co_return refusal_reply(r.error);
        ServerMessage out;
        *out.mutable_status_changed()->mutable_profile() = co_await profile(st.id);
        co_return out;
    }
    case B::kSetPreferences: {
        const auto& sp = m.set_preferences();
        for (const auto& t : sp.topics())
            if (!catalogue_.topic(t)) co_return error_reply(v1::UNKNOWN_TOPIC, "There is no topic '" + t + "'.");
        for (const auto& l : sp.languages())
            if (!catalogue_.language(l)) co_return error_reply(v1::UNKNOWN_LANGUAGE, "There is no language '" + l + "'.");
        if (sp.max_chats() > 20) co_return error_reply(v1::INVALID_ARGUMENT, "max_chats goes from 1 to 20.");
        std::string topics, langs;
        for (const auto& t : sp.topics()) topics += (topics.empty() ? "" : ",") + t;
        for (const auto& l : sp.languages()) langs += (langs.empty() ? "" : ",") + l;
        auto r = co_await store_.set_preferences(st.id, topics, langs, static_cast<int>(sp.max_chats()));
        if (!r) co_return refusal_reply(r.error);
        ServerMessage out;
        *out.mutable_status_changed()->mutable_profile() = co_await profile(st.id);
        co_return out;
    }
    case B::kAcceptOffer: {
        auto r = co_await store_.accept_offer(st.id, m.accept_offer().offer_id());
        if (!r) co_return refusal_reply(r.error);
        ServerMessage out;
        *out.mutable_chat_started() = chat_started(r.value->session_id, v1::LISTENER, r.value->topic, r.value->language);
        co_return out;
    }
    case B::kDeclineOffer: {
        auto r = co_await store_.decline_offer(st.id, m.decline_offer().offer_id());
        co_return r ? ok_reply() : refusal_reply(r.error);
    }
    case B::kEndChat: {
        std::string role = st.who == client_state::role::seeker ? "seeker" : "listener";
        auto r = co_await store_.end_chat(role, st.id, m.end_chat().session_id());
        co_return r ? ok_reply() : refusal_reply(r.error);
    }
    default: co_return error_reply(v1::INVALID_ARGUMENT, "The message has no request in it (e.g. \"seekerHello\": {}).");
    }
}

asio::awaitable<ServerMessage> service::seeker_hello(peer_ptr p, const v1::SeekerHello& m) {
    std::string token;
    outcome<hello_result> r;
    if (m.resume_token().empty()) {
        token = "wlr_" + crypto::random_token();
        r = co_await store_.seeker_new(crypto::random_id(), crypto::sha256_hex(token), node_);
    } else {
        token = m.resume_token();
        r = co_await store_.seeker_resume(crypto::sha256_hex(token), node_);
    }
    if (!r) co_return refusal_reply(r.error);
    const auto& h = *r.value;
    std::shared_ptr<net::connection> old;
    {
        std::lock_guard lock(mutex_);
        if (auto it = seekers_.find(h.seeker_id); it != seekers_.end())
            if (auto q = peers_.find(it->second); q != peers_.end()) old = q->second->conn.lock();
        seekers_[h.seeker_id] = p->conn.lock() ? p->conn.lock()->id() : 0;
        p->state.who = client_state::role::seeker;
        p->state.id = h.seeker_id;
        p->state.waiting = h.state == "queued" || h.state == "offered";
        p->state.queue = h.topic + ":" + h.language;
        p->state.named_listener = h.named_listener;  // a named request's position is recomputed every tick
        p->state.queue_version = -1;
    }
    if (old) old->close(4001, "resumed on a newer connection");
    ServerMessage out;
    auto* w = out.mutable_seeker_welcome();
    w->set_seeker_id(h.seeker_id);
    w->set_resume_token(token);
    w->set_resumed(h.resumed);
    w->set_topic(h.topic);
    w->set_language(h.language);
    v1::SeekerState state = v1::IDLE;
    if (h.state == "queued") state = v1::QUEUED;
    else if (h.state == "offered") state = v1::OFFERED;
    else if (h.state == "chat") state = v1::IN_CHAT;
    else if (h.state == "ended") state = v1::ENDED;
    w->set_state(state);
    if (state == v1::IN_CHAT || state == v1::ENDED) {
        *w->mutable_chat() = chat_started(h.session_id, v1::SEEKER, h.topic, h.language);
        p->state.announced_session = h.session_id;
        if (state == v1::ENDED) w->mutable_chat()->clear_relay_ticket();
    }
    co_return out;
}

asio::awaitable<ServerMessage> service::request_chat(peer_ptr p, const v1::RequestChat& m) {
    const v1::Topic* topic = catalogue_.topic(m.topic());
    if (!topic)
        co_return error_reply(v1::UNKNOWN_TOPIC, "There is no topic '" + m.topic() +
                                                     "'. GET /v1/catalogue lists the topics we offer.");
    const v1::Language* lang = catalogue_.language(m.language());
    if (!lang)
        co_return error_reply(v1::UNKNOWN_LANGUAGE, "There is no language '" + m.language() +
                                                        "'. GET /v1/catalogue lists the languages we offer.");
    std::string preferred;
    if (!m.preferred_listener().empty()) {
        preferred = co_await store_.listener_by_handle(m.preferred_listener());
        if (preferred.empty())
            co_return error_reply(v1::NOT_FOUND, "There is no listener called '" + m.preferred_listener() + "'.");
    }
    auto r = co_await store_.request_chat(p->state.id, m.topic(), m.language(), m.crisis() ? 0 : 1, preferred,
                                          static_cast<std::int64_t>(topic->widen_after_s()) * 1000);
    if (!r) co_return refusal_reply(r.error);
    p->state.waiting = true;
    p->state.queue = m.topic() + ":" + m.language();
    p->state.named_listener = !preferred.empty();
    p->state.queue_version = -1;
    ServerMessage out;
    auto* q = out.mutable_request_queued();
    q->set_position(r.value->position);
    q->set_estimated_wait_s(r.value->estimate_s);
    if (m.crisis()) *q->mutable_crisis_resources() = lang->crisis_resources();
    p->state.last_update.set_position(r.value->position);
    p->state.last_update.set_estimated_wait_s(r.value->estimate_s);
    metrics_.counter("warmline_requests_total", "Chat requests", m.crisis() ? "tier=\"crisis\"" : "tier=\"normal\"")
        .fetch_add(1);
    co_return out;
}

asio::awaitable<v1::ListenerProfile> service::profile(const std::string& lid) {
    auto record = co_await store_.listener_profile(lid);
    auto& l = record.fields;
    v1::ListenerProfile pr;
    pr.set_listener_id(lid);
    pr.set_name(l["name"]);
    pr.set_handle(l["handle"]);
    for (auto& t : csv(l["topics"])) pr.add_trained_topics(t);
    for (auto& x : csv(l["langs"])) pr.add_trained_languages(x);
    pr.set_max_chats_cap(static_cast<std::uint32_t>(to_int(l["cap"])));
    for (auto& t : csv(l["atopics"].empty() ? l["topics"] : l["atopics"])) pr.add_topics(t);
    for (auto& x : csv(l["alangs"].empty() ? l["langs"] : l["alangs"])) pr.add_languages(x);
    pr.set_max_chats(static_cast<std::uint32_t>(to_int(l["max"])));
    pr.set_status(l["status"] == "available" ? v1::AVAILABLE : v1::AWAY);
    pr.set_chats(static_cast<std::uint32_t>(to_int(l["chats"])));
    pr.set_offers(static_cast<std::uint32_t>(to_int(l["offers"])));
    pr.set_chats_today(record.chats_today);
    co_return pr;
}

asio::awaitable<ServerMessage> service::listener_welcome(const std::string& lid) {
    ServerMessage out;
    auto* w = out.mutable_listener_welcome();
    *w->mutable_profile() = co_await profile(lid);
    for (auto& oid : co_await store_.members("wl:listener:" + lid + ":offers")) {
        auto o = co_await store_.hash("wl:offer:" + oid);
        if (!o.empty()) *w->add_open_offers() = offer_from(o, oid, store_.now_ms());
    }
    for (auto& session : co_await store_.members("wl:listener:" + lid + ":chats")) {
        auto c = co_await store_.hash("wl:session:" + session);
        if (c["state"] == "active") *w->add_open_chats() = chat_started(session, v1::LISTENER, c["topic"], c["lang"]);
    }
    co_return out;
}

asio::awaitable<ServerMessage> service::listener_sign_in(peer_ptr p, const v1::ListenerSignIn& m) {
    if (m.utc_offset_min() < -840 || m.utc_offset_min() > 840)
        co_return error_reply(v1::INVALID_ARGUMENT,
                              "utc_offset_min is your clock's offset from UTC in minutes, from -840 to 840 "
                              "(in a browser: -new Date().getTimezoneOffset()).");
    auto r = co_await store_.listener_sign_in(crypto::sha256_hex(m.token()), node_, m.utc_offset_min());
    if (!r) co_return refusal_reply(r.error);
    {
        std::lock_guard lock(mutex_);
        p->state.who = client_state::role::listener;
        p->state.id = *r.value;
        if (auto c = p->conn.lock()) listeners_[*r.value].insert(c->id());
    }
    co_return co_await listener_welcome(*r.value);
}

asio::awaitable<ServerMessage> service::supervisor_sign_in(peer_ptr p, const v1::SupervisorSignIn& m) {
    std::string owner = co_await store_.token_owner(crypto::sha256_hex(m.token()));
    if (owner.rfind("supervisor:", 0) != 0)
        co_return error_reply(v1::UNAUTHENTICATED, "That supervisor token is not valid. Ask an admin for a new one.");
    std::string id = owner.substr(11);
    // every supervisor sign-in is audited: who and when, never what they saw
    co_await redis_->pipeline(commands(argv("XADD", "wl:audit", "MAXLEN", "~", "100000", "*", "event", "supervisor_sign_in",
                                "supervisor", id, "at", std::to_string(store_.now_ms()))));
    {
        std::lock_guard lock(mutex_);
        p->state.who = client_state::role::supervisor;
        p->state.id = id;
        if (auto c = p->conn.lock()) supervisors_.insert(c->id());
    }
    ServerMessage out;
    auto* stats = out.mutable_stats();
    *stats = co_await snapshot();
    // the last hour for the charts, so a reloaded dashboard or a restarted process loses nothing
    for (const auto& blob : co_await store_.stats_history(stats->at_unix_ms() - settings_.stats_history_window.count() + 1)) {
        if (!stats->add_history()->ParseFromString(blob)) {
            stats->mutable_history()->RemoveLast();
            spdlog::warn("skipped a stats history sample that could not be parsed");
        }
    }
    co_return out;
}

}  // namespace warmline::matchmaker
