// The relay's protocol: tickets at the door, hello/send/received/typing/read/end on the socket,
// and the node channel that brings the other side's messages from whichever process has them.
#include "services/relay/service.hpp"

#include "common/crypto.hpp"
#include "common/keys.hpp"
#include "common/log.hpp"
#include "common/replies.hpp"
#include "common/ticket.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

namespace warmline::relay {
namespace asio = boost::asio;
using v1::RelayClientMessage;
using v1::RelayServerMessage;

namespace {

net::http_response refuse(unsigned status, const char* code, const std::string& message) {
    net::http_response res;
    res.status = status;
    res.body = std::string(R"({"error":")") + code + R"(","message":")" + log::json_escape(message) + "\"}";
    return res;
}

}  // namespace

service::service(asio::io_context& ioc, relay_settings s, std::shared_ptr<redis::client> redis,
                 std::shared_ptr<redis::any_subscriber> events, clock_fn now, std::shared_ptr<redis::any_client> writes,
                 std::shared_ptr<redis::any_client> chat)
    : ioc_(ioc),
      settings_(std::move(s)),
      redis_(redis),
      chat_(chat ? chat : redis::any_client::of(redis)),
      own_chat_(chat != nullptr),
      events_(std::move(events)),
      writes_(writes ? writes : chat_),
      store_(redis, chat_, settings_.store, now),
      send_store_(redis, writes_, settings_.store, now),
      node_("r" + crypto::random_id().substr(0, 12)),
      messages_total_(metrics_.counter("warmline_relay_messages_total", "Messages stored and forwarded")),
      ciphertext_bytes_total_(
          metrics_.counter("warmline_relay_ciphertext_bytes_total", "Ciphertext bytes stored")),
      acks_unreplicated_total_(
          metrics_.counter("warmline_relay_acks_unreplicated_total",
                           "Sends refused with UNAVAILABLE because too few replicas confirmed them in time")),
      messages_skipped_total_(
          metrics_.counter("warmline_relay_messages_skipped_total",
                           "Messages passed over (Skip): Redis lost them and their sender no longer had them")) {
    if (settings_.ack_replicas > 0)
        acks_ = std::make_unique<replica_acks>(ioc_.get_executor(), writes_, settings_.ack_replicas,
                                               settings_.ack_timeout, "relay", settings_.ack_degrade_after);
}

void service::start() {
    std::weak_ptr<service> weak = shared_from_this();
    if (own_chat_) {
        chat_->start();
        events_->start();
    }
    if (writes_ != chat_) writes_->start();
    for (int b = 0; b < bucket_count; ++b)
        events_->ssubscribe(keys::relay_channel(bucket_name(b), node_), [weak](std::string_view, std::string_view payload) {
            if (auto self = weak.lock()) self->on_node_event(payload);
        });
    // events sent while either connection was down are lost: every client catches up from the
    // log once both are back, retried until it worked
    recovery_ = std::make_shared<recovery>(
        ioc_, redis_, events_,
        [weak]() -> asio::awaitable<void> {
            if (auto self = weak.lock()) co_await self->recover();
        },
        [weak](bool degraded) {
            auto self = weak.lock();
            if (!self) return;
            RelayServerMessage m;
            m.mutable_service()->set_degraded(degraded);
            self->tell_all(m);
        });
    if (own_chat_) recovery_->also_watch(chat_);
    recovery_->watch();
    metrics_.gauge("warmline_relay_participants", "Chat participants connected to this process", [weak] {
        auto self = weak.lock();
        if (!self) return 0.0;
        std::lock_guard lock(self->mutex_);
        return static_cast<double>(self->by_side_.size());
    });
    metrics_.gauge("warmline_relay_redis_up", "1 while the Redis connection is up", [weak] {
        auto self = weak.lock();
        return self && self->redis_->connected() ? 1.0 : 0.0;
    });
    metrics_.gauge("warmline_relay_settled",
                   "1 unless recovering from a Redis outage (sides confirmed, every chat caught up from its log)",
                   [weak] {
                       auto self = weak.lock();
                       return self && self->recovery_->settled() ? 1.0 : 0.0;
                   });
    // every counter from the start, at 0: a dashboard or an alert sees the series before it moves
    metrics_.counter("warmline_relay_idle_ended_total", "Chats ended because nobody wrote");
    metrics_.counter("warmline_relay_bad_frames_total", "Frames that could not be parsed");
    metrics_.counter("warmline_relay_seq_conflicts_total", "Resends refused for other content under a used seq");
    metrics_.gauge("warmline_relay_ack_rounds", "WAITs sent for acks so far (one per round of sends)", [weak] {
        auto self = weak.lock();
        return self && self->acks_ ? static_cast<double>(self->acks_->rounds()) : 0.0;
    });
    count_every_error_code(metrics_, "warmline_relay_errors_total", "Errors returned to clients");
    idle_timer_ = std::make_shared<asio::steady_timer>(ioc_);
    hellos_done_ = std::make_shared<asio::steady_timer>(ioc_);
    presence_timer_ = std::make_shared<asio::steady_timer>(ioc_);
    asio::co_spawn(ioc_, idle_loop(), asio::detached);
    asio::co_spawn(ioc_, presence_loop(), asio::detached);
}

void service::stop() {
    stopped_ = true;
    if (writes_ != chat_) writes_->stop();
    if (own_chat_) {
        events_->stop();
        chat_->stop();
    }
    if (idle_timer_) idle_timer_->cancel();
    if (presence_timer_) presence_timer_->cancel();
}

presence_settings service::presence() const {
    presence_settings p;
    p.node = node_;
    p.lease_ms = settings_.node_lease.count();
    p.away_ms = settings_.peer_away.count();
    p.grace_ms = settings_.peer_grace.count();
    p.sweep_ms = settings_.presence_interval.count();
    return p;
}

// ---- HTTP and the door ----------------------------------------------------------------------

asio::awaitable<net::http_response> service::on_http(net::http_request req) {
    net::http_response res;
    if (req.method != "GET") {
        res.status = 405;
        res.headers["Allow"] = "GET";
        res.body = R"({"error":"INVALID_ARGUMENT","message":"Only GET is served here."})";
    } else if (req.path == "/healthz") {
        res.body = R"({"status":"ok"})";
    } else if (req.path == "/readyz") {
        // not ready while Redis is unreachable, nor until every chat has caught up after it
        const bool settled = recovery_ && recovery_->settled();
        bool ready = redis_->connected() && chat_->connected() && events_->connected() && writes_->connected() &&
                     settled;
        auto state = [](std::string_view name, bool up) {
            return std::string(R"(,")") + std::string(name) + R"(":")" + (up ? "up" : "down") + "\"";
        };
        res.status = ready ? 200 : 503;
        res.body = ready ? R"({"status":"ready"})"
                         : std::string(R"({"status":"not ready")") + state("redis", redis_->connected()) +
                               (own_chat_ ? state("chat", chat_->connected()) : std::string()) +
                               state("events", events_->connected()) +
                               (writes_ != chat_ ? state("writes", writes_->connected()) : std::string()) +
                               R"(,"recovered":)" + (settled ? "true" : "false") + "}";
    } else if (req.path == "/metrics") {
        res.content_type = "text/plain; version=0.0.4";
        res.body = metrics_.render();
    } else {
        res = refuse(404, "NOT_FOUND", "No such page.");
    }
    co_return res;
}

asio::awaitable<std::optional<net::http_response>> service::on_upgrade(const net::http_request& req) {
    if (req.path != "/v1/relay") co_return refuse(404, "NOT_FOUND", "The relay's WebSocket is at /v1/relay.");
    // a ticket in a URL is in the logs of every proxy on the way: it goes in hello
    if (req.query.count("ticket"))
        co_return refuse(400, "INVALID_ARGUMENT",
                         "Send the relay ticket in hello, not in the URL (proxies and servers log URLs).");
    co_return std::nullopt;
}

void service::on_open(std::shared_ptr<net::connection> c) {
    auto p = std::make_shared<participant>();
    p->conn = c;
    p->conn_id = node_ + ":" + std::to_string(c->id());
    {
        std::lock_guard lock(mutex_);
        by_conn_[c->id()] = p;
    }
    if (settings_.hello_timeout.count() == 0) return;
    // a connection with no valid ticket in time is closed: it is bound to no chat
    net::close_unless_in_time(
        ioc_, c, settings_.hello_timeout,
        [weak_self = weak_from_this()](const net::connection& conn) {
            auto self = weak_self.lock();
            auto p = self ? self->by_connection(conn.id()) : nullptr;
            return p && !p->admitted;
        },
        "no hello with a ticket within " + std::to_string(settings_.hello_timeout.count()) + " ms");
}

asio::awaitable<std::optional<RelayServerMessage>> service::admit(participant_ptr p, const std::string& t) {
    if (t.empty())
        co_return error_reply<RelayServerMessage>(
            v1::UNAUTHENTICATED, "Say hello with the relay ticket the matchmaker gave you (hello.ticket).");
    ticket::claims c;
    const auto verdict = ticket::verify(settings_.ticket_secret, t, store_.now_ms(), c);
    if (verdict == ticket::verdict::expired)
        co_return error_reply<RelayServerMessage>(
            v1::UNAUTHENTICATED, "That relay ticket has expired; reconnect to the matchmaker for a new one.");
    if (verdict != ticket::verdict::ok)
        co_return error_reply<RelayServerMessage>(v1::UNAUTHENTICATED, "That is not a valid relay ticket.");
    if (!co_await store_.use_ticket(c.session_id, crypto::sha256_hex(t), c.expires_unix_ms - store_.now_ms()))
        co_return error_reply<RelayServerMessage>(
            v1::UNAUTHENTICATED,
            "That relay ticket was already used; reconnect to the matchmaker for a new one (or use the last "
            "welcome's next_ticket).");
    p->session = c.session_id;
    p->role = c.who == ticket::role::seeker ? 's' : 'l';
    p->admitted = true;
    co_return std::nullopt;
}

void service::on_close(std::shared_ptr<net::connection> c) {
    participant_ptr p;
    {
        std::lock_guard lock(mutex_);
        auto it = by_conn_.find(c->id());
        if (it == by_conn_.end()) return;
        p = it->second;
        by_conn_.erase(it);
        auto side = by_side_.find({p->session, p->role});
        if (side != by_side_.end() && side->second == p) by_side_.erase(side);
    }
    if (!p->greeted || stopped_) return;
    asio::co_spawn(ioc_, [self = shared_from_this(), p]() -> asio::awaitable<void> {
        try {
            co_await self->store_.gone(p->session, p->role, p->conn_id);
        } catch (const std::exception& e) {
            spdlog::debug("relay: could not record a closed connection: {}", e.what());
        }
    }, asio::detached);
}

// ---- WebSocket ------------------------------------------------------------------------------

asio::awaitable<void> service::on_message(std::shared_ptr<net::connection> c, std::string data, bool binary) {
    auto p = by_connection(c->id());
    if (!p) co_return;
    auto fmt = binary ? codec::format::binary : codec::format::json;
    RelayClientMessage m;
    std::string why;
    if (!codec::decode(data, fmt, m, why)) {
        metrics_.counter("warmline_relay_bad_frames_total", "Frames that could not be parsed").fetch_add(1);
        c->send(codec::encode(error_reply<RelayServerMessage>(v1::MALFORMED_FRAME, why), fmt), binary);
        if (++p->bad_frames >= settings_.max_bad_frames) c->close(1008, "too many malformed frames");
        co_return;
    }
    if (!p->greeted) p->format = fmt;
    RelayServerMessage reply;
    bool caught_up_needed = false;
    if (!p->bucket.take(store_.now_ms(), settings_.rate_burst, settings_.rate_per_second)) {
        reply = error_reply<RelayServerMessage>(v1::RATE_LIMITED, "You're sending very fast; please slow down for a moment.");
    } else if (m.request_id().empty() || m.request_id().size() > 64) {
        reply = error_reply<RelayServerMessage>(v1::INVALID_ARGUMENT, "Every request needs a request_id of 1 to 64 characters.");
    } else if (!p->greeted && m.body_case() != RelayClientMessage::kHello &&
               m.body_case() != RelayClientMessage::kPing) {
        reply = error_reply<RelayServerMessage>(v1::UNAUTHENTICATED, "Start with hello, giving your public key for this chat.");
    } else {
        try {
            reply = co_await handle(p, m);
            caught_up_needed = m.body_case() == RelayClientMessage::kHello && reply.has_welcome();
        } catch (const redis::out_of_memory&) {  // at maxmemory (noeviction): nothing stored; sent again
            spdlog::error("relay: Redis is full (maxmemory): a request was refused");
            reply = error_reply<RelayServerMessage>(v1::UNAVAILABLE, "The relay is out of room for a moment. Please try again shortly.");
        } catch (const redis::unavailable&) {
            reply = error_reply<RelayServerMessage>(v1::UNAVAILABLE, "The relay can't reach its database for a moment. Please try again shortly.");
        } catch (const std::exception& e) {
            spdlog::error("relay: request failed: {}", e.what());
            reply = error_reply<RelayServerMessage>(v1::INTERNAL, "Something went wrong on our side. Please try again.");
        }
    }
    reply.set_request_id(m.request_id());
    if (reply.has_error())
        metrics_.counter("warmline_relay_errors_total", "Errors returned to clients",
                         "code=\"" + v1::ErrorCode_Name(reply.error().code()) + "\"").fetch_add(1);
    push(p, reply);
    if (p->ending) c->close(1000, "chat ended");
    // its kick may still be on its way: a connection refused as taken over goes now
    if (p->taken_over) c->close(4001, "resumed on another connection");
    // after the welcome: whether the other side is away, then everything of theirs the client
    // does not have yet
    if (caught_up_needed && p->peer_away_since > 0) {
        RelayServerMessage away;
        away.mutable_peer_presence()->set_present(false);
        away.mutable_peer_presence()->set_away_since_unix_ms(std::exchange(p->peer_away_since, 0));
        push(p, away);
    }
    if (caught_up_needed) co_await catch_up(p);
}

asio::awaitable<RelayServerMessage> service::handle(participant_ptr p, const RelayClientMessage& m) {
    using B = RelayClientMessage::BodyCase;
    switch (m.body_case()) {
    case B::kPing: {
        RelayServerMessage r;
        r.mutable_pong();
        co_return r;
    }
    case B::kHello: co_return co_await hello(p, m.hello());
    case B::kSend: co_return co_await send_message(p, m.send());
    case B::kSkip: co_return co_await skip(p, m.skip());
    case B::kReceived: {
        auto r = co_await store_.received(p->session, p->role, m.received().through());
        co_return r ? ok_reply<RelayServerMessage>() : refusal_reply<RelayServerMessage>(r.error);
    }
    case B::kTyping: {
        std::string on = m.typing().typing() ? "1" : "0";
        auto r = co_await store_.signal(p->session, p->role, "typing", std::move(on));
        co_return r ? ok_reply<RelayServerMessage>() : refusal_reply<RelayServerMessage>(r.error);
    }
    case B::kRead: {
        auto r = co_await store_.signal(p->session, p->role, "read", std::to_string(m.read().through()));
        co_return r ? ok_reply<RelayServerMessage>() : refusal_reply<RelayServerMessage>(r.error);
    }
    case B::kEnd: {
        p->ending = true;  // the ChatEnded push may overtake the reply: close only after it
        auto r = co_await store_.end(p->session, p->role);
        if (!r) p->ending = false;
        co_return r ? ok_reply<RelayServerMessage>() : refusal_reply<RelayServerMessage>(r.error);
    }
    default: co_return error_reply<RelayServerMessage>(v1::INVALID_ARGUMENT, "The message has no request in it (e.g. \"send\": {...}).");
    }
}

asio::awaitable<RelayServerMessage> service::hello(participant_ptr p, const v1::RelayHello& m) {
    if (m.public_key().size() != 32)
        co_return error_reply<RelayServerMessage>(v1::INVALID_ARGUMENT, "public_key must be the 32 bytes of an X25519 public key.");
    // the first hello binds the connection to the ticket's chat side (and uses the ticket up)
    if (!p->admitted)
        if (auto refused = co_await admit(p, m.ticket())) co_return std::move(*refused);
    // counted until this side is in by_side_ (or refused): see recover()
    struct in_flight {
        service& s;
        explicit in_flight(service& svc) : s(svc) {
            ++s.hellos_in_flight_;
            ++s.hellos_begun_;
        }
        ~in_flight() {
            if (--s.hellos_in_flight_ == 0) s.hellos_done_->cancel();
        }
    } counted(*this);
    auto r = co_await store_.hello(p->session, p->role, node_, p->conn_id, m.public_key(), settings_.node_lease.count());
    if (!r) co_return refusal_reply<RelayServerMessage>(r.error);
    participant_ptr older;
    {
        std::lock_guard lock(mutex_);
        auto& slot = by_side_[{p->session, p->role}];
        if (slot && slot != p) older = slot;
        slot = p;
    }
    // another connection here for the same side (e.g. a second tab) yields to the newest
    if (older)
        if (auto c = older->conn.lock()) c->close(4001, "resumed on another connection");
    p->greeted = true;
    p->forwarded = m.received_through();
    // The other side's key event may have come between hello.lua and the registration above,
    // found nobody here and been dropped; its hello had finished by then, so a read now sees
    // the key, and one that comes during the read is kept for the welcome (on_node_event).
    // Messages in that gap come with the catch-up after the welcome.
    std::string peer_key = r.value->peer_public_key;
    if (peer_key.empty()) peer_key = co_await store_.peer_key(p->session, p->role);
    if (peer_key.empty()) peer_key = std::move(p->early_peer_key);
    p->has_peer_key = !peer_key.empty();
    p->peer_away_since = r.value->peer_away_since;
    p->welcomed = true;
    RelayServerMessage out;
    auto* w = out.mutable_welcome();
    w->set_session_id(p->session);
    w->set_role(role_of(p->role));
    w->set_sent_through(r.value->sent_through);
    w->set_peer_public_key(peer_key);
    w->set_max_ciphertext_bytes(static_cast<std::uint32_t>(settings_.max_ciphertext));
    w->set_peer_received_through(r.value->peer_received_through);
    w->set_next_ticket(ticket::sign(settings_.ticket_secret,
                                    ticket::claims{p->session, p->role == 's' ? ticket::role::seeker : ticket::role::listener,
                                                   store_.now_ms() + settings_.ticket_ttl.count()}));
    co_return out;
}

asio::awaitable<RelayServerMessage> service::send_message(participant_ptr p, const v1::Send& m) {
    if (m.seq() == 0) co_return error_reply<RelayServerMessage>(v1::INVALID_ARGUMENT, "seq starts at 1.");
    if (m.ciphertext().empty()) co_return error_reply<RelayServerMessage>(v1::INVALID_ARGUMENT, "The message is empty.");
    if (m.ciphertext().size() > settings_.max_ciphertext)
        co_return error_reply<RelayServerMessage>(v1::MESSAGE_TOO_LARGE, "A message can be at most " +
                                                         std::to_string(settings_.max_ciphertext) +
                                                         " bytes once encrypted; split it up.");
    const std::string log = acks_ ? store::log_key(p->session, p->role) : std::string();
    const std::uint64_t link = acks_ ? acks_->link(log) : 0;  // the connection the write goes over
    auto r = co_await send_store_.send(p->session, p->role, m.seq(), m.ciphertext(), acks_ != nullptr, p->conn_id);
    if (!r) {
        p->taken_over = r.error.code == "PERMISSION_DENIED";
        if (r.error.code == "SEQ_CONFLICT")
            metrics_.counter("warmline_relay_seq_conflicts_total", "Resends refused for other content under a used seq")
                .fetch_add(1);
        co_return refusal_reply<RelayServerMessage>(r.error);
    }
    if (*r.value) {
        messages_total_.fetch_add(1, std::memory_order_relaxed);
        ciphertext_bytes_total_.fetch_add(m.ciphertext().size(), std::memory_order_relaxed);
    }
    // stored on the primary, and on its way to the other side; the Ack promises more
    if (acks_ && !co_await acks_->confirmed(log, link)) {
        acks_unreplicated_total_.fetch_add(1, std::memory_order_relaxed);
        co_return error_reply<RelayServerMessage>(
            v1::UNAVAILABLE, "Your message reached the relay but could not be copied to a standby database in time; "
                             "keep it and send it again shortly.");
    }
    RelayServerMessage out;
    out.mutable_ack()->set_seq(m.seq());
    co_return out;
}

asio::awaitable<RelayServerMessage> service::skip(participant_ptr p, const v1::Skip& m) {
    auto r = co_await send_store_.skip(p->session, p->role, m.through(), p->conn_id);
    if (!r) {
        p->taken_over = r.error.code == "PERMISSION_DENIED";
        co_return refusal_reply<RelayServerMessage>(r.error);
    }
    if (*r.value > 0) {
        const auto lost = m.through() - *r.value + 1;
        messages_skipped_total_.fetch_add(lost, std::memory_order_relaxed);
        spdlog::warn("relay: {} messages of one side were lost and skipped", lost);
    }
    co_return ok_reply<RelayServerMessage>();
}

service::participant_ptr service::current(const std::string& session, char role) {
    std::lock_guard lock(mutex_);
    auto it = by_side_.find({session, role});
    return it == by_side_.end() ? nullptr : it->second;
}

service::participant_ptr service::by_connection(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = by_conn_.find(id);
    return it == by_conn_.end() ? nullptr : it->second;
}

}  // namespace warmline::relay
