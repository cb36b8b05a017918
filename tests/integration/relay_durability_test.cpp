// Acknowledged means kept (docs/relay-protocol.md): when Redis loses its last writes (a crash
// between fsyncs, a failover to a lagging replica) no chat wedges and nothing either side still
// has is lost; what nobody has any more is passed over with a note; and with --ack-replicas an
// Ack waits until a replica has the message. Real redis-server processes: Redis "loses" its
// last writes by being killed with SIGKILL and started again from a snapshot taken earlier.
#include "clients/ws_client.hpp"
#include "tests/integration/chat_side.hpp"

#include <optional>

using namespace warmline;
using namespace warmline::test;
using client::chat_event;
using M = v1::RelayServerMessage;

namespace {

// Redis without its AOF: a restart after crash() comes back to the last SAVE.
std::vector<std::string> snapshot_only() { return {"--appendonly", "no"}; }

// Crash Redis and start it again from the snapshot: everything after the last SAVE is gone.
void lose_last_writes(redis_server& r) {
    r.crash();
    r.restart();
}

// A sealed chat on one relay over a Redis without AOF, in which the seeker said `n` lines that
// the listener confirmed, and then Redis SAVEd: what a crash will come back to.
struct saved_chat {
    relay_fixture f{snapshot_only()};
    relay_process a{f.mm.server.url(), f.log};
    std::string session = f.open_chat();
    side seeker{v1::SEEKER, session, relay_url(a), relay_fixture::ticket_for(session, ticket::role::seeker)};
    side listener{v1::LISTENER, session, relay_url(a), relay_fixture::ticket_for(session, ticket::role::listener)};
    std::vector<std::string> said;

    explicit saved_chat(int n) : said(lines("seeker", 1, n)) {
        REQUIRE(both_secure(seeker, listener));
        for (const auto& l : said) REQUIRE(seeker.chat.say(l));
        REQUIRE(pump_until({&seeker, &listener}, [&] { return seeker.chat.unreceived() == 0; }));
        f.mm.server.cmd({"SAVE"});
    }
};

bool noticed(const side& s, const std::string& words) {
    return std::any_of(s.seen.begin(), s.seen.end(), [&](const chat_event& e) {
        return e.what == chat_event::kind::notice && e.text.find(words) != std::string::npos;
    });
}

// The relay has both Redis connections and has caught every chat up after an outage.
bool ready(std::uint16_t port) { return net::http_request_blocking("127.0.0.1", port, "GET", "/readyz").status == 200; }

std::uint64_t metric(std::uint16_t port, const std::string& name) {
    auto body = net::http_request_blocking("127.0.0.1", port, "GET", "/metrics").body;
    auto at = body.find("\n" + name + " ");
    if (at == std::string::npos) return 0;
    return std::stoull(body.substr(at + name.size() + 2));
}

}  // namespace

TEST_CASE("relay durability: acknowledged messages Redis lost are sent again, none lost or repeated" *
          doctest::timeout(90)) {
    saved_chat c(3);
    auto& [f, a, session, seeker, listener, said] = c;
    const auto before = said, after = lines("seeker", 4, 5), later = lines("seeker", 6, 6);

    // the listener's network is gone; the seeker's next lines are acknowledged, not received
    listener.chat.drop_connection();
    for (const auto& l : after) REQUIRE(seeker.chat.say(l));
    REQUIRE(pump_until({&seeker}, [&] { return seeker.chat.pending() == 0; }));
    CHECK(seeker.chat.unreceived() == 2);  // acknowledged, kept until the listener has them
    CHECK(f.mm.server.cmd({"HGET", relay_key(session), "sent_s"}) == "5");

    lose_last_writes(f.mm.server);
    CHECK(f.mm.server.cmd({"HGET", relay_key(session), "sent_s"}) == "3");

    // the relay refuses line 6 (it expects 4), the client asks where the chat stands and sends
    // 4, 5 and 6 again; the listener comes back and hears every line once, in order
    REQUIRE(seeker.chat.say(later[0]));
    REQUIRE(pump_until({&seeker, &listener}, [&] {
        return listener.chat.heard().size() >= 6 && seeker.chat.unreceived() == 0;
    }, 30s));
    CHECK(listener.chat.heard() == before + after + later);
    CHECK(f.mm.server.cmd({"HGET", relay_key(session), "sent_s"}) == "6");
    CHECK_FALSE(noticed(seeker, "could not be delivered"));
    CHECK_FALSE(noticed(listener, "could not be delivered"));
    CHECK(seeker.chat.welcomes() >= 2);  // the resync was a hello on the open connection
}

TEST_CASE("relay durability: lost messages the other side already had are passed over silently" *
          doctest::timeout(90)) {
    saved_chat c(2);
    auto& [f, a, session, seeker, listener, said] = c;
    const auto first = said, second = lines("seeker", 3, 4), third = lines("seeker", 5, 5);

    // received and confirmed: the seeker lets 3 and 4 go
    for (const auto& l : second) REQUIRE(seeker.chat.say(l));
    REQUIRE(pump_until({&seeker, &listener}, [&] { return seeker.chat.unreceived() == 0; }));
    lose_last_writes(f.mm.server);

    REQUIRE(seeker.chat.say(third[0]));
    REQUIRE(pump_until({&seeker, &listener}, [&] {
        return listener.chat.heard().size() >= 5 && seeker.chat.unreceived() == 0;
    }, 30s));
    CHECK(listener.chat.heard() == first + second + third);
    CHECK_FALSE(noticed(seeker, "could not be delivered"));
    CHECK_FALSE(noticed(listener, "could not be delivered"));
    // the log keeps the gap as one entry, so a later catch-up passes over it too
    CHECK(f.mm.server.cmd({"XRANGE", log_key(session, "s"), "0-4", "0-4"}).find("g") != std::string::npos);
    CHECK(metric(a.port, "warmline_relay_messages_skipped_total") == 2);
}

