// The request handlers of services/matchmaker/handlers.hpp.
#include "services/matchmaker/handlers.hpp"

#include "common/codec.hpp"
#include "common/crypto.hpp"
#include "common/replies.hpp"
#include "services/matchmaker/limits.hpp"
#include "services/matchmaker/messages.hpp"

#include <spdlog/spdlog.h>

namespace warmline::matchmaker {

namespace asio = boost::asio;
using v1::ClientMessage;
using v1::ServerMessage;
using reply = ServerMessage;

request_handlers::request_handlers(const service_settings& s, const catalogue& cat, store& st,
                                   peer_registry& peers, metrics::registry& metrics, std::string node)
    : settings_(s), catalogue_(cat), store_(st), peers_(peers), metrics_(metrics), node_(std::move(node)) {}

asio::awaitable<ServerMessage> request_handlers::handle(peer_ptr p, const ClientMessage& m) {
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
        if (!r) co_return refusal_reply<reply>(r.error);
        st.waiting = false;
        co_return ok_reply<reply>();
    }
    case B::kRateChat: co_return co_await rate_chat(p, m.rate_chat());
    case B::kReportChat: co_return co_await report_chat(p, m.report_chat());
    case B::kSetAvailability: {
        auto r = co_await store_.set_availability(st.id, m.set_availability().available());
        if (!r) co_return refusal_reply<reply>(r.error);
        co_return co_await status_reply(st.id);
    }
    case B::kSetPreferences: co_return co_await set_preferences(p, m.set_preferences());
    case B::kAcceptOffer: {
        auto r = co_await store_.accept_offer(st.id, m.accept_offer().offer_id());
        if (!r) co_return refusal_reply<reply>(r.error);
        ServerMessage out;
        *out.mutable_chat_started() = chat_started(settings_, store_.now_ms(), r.value->session_id, v1::LISTENER,
                                                   r.value->topic, r.value->language, r.value->crisis);
        co_return out;
    }
    case B::kDeclineOffer: {
        auto r = co_await store_.decline_offer(st.id, m.decline_offer().offer_id());
        co_return r ? ok_reply<reply>() : refusal_reply<reply>(r.error);
    }
    case B::kListReports: {
        const auto& lr = m.list_reports();
        if (lr.limit() > 200) co_return error_reply<reply>(v1::INVALID_ARGUMENT, "limit goes from 1 to 200.");
        const int limit = lr.limit() == 0 ? 50 : static_cast<int>(lr.limit());
        // reading reports is reading message text: audited, as every safety-team step
        const std::string actor = "supervisor:" + st.id;
        co_await store_.audit("reports_list", actor);
        ServerMessage out;
        *out.mutable_reports() = co_await read_reports(store_, lr.include_closed(), limit);
        co_return out;
    }
    case B::kReviewReport: co_return co_await review_report(p, m.review_report());
    case B::kAskForSupport:
    case B::kAnswerSupport:
    case B::kSupportSay:
    case B::kEndSupport:
        co_return co_await support(p, m);
    case B::kEndChat: {
        std::string role = st.who == client_state::role::seeker ? "seeker" : "listener";
        auto r = co_await store_.end_chat(role, st.id, m.end_chat().session_id());
        co_return r ? ok_reply<reply>() : refusal_reply<reply>(r.error);
    }
    default:
        co_return error_reply<reply>(v1::INVALID_ARGUMENT,
                                     "The message has no request in it (e.g. \"seekerHello\": {}).");
    }
}

asio::awaitable<ServerMessage> request_handlers::status_reply(std::string lid) {
    ServerMessage out;
    *out.mutable_status_changed()->mutable_profile() = co_await read_profile(store_, lid);
    co_return out;
}

std::string request_handlers::address_of(const peer_ptr& p) const {
    // an HMAC: computed once per connection, whose address does not change
    if (p->state.address.empty())
        if (auto c = p->conn.lock())
            p->state.address = address_hash(settings_.ticket_secret, c->upgrade_request().client_bucket);
    return p->state.address;
}

