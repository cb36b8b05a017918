// The people of the soak, each a thread that behaves as a real client does: a seeker asks for a
// chat in its topic and language, keeps its place across dropped matchmaker connections with
// its resume token, sometimes gives up and cancels, talks, and leaves; a listener signs in,
// goes available and away now and then, accepts offers after a moment, carries up to two chats;
// a supervisor watches the dashboard feed. Chats go through chat_session (sealed, resumed on
// the relay, kept until the other side's receipt), and every line said and opened is booked in
// the ledger.
//
// One thread per person; what they share is the ledger (locked) and the run's flags (atomic).
#pragma once

#include "clients/chat_session.hpp"
#include "loadtest/lib/bench_common.hpp"
#include "loadtest/soak/ledger.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <atomic>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace warmline::soak {

namespace v1 = warmline::v1;
using bench::now_ms;
using namespace std::chrono_literals;

// What every person reads: where the matchmakers are, and where the run stands.
struct run_state {
    std::vector<std::string> matchmakers;  // ws://127.0.0.1:port/v1/ws
    std::atomic<bool> talking{true};       // false once the load stops: nobody says anything new
    std::atomic<bool> verify{false};       // waiting seekers check their place now
    std::atomic<bool> quit{false};
    std::atomic<int> verified{0};          // seekers that finished (left, or checked their place)
    double drain_limit_ms = 15000;         // an ender waits this long for its chat's lines to arrive
    ledger* book = nullptr;
};

// One matchmaker connection of a person, opened to a random matchmaker, again after a loss
// (50 ms, doubling to 2 s, as the web app does), with the sign-in or hello as its first message.
class mm_link {
public:
    mm_link(const run_state& run, std::uint64_t seed) : run_(run), rng_(seed) {}

    bool connected() const { return ws_ != nullptr; }
    // The request id of the first message (hello or sign-in) on the current connection.
    const std::string& first_id() const { return first_id_; }

    // Connect now if a retry is due; false if not connected afterwards.
    bool ensure(const std::function<v1::ClientMessage()>& first) {
        if (ws_) return true;
        if (now_ms() < retry_at_) return false;
        std::uniform_int_distribution<std::size_t> pick(0, run_.matchmakers.size() - 1);
        const auto u = client::parse_relay_url(run_.matchmakers[pick(rng_)]);
        auto ws = std::make_unique<net::ws_client>();
        try {
            ws->connect(u.host, u.port, u.target, {}, 2s);
            ws_ = std::move(ws);
            first_id_ = send(first());
            backoff_ = 50;
        } catch (const std::exception&) {
            ws_.reset();
            retry_at_ = now_ms() + backoff_;
            backoff_ = std::min(backoff_ * 2, 2000.0);
        }
        return ws_ != nullptr;
    }

    std::string send(v1::ClientMessage m) {
        const std::string id = "q" + std::to_string(++next_id_);
        m.set_request_id(id);
        if (!ws_) return id;
        try {
            ws_->send_binary(m.SerializeAsString(), 2s);
        } catch (const std::exception&) {
            lost();
        }
        return id;
    }

    // What arrived within `wait` (then whatever else is already there).
    std::vector<v1::ServerMessage> poll(std::chrono::milliseconds wait) {
        std::vector<v1::ServerMessage> out;
        if (!ws_) {
            std::this_thread::sleep_for(std::min(wait, 5ms));
            return out;
        }
        try {
            for (int n = 0; n < 64; ++n) {
                auto f = ws_->read(wait);
                if (!f) break;
                v1::ServerMessage m;
                if (m.ParseFromString(f->data)) out.push_back(std::move(m));
                wait = 0ms;
            }
        } catch (const std::exception&) {
            lost();
        }
        return out;
    }

    // Drop this connection and open a new one at once (a resume on purpose).
    void reopen() {
        if (ws_) ws_->close();
        ws_.reset();
        retry_at_ = 0;
    }

    void close() {
        if (ws_) ws_->close();
        ws_.reset();
    }

private:
    void lost() {
        ws_.reset();
        retry_at_ = now_ms() + backoff_;
        backoff_ = std::min(backoff_ * 2, 2000.0);
    }

    const run_state& run_;
    std::mt19937_64 rng_;
    std::unique_ptr<net::ws_client> ws_;
    double retry_at_ = 0;
    double backoff_ = 50;
    std::uint64_t next_id_ = 0;
    std::string first_id_;
};

// One side's part in one chat: its chat_session and its pacing.
class chat_side {
public:
    chat_side(const run_state& run, side me, const v1::ChatStarted& c, std::shared_ptr<chat_record> rec,
              std::uint64_t seed)
        : run_(run), me_(me), rec_(std::move(rec)), rng_(seed) {
        client::chat_session::options o;
        o.first_retry = 250ms;
        o.max_retry = 2000ms;
        s_ = std::make_unique<client::chat_session>(me == seeker_side ? v1::SEEKER : v1::LISTENER, c.session_id(),
                                                    c.relay_url(), c.relay_ticket(), o);
        next_say_ = now_ms() + pause();
    }

