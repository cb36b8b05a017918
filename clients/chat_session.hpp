// One side of one end-to-end encrypted chat as the terminal client sees it: the relay WebSocket
// (ws:// or wss://, the ticket in the first hello, each welcome's next ticket kept for the next
// connection), a fresh X25519 key pair, the safety code, sealing
// and numbering what this side says, opening what the other side says in order and exactly once,
// and resuming after a dropped connection. What this side says is kept until the other side's
// receipt covers it, not only until the relay's Ack, so that it can be sent again if Redis
// lost it; what nobody has any more is passed over with a note on both sides. Part of the clients
// library (clients/): warmline-client, the soak's people and the relay's integration tests use it.
//
// Blocking and single-threaded, like ws_client underneath: one thread owns a chat_session and
// calls pump() often (it waits at most its timeout). Nothing here prints; the caller takes
// events() and shows them. Keys, tickets and ciphertext never appear in an event or a notice.
#pragma once

#include "clients/e2e.hpp"
#include "clients/ws_client.hpp"
#include "warmline/v1/relay.pb.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace warmline::client {

// Where a relay is, from the relay_url of ChatStarted ("ws://127.0.0.1:8091/v1/relay").
struct relay_address {
    bool tls = false;
    std::string host;
    std::uint16_t port = 0;
    std::string target;  // path (and query, if the URL has one)
};

// Throws std::invalid_argument on anything but ws:// or wss:// with a host.
inline relay_address parse_relay_url(const std::string& url) {
    relay_address a;
    std::string rest;
    if (url.rfind("ws://", 0) == 0) {
        rest = url.substr(5);
    } else if (url.rfind("wss://", 0) == 0) {
        a.tls = true;
        rest = url.substr(6);
    } else {
        throw std::invalid_argument("the relay address must start with ws:// or wss://");
    }
    const auto slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    a.target = slash == std::string::npos ? "/v1/relay" : rest.substr(slash);
    std::string port;
    if (!hostport.empty() && hostport.front() == '[') {  // [::1]:8091
        const auto close = hostport.find(']');
        if (close == std::string::npos) throw std::invalid_argument("the relay address has a broken IPv6 host");
        a.host = hostport.substr(1, close - 1);
        if (close + 1 < hostport.size() && hostport[close + 1] == ':') port = hostport.substr(close + 2);
    } else {
        const auto colon = hostport.rfind(':');
        a.host = hostport.substr(0, colon);
        if (colon != std::string::npos) port = hostport.substr(colon + 1);
    }
    if (a.host.empty()) throw std::invalid_argument("the relay address has no host");
    if (port.empty()) {
        a.port = a.tls ? 443 : 80;
    } else {
        int p = 0;
        for (char c : port) {
            if (c < '0' || c > '9' || p > 65535) throw std::invalid_argument("the relay address has a bad port");
            p = p * 10 + (c - '0');
        }
        if (p <= 0 || p > 65535) throw std::invalid_argument("the relay address has a bad port");
        a.port = static_cast<std::uint16_t>(p);
    }
    return a;
}

// What happened, for the caller to show. `text` is for a person (heard: the other side's words).
struct chat_event {
    enum class kind {
        connected,        // welcomed by the relay (again, after a drop)
        peer_joined,      // both keys known: safety_code() is ready
        heard,            // the other side said `text`
        peer_typing,      // `typing` says whether they are
        notice,           // something worth telling the person, in `text`
        connection_lost,  // will reconnect by itself; `text` says when
        ticket_expired,   // cannot reconnect without a fresh ticket (renew_ticket)
        replaced,         // this side joined from another connection; this one stops
        ended,            // the chat is over; `text` says how
    };
    kind what;
    std::string text;
    bool typing = false;
    // connection_lost: the close code the relay sent (1001: it is shutting down), 0 if none
    std::uint16_t close_code = 0;
};