asio::awaitable<bool> request_handlers::within_quota(const peer_ptr& p, const char* what, std::int64_t window_ms,
                                                    int limit) {
    if (limit <= 0) co_return true;
    const auto address = address_of(p);
    if (address.empty()) co_return false;  // gone: nobody to serve
    const bool allowed = co_await store_.count_use(what, address, window_ms, limit);
    if (!allowed)
        metrics_.counter("warmline_address_limited_total", "Uses refused or downgraded by a per-address limit",
                         std::string("limit=\"") + what + "\"").fetch_add(1);
    co_return allowed;
}

asio::awaitable<ServerMessage> request_handlers::seeker_hello(peer_ptr p, const v1::SeekerHello& m) {
    std::string token;
    outcome<hello_result> r;
    if (m.resume_token().empty()) {
        // a returning seeker (a resume token) is never refused: only new identities are counted
        if (!co_await within_quota(p, "seekers", 60000, settings_.limits.new_seekers_per_min))
            co_return error_reply<reply>(
                v1::RATE_LIMITED,
                "Many people have started a conversation from your network in the last minute. Please try again "
                "in a minute. If you are in danger now, call your local emergency number.");
        token = "wlr_" + crypto::random_token();
        r = co_await store_.seeker_new(crypto::random_id(), crypto::sha256_hex(token), node_);
    } else {
        token = m.resume_token();
        r = co_await store_.seeker_resume(crypto::sha256_hex(token), node_);
    }
    if (!r) co_return refusal_reply<reply>(r.error);
    const auto& h = *r.value;
    auto old = peers_.bind_seeker(p, h.seeker_id);
    p->state.waiting = h.state == "queued" || h.state == "offered";
    p->state.queue = h.topic + ":" + h.language;
    p->state.named_listener = h.named_listener;  // a named request's position is recomputed every tick
    p->state.region = h.region;
    p->state.queue_version = -1;
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
        *w->mutable_chat() =
            chat_started(settings_, store_.now_ms(), h.session_id, v1::SEEKER, h.topic, h.language, h.crisis);
        p->state.announced_session = h.session_id;
        if (state == v1::ENDED) w->mutable_chat()->clear_relay_ticket();
    }
    co_return out;
}

