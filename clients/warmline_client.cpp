// warmline-client: a small interactive terminal client for trying Warmline by hand, as a seeker
// or a listener. It speaks the JSON form of the matchmaker protocol and prints what the server
// sends (relay tickets hidden); once a chat starts it joins the relay and carries the chat,
// end-to-end encrypted (clients/chat_session.hpp), until either side ends it.
//   warmline-client [--url ws://127.0.0.1:8090/v1/ws] [--ca CA.pem | --insecure] seeker [--resume TOKEN]
//   warmline-client [--url ...] [--ca CA.pem | --insecure] listener --token TOKEN
// Over wss:// it checks certificates against the system's trust store (or --ca) and the host
// name, and says so; --insecure, for a local test server only, checks nothing and says that.
//
// One thread: it polls the matchmaker socket, the relay socket and stdin in turn with short
// timeouts. One chat at a time; a listener's further chats wait until the current one ends.
#include "common/codec.hpp"
#include "clients/ws_client.hpp"
#include "clients/chat_session.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using warmline::client::chat_event;
using warmline::client::chat_session;
using warmline::net::ws_client;
namespace v1 = warmline::v1;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

struct url_parts {
    bool tls = false;
    std::string host;
    std::uint16_t port = 0;
    std::string target;
};

url_parts parse_url(const std::string& url) {
    url_parts u;
    u.tls = url.rfind("wss://", 0) == 0;
    std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
    auto slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    u.target = slash == std::string::npos ? "/v1/ws" : rest.substr(slash);
    auto colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    u.port = static_cast<std::uint16_t>(std::stoi(hostport.substr(colon + 1)));
    return u;
}

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

int next_id = 0;
std::string request(const std::string& body) { return R"({"requestId":"c)" + std::to_string(++next_id) + "\"," + body + "}"; }

const char* seeker_help = R"(seeker commands:
  request TOPIC LANGUAGE [crisis] [prefer HANDLE]   ask for someone to talk to
  cancel                                           withdraw the request
  end SESSION                                      end the chat
  rate SESSION STARS [block] [comment words...]    after the chat
  rejoin                                           reconnect to the matchmaker
  quit
)";
const char* listener_help = R"(listener commands:
  available | away                 toggle availability
  accept OFFER | decline OFFER     answer an offer
  prefs TOPICS LANGUAGES MAX       narrow what you take now (comma lists, '-' for all)
  end SESSION                      end a chat
  rejoin                           reconnect to the matchmaker
  quit
)";
const char* chat_help = R"(in a chat, what you type is sent to the other person, end-to-end encrypted.
  /safety        show the safety code again (compare it with the other person)
  /end           end the chat
  /drop          drop the relay connection (to try resuming)
  /quit          leave this client
  /COMMAND ...   any matchmaker command above, e.g. /away
)";

std::string list_json(const std::string& csv) {
    if (csv == "-") return "[]";
    std::string out = "[";
    std::stringstream ss(csv);
    for (std::string x; std::getline(ss, x, ',');) out += (out.size() > 1 ? "," : "") + quoted(x);
    return out + "]";
}

