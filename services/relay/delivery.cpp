// The relay's delivery, for services/relay/service.hpp: what reaches a participant from the other
// side (its node channel's RelayEvents), in order and exactly once, and the catch-up from the
// chat's log after a gap, a welcome or an outage. Messages Redis lost reach the other side as
// one MessagesLost in their place in the order.
#include "services/relay/service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

namespace warmline::relay {
namespace asio = boost::asio;
using v1::RelayServerMessage;

void service::push(const participant_ptr& p, const RelayServerMessage& m) {
    if (auto c = p->conn.lock()) c->send(codec::encode(m, p->format), p->format == codec::format::binary);
}

void service::deliver(const participant_ptr& p, log_entry e) {
    if (e.seq <= p->forwarded) return;  // already sent (a catch-up overtook the live copy)
    if ((e.lost_from ? e.lost_from : e.seq) > p->forwarded + 1) {
        // a gap: something was missed (e.g. while the subscriber reconnected); the log has it
        asio::co_spawn(ioc_, catch_up(p), asio::detached);
        return;
    }
    RelayServerMessage m;
    if (e.lost_from) {
        // the client may have some of them (it said so in its hello): it works out what to show
        auto* l = m.mutable_lost();
        l->set_from(role_of(peer_of(p->role)));
        l->set_first(e.lost_from);
        l->set_through(e.seq);
    } else {
        auto* d = m.mutable_deliver();
        d->set_from(role_of(peer_of(p->role)));
        d->set_seq(e.seq);
        d->set_ciphertext(std::move(e.ciphertext));
        d->set_sent_unix_ms(e.stored_ms);
    }
    p->forwarded = e.seq;
    push(p, m);
}

asio::awaitable<bool> service::catch_up(participant_ptr p) {
    if (!p->welcomed) co_return true;  // the welcome starts its own catch-up; nothing goes out before it
    if (p->filling) {
        p->refill = true;  // the catch-up running now goes round again
        co_return true;
    }
    p->filling = true;
    bool ok = true;
    try {
        for (;;) {
            p->refill = false;
            auto entries = co_await store_.log_after(p->session, peer_of(p->role), p->forwarded,
                                                     settings_.catch_up_batch);
            for (auto& e : entries) {
                // keep pace with the client: its queue never overflows because of a catch-up
                if (auto c = p->conn.lock()) co_await c->queue_below(settings_.catch_up_window);
                deliver(p, std::move(e));
            }
            if (p->conn.expired()) break;
            if (entries.size() < settings_.catch_up_batch && !p->refill) break;
        }
    } catch (const std::exception& e) {
        spdlog::warn("relay: catching a client up failed: {}", e.what());
        ok = false;
    }
    p->filling = false;
    co_return ok;
}

void service::on_node_event(std::string_view payload) {
    v1::RelayEvent e;
    if (!e.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        spdlog::error("relay: an event on the node channel could not be parsed");
        return;
    }
    on_node_event(e);
}

void service::on_node_event(const v1::RelayEvent& e) {
    using K = v1::RelayEvent::KindCase;
    if (e.kind_case() == K::kKick) {
        // this process may hold the connection being replaced even when it is no longer current;
        // a conn_id is "<node>:<connection id>", and kicks come only to that node
        const std::string& conn_id = e.kick();
        const auto colon = conn_id.rfind(':');
        if (colon == std::string::npos) return;
        std::uint64_t id = 0;
        try {
            id = std::stoull(conn_id.substr(colon + 1));
        } catch (const std::exception&) {
            return;
        }
        if (auto q = by_connection(id); q && q->conn_id == conn_id)
            if (auto c = q->conn.lock()) c->close(4001, "resumed on another connection");
        return;
    }
    auto p = current(e.session_id(), e.to() == v1::SEEKER ? 's' : 'l');
    if (!p) return;
    if (!p->welcomed) {
        // hello is still running: nothing goes out before the welcome. Its key goes into the
        // welcome; a message comes with the catch-up after it; typing and read are moments.
        if (e.kind_case() == K::kPeerKey) p->early_peer_key = e.peer_key();
        if (e.kind_case() != K::kEnded) return;
    }
    RelayServerMessage m;
    switch (e.kind_case()) {
    case K::kDeliver: {
        const auto& d = e.deliver();
        deliver(p, log_entry{d.seq(), d.sent_unix_ms(), d.ciphertext(), 0});
        return;
    }
    case K::kLost: deliver(p, log_entry{e.lost().through(), 0, {}, e.lost().first()}); return;
    case K::kReceived: m.mutable_peer_received()->set_through(e.received()); break;
    case K::kPeerKey:
        m.mutable_peer_key()->set_public_key(e.peer_key());
        p->has_peer_key = true;
        break;
    case K::kTyping: m.mutable_peer_typing()->set_typing(e.typing()); break;
    case K::kRead: m.mutable_peer_read()->set_through(e.read()); break;
    case K::kPresence: *m.mutable_peer_presence() = e.presence(); break;
    case K::kEnded:
        *m.mutable_ended() = e.ended();
        push(p, m);
        if (!p->ending)
            if (auto c = p->conn.lock()) c->close(1000, "chat ended");
        return;
    default: return;
    }
    push(p, m);
}

}  // namespace warmline::relay