TEST_CASE("relay durability: a message nobody has any more is skipped with a note, and the chat goes on" *
          doctest::timeout(90)) {
    relay_fixture f(snapshot_only());
    relay_process a(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    // the seeker speaks the protocol by hand, to let a message go that a client would keep
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    auto keys = e2e::generate_keypair();
    const std::string public_key(keys.public_key.begin(), keys.public_key.end());
    REQUIRE(seeker.hello(public_key).has_welcome());
    side listener(v1::LISTENER, session, relay_url(a), relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(pump_until({&listener}, [&] { return listener.chat.welcomes() == 1; }));
    const auto peer = seeker.until([](const M& m) { return m.has_peer_key(); }).peer_key().public_key();
    e2e::key32 their{};
    std::copy(peer.begin(), peer.end(), their.begin());
    auto k = e2e::derive_keys(e2e::shared_secret(keys.private_key, their), session);
    e2e::sender out(k.seeker_to_listener, session, e2e::direction::seeker_to_listener);
    auto sealed = [&](const std::string& text) {
        auto s = out.seal(text);
        return std::make_pair(s.seq, std::string(s.ciphertext.begin(), s.ciphertext.end()));
    };

    auto [seq1, one] = sealed("one");
    REQUIRE(seeker.send_sealed(seq1, one).has_ack());
    REQUIRE(pump_until({&listener}, [&] { return listener.chat.heard().size() == 1; }));
    f.mm.server.cmd({"SAVE"});
    listener.chat.drop_connection();
    auto [seq2, two] = sealed("two");
    REQUIRE(seeker.send_sealed(seq2, two).ack().seq() == 2);  // acknowledged ...
    lose_last_writes(f.mm.server);                           // ... and lost

    // the relay says what it has now, less than it acknowledged; the seeker no longer has 2
    REQUIRE(pump_until({}, [&] { return ready(a.port); }, 20s));
    auto welcome = seeker.hello(public_key);
    REQUIRE(welcome.has_welcome());
    CHECK(welcome.welcome().sent_through() == 1);
    v1::RelayClientMessage skip;
    skip.mutable_skip()->set_through(2);
    CHECK(seeker.call(skip).has_ok());
    auto [seq3, three] = sealed("three");
    REQUIRE(seeker.send_sealed(seq3, three).ack().seq() == 3);

    // a skip never covers more than the unreceived window, nor anything already stored
    skip.mutable_skip()->set_through(1000000);
    CHECK(seeker.call(skip).error().code() == v1::INVALID_ARGUMENT);

    REQUIRE(pump_until({&listener}, [&] { return listener.chat.heard().size() >= 2; }, 30s));
    CHECK(listener.chat.heard() == std::vector<std::string>{"one", "three"});
    CHECK(noticed(listener, "A message from the other person could not be delivered"));
}

TEST_CASE("relay durability: with --ack-replicas an Ack means a replica has the message" * doctest::timeout(90)) {
    relay_fixture f;
    f.mm.server.cmd({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});  // no 5-s wait for more replicas
    redis_server replica({"--replicaof", "127.0.0.1", std::to_string(f.mm.server.port())});
    wait_until_replicating(f.mm.server, replica);
    relay_process a(f.mm.server.url(), f.log, {"--ack-replicas=1", "--ack-timeout-ms=300"});
    auto session = f.open_chat();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    relay_peer listener(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(seeker.hello(std::string(32, 's')).has_welcome());
    REQUIRE(listener.hello(std::string(32, 'l')).has_welcome());
    const std::string log = log_key(session, "s");

    // when the Ack comes, the replica has the message already
    REQUIRE(seeker.send_sealed(1, "sealed-1").ack().seq() == 1);
    CHECK(replica.cmd({"XLEN", log}) == "1");

    // a stalled replica: the message is stored and delivered, but not acknowledged
    replica.pause();
    auto refused = seeker.send_sealed(2, "sealed-2");
    CHECK(refused.error().code() == v1::UNAVAILABLE);
    CHECK(listener.next_delivery().seq() == 1);
    CHECK(listener.next_delivery().seq() == 2);
    replica.resume();
    // sent again once the replica is back: acknowledged without being stored twice
    REQUIRE(pump_until({}, [&] { return seeker.send_sealed(2, "sealed-2").has_ack(); }, 20s));
    CHECK(replica.cmd({"XLEN", log}) == "2");
    CHECK(metric(a.port, "warmline_relay_acks_unreplicated_total") >= 1);

    // pipelined sends: each acknowledged only once the replica has it
    std::vector<std::string> ids;
    for (std::uint64_t seq = 3; seq <= 40; ++seq) {
        v1::RelayClientMessage m;
        m.mutable_send()->set_seq(seq);
        m.mutable_send()->set_ciphertext("sealed-" + std::to_string(seq));
        ids.push_back(seeker.send(m));
    }
    for (const auto& id : ids) REQUIRE(seeker.reply(id).has_ack());
    CHECK(replica.cmd({"XLEN", log}) == "40");

    // the primary dies: everything acknowledged is on the replica
    f.mm.server.crash();
    CHECK(replica.cmd({"XLEN", log}) == "40");
}