// A sentence for the end of a chat, as the person on side `me` should read it.
inline std::string describe_end(v1::Role me, const v1::ChatEnded& e) {
    if (e.reason() == "idle") return "The chat ended because nobody wrote for a while. Take care.";
    if (e.reason() == "expired") return "The chat reached its time limit and ended. Take care.";
    if (e.reason() == "peer_lost") {
        if (e.lost() == me && me == v1::LISTENER)
            return "This chat was on a device of yours that lost its connection, so it has ended. The person is "
                   "back at the front of the line.";
        if (e.lost() == me) return "This chat's connection from here was lost for too long, so it has ended.";
        if (e.requeued())
            return "Your listener's connection was lost. You are back at the front of the line, and we are finding "
                   "someone for you now.";
        return "The other person lost their connection and did not come back, so the chat has ended.";
    }
    if (e.ended_by() == me) return "You ended the chat. Thank you for talking.";
    if (e.ended_by() == v1::SEEKER || e.ended_by() == v1::LISTENER)
        return "The other person ended the chat. Thank you for talking.";
    return "The chat has ended.";
}

class chat_session {
public:
    struct options {
        net::ws_client::tls_trust trust;  // wss: how the relay's certificate is checked
        std::chrono::milliseconds connect_timeout{3000};
        std::chrono::milliseconds first_retry{250};
        std::chrono::milliseconds max_retry{8000};
        std::chrono::milliseconds resend_after_refusal{1000};
    };

    enum class state {
        connecting,      // no relay connection yet; trying (again) when the backoff allows
        greeting,        // connected, hello sent, waiting for the welcome
        open,            // welcomed
        ticket_expired,  // the relay refused the ticket; renew_ticket() to go on
        replaced,        // another connection of this side took over (close 4001)
        ended,           // the chat is over
        failed,          // cannot take part (another device with other keys holds this side, or a bad peer key)
    };

    // role: this side (SEEKER or LISTENER). Connects on the first pump(). Throws
    // std::invalid_argument on a bad relay_url or role.
    chat_session(v1::Role role, std::string session_id, const std::string& relay_url, std::string ticket)
        : chat_session(role, std::move(session_id), relay_url, std::move(ticket), options{}) {}
    chat_session(v1::Role role, std::string session_id, const std::string& relay_url, std::string ticket,
                 options opts)
        : role_(role),
          session_id_(std::move(session_id)),
          relay_(parse_relay_url(relay_url)),
          ticket_(std::move(ticket)),
          opts_(std::move(opts)),
          keys_(e2e::generate_keypair()),
          retry_delay_(opts_.first_retry),
          jitter_(std::random_device{}()) {
        if (role_ != v1::SEEKER && role_ != v1::LISTENER)
            throw std::invalid_argument("a chat side is a seeker or a listener");
        if (session_id_.empty()) throw std::invalid_argument("a chat needs its session id");
    }
    chat_session(const chat_session&) = delete;
    chat_session& operator=(const chat_session&) = delete;

