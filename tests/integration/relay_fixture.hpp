// What the relay's integration tests share: a real redis-server with a chat opened through the
// matchmaker's own scripts, relay processes started from the built binary, and a blocking
// WebSocket client speaking the relay protocol in protobuf binary frames.
#pragma once

#include "common/codec.hpp"
#include "common/keys.hpp"
#include "common/ticket.hpp"
#include "clients/ws_client.hpp"
#include "tests/integration/matchmaker_fixture.hpp"
#include "tests/support/pending_reader.hpp"
#include "tests/support/process.hpp"
#include "services/relay/store.hpp"
#include "warmline/v1/relay.pb.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

// A chat's relay record and logs, in its bucket (common/keys.list).
inline std::string relay_key(const std::string& session) {
    return warmline::keys::relay(warmline::relay::bucket_of(session), session);
}
inline std::string log_key(const std::string& session, const std::string& role) {
    return warmline::keys::log(warmline::relay::bucket_of(session), session, role);
}

namespace warmline::test {

inline const std::string relay_secret = "relay-test-secret-relay-test-secret!";

inline std::int64_t wall_ms() { return warmline::system_now_ms(); }  // the processes' clock

// One relay process; its log goes to `log` (the canary test reads it).
struct relay_process {
    std::unique_ptr<child_process> proc;
    std::uint16_t port = 0;

    relay_process(const std::string& redis_url, const std::string& log, std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{WARMLINE_BINARY_DIR "/services/relay/relay", "--listen=127.0.0.1:0", "--dev=true",
                                      "--redis-url=" + redis_url, "--ticket-secret=" + relay_secret,
                                      "--log-level=info"};
        for (auto& e : extra) argv.push_back(std::move(e));
        proc = std::make_unique<child_process>(argv, log);
        port = proc->ready_port();
    }

    // READY comes once it listens, before its Redis connections are up; a test that connects at
    // once (a ticket is checked against Redis) waits for /readyz first.
    void wait_ready(std::chrono::seconds limit = std::chrono::seconds(10)) const {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (net::http_request_blocking("127.0.0.1", port, "GET", "/readyz").status != 200)
            REQUIRE(std::chrono::steady_clock::now() < deadline);
    }
};

struct relay_fixture {
    matchmaker_fixture mm;
    std::string log = mm.server.dir() + "/relays.log";
    admin::created listener;
    std::string seeker;

    relay_fixture() = default;
    explicit relay_fixture(std::vector<std::string> redis_args) : mm(std::move(redis_args)) {}

    // A listener and a seeker matched through the matchmaker's scripts, on the relay processes'
    // clock (the wall clock); returns the session id.
    std::string open_chat() {
        mm.now = wall_ms();
        if (listener.id.empty()) listener = mm.listener({"grief"}, {"en"}, 5);
        seeker = mm.seeker();
        mm.request(seeker, "grief", "en");
        auto chat = mm.run(mm.store->accept_offer(listener.id, mm.offer_of(seeker)));
        REQUIRE(chat);
        return chat.value->session_id;
    }

    // A fresh ticket on every call (each admits one connection): live ones differ in their expiry
    // by up to a second.
    static std::string ticket_for(const std::string& session, ticket::role r, std::int64_t ttl_ms = 60000) {
        static std::atomic<int> n{0};
        const std::int64_t spread = ttl_ms > 0 ? n++ % 1000 : 0;
        return ticket::sign(relay_secret, ticket::claims{session, r, wall_ms() + ttl_ms + spread});
    }
};

// A relay client: protobuf binary frames, replies matched by request id, pushes kept in order.
struct relay_peer {
    net::ws_client ws;
    int n = 0;
    std::deque<v1::RelayServerMessage> pending;

    std::string ticket;       // sent in the first hello (then the welcome's next_ticket is kept)
    std::string next_ticket;  // from the last welcome

    // ca_file set: over TLS, the relay's certificate checked against it
    relay_peer(std::uint16_t port, std::string t, const std::string& ca_file = {}) : ticket(std::move(t)) {
        if (ca_file.empty()) ws.connect("127.0.0.1", port, "/v1/relay");
        else ws.connect_tls("127.0.0.1", port, "/v1/relay", ca_file);
    }

    std::string send(v1::RelayClientMessage m) {
        std::string id = "q" + std::to_string(++n);
        m.set_request_id(id);
        ws.send_binary(m.SerializeAsString());
        return id;
    }
    v1::RelayServerMessage until(const std::function<bool(const v1::RelayServerMessage&)>& pred,
                                 std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        auto decode = [](const net::ws_message& f, v1::RelayServerMessage& m) { REQUIRE(m.ParseFromString(f.data)); };
        return take_first<v1::RelayServerMessage>(pending, ws, decode, pred, limit);
    }
    v1::RelayServerMessage reply(const std::string& id) {
        return until([&](const v1::RelayServerMessage& m) { return m.request_id() == id; });
    }
    v1::RelayServerMessage call(v1::RelayClientMessage m) { return reply(send(std::move(m))); }

    v1::RelayServerMessage hello(const std::string& public_key, std::uint64_t received_through = 0) {
        v1::RelayClientMessage m;
        m.mutable_hello()->set_public_key(public_key);
        m.mutable_hello()->set_received_through(received_through);
        m.mutable_hello()->set_ticket(ticket);
        auto r = call(m);
        if (r.has_welcome()) next_ticket = r.welcome().next_ticket();
        return r;
    }
    v1::RelayServerMessage send_sealed(std::uint64_t seq, const std::string& ciphertext) {
        v1::RelayClientMessage m;
        m.mutable_send()->set_seq(seq);
        m.mutable_send()->set_ciphertext(ciphertext);
        return call(m);
    }
    // Read (and drop) everything until the server closes the connection; its close code, or 0
    // if it stayed open for 2 s after the last message.
    std::uint16_t read_until_closed() {
        try {
            while (ws.read(std::chrono::seconds(2))) {
            }
        } catch (const std::exception&) {
            return ws.close_code();
        }
        return 0;
    }
    // The next Deliver push.
    v1::Deliver next_delivery(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        return until([](const v1::RelayServerMessage& m) { return m.has_deliver(); }, limit).deliver();
    }
};

}  // namespace warmline::test
