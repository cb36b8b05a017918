// Nobody but the two people in a chat can read it: a chat sealed with the real suite
// (clients/e2e) crosses two relay processes, then a canary plaintext is searched for in Redis's
// data files (RDB and AOF), the relays' logs and /metrics. And the same over TLS.
#include "clients/e2e.hpp"
#include "clients/ws_client.hpp"
#include "tests/integration/relay_fixture.hpp"
#include "tests/support/tls_cert.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>

using namespace warmline;
using namespace warmline::test;
using M = v1::RelayServerMessage;

namespace {

std::string as_string(const e2e::key32& k) { return std::string(k.begin(), k.end()); }
std::string as_string(const e2e::bytes& b) { return std::string(b.begin(), b.end()); }

e2e::key32 as_key(const std::string& s) {
    REQUIRE(s.size() == 32);
    e2e::key32 k{};
    std::copy(s.begin(), s.end(), k.begin());
    return k;
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every regular file under `dir`, concatenated (Redis's RDB, its AOF directory, logs).
std::string everything_under(const std::string& dir) {
    std::string all;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
        if (e.is_regular_file()) all += read_file(e.path());
    return all;
}

// One side of a chat with its own key pair, as a client would hold it.
struct side {
    relay_peer peer;
    e2e::keypair keys = e2e::generate_keypair();
    std::optional<e2e::sender> out;
    std::optional<e2e::receiver> in;
    std::string peer_key;

    side(std::uint16_t port, const std::string& ticket, const std::string& ca = {}) : peer(port, ticket, ca) {}

    void hello() {
        auto w = peer.hello(as_string(keys.public_key));
        REQUIRE(w.has_welcome());
        peer_key = w.welcome().peer_public_key();
    }
    // after both sides said hello: the first has the second's key from a PeerKey push
    void derive(const std::string& session, bool seeker) {
        if (peer_key.empty()) peer_key = peer.until([](const M& m) { return m.has_peer_key(); }).peer_key().public_key();
        auto k = e2e::derive_keys(e2e::shared_secret(keys.private_key, as_key(peer_key)), session);
        auto mine = seeker ? e2e::direction::seeker_to_listener : e2e::direction::listener_to_seeker;
        auto theirs = seeker ? e2e::direction::listener_to_seeker : e2e::direction::seeker_to_listener;
        out.emplace(seeker ? k.seeker_to_listener : k.listener_to_seeker, session, mine);
        in.emplace(seeker ? k.listener_to_seeker : k.seeker_to_listener, session, theirs);
    }
    std::string say(const std::string& text) {
        auto s = out->seal(text);
        std::string ct = as_string(s.ciphertext);
        REQUIRE(peer.send_sealed(s.seq, ct).ack().seq() == s.seq);
        return ct;
    }
    std::string hear() {
        auto d = peer.next_delivery();
        auto r = in->accept(d.seq(), e2e::bytes(d.ciphertext().begin(), d.ciphertext().end()));
        REQUIRE(r.st == e2e::receiver::status::delivered);
        return r.plaintext;
    }
    std::string safety() const { return e2e::safety_code(keys.public_key, as_key(peer_key)); }
};

}  // namespace

TEST_CASE("relay: a sealed chat's plaintext reaches no file, log or metric" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, {"--log-level=debug"});
    relay_process b(f.mm.server.url(), f.log, {"--log-level=debug"});
    auto session = f.open_chat();
    auto seeker_ticket = relay_fixture::ticket_for(session, ticket::role::seeker);
    side seeker(a.port, seeker_ticket);
    side listener(b.port, relay_fixture::ticket_for(session, ticket::role::listener));
    seeker.hello();
    listener.hello();
    seeker.derive(session, true);
    listener.derive(session, false);
    CHECK(seeker.safety() == listener.safety());  // nobody in the middle swapped a key

    const std::string canary = "CANARY-4b1d: I have not told anyone about this";
    const std::string answer = "CANARY-77e0: thank you for telling me";
    std::string sealed_canary = seeker.say(canary);
    CHECK(listener.hear() == canary);
    listener.say(answer);
    CHECK(seeker.hear() == answer);
    seeker.say("second");
    CHECK(listener.hear() == "second");

    f.mm.server.cmd({"SAVE"});  // the RDB as well as the AOF
    std::string redis_files = everything_under(f.mm.server.dir());
    // the search can find what is there: the ciphertext is in Redis's files...
    REQUIRE(redis_files.find(sealed_canary) != std::string::npos);
    // ...and the relays' debug logs are there to search...
    REQUIRE(read_file(f.log).find("listening on") != std::string::npos);
    // ...and the plaintext is nowhere
    for (const auto& secret : {canary, answer}) {
        CHECK(redis_files.find(secret) == std::string::npos);
        CHECK(read_file(f.log).find(secret) == std::string::npos);
        for (auto port : {a.port, b.port})
            CHECK(net::http_request_blocking("127.0.0.1", port, "GET", "/metrics").body.find(secret) ==
                  std::string::npos);
    }
    // nor do the logs hold a ticket or a key
    CHECK(read_file(f.log).find(seeker_ticket) == std::string::npos);
    CHECK(read_file(f.log).find(seeker_ticket.substr(seeker_ticket.rfind('.') + 1)) == std::string::npos);
    CHECK(net::http_request_blocking("127.0.0.1", a.port, "GET", "/metrics").body.find("warmline_relay_messages_total") !=
          std::string::npos);
}

TEST_CASE("relay: a sealed chat over TLS (wss) with a test certificate" * doctest::timeout(60)) {
    relay_fixture f;
    auto [cert, key] = make_test_certificate(f.mm.server.dir());
    relay_process a(f.mm.server.url(), f.log, {"--tls-cert=" + cert, "--tls-key=" + key});
    auto session = f.open_chat();
    side seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker), cert);
    side listener(a.port, relay_fixture::ticket_for(session, ticket::role::listener), cert);
    seeker.hello();
    listener.hello();
    seeker.derive(session, true);
    listener.derive(session, false);
    seeker.say("over wss");
    CHECK(listener.hear() == "over wss");
    listener.say("and back");
    CHECK(seeker.hear() == "and back");
    // plain WebSocket to a TLS port gets nowhere
    net::ws_client plain;
    CHECK_THROWS(plain.connect("127.0.0.1", a.port, "/v1/relay"));
}