    // Connect or reconnect when due, read what the relay sends (waiting up to `timeout` for the
    // first message), and send what is owed: resends, receipts. Never throws for the network.
    void pump(std::chrono::milliseconds timeout) {
        if (finished() || state_ == state::ticket_expired) {
            std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(20)));
            return;
        }
        if (state_ == state::connecting) {
            const auto now = clock::now();
            if (now < retry_at_) {
                std::this_thread::sleep_until(std::min(now + timeout, retry_at_));
                return;
            }
            connect();
            if (state_ != state::greeting) return;
        }
        try {
            auto wait = timeout;
            // after the first message, take whatever else is already here, then answer it once
            for (int n = 0; n < 256 && is_connected(); ++n) {
                auto m = ws_.read(wait);
                if (!m) break;
                handle_frame(m->data);
                wait = std::chrono::milliseconds(1);
            }
            if (state_ == state::open) flush();
        } catch (const std::exception&) {
            lost_connection();
        }
    }

    // Say one line. Sealed and sent at once when the other side's key is known; until then kept
    // here as plaintext. False (and a notice) if it cannot be said: the chat is over, or the text
    // is longer than the relay takes.
    bool say(const std::string& text) {
        if (finished()) {
            note("This chat has ended; that was not sent.");
            return false;
        }
        if (text.size() + e2e::tag_size > max_ciphertext_) {
            note("That message is too long (at most " + std::to_string(max_ciphertext_ - e2e::tag_size) +
                 " bytes); please split it up.");
            return false;
        }
        waiting_for_key_.push_back(text);
        seal_waiting();
        if (state_ == state::open && !resend_at_) send_kept_from(next_unsent_);
        return true;
    }

    // Tell the other side whether this side is typing. Dropped when not connected.
    void typing(bool on) {
        if (state_ != state::open) return;
        v1::RelayClientMessage m;
        m.mutable_typing()->set_typing(on);
        send(std::move(m), request_kind::other);
    }

    // Ask the relay to end the chat; the ended event follows. False when not connected, in which
    // case the caller ends it through the matchmaker instead (EndChat there ends it for both).
    bool end() {
        if (state_ != state::open && state_ != state::greeting) return false;
        v1::RelayClientMessage m;
        m.mutable_end();
        send(std::move(m), request_kind::end);
        return state_ == state::open || state_ == state::greeting;
    }

    // The chat ended elsewhere (the matchmaker said so): stop, with one ended event at most.
    void mark_ended(const std::string& how) {
        if (state_ == state::ended) return;
        finish(state::ended, chat_event::kind::ended, how);
    }

    // A fresh ticket for this chat (from the matchmaker's ChatStarted after a resume), for the
    // next connection; if the old one had expired or was used up, reconnects now. A ticket this
    // session already opened a connection with is ignored: each admits one connection.
    void renew_ticket(std::string ticket) {
        if (ticket.empty() || std::find(spent_.begin(), spent_.end(), ticket) != spent_.end()) return;
        ticket_ = std::move(ticket);
        if (state_ == state::ticket_expired) {
            state_ = state::connecting;
            retry_at_ = clock::now();
            retry_delay_ = opts_.first_retry;
        }
    }

    // Drop the TCP connection without a close frame, as a lost network would. The next pump()
    // notices and resumes. For tests and for trying resume by hand.
    void drop_connection() {
        if (is_connected()) ws_.abort();
    }

    // Everything that happened since the last call, oldest first.
    std::vector<chat_event> events() { return std::exchange(events_, {}); }
    // Every line heard from the other side so far, in order.
    const std::vector<std::string>& heard() const { return heard_; }
    // Six groups of five digits once both keys are known.
    std::optional<std::string> safety_code() const { return safety_code_; }

    state current() const { return state_; }
    bool finished() const { return state_ == state::ended || state_ == state::replaced || state_ == state::failed; }
    bool secure() const { return sender_.has_value(); }
    const std::string& session_id() const { return session_id_; }
    v1::Role role() const { return role_; }
    // Lines said but not yet stored by the relay (sealed and unacknowledged, or waiting for a key).
    std::size_t pending() const {
        return static_cast<std::size_t>(std::count_if(kept_.begin(), kept_.end(),
                                                      [&](const sealed_line& l) { return l.seq > stored_through_; })) +
               waiting_for_key_.size();
    }
    // Lines said that the other side has not confirmed yet (kept for a resend).
    std::size_t unreceived() const { return kept_.size() + waiting_for_key_.size(); }
    // The highest sequence number of the other side's messages shown here.
    std::uint64_t delivered() const { return receiver_ ? receiver_->delivered() : 0; }
    // The relay has this side's messages up to this sequence number (its Ack, or the welcome's
    // sent_through after a resume, which can be lower if Redis lost its last writes).
    std::uint64_t acknowledged_through() const { return stored_through_; }
    // How many times the relay welcomed this side (1 + successful resumes).
    int welcomes() const { return welcomes_; }

