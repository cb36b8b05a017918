// A fleet on one box for the whole-system tests, as `scripts/up --fleet` runs it: matchmakers
// and relays as processes on fixed ports (so that one can be stopped and started again where
// HAProxy expects it), HAProxy as the front door, rendered from deploy/haproxy/warmline.cfg.in
// and watched through its stats socket, and matchmaker clients that reconnect through the front
// door the way the web app does.
#pragma once

#include "tests/integration/system_fixture.hpp"

#include "common/codec.hpp"
#include "clients/ws_client.hpp"

#include <doctest/doctest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace warmline::test {

// The HAProxy binary: on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH).
inline std::string haproxy_binary() {
    std::vector<std::string> dirs;
    if (const char* path = std::getenv("PATH")) {
        std::stringstream in(path);
        for (std::string d; std::getline(in, d, ':');) dirs.push_back(d);
    }
    for (const char* d : {"/usr/sbin", "/usr/local/sbin", "/sbin"}) dirs.emplace_back(d);
    for (const auto& d : dirs) {
        const auto candidate = d + "/haproxy";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    throw std::runtime_error("haproxy is not installed (scripts/test installs Debian's haproxy)");
}

// deploy/haproxy/warmline.cfg.in with `values` filled in (@NAME@ anywhere) and every line that
// holds only @LIST@ replaced by one line per item of lists[LIST], indented as it was: the rule
// scripts/up renders it by, too.
inline std::string render_haproxy_config(const std::map<std::string, std::string>& values,
                                         const std::map<std::string, std::vector<std::string>>& lists) {
    std::ifstream in(WARMLINE_SOURCE_DIR "/deploy/haproxy/warmline.cfg.in");
    REQUIRE_MESSAGE(in, "cannot read deploy/haproxy/warmline.cfg.in");
    std::string out;
    for (std::string line; std::getline(in, line);) {
        const auto first = line.find_first_not_of(' ');
        bool was_list = false;
        for (const auto& [name, items] : lists) {
            if (first != std::string::npos && line.substr(first) == "@" + name + "@") {
                for (const auto& item : items) out += line.substr(0, first) + item + "\n";
                was_list = true;
            }
        }
        if (was_list) continue;
        for (const auto& [name, value] : values) {
            const std::string key = "@" + name + "@";
            for (auto at = line.find(key); at != std::string::npos; at = line.find(key, at + value.size()))
                line.replace(at, key.size(), value);
        }
        out += line + "\n";
    }
    return out;
}

// A temporary directory, removed with everything in it.
struct temp_dir {
    std::string path;
    temp_dir() {
        char pattern[] = "/tmp/warmline-fleet-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        path = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

// HAProxy in front of the given servers ("name" -> port), checking /readyz every `check`.
class front_door {
public:
    front_door(const std::string& dir, const std::map<std::string, std::uint16_t>& matchmakers,
               const std::map<std::string, std::uint16_t>& relays, std::chrono::milliseconds check)
        : socket_(dir + "/haproxy.sock"), port_(free_port()) {
        auto servers = [](const std::map<std::string, std::uint16_t>& ports) {
            std::vector<std::string> lines;
            for (const auto& [name, port] : ports) lines.push_back("server " + name + " 127.0.0.1:" + std::to_string(port));
            return lines;
        };
        const std::string config = dir + "/haproxy.cfg";
        std::ofstream(config) << render_haproxy_config(
            {{"FRONT", "127.0.0.1:" + std::to_string(port_)},
             {"STATS", "127.0.0.1:" + std::to_string(free_port())},
             {"STATS_SOCKET", socket_},
             {"CHECK_MS", std::to_string(check.count())}},
            {{"MATCHMAKERS", servers(matchmakers)}, {"RELAYS", servers(relays)}, {"WEBS", {}}});
        // -db: stay in the foreground, so that it is our child and dies with us
        proc_ = std::make_unique<child_process>(std::vector<std::string>{haproxy_binary(), "-db", "-f", config},
                                                dir + "/haproxy.log");
    }

    std::uint16_t port() const { return port_; }
    std::string ws_url(const std::string& path) const { return "ws://127.0.0.1:" + std::to_string(port_) + path; }

    // "backend/server" -> the status HAProxy gives it ("UP", "DOWN", "UP 1/2" while going down,
    // "DOWN 1/2" while coming up, ...), from "show stat" on the stats socket; empty if it does
    // not answer (yet).
    std::map<std::string, std::string> statuses() const {
        std::map<std::string, std::string> out;
        const std::string csv = ask("show stat\n");
        std::stringstream in(csv);
        std::string header;
        if (!std::getline(in, header) || header.rfind("# ", 0) != 0) return out;
        const auto columns = split(header.substr(2));
        std::size_t status_at = 0;
        while (status_at < columns.size() && columns[status_at] != "status") ++status_at;
        for (std::string line; std::getline(in, line);) {
            const auto fields = split(line);
            if (fields.size() <= status_at || fields[1] == "FRONTEND" || fields[1] == "BACKEND") continue;
            out[fields[0] + "/" + fields[1]] = fields[status_at];
        }
        return out;
    }
    std::string status(const std::string& server) const {
        const auto all = statuses();
        const auto it = all.find(server);
        return it == all.end() ? std::string() : it->second;
    }

private:
    static std::vector<std::string> split(const std::string& line) {
        std::vector<std::string> fields;
        std::stringstream in(line);
        for (std::string f; std::getline(in, f, ',');) fields.push_back(f);
        return fields;
    }

    // One command on the stats socket; HAProxy answers and closes.
    std::string ask(const std::string& command) const {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return {};
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_.c_str());
        std::string reply;
        timeval limit{2, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            ::write(fd, command.data(), command.size()) == static_cast<ssize_t>(command.size())) {
            char buf[4096];
            for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<std::size_t>(n));
        }
        ::close(fd);
        return reply;
    }

    std::string socket_;
    std::uint16_t port_;
    std::unique_ptr<child_process> proc_;
};

// A service of the fleet: started on port 0 once, then always again on the port it got.
struct fleet_service {
    std::string name;  // as HAProxy knows it: "matchmakers/matchmaker-1"
    std::vector<std::string> argv;
    std::string log;
    std::unique_ptr<child_process> proc;
    std::uint16_t port = 0;

    void start() {
        auto args = argv;
        args.push_back("--listen=127.0.0.1:" + std::to_string(port));
        proc = std::make_unique<child_process>(args, log);
        const auto got = proc->ready_port(std::chrono::seconds(30));
        if (port == 0) port = got;
        REQUIRE(got == port);
    }
    // /readyz as it answers now: status and body (status 0 if it does not answer).
    net::http_result readyz() const {
        try {
            return net::http_request_blocking("127.0.0.1", port, "GET", "/readyz", {}, {}, std::chrono::seconds(1));
        } catch (const std::exception&) {
            return {};
        }
    }
};

// A matchmaker client through the front door that, like the web app, reconnects whenever its
// connection closes and takes up where it was: a seeker resumes with its token (and must find
// itself where it was), a listener signs in again and is available. pump() reads what came and
// reconnects when due; it never blocks for long, so one thread can drive many.
class front_client {
public:
    front_client(std::uint16_t port, std::string listener_token = {})
        : port_(port), listener_token_(std::move(listener_token)) {
        REQUIRE(connect());
    }

    // Send a request and wait for its reply (pushes meanwhile are kept); nullopt if the
    // connection closed or nothing came within `limit`.
    std::optional<v1::ServerMessage> call(const std::string& body,
                                          std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        if (!ws_) return std::nullopt;
        const std::string id = "r" + std::to_string(++n_);
        try {
            ws_->send_text(R"({"requestId":")" + id + "\"," + body + "}");
            const auto deadline = std::chrono::steady_clock::now() + limit;
            while (std::chrono::steady_clock::now() < deadline) {
                auto m = read(std::chrono::milliseconds(50));
                if (!m) continue;
                if (m->request_id() == id) return m;
                inbox_.push_back(std::move(*m));
            }
        } catch (const std::exception&) {
            lost();
        }
        return std::nullopt;
    }

    // Take what arrived; reconnect if the connection is gone.
    void pump() {
        if (!ws_) {
            connect();
            return;
        }
        try {
            while (auto m = read(std::chrono::milliseconds(1))) inbox_.push_back(std::move(*m));
        } catch (const std::exception&) {
            lost();
        }
    }

    // The first push that satisfies `pred`, pumping up to `limit`.
    std::optional<v1::ServerMessage> take(const std::function<bool(const v1::ServerMessage&)>& pred,
                                          std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
                if (pred(*it)) {
                    auto m = std::move(*it);
                    inbox_.erase(it);
                    return m;
                }
            }
            if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
            pump();
        }
    }

    // A new seeker: SeekerHello without a token.
    std::string seeker_hello() {
        auto w = call(R"("seekerHello":{})");
        REQUIRE((w && w->has_seeker_welcome()));
        resume_token_ = w->seeker_welcome().resume_token();
        return w->seeker_welcome().seeker_id();
    }

    bool connected() const { return ws_ != nullptr; }
    int going_away() const { return going_away_; }  // closes with 1001 seen
    int reconnects() const { return reconnects_; }
    // What the last resume said (seekers): the state it found itself in, and a fresh ticket if in a chat.
    v1::SeekerState resumed_state() const { return resumed_state_; }
    const std::string& fresh_ticket() const { return fresh_ticket_; }
    // Resumes and sign-ins after a reconnect that did not find the client where it was.
    const std::vector<std::string>& problems() const { return problems_; }