// Turn a typed line into a request, or "" if it is not one.
std::string command(bool seeker, const std::string& line) {
    std::stringstream ss(line);
    std::vector<std::string> w;
    for (std::string x; ss >> x;) w.push_back(x);
    if (w.empty()) return "";
    if (seeker) {
        if (w[0] == "request" && w.size() >= 3) {
            std::string body = R"("requestChat":{"topic":)" + quoted(w[1]) + R"(,"language":)" + quoted(w[2]);
            for (std::size_t i = 3; i < w.size(); ++i) {
                if (w[i] == "crisis") body += R"(,"crisis":true)";
                if (w[i] == "prefer" && i + 1 < w.size()) body += R"(,"preferredListener":)" + quoted(w[++i]);
            }
            return request(body + "}");
        }
        if (w[0] == "cancel") return request(R"("cancelRequest":{})");
        if (w[0] == "end" && w.size() == 2) return request(R"("endChat":{"sessionId":)" + quoted(w[1]) + "}");
        if (w[0] == "rate" && w.size() >= 3) {
            bool block = false;
            std::string comment;
            for (std::size_t i = 3; i < w.size(); ++i) {
                if (w[i] == "block") block = true;
                else comment += (comment.empty() ? "" : " ") + w[i];
            }
            return request(R"("rateChat":{"sessionId":)" + quoted(w[1]) + R"(,"stars":)" + w[2] +
                           R"(,"blockListener":)" + (block ? "true" : "false") + R"(,"comment":)" + quoted(comment) + "}");
        }
        std::cout << seeker_help;
        return "";
    }
    if (w[0] == "available" || w[0] == "away")
        return request(R"("setAvailability":{"available":)" + std::string(w[0] == "available" ? "true" : "false") + "}");
    if ((w[0] == "accept" || w[0] == "decline") && w.size() == 2)
        return request("\"" + w[0] + R"(Offer":{"offerId":)" + quoted(w[1]) + "}");
    if (w[0] == "end" && w.size() == 2) return request(R"("endChat":{"sessionId":)" + quoted(w[1]) + "}");
    if (w[0] == "prefs" && w.size() == 4)
        return request(R"("setPreferences":{"topics":)" + list_json(w[1]) + R"(,"languages":)" + list_json(w[2]) +
                       R"(,"maxChats":)" + w[3] + "}");
    std::cout << listener_help;
    return "";
}

// The other person's words, safe for a terminal: control characters (escape sequences could
// rewrite the screen) become '?', and a line break continues indented.
std::string printable(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (c == '\n') out += "\n      ";
        else if (c == '\t') out += ' ';
        else if (c < 0x20 || c == 0x7f) out += '?';
        else out += static_cast<char>(c);
    }
    return out;
}

class terminal_client {
public:
    terminal_client(bool seeker, std::string url, std::string token, std::string resume,
                    ws_client::tls_trust trust)
        : seeker_(seeker),
          url_(std::move(url)),
          token_(std::move(token)),
          resume_(std::move(resume)),
          trust_(std::move(trust)) {}

    int run() {
        connect_matchmaker();  // the first connection failing ends the program, as before
        std::cout << (seeker_ ? seeker_help : listener_help) << std::flush;
        while (running_) {
            pump_matchmaker(chat_ ? 20ms : 50ms);
            if (chat_) {
                chat_->pump(20ms);
                show(chat_->events());
                after_chat();
            }
            pollfd p{STDIN_FILENO, POLLIN, 0};
            if (poll(&p, 1, chat_ ? 20 : 50) > 0) {
                // read the descriptor, not std::cin: a pasted block arrives at once, and lines
                // left in cin's buffer would wait for the next key press
                char buf[4096];
                const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
                if (n > 0) keyboard_.append(buf, static_cast<std::size_t>(n));
                for (auto nl = keyboard_.find('\n'); nl != std::string::npos && running_; nl = keyboard_.find('\n')) {
                    std::string line = keyboard_.substr(0, nl);
                    keyboard_.erase(0, nl + 1);
                    if (!line.empty() && line.back() == '\r') line.pop_back();
                    typed(line);
                }
                if (n <= 0) {  // end of input: what is left is the last line
                    if (!keyboard_.empty() && running_) typed(std::exchange(keyboard_, {}));
                    break;
                }
            }
        }
        if (mm_) mm_->close();
        return 0;
    }

private:
    // ---- the matchmaker ---------------------------------------------------------------------

    // Open a new matchmaker connection and sign in on it, then let it replace the old one (a
    // listener keeps a tab open throughout, so it is not set away). Throws if it cannot connect.
    void connect_matchmaker() {
        auto u = parse_url(url_);
        auto fresh = std::make_unique<ws_client>();
        if (u.tls) fresh->connect_tls(u.host, u.port, u.target, trust_);
        else fresh->connect(u.host, u.port, u.target);
        fresh->send_text(seeker_ ? request(R"("seekerHello":{"resumeToken":)" + quoted(resume_) + "}")
                                 : request(R"("listenerSignIn":{"token":)" + quoted(token_) + "}"));
        if (mm_) mm_->close();
        mm_ = std::move(fresh);
        mm_backoff_ = 500ms;
    }