asio::awaitable<ServerMessage> request_handlers::request_chat(peer_ptr p, const v1::RequestChat& m) {
    const v1::Topic* topic = catalogue_.topic(m.topic());
    if (!topic)
        co_return error_reply<reply>(v1::UNKNOWN_TOPIC, "There is no topic '" + m.topic() +
                                                            "'. GET /v1/catalogue lists the topics we offer.");
    const v1::Language* lang = catalogue_.language(m.language());
    if (!lang)
        co_return error_reply<reply>(v1::UNKNOWN_LANGUAGE, "There is no language '" + m.language() +
                                                               "'. GET /v1/catalogue lists the languages we offer.");
    if (!m.region().empty() && !is_region_code(m.region()))
        co_return error_reply<reply>(v1::INVALID_ARGUMENT,
                                     "region is a two-letter country code such as \"GB\" (ISO 3166-1 alpha-2), or empty.");
    std::string preferred;
    if (!m.preferred_listener().empty()) {
        preferred = co_await store_.listener_by_handle(m.preferred_listener());
        if (preferred.empty())
            co_return error_reply<reply>(v1::NOT_FOUND, "There is no listener called '" + m.preferred_listener() + "'.");
    }
    if (!co_await within_quota(p, "requests", 60000, settings_.limits.requests_per_min))
        co_return error_reply<reply>(v1::RATE_LIMITED,
                                     "Many requests have come from your network in the last minute. Please try "
                                     "again in a minute. If you are in danger now, call your local emergency number.");
    // Beyond its address's crisis quota a crisis request is still served, in the normal tier:
    // refusing someone who says they are in crisis is worse than a queue-jumper's advantage lost.
    // They are shown the crisis lines all the same.
    int tier = 1;
    if (m.crisis()) {
        tier = 0;
        if (!co_await within_quota(p, "crisis", 3600000, settings_.limits.crisis_per_hour)) tier = 1;
    }
    auto r = co_await store_.request_chat(p->state.id, m.topic(), m.language(), tier, preferred,
                                          static_cast<std::int64_t>(topic->widen_after_s()) * 1000, address_of(p),
                                          m.region());
    if (!r) co_return refusal_reply<reply>(r.error);
    p->state.waiting = true;
    p->state.queue = m.topic() + ":" + m.language();
    p->state.named_listener = !preferred.empty();
    p->state.queue_version = -1;
    ServerMessage out;
    auto* q = out.mutable_request_queued();
    q->set_position(r.value->position);
    q->set_estimated_wait_s(r.value->estimate_s);
    q->set_no_listener_now(r.value->nobody);
    q->set_held_s(r.value->held_s);
    // the crisis lines when asked for, and whenever nobody can take the request right now
    if (m.crisis() || r.value->nobody || r.value->held_s > 0)
        *q->mutable_crisis_resources() = catalogue_.crisis_resources(lang->tag(), m.region());
    p->state.region = m.region();
    p->state.last_update.set_position(r.value->position);
    p->state.last_update.set_estimated_wait_s(r.value->estimate_s);
    p->state.last_update.set_no_listener_now(r.value->nobody);
    p->state.last_update.set_held_s(r.value->held_s);
    if (r.value->held_s > 0)
        metrics_.counter("warmline_requests_held_total", "Chat requests put on hold after listeners' reports")
            .fetch_add(1);
    metrics_.counter("warmline_requests_total", "Chat requests", tier == 0 ? "tier=\"crisis\"" : "tier=\"normal\"")
        .fetch_add(1);
    co_return out;
}

asio::awaitable<ServerMessage> request_handlers::rate_chat(peer_ptr p, const v1::RateChat& rc) {
    if (rc.stars() < 1 || rc.stars() > 5) co_return error_reply<reply>(v1::INVALID_ARGUMENT, "Stars go from 1 to 5.");
    if (code_points(rc.comment()) > 500)
        co_return error_reply<reply>(v1::INVALID_ARGUMENT, "A comment can be at most 500 characters.");
    auto r = co_await store_.rate_chat(p->state.id, rc.session_id(), static_cast<int>(rc.stars()), rc.comment(),
                                       rc.block_listener());
    co_return r ? ok_reply<reply>() : refusal_reply<reply>(r.error);
}

asio::awaitable<ServerMessage> request_handlers::report_chat(peer_ptr p, const v1::ReportChat& rc) {
    const bool listener = p->state.who == client_state::role::listener;
    if (auto why = report_problem(rc); !why.empty()) co_return error_reply<reply>(v1::INVALID_ARGUMENT, why);
    if (rc.block() && !listener)
        co_return error_reply<reply>(v1::INVALID_ARGUMENT,
                                     "Only a listener blocks with a report; a seeker blocks a listener when rating the "
                                     "chat (rateChat.blockListener).");
    v1::ReportChat messages;
    *messages.mutable_messages() = rc.messages();
    // the plaintext the reporter chose to send: stored for the safety team, never logged
    // (GCC 12: no conditional expressions inside a co_await's operands)
    std::string role = listener ? "listener" : "seeker";
    std::string messages_json = codec::to_json(messages);
    auto r = co_await store_.report_chat(std::move(role), p->state.id, rc.session_id(), rc.reason(),
                                         std::move(messages_json), rc.messages_size(), rc.block());
    if (!r) co_return refusal_reply<reply>(r.error);
    metrics_.counter("warmline_reports_total", "Chats reported", listener ? "by=\"listener\"" : "by=\"seeker\"")
        .fetch_add(1);
    if (rc.block())
        metrics_.counter("warmline_seekers_blocked_total", "Seekers blocked by a listener with a report").fetch_add(1);
    co_return ok_reply<reply>();
}

