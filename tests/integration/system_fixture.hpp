// What the whole-system tests share: a real redis-server, matchmaker and relay processes started
// from the built binaries (each with its own flags), the matchmaker's JSON client and the
// relay's client from the other fixtures, HTTP /readyz, and a way to let a process's two Redis
// connections back in one at a time, in the order a test needs.
#pragma once

#include "tests/integration/matchmaker_fixture.hpp"
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"
#include "tests/integration/relay_fixture.hpp"
#include "tests/support/process.hpp"

#include "clients/ws_client.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace warmline::test {

inline const std::string system_secret = relay_secret;

// One service process of the stack.
struct service_process {
    std::unique_ptr<child_process> proc;
    std::uint16_t port = 0;

    // /readyz answered 200.
    bool ready() const {
        try {
            return net::http_request_blocking("127.0.0.1", port, "GET", "/readyz", {}, {},
                                              std::chrono::milliseconds(1000))
                       .status == 200;
        } catch (const std::exception&) {
            return false;
        }
    }
    // Redis connection names in CLIENT LIST: "<program>-<pid>:cmd" and ":events".
    std::string name(const std::string& program, const std::string& which) const {
        return program + "-" + std::to_string(proc->pid()) + ":" + which;
    }
};

struct stack {
    matchmaker_fixture f;  // the Redis, the accounts, and a store for reading state
    std::string log = f.server.dir() + "/stack.log";
    std::string redis_url;  // what the services are given: f's Redis unless the test says
    std::vector<service_process> relays, matchmakers;

    // Flags for times: the test decides leases, grace and timeouts (defaults suit an outage).
    // `url`: another Redis for the services (e.g. redis-sentinel://...); f's then only holds
    // the log directory.
    stack(int n_matchmakers, int n_relays, std::vector<std::string> mm_flags = {},
          std::vector<std::string> relay_flags = {}, std::string url = {})
        : redis_url(url.empty() ? f.server.url() : std::move(url)) {
        for (int i = 0; i < n_relays; ++i) relays.push_back(start_relay(relay_flags));
        for (int i = 0; i < n_matchmakers; ++i) matchmakers.push_back(start_matchmaker(mm_flags));
        // READY means listening; ready means connected to Redis too
        REQUIRE(all_ready(std::chrono::seconds(10)));
    }

    service_process start_relay(const std::vector<std::string>& extra = {}) {
        std::vector<std::string> argv{WARMLINE_BINARY_DIR "/services/relay/relay", "--listen=127.0.0.1:0", "--dev=true",
                                      "--redis-url=" + redis_url, "--ticket-secret=" + system_secret,
                                      "--redis-timeout-ms=1000", "--idle-timeout-ms=600000", "--log-level=info"};
        for (const auto& e : extra) argv.push_back(e);
        service_process p{std::make_unique<child_process>(argv, log)};
        p.port = p.proc->ready_port();
        return p;
    }

    service_process start_matchmaker(const std::vector<std::string>& extra) {
        std::vector<std::string> argv{WARMLINE_BINARY_DIR "/services/matchmaker/matchmaker",
                                      "--listen=127.0.0.1:0",
                                      "--dev=true",
                                      "--redis-url=" + redis_url,
                                      "--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json",
                                      "--ticket-secret=" + system_secret,
                                      "--redis-timeout-ms=1000",
                                      "--idle-timeout-ms=600000",
                                      "--sweep-interval-ms=50",
                                      "--position-interval-ms=100",
                                      "--log-level=info"};
        if (!relays.empty())
            argv.push_back("--relay-url=ws://127.0.0.1:" + std::to_string(relays.front().port) + "/v1/relay");
        for (const auto& e : extra) argv.push_back(e);
        service_process p{std::make_unique<child_process>(argv, log)};
        p.port = p.proc->ready_port();
        return p;
    }

    // Every process answers /readyz with 200 (Redis reachable, recovery done), within `limit`.
    bool all_ready(std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            bool ready = true;
            for (auto* group : {&relays, &matchmakers})
                for (auto& p : *group) ready = ready && p.ready();
            if (ready) return true;
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling a condition
        }
    }

    std::vector<std::string> invariant_violations() { return check_invariants(f.server); }
};

// A JSON matchmaker client that signs in, and reads what it is pushed.
inline std::string seeker_hello(peer& p) {
    auto w = p.call(R"("seekerHello":{})");
    REQUIRE(w.has_seeker_welcome());
    return w.seeker_welcome().seeker_id();
}

inline void listener_sign_in(peer& p, const std::string& token) {
    REQUIRE(p.call(R"("listenerSignIn":{"token":")" + token + "\"}").has_listener_welcome());
    REQUIRE(p.call(R"("setAvailability":{"available":true})").has_status_changed());
}