    void rejoin() {
        std::cout << "(connecting to the matchmaker again…)" << std::endl;
        try {
            connect_matchmaker();
        } catch (const std::exception& e) {
            std::cout << "(could not reach the matchmaker: " << e.what() << "; type rejoin to try again)" << std::endl;
        }
    }

    void pump_matchmaker(std::chrono::milliseconds wait) {
        if (!mm_) {
            if (mm_auto_ && steady::now() >= mm_retry_at_) {
                try {
                    connect_matchmaker();
                    std::cout << "(reconnected to the matchmaker)" << std::endl;
                } catch (const std::exception&) {
                    mm_retry_at_ = steady::now() + mm_backoff_;
                    mm_backoff_ = std::min<std::chrono::milliseconds>(mm_backoff_ * 2, 30s);
                }
            }
            return;
        }
        try {
            while (auto m = mm_->read(wait)) {
                from_matchmaker(m->data);
                wait = 5ms;
            }
        } catch (const std::exception&) {
            const auto code = mm_->close_code();
            mm_.reset();
            // 4001: this seeker resumed elsewhere; 4003: revoked; 1008: refused. Retrying would
            // only fight the other window or be refused again.
            mm_auto_ = code != 4001 && code != 4003 && code != 1008;
            mm_retry_at_ = steady::now() + mm_backoff_;
            std::cout << "(lost the matchmaker connection, close code " << code << "; "
                      << (mm_auto_ ? "reconnecting by itself" : "type rejoin to reconnect")
                      << (chat_ ? "; the chat goes on)" : ")") << std::endl;
        }
    }

    void send_matchmaker(const std::string& req) {
        if (!mm_) {
            std::cout << "(not connected to the matchmaker; type rejoin)" << std::endl;
            return;
        }
        std::cout << ">> " << req << std::endl;
        try {
            mm_->send_text(req);
        } catch (const std::exception& e) {
            std::cout << "(could not send: " << e.what() << ")" << std::endl;
        }
    }

    void from_matchmaker(const std::string& data) {
        v1::ServerMessage m;
        std::string why;
        if (!warmline::codec::decode(data, warmline::codec::format::json, m, why)) {
            std::cout << "<< (a message this client could not read)" << std::endl;
            return;
        }
        print_without_tickets(m);
        if (m.has_service()) {
            std::cout << (m.service().degraded() ? "(Warmline lost its database for a moment and is reconnecting; you "
                                                   "keep your place, nothing is lost)"
                                                 : "(Warmline is back)")
                      << std::endl;
        } else if ((m.has_queue_update() && m.queue_update().no_listener_now()) ||
                   (m.has_request_queued() && m.request_queued().no_listener_now())) {
            std::cout << "(no listener who covers this is free right now; you keep your place and will be connected "
                         "as soon as someone is. If you need help now, the crisis lines are listed above.)"
                      << std::endl;
        }
        if (m.has_seeker_welcome()) {
            const auto& w = m.seeker_welcome();
            if (!w.resume_token().empty()) resume_ = w.resume_token();
            if (w.state() == v1::IN_CHAT && w.has_chat()) start_chat(w.chat());
        } else if (m.has_listener_welcome()) {
            for (const auto& c : m.listener_welcome().open_chats()) start_chat(c);
        } else if (m.has_chat_started()) {
            start_chat(m.chat_started());
        } else if (m.has_chat_ended()) {
            const auto& e = m.chat_ended();
            if (chat_ && chat_->session_id() == e.session_id()) {
                chat_->mark_ended(warmline::client::describe_end(chat_->role(), e));
                show(chat_->events());
                after_chat();
            }
            std::erase_if(later_, [&](const v1::ChatStarted& c) { return c.session_id() == e.session_id(); });
        }
    }

    // What the matchmaker said, as JSON, with every relay ticket replaced: a ticket on a screen
    // or in a scrollback is a ticket someone else can use.
    static void print_without_tickets(v1::ServerMessage m) {
        auto hide = [](v1::ChatStarted* c) {
            if (!c->relay_ticket().empty()) c->set_relay_ticket("(hidden)");
        };
        if (m.has_chat_started()) hide(m.mutable_chat_started());
        if (m.has_seeker_welcome() && m.seeker_welcome().has_chat()) hide(m.mutable_seeker_welcome()->mutable_chat());
        if (m.has_listener_welcome())
            for (auto& c : *m.mutable_listener_welcome()->mutable_open_chats()) hide(&c);
        std::cout << "<< " << warmline::codec::encode(m, warmline::codec::format::json) << std::endl;
    }