private:
    using clock = std::chrono::steady_clock;
    enum class request_kind { hello, send, skip, received, end, other };

    struct sealed_line {
        std::uint64_t seq;
        std::string ciphertext;
        std::uint64_t lost_from = 0;  // in early_: the other side's messages lost_from..seq were lost
    };

    bool is_connected() const { return state_ == state::greeting || state_ == state::open; }

    void note(std::string text) { events_.push_back({chat_event::kind::notice, std::move(text)}); }

    // The ticket goes in hello, so nothing about the connection (its URL, a refusal) carries a
    // secret, and the relay refuses no ticket before the upgrade: a failure here is the network
    // or a full or stopping relay, and is tried again.
    void connect() {
        try {
            if (relay_.tls) {
                ws_.connect_tls(relay_.host, relay_.port, relay_.target, opts_.trust, {}, opts_.connect_timeout);
            } else {
                ws_.connect(relay_.host, relay_.port, relay_.target, {}, opts_.connect_timeout);
            }
        } catch (const std::exception& e) {
            schedule_retry(std::string("Can't reach the relay (") + e.what() + ")");
            return;
        }
        requests_.clear();  // nothing asked on an earlier connection will be answered
        hello_sent_ = false;
        say_hello();
    }

    // Hello on a new connection, or again on this one when the relay disagrees about where the
    // chat stands (a send refused with WRONG_STATE: Redis lost its last writes): the welcome says.
    void say_hello() {
        state_ = state::greeting;
        resend_at_.reset();
        v1::RelayClientMessage m;
        m.mutable_hello()->set_public_key(as_string(keys_.public_key));
        m.mutable_hello()->set_received_through(delivered());
        // needed by the first hello of a connection, which uses it up; a later one's is ignored
        m.mutable_hello()->set_ticket(ticket_);
        if (!hello_sent_) {
            hello_sent_ = true;
            spent_.push_back(ticket_);
            if (spent_.size() > 8) spent_.pop_front();
        }
        send(std::move(m), request_kind::hello);
    }

    void finish_ticket() {
        state_ = state::ticket_expired;
        events_.push_back({chat_event::kind::ticket_expired,
                           "The relay ticket for this chat has expired; a fresh one comes from the matchmaker."});
    }

    void finish(state s, chat_event::kind k, std::string text) {
        state_ = s;
        if (ws_.is_open()) ws_.close();
        events_.push_back({k, std::move(text)});
    }

    void schedule_retry(const std::string& why, std::uint16_t close_code = 0) {
        state_ = state::connecting;
        std::uniform_int_distribution<long> spread(0, retry_delay_.count() / 4);
        const auto delay = retry_delay_ + std::chrono::milliseconds(spread(jitter_));
        retry_at_ = clock::now() + delay;
        retry_delay_ = std::min(retry_delay_ * 2, opts_.max_retry);
        events_.push_back({chat_event::kind::connection_lost,
                           why + "; trying again in " + std::to_string((delay.count() + 999) / 1000) + " s.", false,
                           close_code});
    }

    void lost_connection() {
        if (!is_connected()) return;  // already handled
        const auto code = ws_.close_code();
        if (code == 4001) {
            finish(state::replaced, chat_event::kind::replaced,
                   "This chat was opened from another window; this one has stopped.");
        } else {
            schedule_retry("Lost the connection to the relay", code);
        }
    }

    void send(v1::RelayClientMessage m, request_kind k, std::uint64_t seq = 0) {
        const std::string id = "r" + std::to_string(++next_request_);
        m.set_request_id(id);
        requests_[id] = {k, seq};
        try {
            ws_.send_binary(m.SerializeAsString());
        } catch (const std::exception&) {
            lost_connection();
        }
    }

    void handle_frame(const std::string& data) {
        v1::RelayServerMessage m;
        if (!m.ParseFromString(data)) return;  // nothing a person could act on
        std::pair<request_kind, std::uint64_t> asked{request_kind::other, 0};
        if (!m.request_id().empty()) {
            auto it = requests_.find(m.request_id());
            if (it != requests_.end()) {
                asked = it->second;
                requests_.erase(it);
            }
        }
        switch (m.body_case()) {
        case v1::RelayServerMessage::kWelcome: on_welcome(m.welcome()); break;
        case v1::RelayServerMessage::kPeerKey: on_peer_key(m.peer_key().public_key()); break;
        case v1::RelayServerMessage::kAck: stored_through_ = std::max(stored_through_, m.ack().seq()); break;
        case v1::RelayServerMessage::kPeerReceived: on_peer_received(m.peer_received().through()); break;
        case v1::RelayServerMessage::kDeliver:
            if (receiver_) {
                on_deliver(m.deliver().seq(), m.deliver().ciphertext());
            } else if (early_.size() < 1000) {
                early_.push_back({m.deliver().seq(), m.deliver().ciphertext()});  // opened once keys exist
            }
            break;
        case v1::RelayServerMessage::kLost:
            if (receiver_) {
                on_lost(m.lost().through());
            } else if (early_.size() < 1000) {
                early_.push_back({m.lost().through(), {}, m.lost().first()});
            }
            break;
        case v1::RelayServerMessage::kPeerTyping:
            events_.push_back({chat_event::kind::peer_typing, {}, m.peer_typing().typing()});
            break;
        case v1::RelayServerMessage::kEnded: on_ended(m.ended()); break;
        case v1::RelayServerMessage::kPeerPresence:
            note(m.peer_presence().present() ? "They are back."
                                             : "The other person's connection dropped. Waiting for them to come back…");
            break;
        case v1::RelayServerMessage::kService:
            note(m.service().degraded() ? "The relay lost its database for a moment; reconnecting, nothing is lost."
                                        : "The relay is back.");
            break;
        case v1::RelayServerMessage::kError: on_error(asked.first, m.error()); break;
        default: break;  // ok, pong, read receipts
        }
    }

    void on_welcome(const v1::RelayWelcome& w) {
        state_ = state::open;
        if (!w.next_ticket().empty()) ticket_ = w.next_ticket();  // this connection's is used up
        ++welcomes_;
        retry_delay_ = opts_.first_retry;
        if (w.max_ciphertext_bytes() > e2e::tag_size) max_ciphertext_ = w.max_ciphertext_bytes();
        events_.push_back({chat_event::kind::connected, welcomes_ == 1 ? "Connected to the relay." : "Reconnected."});
        // what the relay has needs no resend; this can be less than it acknowledged, if Redis
        // lost its last writes
        stored_through_ = w.sent_through();
        on_peer_received(w.peer_received_through());
        if (!w.peer_public_key().empty()) on_peer_key(w.peer_public_key());
        // what the relay lacks and this side let go too (or never had) is passed over: the other
        // side is told, and so is this one, unless the other side's receipt had covered it
        const std::uint64_t next = sender_ ? sender_->next_seq() : 1;
        const std::uint64_t first_kept = kept_.empty() ? next : kept_.front().seq;
        if (first_kept > stored_through_ + 1) {
            v1::RelayClientMessage m;
            m.mutable_skip()->set_through(first_kept - 1);
            send(std::move(m), request_kind::skip);
            const std::uint64_t unseen = first_kept - 1 - std::max(stored_through_, peer_received_);
            if (unseen > 0)
                note(unseen == 1 ? "One of your messages could not be delivered: it was lost in a failure on our side."
                                 : std::to_string(unseen) +
                                       " of your messages could not be delivered: they were lost in a failure on our side.");
            stored_through_ = first_kept - 1;  // the relay takes the skip before the resends after it
        }
        // the rest goes again, same seq, same bytes
        send_kept_after(stored_through_);
        receipt_sent_ = 0;  // say again what this side has, in case the last receipt was lost
    }

    void on_peer_key(const std::string& raw) {
        if (raw.size() != 32) {
            note("The other side sent a key that is not valid; the chat cannot be encrypted.");
            return;
        }
        e2e::key32 peer{};
        std::copy(raw.begin(), raw.end(), peer.begin());
        if (peer_key_) {
            if (*peer_key_ != peer)
                note("The relay offered a different key for the other side; it was ignored. Compare safety codes.");
            return;
        }
        try {
            auto shared = e2e::shared_secret(keys_.private_key, peer);
            auto k = e2e::derive_keys(shared, session_id_);
            std::fill(shared.begin(), shared.end(), 0);
            const bool seeker = role_ == v1::SEEKER;
            sender_.emplace(seeker ? k.seeker_to_listener : k.listener_to_seeker, session_id_,
                            seeker ? e2e::direction::seeker_to_listener : e2e::direction::listener_to_seeker);
            receiver_.emplace(seeker ? k.listener_to_seeker : k.seeker_to_listener, session_id_,
                              seeker ? e2e::direction::listener_to_seeker : e2e::direction::seeker_to_listener);
        } catch (const e2e::error&) {
            finish(state::failed, chat_event::kind::notice,
                   "The other side's key is not valid, so this chat cannot be made private. Please end it.");
            return;
        }
        peer_key_ = peer;
        safety_code_ = e2e::safety_code(keys_.public_key, peer);
        events_.push_back({chat_event::kind::peer_joined, *safety_code_});
        for (auto& d : std::exchange(early_, {})) {
            if (d.lost_from) on_lost(d.seq);
            else on_deliver(d.seq, d.ciphertext);
        }
        seal_waiting();
    }

    // The other side has this side's messages up to `through`: they need no resend any more.
    void on_peer_received(std::uint64_t through) {
        peer_received_ = std::max(peer_received_, through);
        while (!kept_.empty() && kept_.front().seq <= peer_received_) {
            kept_.pop_front();
            if (next_unsent_ > 0) --next_unsent_;
        }
    }

    void on_lost(std::uint64_t through) {
        const std::uint64_t missed = receiver_->pass_over(through);
        if (missed == 1) {
            note("A message from the other person could not be delivered: it was lost in a failure on our side.");
        } else if (missed > 1) {
            note(std::to_string(missed) +
                 " messages from the other person could not be delivered: they were lost in a failure on our side.");
        }
    }

    void on_deliver(std::uint64_t seq, const std::string& ciphertext) {
        auto r = receiver_->accept(seq, e2e::bytes(ciphertext.begin(), ciphertext.end()));
        if (r.st == e2e::receiver::status::delivered) {
            heard_.push_back(r.plaintext);
            events_.push_back({chat_event::kind::heard, std::move(r.plaintext)});
        } else if (r.st == e2e::receiver::status::forged) {
            note("A message arrived that was not sealed by the other side; it was dropped.");
        }
        // duplicates and out-of-order ones change nothing: the relay sends the log again in order
    }

    void on_ended(const v1::ChatEnded& e) { finish(state::ended, chat_event::kind::ended, describe_end(role_, e)); }

    void on_error(request_kind k, const v1::Error& e) {
        if (k == request_kind::hello) {
            if (e.code() == v1::WRONG_STATE) {
                finish(state::failed, chat_event::kind::notice,
                       "This chat is open on another device (another window, or an earlier run of this client, "
                       "still connected), with other keys, so this client cannot take part.");
            } else if (e.code() == v1::UNAUTHENTICATED) {
                // expired, or used up (a welcome's next ticket that never arrived): the matchmaker
                // gives a fresh one
                ws_.abort();
                finish_ticket();
            } else if (e.code() == v1::NOT_FOUND) {
                // the relay says how it ended when it has more to say (e.g. a lost device)
                finish(state::ended, chat_event::kind::ended,
                       e.message() == "This chat has ended." || e.message().empty() ? "This chat has ended." : e.message());
            } else {
                ws_.abort();
                schedule_retry("The relay could not take us in (" + e.message() + ")");
            }
            return;
        }
        if (k == request_kind::send || k == request_kind::skip) {
            if (e.code() == v1::NOT_FOUND) {
                finish(state::ended, chat_event::kind::ended, "This chat has ended.");
                return;
            }
            if (e.code() == v1::SEQ_CONFLICT) {
                // another copy of this side sealed other words under our numbers: never resend
                finish(state::failed, chat_event::kind::notice,
                       "This chat is being written from another window with the same keys; this one has stopped "
                       "so that no two messages share a number.");
                return;
            }
            if (e.code() == v1::PERMISSION_DENIED) return;  // taken over: the relay closes with 4001
            if (state_ != state::open) return;  // a hello is out: its welcome settles what to send
            if (e.code() == v1::WRONG_STATE) {
                // the relay's count differs from ours (Redis lost its last writes): ask again
                say_hello();
                return;
            }
            // refused now (too fast, the other side far behind, not yet on a replica): all of it
            // again shortly; the relay acknowledges what it already has without storing it twice
            if (!resend_at_) note("The relay asked us to wait (" + e.message() + "); your messages will follow.");
            resend_at_ = clock::now() + opts_.resend_after_refusal;
            next_unsent_ = kept_.size();
            return;
        }
        if (k == request_kind::received) return;  // the next receipt says it again
        note(e.message());
    }

    void seal_waiting() {
        if (!sender_) return;
        while (!waiting_for_key_.empty()) {
            auto s = sender_->seal(waiting_for_key_.front());
            waiting_for_key_.pop_front();
            kept_.push_back({s.seq, std::string(s.ciphertext.begin(), s.ciphertext.end())});
        }
    }

    // Send kept lines from index `from` on (they go in seq order; the relay takes them in the
    // order they arrive on one connection).
    void send_kept_from(std::size_t from) {
        next_unsent_ = std::min(from, kept_.size());
        for (std::size_t i = from; i < kept_.size() && state_ == state::open; ++i) {
            v1::RelayClientMessage m;
            m.mutable_send()->set_seq(kept_[i].seq);
            m.mutable_send()->set_ciphertext(kept_[i].ciphertext);
            send(std::move(m), request_kind::send, kept_[i].seq);
            next_unsent_ = i + 1;
        }
    }

    // Send the kept lines after seq `seq` (those the relay has not acknowledged).
    void send_kept_after(std::uint64_t seq) {
        std::size_t from = 0;
        while (from < kept_.size() && kept_[from].seq <= seq) ++from;
        send_kept_from(from);
    }

    void flush() {
        if (resend_at_ && clock::now() >= *resend_at_) {
            resend_at_.reset();
            send_kept_after(stored_through_);
        } else if (!resend_at_) {
            send_kept_from(next_unsent_);
        }
        if (state_ == state::open && receiver_ && receiver_->delivered() > receipt_sent_) {
            receipt_sent_ = receiver_->delivered();
            v1::RelayClientMessage m;
            m.mutable_received()->set_through(receipt_sent_);
            send(std::move(m), request_kind::received);
        }
    }

    static std::string as_string(const e2e::key32& k) { return std::string(k.begin(), k.end()); }

    v1::Role role_;
    std::string session_id_;
    relay_address relay_;
    std::string ticket_;
    std::deque<std::string> spent_;  // tickets a hello of this session carried (used up)
    bool hello_sent_ = false;        // on the current connection
    options opts_;
    e2e::keypair keys_;  // this chat's only key pair: the relay refuses another for this side

    net::ws_client ws_;
    state state_ = state::connecting;
    clock::time_point retry_at_{};
    std::chrono::milliseconds retry_delay_;
    std::minstd_rand jitter_;
    std::uint64_t next_request_ = 0;
    std::map<std::string, std::pair<request_kind, std::uint64_t>> requests_;
    int welcomes_ = 0;
    std::size_t max_ciphertext_ = 16384;

    std::optional<e2e::key32> peer_key_;
    std::optional<std::string> safety_code_;
    std::optional<e2e::sender> sender_;
    std::optional<e2e::receiver> receiver_;

    std::deque<std::string> waiting_for_key_;  // plaintext: said before the peer's key was known
    std::deque<sealed_line> kept_;             // sealed, not yet covered by the other side's receipt
    std::uint64_t stored_through_ = 0;         // the relay has this side's messages up to here (Ack, welcome)
    std::uint64_t peer_received_ = 0;          // ... and the other side up to here (PeerReceived)
    std::size_t next_unsent_ = 0;              // kept_[i] for i >= this not sent on this connection
    std::optional<clock::time_point> resend_at_;
    std::deque<sealed_line> early_;            // delivered before the peer's key was known
    std::uint64_t receipt_sent_ = 0;

    std::vector<std::string> heard_;
    std::vector<chat_event> events_;
};

}  // namespace warmline::client