// The id of the next offer a listener is pushed.
inline std::string offer_id(peer& listener) {
    return listener.until([](const v1::ServerMessage& m) { return m.has_offer(); }, std::chrono::seconds(5))
        .offer()
        .offer_id();
}

// Accept an offer; both sides' ChatStarted (the seeker's, the listener's).
inline std::pair<v1::ChatStarted, v1::ChatStarted> accept(peer& listener, peer& seeker, const std::string& oid) {
    auto l = listener.call(R"("acceptOffer":{"offerId":")" + oid + "\"}");
    REQUIRE(l.has_chat_started());
    auto s = seeker.until([](const v1::ServerMessage& m) { return m.has_chat_started(); });
    return {s.chat_started(), l.chat_started()};
}

// Both sides of a started chat on the relays at these ports, each welcomed (with test keys).
struct relay_sides {
    relay_peer seeker, listener;
    relay_sides(const std::pair<v1::ChatStarted, v1::ChatStarted>& chat, std::uint16_t seeker_relay,
                std::uint16_t listener_relay)
        : seeker(seeker_relay, chat.first.relay_ticket()), listener(listener_relay, chat.second.relay_ticket()) {
        REQUIRE(seeker.hello(std::string(32, 's')).has_welcome());
        REQUIRE(listener.hello(std::string(32, 'l')).has_welcome());
    }
};

// Keeps a process's Redis connections out by taking their slots (CONFIG SET maxclients at the
// number connected) and lets them back in one at a time: for tests that need, say, the
// subscriber back before the command connection. Uses one connection of its own throughout.
class connection_gate {
public:
    explicit connection_gate(redis_server& server) : server_(server), admin_(server) {
        admin_.cmd({"CONFIG", "SET", "maxclients", std::to_string(lines(admin_.cmd({"CLIENT", "LIST"})).size())});
    }
    ~connection_gate() {
        try {
            held_.clear();
            admin_.cmd({"CONFIG", "SET", "maxclients", "10000"});
        } catch (...) {
        }
    }

    // A command on the gate's own connection (new connections may be refused meanwhile).
    std::string cmd(const std::vector<std::string>& args) { return admin_.cmd(args); }

    // The CLIENT LIST line of the connection with this name, if connected.
    std::optional<std::string> line_of(const std::string& name) {
        for (auto& l : lines(admin_.cmd({"CLIENT", "LIST"})))
            if (l.find(" name=" + name + " ") != std::string::npos) return l;
        return std::nullopt;
    }

    // Close that connection and take its slot before its owner reconnects (a reconnect waits
    // at least 50 ms; taking the slot takes a millisecond).
    void shut_out(const std::string& name) {
        REQUIRE_MESSAGE(kill(name), "no Redis connection named " << name);
        REQUIRE_MESSAGE(hold(), "could not take the slot of " << name);
    }

    // Give back one slot and make sure `first` is the one that takes it: if `second` does, it
    // is closed and its slot taken back, and after a while (its reconnect backoff grows, as
    // `first`'s already did) the slot is offered again. Then wait until `first` is fully back:
    // `ready` tells from its CLIENT LIST line (e.g. subscribed).
    void let_in(const std::string& first, const std::string& second,
                const std::function<bool(const std::string&)>& ready) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        REQUIRE(!held_.empty());
        held_.pop_back();
        for (;;) {
            REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, first << " did not come back first");
            if (auto l = line_of(first); l && ready(*l)) break;
            if (line_of(second) && kill(second) && hold()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let its backoff grow
                held_.pop_back();
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a condition
        }
        REQUIRE_FALSE(line_of(second));
    }

    // Give back every slot.
    void open() {
        held_.clear();
        admin_.cmd({"CONFIG", "SET", "maxclients", "10000"});
    }

private:
    bool kill(const std::string& name) {
        auto line = line_of(name);
        if (!line) return false;
        const auto id_at = line->find("id=") + 3;
        admin_.cmd({"CLIENT", "KILL", "ID", line->substr(id_at, line->find(' ', id_at) - id_at)});
        return true;
    }

    bool hold() {
        auto c = std::make_unique<redis_connection>(server_);
        try {
            if (c->cmd({"PING"}) != "PONG") return false;  // refused: max number of clients
        } catch (const std::exception&) {
            return false;
        }
        held_.push_back(std::move(c));
        return true;
    }

    redis_server& server_;
    redis_connection admin_;
    std::vector<std::unique_ptr<redis_connection>> held_;
};

}  // namespace warmline::test