asio::awaitable<ServerMessage> request_handlers::review_report(peer_ptr p, const v1::ReviewReport& rr) {
    if (code_points(rr.note()) > 500)
        co_return error_reply<reply>(v1::INVALID_ARGUMENT, "A note can be at most 500 characters.");
    std::string status;
    switch (rr.status()) {
    case v1::REPORT_OPEN: status = "open"; break;
    case v1::REPORT_REVIEWED: status = "reviewed"; break;
    case v1::REPORT_ACTIONED: status = "actioned"; break;
    case v1::REPORT_DISMISSED: status = "dismissed"; break;
    default: break;
    }
    std::string action;
    switch (rr.action()) {
    case v1::SUSPEND_LISTENER: action = "suspend"; break;
    case v1::REVOKE_LISTENER: action = "revoke"; break;
    case v1::REINSTATE_LISTENER: action = "reinstate"; break;
    default: break;
    }
    const std::string actor = "supervisor:" + p->state.id;
    auto r = co_await store_.review(actor, rr.report_id(), status, action, rr.note());
    if (!r) co_return refusal_reply<reply>(r.error);
    // (GCC 12: no conditional expressions or temporaries built inside a co_await's operands)
    std::string what = rr.report_id();
    if (!status.empty()) what += " status=" + status;
    co_await store_.audit("report_review", actor, what);
    if (!action.empty()) {
        std::string event = "listener_" + action;
        co_await store_.audit(event, actor, *r.value);
    }
    auto view = co_await read_report(store_, rr.report_id());
    if (!view) co_return error_reply<reply>(v1::NOT_FOUND, "That report could not be found; reports are kept 90 days.");
    ServerMessage out;
    *out.mutable_report() = std::move(*view);
    co_return out;
}

asio::awaitable<ServerMessage> request_handlers::support(peer_ptr p, const ClientMessage& m) {
    using B = ClientMessage::BodyCase;
    const auto& st = p->state;
    const std::string role = st.who == client_state::role::listener ? "listener" : "supervisor";
    if (m.body_case() == B::kSupportSay) {
        const auto& say = m.support_say();
        if (say.seq() == 0 || say.ciphertext().size() < 17 || say.ciphertext().size() > 8208)
            co_return error_reply<reply>(v1::INVALID_ARGUMENT,
                                         "A support line needs a seq from 1 and 17 to 8,208 bytes of ciphertext.");
        auto said = co_await store_.support_say(role, st.id, say.support_id(), say.seq(), say.ciphertext());
        co_return said ? ok_reply<reply>() : refusal_reply<reply>(said.error);
    }
    std::vector<std::string> args;
    std::string key;  // the side's public key, for ask and answer
    if (m.body_case() == B::kAskForSupport) {
        key = m.ask_for_support().public_key();
        args = {"ask", st.id, key, std::to_string(store::support_keep_s)};
    } else if (m.body_case() == B::kAnswerSupport) {
        key = m.answer_support().public_key();
        args = {"answer", st.id, m.answer_support().support_id(), key};
    } else {
        args = {"end", role, st.id, m.end_support().support_id()};
    }
    if (m.body_case() != B::kEndSupport && key.size() != 32)
        co_return error_reply<reply>(v1::INVALID_ARGUMENT, "public_key must be an X25519 public key (32 bytes).");
    auto r = co_await store_.support(std::move(args));
    if (!r) co_return refusal_reply<reply>(r.error);
    if (m.body_case() == B::kAskForSupport)
        metrics_.counter("warmline_support_requests_total", "Listeners' requests for support").fetch_add(1);
    if (m.body_case() == B::kAnswerSupport) {
        const std::string actor = "supervisor:" + st.id;
        co_await store_.audit("support_answer", actor, *r.value);
    }
    auto u = co_await read_support(store_, *r.value);
    if (!u) co_return error_reply<reply>(v1::NOT_FOUND, "That request for support is no longer open.");
    ServerMessage out;
    *out.mutable_support() = std::move(*u);
    co_return out;
}