    // ---- the chat ---------------------------------------------------------------------------

    void start_chat(const v1::ChatStarted& c) {
        if (c.relay_ticket().empty()) return;  // an ended chat, shown for rating
        if (chat_ && chat_->session_id() == c.session_id()) {
            chat_->renew_ticket(c.relay_ticket());
            return;
        }
        if (chat_ && !chat_->finished()) {
            std::erase_if(later_, [&](const v1::ChatStarted& x) { return x.session_id() == c.session_id(); });
            later_.push_back(c);
            std::cout << "(another chat has started, " << c.session_id()
                      << "; this client carries one chat at a time and joins it when this one ends)" << std::endl;
            return;
        }
        try {
            chat_session::options o;
            o.trust = trust_;
            v1::Role role = c.role() != v1::ROLE_UNSPECIFIED ? c.role() : seeker_ ? v1::SEEKER : v1::LISTENER;
            chat_ = std::make_unique<chat_session>(role, c.session_id(), c.relay_url(), c.relay_ticket(), o);
            quit_armed_ = false;
            std::cout << "── chat " << c.session_id() << " (" << c.topic() << ", " << c.language()
                      << ") started; joining the relay. Type to talk, /help for chat commands." << std::endl;
        } catch (const std::exception& e) {
            std::cout << "(cannot join this chat: " << e.what() << ")" << std::endl;
        }
    }

    void show(const std::vector<chat_event>& events) {
        for (const auto& e : events) {
            switch (e.what) {
            case chat_event::kind::connected:
                std::cout << "(" << e.text
                          << (chat_->secure() ? ")" : " Waiting for the other person to join…)") << std::endl;
                break;
            case chat_event::kind::peer_joined:
                std::cout << "── The other person is here. Your safety code is\n\n      " << e.text
                          << "\n\n   Compare it with theirs (say it, or show it, outside this chat). If both\n"
                             "   codes match, nobody in between can read what you write. /safety shows it again."
                          << std::endl;
                break;
            case chat_event::kind::heard: std::cout << "them: " << printable(e.text) << std::endl; break;
            case chat_event::kind::peer_typing:
                if (e.typing) std::cout << "(they are typing…)" << std::endl;
                break;
            case chat_event::kind::notice:
            case chat_event::kind::connection_lost:
            case chat_event::kind::replaced: std::cout << "(" << e.text << ")" << std::endl; break;
            case chat_event::kind::ticket_expired: ticket_expired(e.text); break;
            case chat_event::kind::ended: std::cout << "── " << e.text << std::endl; break;
            }
        }
    }

    // The relay wants a fresh ticket: a new matchmaker connection brings one (the seeker's
    // resume and the listener's sign-in both list the open chat with a fresh ticket). Once a
    // minute at most, so a relay that refuses every ticket does not make a loop.
    void ticket_expired(const std::string& text) {
        const auto now = steady::now();
        if (refreshed_at_ && now - *refreshed_at_ < 60s) {
            std::cout << "(" << text << " Type /rejoin to ask the matchmaker for one.)" << std::endl;
            return;
        }
        refreshed_at_ = now;
        std::cout << "(" << text << " Asking it now.)" << std::endl;
        rejoin();
    }

    void after_chat() {
        if (!chat_ || !chat_->finished()) return;
        if (chat_->current() == chat_session::state::ended && seeker_)
            std::cout << "(you may rate it: rate " << chat_->session_id() << " STARS [comment])" << std::endl;
        chat_.reset();
        if (!later_.empty()) {
            auto next = later_.front();
            later_.pop_front();
            start_chat(next);
        }
    }

    // ---- the keyboard -----------------------------------------------------------------------

