// wl:events into pushes, and the resync after an outage, for services/matchmaker/events.hpp.
#include "services/matchmaker/events.hpp"

#include "common/keys.hpp"
#include "services/matchmaker/messages.hpp"
#include "services/matchmaker/sessions.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

namespace warmline::matchmaker {

namespace asio = boost::asio;
using v1::ServerMessage;

event_fanout::event_fanout(asio::io_context& ioc, const service_settings& s, store& st, peer_registry& peers,
                           metrics::registry& metrics, std::string node)
    : ioc_(ioc), settings_(s), store_(st), peers_(peers), metrics_(metrics), node_(std::move(node)) {}

void event_fanout::on_event(std::string_view payload) {
    v1::MatchEvent e;
    if (!e.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        spdlog::error("an event on wl:events could not be parsed");
        return;
    }
    on_event(e);
}

void event_fanout::send_offer_closed(const std::string& lid, const std::string& oid, v1::OfferOutcome outcome) {
    ServerMessage m;
    m.mutable_offer_closed()->set_offer_id(oid);
    m.mutable_offer_closed()->set_outcome(outcome);
    peers_.to_listener(lid, m);
}

void event_fanout::on_event(const v1::MatchEvent& e) {
    using K = v1::MatchEvent::KindCase;
    switch (e.kind_case()) {
    case K::kOffer: {
        const auto& lid = e.offer().listener_id();
        ServerMessage m;
        *m.mutable_offer() = e.offer().offer();
        auto tabs = peers_.listener(lid);
        if (!tabs.empty())
            metrics_.counter("warmline_offers_delivered_total", "Offers delivered to listeners on this process")
                .fetch_add(1);
        for (auto& p : tabs) peers_.send(p, m);
        break;
    }
    case K::kOfferClosed:
        send_offer_closed(e.offer_closed().listener_id(), e.offer_closed().offer_id(), e.offer_closed().outcome());
        break;
    case K::kQueued:
        if (auto p = peers_.seeker(e.queued().seeker_id())) p->state.waiting = true;
        break;
    case K::kChat: {
        // an accepted offer: the listener's tabs see it close, the seeker sees the chat start
        const auto& c = e.chat();
        send_offer_closed(c.listener_id(), c.offer_id(), v1::ACCEPTED);
        if (auto p = peers_.seeker(c.seeker_id())) {
            p->state.waiting = false;
            p->state.announced_session = c.session_id();
            ServerMessage m;
            *m.mutable_chat_started() =
                chat_started(settings_, store_.now_ms(), c.session_id(), v1::SEEKER, c.topic(), c.language(), c.crisis());
            peers_.send(p, m);
        }
        break;
    }
    case K::kEnded: {
        ServerMessage m;
        *m.mutable_chat_ended() = e.ended().ended();
        if (auto p = peers_.seeker(e.ended().seeker_id())) {
            if (e.ended().ended().requeued()) {
                // back in line at the front: positions are computed afresh and pushed
                p->state.waiting = true;
                p->state.queue_version = -1;
                p->state.last_update.Clear();
            }
            peers_.send(p, m);
        }
        peers_.to_listener(e.ended().listener_id(), m);
        break;
    }
    case K::kListener:
        if (peers_.listener(e.listener().listener_id()).empty()) return;
        asio::co_spawn(ioc_, push_status(e.listener().listener_id(), e.listener().change()), asio::detached);
        break;
    case K::kSupervisorRevoked:
        for (auto& p : peers_.supervisors())
            if (p->state.id == e.supervisor_revoked().supervisor_id())
                if (auto c = p->conn.lock()) c->close(4003, "account revoked");
        break;
    case K::kTokenReplaced:
        asio::co_spawn(ioc_, check_sessions(e.token_replaced().owner()), asio::detached);
        break;
    case K::kSeekerResumed:
        // the seeker came back on another connection: the old one here is stale
        if (e.seeker_resumed().node() == node_) return;
        if (auto p = peers_.seeker(e.seeker_resumed().seeker_id()))
            if (auto c = p->conn.lock()) c->close(4001, "resumed elsewhere");
        break;
    case K::kSupport:
        // the record is read only where someone will be told of it
        if (peers_.supervisors().empty() && peers_.listener(e.support().listener_id()).empty()) break;
        asio::co_spawn(ioc_, push_support(e.support().support_id()), asio::detached);
        break;
    case K::kSupportSaid: {
        const auto& said = e.support_said();
        ServerMessage m;
        auto* line = m.mutable_support_line();
        line->set_support_id(said.support_id());
        line->set_from(said.from());
        line->set_seq(said.seq());
        line->set_ciphertext(said.ciphertext());
        // to the other side only
        if (said.from() == v1::SUPERVISOR) {
            peers_.to_listener(said.listener_id(), m);
        } else {
            for (auto& p : peers_.supervisors())
                if (p->state.id == said.supervisor_id()) peers_.send(p, m);
        }
        break;
    }
    case K::KIND_NOT_SET:
        break;
    }
}

asio::awaitable<void> event_fanout::push_support(std::string id) {
    try {
        auto u = co_await read_support(store_, id);
        if (!u) co_return;
        ServerMessage m;
        *m.mutable_support() = *u;
        for (auto& p : peers_.supervisors()) peers_.send(p, m);
        peers_.to_listener(u->listener_id(), m);
    } catch (const std::exception& e) {
        spdlog::warn("could not tell of a request for support: {}", e.what());
    }
}

asio::awaitable<void> event_fanout::push_status(std::string lid, v1::ListenerChange change) {
    try {
        ServerMessage m;
        *m.mutable_status_changed()->mutable_profile() = co_await read_profile(store_, lid);
        if (change == v1::OFFER_MISSED)
            m.mutable_status_changed()->set_reason(
                "You missed an offer, so we set you to away. Switch back to available whenever you're ready.");
        else if (change == v1::REVOKED)
            m.mutable_status_changed()->set_reason("This listener account has been revoked by an admin.");
        else if (change == v1::BREAK_DUE)
            m.mutable_status_changed()->set_reason(
                "Time for a break. You won't get new requests until it's over; your open chats carry on, and the "
                "break starts when they end.");
        else if (change == v1::SUSPENDED)
            m.mutable_status_changed()->set_reason(
                "Your account is paused pending a review by the safety team, so you won't get requests for now. Your "
                "open chats were handed to other listeners. The safety team will be in touch.");
        else if (change == v1::DAY_CAP)
            m.mutable_status_changed()->set_reason(
                "That was your last chat for today. Thank you! You won't get new requests until tomorrow; your open "
                "chats carry on.");
        peers_.to_listener(lid, m);
        if (change == v1::REVOKED)
            for (auto& p : peers_.listener(lid))
                if (auto c = p->conn.lock()) c->close(4003, "account revoked");
    } catch (const std::exception& e) {
        spdlog::warn("could not tell a listener of a status change: {}", e.what());
    }
}

asio::awaitable<void> event_fanout::check_sessions(std::string owner) {
    try {
        co_await close_stale_sessions(store_, peers_, std::move(owner));
    } catch (const std::exception& e) {
        // the session check loop tries again shortly (tickers.cpp)
        spdlog::warn("could not check sessions after a token change: {}", e.what());
    }
}

asio::awaitable<void> event_fanout::resync() {
    for (auto& [sid, p] : peers_.seekers()) {
        auto s = co_await store_.hash(keys::seeker(sid));
        p->state.waiting = s["state"] == "queued" || s["state"] == "offered";
        if (s["state"] == "ended" && !s["session"].empty() && s["session"] == p->state.announced_session) {
            // the chat ended while events could not reach this process: say so (a client drops
            // an end it already knows)
            auto c = co_await store_.hash(keys::session(s["session"]));
            ServerMessage m;
            *m.mutable_chat_ended() = ended_from(s["session"], c);
            peers_.send(p, m);
        }
        if (s["state"] == "chat" && s["session"] != p->state.announced_session) {
            p->state.announced_session = s["session"];
            auto c = co_await store_.hash(keys::session(s["session"]));
            ServerMessage m;
            *m.mutable_chat_started() = chat_started(settings_, store_.now_ms(), s["session"], v1::SEEKER, s["topic"],
                                                     s["lang"], c["tier"] == "0");
            peers_.send(p, m);
        }
    }
    for (auto& [lid, _] : peers_.listeners()) peers_.to_listener(lid, co_await read_listener_welcome(store_, settings_, lid));
}

}  // namespace warmline::matchmaker