    const std::string& session() const { return rec_->session; }
    std::shared_ptr<chat_record> record() const { return rec_; }
    void renew_ticket(const std::string& t) { s_->renew_ticket(t); }
    void ended_elsewhere() { s_->mark_ended("ended (matchmaker)"); }
    bool done() const { return s_->finished(); }
    // The relay refused the ticket: the owner asks the matchmaker for a fresh one.
    bool wants_ticket() const { return s_->current() == client::chat_session::state::ticket_expired; }

    // Read and write this chat for up to `wait`; `end_via_matchmaker` ends it when the relay
    // cannot be asked.
    void step(std::chrono::milliseconds wait, const std::function<void(const std::string&)>& end_via_matchmaker) {
        s_->pump(wait);
        const double now = now_ms();
        for (auto& e : s_->events()) {
            if (e.what == client::chat_event::kind::heard) heard(e.text, now);
        }
        std::lock_guard l(rec_->m);
        if (s_->current() == client::chat_session::state::open) {
            if (!rec_->open_since[me_]) rec_->open_since[me_] = now;
        } else {
            rec_->open_since[me_].reset();
        }
        rec_->acked_through[me_] = std::max(rec_->acked_through[me_], s_->acknowledged_through());
        if (s_->finished()) {
            if (!rec_->ended) {
                rec_->ended = true;
                rec_->t_ended = now;
            }
            return;
        }
        // the ender closes the chat when its time comes, or when the run stops talking
        if (me_ == rec_->ender && !rec_->closing && now >= rec_->ends_at) {
            rec_->closing = true;
            rec_->closing_since = now;
        }
        if (me_ == rec_->ender && rec_->closing && !rec_->end_sent &&
            (rec_->drained() || now - rec_->closing_since > run_.drain_limit_ms)) {
            rec_->end_sent = true;
            end_retry_at_ = now + 5000;
            if (!s_->end()) end_via_matchmaker(rec_->session);
        } else if (rec_->end_sent && now > end_retry_at_ && end_retry_at_ > 0) {
            end_retry_at_ = now + 5000;
            end_via_matchmaker(rec_->session);
        }
        // say something now and then, once the other side is here
        if (!rec_->closing && run_.talking && s_->secure() && now >= next_say_) {
            next_say_ = now + pause();
            const auto idx = rec_->lines[me_].size() + 1;
            rec_->lines[me_].push_back({now});
            std::string text = "w" + std::to_string(idx) + "|";
            std::uniform_int_distribution<int> len(5, 300), letter('a', 'z');
            for (int i = len(rng_); i > 0; --i) text += static_cast<char>(letter(rng_));
            if (!s_->say(text)) rec_->lines[me_].pop_back();
        }
    }

private:
    // A person writes a line every 2 s on average (exponential gaps).
    double pause() { return std::exponential_distribution<double>(1.0 / 2000)(rng_); }

    void heard(const std::string& text, double now) {
        std::size_t idx = 0;
        for (std::size_t i = 1; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) idx = idx * 10 + (text[i] - '0');
        std::lock_guard l(rec_->m);
        auto& lines = rec_->lines[1 - me_];
        if (idx == 0 || idx > lines.size()) return;  // not one of ours: cannot happen
        auto& ln = lines[idx - 1];
        if (++ln.opened == 1) {
            ln.t_opened = now;
            run_.book->message_latency(now, now - ln.t_said);
        } else {
            ++rec_->duplicates;
        }
    }

    const run_state& run_;
    side me_;
    std::shared_ptr<chat_record> rec_;
    std::mt19937_64 rng_;
    std::unique_ptr<client::chat_session> s_;
    double next_say_ = 0;
    double end_retry_at_ = 0;
};

// Offer latency needs both ends: the seeker's request time and the listener's offer time; the
// side that learns of the chat second books it.
inline void book_offer_latency(ledger& book, chat_record& r) {
    if (r.t_request >= 0 && r.t_offer >= 0) {
        book.offer_latency(r.t_offer, r.t_offer - r.t_request);
        r.t_request = r.t_offer = -2;  // booked
    }
}

struct seeker_plan {
    std::string topic, language;
    double patience_ms = std::numeric_limits<double>::infinity();  // cancels after waiting this long
    double chat_ms = 15000;                                          // ends (or lets end) after this
    int ender = seeker_side;
    std::uint64_t seed = 0;
};

void run_seeker(run_state& run, seeker_plan plan);

struct listener_plan {
    std::string token;
    bool toggles = false;  // goes away now and then
    std::uint64_t seed = 0;
};

void run_listener(run_state& run, listener_plan plan);

struct supervisor_view {
    std::atomic<long long> snapshots{0};
    std::atomic<double> max_gap_s{0};
};

void run_supervisor(run_state& run, std::string token, supervisor_view& view, std::uint64_t seed);

}  // namespace warmline::soak