    void typed(const std::string& line) {
        if (chat_ && !chat_->finished()) {
            if (!line.empty() && line[0] == '/') {
                chat_command(line.substr(1));
            } else if (!line.empty()) {
                if (chat_->say(line) && !chat_->secure())
                    std::cout << "(it will be sent once the other person has joined)" << std::endl;
                show(chat_->events());
            }
            return;
        }
        const std::string cmd = !line.empty() && line[0] == '/' ? line.substr(1) : line;
        if (cmd == "quit") running_ = false;
        else if (cmd == "rejoin") rejoin();
        else if (auto req = command(seeker_, cmd); !req.empty()) send_matchmaker(req);
    }

    void chat_command(const std::string& cmd) {
        if (cmd == "safety") {
            auto code = chat_->safety_code();
            std::cout << (code ? "(safety code: " + *code + ")"
                               : "(no safety code yet: the other person has not joined)")
                      << std::endl;
        } else if (cmd == "end") {
            // without a relay connection the matchmaker ends it, for both sides just the same
            if (!chat_->end())
                send_matchmaker(request(R"("endChat":{"sessionId":)" + quoted(chat_->session_id()) + "}"));
            std::cout << "(ending the chat…)" << std::endl;
        } else if (cmd == "drop") {
            chat_->drop_connection();
        } else if (cmd == "help") {
            std::cout << chat_help << (seeker_ ? seeker_help : listener_help);
        } else if (cmd == "quit") {
            if (quit_armed_) {
                running_ = false;
            } else {
                quit_armed_ = true;
                std::cout << "(you are still in this chat, and this client cannot rejoin it once it quits: "
                             "/end it first, or /quit again to leave anyway)" << std::endl;
            }
        } else if (cmd == "rejoin") {
            rejoin();
        } else if (auto req = command(seeker_, cmd); !req.empty()) {
            send_matchmaker(req);
        }
    }

    bool seeker_;
    std::string url_, token_, resume_;
    ws_client::tls_trust trust_;
    std::unique_ptr<ws_client> mm_;
    bool mm_auto_ = true;
    steady::time_point mm_retry_at_{};
    std::chrono::milliseconds mm_backoff_ = 500ms;
    std::unique_ptr<chat_session> chat_;
    std::deque<v1::ChatStarted> later_;  // a listener's further chats, joined one after another
    std::optional<steady::time_point> refreshed_at_;
    std::string keyboard_;  // typed bytes not yet a whole line
    bool quit_armed_ = false;
    bool running_ = true;
};

}  // namespace

int main(int argc, char** argv) {
    std::string url = "ws://127.0.0.1:8090/v1/ws", mode, token, resume;
    ws_client::tls_trust trust;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--url" && i + 1 < argc) url = argv[++i];
        else if (a == "--token" && i + 1 < argc) token = argv[++i];
        else if (a == "--resume" && i + 1 < argc) resume = argv[++i];
        else if (a == "--ca" && i + 1 < argc) trust.ca_file = argv[++i];
        else if (a == "--insecure") trust.insecure = true;
        else if (a == "seeker" || a == "listener") mode = a;
    }
    if (mode.empty() || (mode == "listener" && token.empty()) || (trust.insecure && !trust.ca_file.empty())) {
        std::cerr << "usage: warmline-client [--url ws://host:port/v1/ws] [--ca CA.pem | --insecure] seeker [--resume TOKEN]\n"
                     "       warmline-client [--url ...] [--ca CA.pem | --insecure] listener --token TOKEN\n"
                     "wss:// certificates (matchmaker and relay) are checked against the system's trust store and the\n"
                     "host name; --ca checks them against CA.pem instead; --insecure checks nothing (a local test\n"
                     "server only: anyone in between could then read and change the chat's setup)\n";
        return 2;
    }
    if (url.rfind("wss://", 0) == 0) {
        if (trust.insecure)
            std::cout << "(TLS: NOT checking the server's certificate (--insecure): use this only with a local test "
                         "server)" << std::endl;
        else
            std::cout << "(TLS: checking the server's certificate against "
                      << (trust.ca_file.empty() ? "the system's trust store" : trust.ca_file) << " and its name)"
                      << std::endl;
    }
    try {
        terminal_client c(mode == "seeker", url, token, resume, trust);
        return c.run();
    } catch (const std::exception& e) {
        std::cerr << "warmline-client: " << e.what() << "\n";
        return 1;
    }
}