private:
    std::optional<v1::ServerMessage> read(std::chrono::milliseconds limit) {
        auto frame = ws_->read(limit);
        if (!frame) return std::nullopt;
        v1::ServerMessage m;
        std::string err;
        REQUIRE_MESSAGE(codec::decode(frame->data, frame->binary ? codec::format::binary : codec::format::json, m, err),
                        err);
        return m;
    }

    void lost() {
        if (ws_ && ws_->close_code() == 1001) ++going_away_;
        ws_.reset();
    }

    // A reconnect whose sign-in or resume got no answer: closed, to be tried again.
    bool give_up() {
        ws_.reset();
        return false;
    }

    bool connect() {
        auto ws = std::make_unique<net::ws_client>();
        try {
            ws->connect("127.0.0.1", port_, "/v1/ws", {}, std::chrono::seconds(2));
        } catch (const std::exception&) {
            return false;  // the next pump tries again
        }
        ws_ = std::move(ws);
        const bool again = ever_connected_;
        ever_connected_ = true;
        if (!again) return true;
        ++reconnects_;
        if (!listener_token_.empty()) {
            auto w = call(R"("listenerSignIn":{"token":")" + listener_token_ + "\"}");
            if (!w) return give_up();  // again on the next pump
            if (!w->has_listener_welcome()) problems_.push_back("sign-in refused: " + w->DebugString());
            auto a = call(R"("setAvailability":{"available":true})");
            if (!a) return give_up();
            if (!a->has_status_changed()) problems_.push_back("availability refused: " + a->DebugString());
        } else if (!resume_token_.empty()) {
            auto w = call(R"("seekerHello":{"resumeToken":")" + resume_token_ + "\"}");
            if (!w) return give_up();
            if (!w->has_seeker_welcome() || !w->seeker_welcome().resumed()) {
                problems_.push_back("resume failed: " + w->DebugString());
            } else {
                resumed_state_ = w->seeker_welcome().state();
                fresh_ticket_ = w->seeker_welcome().chat().relay_ticket();
            }
        }
        return true;
    }

    std::uint16_t port_;
    std::string listener_token_, resume_token_;
    std::unique_ptr<net::ws_client> ws_;
    std::deque<v1::ServerMessage> inbox_;
    int n_ = 0, going_away_ = 0, reconnects_ = 0;
    bool ever_connected_ = false;
    v1::SeekerState resumed_state_ = v1::SEEKER_STATE_UNSPECIFIED;
    std::string fresh_ticket_;
    std::vector<std::string> problems_;
};

}  // namespace warmline::test