asio::awaitable<ServerMessage> request_handlers::set_preferences(peer_ptr p, const v1::SetPreferences& sp) {
    for (const auto& t : sp.topics())
        if (!catalogue_.topic(t)) co_return error_reply<reply>(v1::UNKNOWN_TOPIC, "There is no topic '" + t + "'.");
    for (const auto& l : sp.languages())
        if (!catalogue_.language(l))
            co_return error_reply<reply>(v1::UNKNOWN_LANGUAGE, "There is no language '" + l + "'.");
    if (sp.max_chats() > 20) co_return error_reply<reply>(v1::INVALID_ARGUMENT, "max_chats goes from 1 to 20.");
    std::string topics, langs;
    for (const auto& t : sp.topics()) topics += (topics.empty() ? "" : ",") + t;
    for (const auto& l : sp.languages()) langs += (langs.empty() ? "" : ",") + l;
    auto r = co_await store_.set_preferences(p->state.id, topics, langs, static_cast<int>(sp.max_chats()));
    if (!r) co_return refusal_reply<reply>(r.error);
    co_return co_await status_reply(p->state.id);
}

asio::awaitable<ServerMessage> request_handlers::listener_sign_in(peer_ptr p, const v1::ListenerSignIn& m) {
    if (m.utc_offset_min() < -840 || m.utc_offset_min() > 840)
        co_return error_reply<reply>(v1::INVALID_ARGUMENT,
                                     "utc_offset_min is your clock's offset from UTC in minutes, from -840 to 840 "
                                     "(in a browser: -new Date().getTimezoneOffset()).");
    std::string token_hash = crypto::sha256_hex(m.token());
    auto r = co_await store_.listener_sign_in(token_hash, node_, m.utc_offset_min());
    if (!r) co_return refusal_reply<reply>(r.error);
    p->state.token_hash = std::move(token_hash);
    peers_.bind_listener(p, *r.value);
    co_return co_await read_listener_welcome(store_, settings_, *r.value);
}

asio::awaitable<ServerMessage> request_handlers::supervisor_sign_in(peer_ptr p, const v1::SupervisorSignIn& m) {
    std::string token_hash = crypto::sha256_hex(m.token());
    std::string owner = co_await store_.token_owner(token_hash);
    if (owner.rfind("supervisor:", 0) != 0)
        co_return error_reply<reply>(v1::UNAUTHENTICATED,
                                     "That supervisor token is not valid. Ask an admin for a new one.");
    std::string id = owner.substr(11);
    // every supervisor sign-in is audited: who and when, never what they saw
    co_await store_.audit("supervisor_sign_in", owner);
    p->state.token_hash = std::move(token_hash);
    peers_.bind_supervisor(p, id);
    ServerMessage out;
    auto* stats = out.mutable_stats();
    *stats = co_await read_snapshot(store_, catalogue_);
    // the last hour for the charts, so a reloaded dashboard or a restarted process loses nothing
    for (const auto& blob :
         co_await store_.stats_history(stats->at_unix_ms() - settings_.stats_history_window.count() + 1)) {
        if (!stats->add_history()->ParseFromString(blob)) {
            stats->mutable_history()->RemoveLast();
            spdlog::warn("skipped a stats history sample that could not be parsed");
        }
    }
    for (auto& u : co_await read_open_support(store_)) *stats->add_support() = std::move(u);
    co_return out;
}

}  // namespace warmline::matchmaker
