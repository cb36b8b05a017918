// The relay against a real redis-server and real relay processes: a chat both ways across two
// processes, reconnect and resume, SIGKILL of a relay mid-stream, tickets at the door, bad
// input, and the end of a chat.
#include "tests/integration/relay_fixture.hpp"

#include <signal.h>

using namespace warmline;
using namespace warmline::test;
using M = v1::RelayServerMessage;

namespace {

std::string key_of(char c) { return std::string(32, c); }  // stands in for an X25519 public key

std::string sealed(const std::string& side, std::uint64_t seq) {
    return "sealed:" + side + ":" + std::to_string(seq);  // the relay treats it as opaque bytes
}

}  // namespace

TEST_CASE("relay: a chat both ways across two relay processes, in order" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log), b(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    relay_peer listener(b.port, relay_fixture::ticket_for(session, ticket::role::listener));

    auto sw = seeker.hello(key_of('s'));
    REQUIRE(sw.has_welcome());
    CHECK(sw.welcome().session_id() == session);
    CHECK(sw.welcome().role() == v1::SEEKER);
    CHECK(sw.welcome().sent_through() == 0);
    CHECK(sw.welcome().peer_public_key().empty());
    auto lw = listener.hello(key_of('l'));
    REQUIRE(lw.has_welcome());
    CHECK(lw.welcome().peer_public_key() == key_of('s'));
    // the seeker learns the listener's key the moment it arrives
    CHECK(seeker.until([](const M& m) { return m.has_peer_key(); }).peer_key().public_key() == key_of('l'));

    for (std::uint64_t i = 1; i <= 20; ++i) {
        REQUIRE(seeker.send_sealed(i, sealed("s", i)).ack().seq() == i);
        if (i % 2 == 0) REQUIRE(listener.send_sealed(i / 2, sealed("l", i / 2)).ack().seq() == i / 2);
    }
    for (std::uint64_t i = 1; i <= 20; ++i) {
        auto d = listener.next_delivery();
        CHECK(d.from() == v1::SEEKER);
        CHECK(d.seq() == i);
        CHECK(d.ciphertext() == sealed("s", i));
    }
    for (std::uint64_t i = 1; i <= 10; ++i) {
        auto d = seeker.next_delivery();
        CHECK(d.from() == v1::LISTENER);
        CHECK(d.seq() == i);
        CHECK(d.ciphertext() == sealed("l", i));
    }

    // typing and read receipts pass through without being stored
    v1::RelayClientMessage typing;
    typing.mutable_typing()->set_typing(true);
    CHECK(seeker.call(typing).has_ok());
    CHECK(listener.until([](const M& m) { return m.has_peer_typing(); }).peer_typing().typing());
    v1::RelayClientMessage read;
    read.mutable_read()->set_through(20);
    CHECK(listener.call(read).has_ok());
    CHECK(seeker.until([](const M& m) { return m.has_peer_read(); }).peer_read().through() == 20);
    // the relay's records hold keys, counters and ciphertext only
    CHECK(f.mm.server.cmd({"XLEN", log_key(session, "s")}) == "20");
    CHECK(f.mm.server.cmd({"TTL", log_key(session, "s")}) != "-1");
    CHECK(f.mm.server.cmd({"TTL", relay_key(session)}) != "-1");
}

TEST_CASE("relay: a client that reconnects gets what it missed, once and in order" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log), b(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    auto seeker_ticket = relay_fixture::ticket_for(session, ticket::role::seeker);
    relay_peer listener(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(listener.hello(key_of('l')).has_welcome());
    std::uint64_t have = 0;
    std::string next_ticket;  // what the welcome gave for the next connection
    {
        relay_peer seeker(a.port, seeker_ticket);
        REQUIRE(seeker.hello(key_of('s')).has_welcome());
        for (std::uint64_t i = 1; i <= 3; ++i) REQUIRE(listener.send_sealed(i, sealed("l", i)).has_ack());
        for (std::uint64_t i = 1; i <= 3; ++i) have = seeker.next_delivery().seq();
        v1::RelayClientMessage got;
        got.mutable_received()->set_through(have);
        CHECK(seeker.call(got).has_ok());
        next_ticket = seeker.next_ticket;
        seeker.ws.abort();  // the phone drops off Wi-Fi
    }
    CHECK(have == 3);
    for (std::uint64_t i = 4; i <= 9; ++i) REQUIRE(listener.send_sealed(i, sealed("l", i)).has_ack());

    // back, on the other relay process, with the welcome's next ticket, saying what it has
    relay_peer seeker(b.port, next_ticket);
    auto w = seeker.hello(key_of('s'), have);
    REQUIRE(w.has_welcome());
    CHECK(w.welcome().peer_public_key() == key_of('l'));
    for (std::uint64_t i = 4; i <= 9; ++i) {
        auto d = seeker.next_delivery();
        CHECK(d.seq() == i);
        CHECK(d.ciphertext() == sealed("l", i));
    }
    // and live again afterwards, with nothing repeated
    REQUIRE(listener.send_sealed(10, sealed("l", 10)).has_ack());
    CHECK(seeker.next_delivery().seq() == 10);
    // deliveries come in order, so a repeat of anything earlier would come before this one
    REQUIRE(listener.send_sealed(11, sealed("l", 11)).has_ack());
    CHECK(seeker.next_delivery().seq() == 11);

    // a key that differs from the one this side started with is refused
    relay_peer impostor(b.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    auto refused = impostor.hello(key_of('x'));
    REQUIRE(refused.has_error());
    CHECK(refused.error().code() == v1::WRONG_STATE);
}

TEST_CASE("relay: SIGKILL of a relay mid-stream loses no acknowledged message" * doctest::timeout(90)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log);
    relay_process b(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    auto seeker_ticket = relay_fixture::ticket_for(session, ticket::role::seeker);
    auto listener_ticket = relay_fixture::ticket_for(session, ticket::role::listener);
    const std::uint64_t total = 60;

    auto sender = std::make_unique<relay_peer>(a.port, seeker_ticket);
    auto receiver = std::make_unique<relay_peer>(a.port, listener_ticket);
    REQUIRE(sender->hello(key_of('s')).has_welcome());
    REQUIRE(receiver->hello(key_of('l')).has_welcome());

    // a stream of messages sent without waiting; relay A dies part-way through
    std::uint64_t acked = 0;
    for (std::uint64_t i = 1; i <= total / 2; ++i) {
        v1::RelayClientMessage m;
        m.mutable_send()->set_seq(i);
        m.mutable_send()->set_ciphertext(sealed("s", i));
        sender->send(m);
    }
    while (acked < 10) acked = sender->until([](const M& m) { return m.has_ack(); }).ack().seq();
    a.proc->signal(SIGKILL);
    a.proc->wait(std::chrono::seconds(5));
    // whatever acks were already on the wire count too
    try {
        while (auto m = sender->ws.read(std::chrono::milliseconds(200))) {
            M s;
            if (s.ParseFromString(m->data) && s.has_ack()) acked = std::max<std::uint64_t>(acked, s.ack().seq());
        }
    } catch (const std::exception&) {
    }
    std::vector<std::uint64_t> got;
    for (auto& m : receiver->pending)
        if (m.has_deliver()) got.push_back(m.deliver().seq());
    try {
        while (auto m = receiver->ws.read(std::chrono::milliseconds(200))) {
            M s;
            if (s.ParseFromString(m->data) && s.has_deliver()) got.push_back(s.deliver().seq());
        }
    } catch (const std::exception&) {
    }

    // both reconnect to B; the sender resends what the relay says it does not have
    sender = std::make_unique<relay_peer>(b.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    auto w = sender->hello(key_of('s'));
    REQUIRE(w.has_welcome());
    std::uint64_t stored = w.welcome().sent_through();
    CHECK(stored >= acked);  // nothing acknowledged was lost
    for (std::uint64_t i = stored + 1; i <= total; ++i) REQUIRE(sender->send_sealed(i, sealed("s", i)).has_ack());
    receiver = std::make_unique<relay_peer>(b.port, relay_fixture::ticket_for(session, ticket::role::listener));
    std::uint64_t have = 0;
    for (auto s : got) {
        if (s == have + 1) have = s;  // the client keeps what it has in order and drops repeats
    }
    REQUIRE(receiver->hello(key_of('l'), have).has_welcome());
    for (std::uint64_t i = have + 1; i <= total; ++i) {
        auto d = receiver->next_delivery();
        REQUIRE(d.seq() == i);  // in order, no gap and no repeat
        CHECK(d.ciphertext() == sealed("s", i));
    }
    // one more: a repeat of anything earlier would arrive before it
    REQUIRE(sender->send_sealed(total + 1, sealed("s", total + 1)).has_ack());
    CHECK(receiver->next_delivery().seq() == total + 1);
    CHECK(f.mm.server.cmd({"XLEN", log_key(session, "s")}) == std::to_string(total + 1));
}

TEST_CASE("relay: tickets come in hello, not the URL; each admits one connection, and a welcome gives the next" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, {"--hello-timeout-ms=300"});
    auto session = f.open_chat();
    auto good = relay_fixture::ticket_for(session, ticket::role::seeker);

    // a ticket in the URL is refused before the upgrade: URLs end up in logs
    net::ws_client in_url;
    CHECK_THROWS_AS(in_url.connect("127.0.0.1", a.port, "/v1/relay?ticket=" + good), std::runtime_error);
    CHECK(in_url.refused_status() == 400);

    auto refused = [&](const std::string& t) {
        relay_peer p(a.port, t);
        auto r = p.hello(key_of('s'));
        return r.has_error() ? r.error().code() : v1::ERROR_CODE_UNSPECIFIED;
    };
    CHECK(refused("") == v1::UNAUTHENTICATED);               // missing
    CHECK(refused("v1.nonsense") == v1::UNAUTHENTICATED);    // malformed
    std::string forged = good;
    forged.back() = forged.back() == 'A' ? 'B' : 'A';
    CHECK(refused(forged) == v1::UNAUTHENTICATED);
    CHECK(refused(relay_fixture::ticket_for(session, ticket::role::seeker, -1000)) == v1::UNAUTHENTICATED);  // expired
    CHECK(refused(ticket::sign("another-secret-another-secret-12345", {session, ticket::role::seeker, wall_ms() + 60000})) ==
          v1::UNAUTHENTICATED);                               // signed elsewhere
    CHECK(refused(relay_fixture::ticket_for("c-no-such-chat", ticket::role::seeker)) == v1::NOT_FOUND);
    // none of the refusals used the good ticket up, nor bound their connection to anything
    relay_peer first(a.port, good);
    auto welcome = first.hello(key_of('s'));
    REQUIRE(welcome.has_welcome());
    CHECK(welcome.welcome().session_id() == session);
    // a hello again on the same connection needs no ticket
    first.ticket.clear();
    CHECK(first.hello(key_of('s')).has_welcome());
    // the ticket admitted one connection: a second one with it is refused, even after the first closed
    first.ws.close();
    CHECK(refused(good) == v1::UNAUTHENTICATED);
    CHECK(f.mm.server.cmd({"EVAL", "return #redis.call('KEYS', 'wl:relay:ticket:*')", "0"}) == "2");  // good, and the no-such-chat one
    // the welcome's next ticket opens the next connection, as this side, and is itself used up
    ticket::claims c;
    REQUIRE(ticket::verify(relay_secret, first.next_ticket, wall_ms(), c) == ticket::verdict::ok);
    CHECK(c.session_id == session);
    CHECK(c.who == ticket::role::seeker);
    relay_peer second(a.port, first.next_ticket);
    REQUIRE(second.hello(key_of('s')).has_welcome());
    CHECK(refused(first.next_ticket) == v1::UNAUTHENTICATED);
    // a connection that never says hello with a ticket is closed
    relay_peer silent(a.port, "");
    CHECK(silent.read_until_closed() == 1008);
    // once the chat has ended its tickets open nothing
    REQUIRE(f.mm.run(f.mm.store->end_chat("seeker", f.seeker, session)));
    CHECK(refused(second.next_ticket) == v1::NOT_FOUND);
}

TEST_CASE("relay: bad input gets a typed error and changes nothing" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, {"--max-ciphertext-bytes=1024", "--read-message-max=4096",
                                               "--rate-burst=200"});
    auto session = f.open_chat();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));

    seeker.ws.send_binary("\xff\xff\xff not a protobuf");
    auto bad = seeker.until([](const M& m) { return m.has_error(); });
    CHECK(bad.error().code() == v1::MALFORMED_FRAME);
    auto early = seeker.send_sealed(1, "x");  // before hello
    REQUIRE(early.has_error());
    CHECK(early.error().code() == v1::UNAUTHENTICATED);
    auto short_key = seeker.hello("too short");
    REQUIRE(short_key.has_error());
    CHECK(short_key.error().code() == v1::INVALID_ARGUMENT);
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    auto gap = seeker.send_sealed(2, "x");  // 1 comes first
    REQUIRE(gap.has_error());
    CHECK(gap.error().code() == v1::WRONG_STATE);
    auto zero = seeker.send_sealed(0, "x");
    REQUIRE(zero.has_error());
    CHECK(zero.error().code() == v1::INVALID_ARGUMENT);
    auto big = seeker.send_sealed(1, std::string(1025, 'x'));
    REQUIRE(big.has_error());
    CHECK(big.error().code() == v1::MESSAGE_TOO_LARGE);
    CHECK(f.mm.server.cmd({"EXISTS", log_key(session, "s")}) == "0");
    // a resend of a stored message is acknowledged again, not stored twice
    CHECK(seeker.send_sealed(1, "x").ack().seq() == 1);
    CHECK(seeker.send_sealed(1, "x").ack().seq() == 1);
    CHECK(f.mm.server.cmd({"XLEN", log_key(session, "s")}) == "1");
    // a frame over read_message_max closes the connection with 1009
    v1::RelayClientMessage huge;
    huge.set_request_id("huge");
    huge.mutable_send()->set_seq(2);
    huge.mutable_send()->set_ciphertext(std::string(8000, 'x'));
    seeker.ws.send_binary(huge.SerializeAsString());
    CHECK(seeker.read_until_closed() == 1009);
}

TEST_CASE("relay: a connection that sends too fast is told to slow down" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, {"--rate-burst=5", "--rate-per-second=1"});
    auto session = f.open_chat();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    int limited = 0;
    for (std::uint64_t i = 1; i <= 10; ++i) {
        auto r = seeker.send_sealed(i, "x");
        if (r.has_error() && r.error().code() == v1::RATE_LIMITED) ++limited;
    }
    CHECK(limited >= 5);
}

TEST_CASE("relay: either side ends the chat; both are told and the log is gone" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log), b(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    relay_peer listener(b.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    REQUIRE(listener.hello(key_of('l')).has_welcome());
    REQUIRE(seeker.send_sealed(1, "x").has_ack());
    CHECK(f.mm.field("wl:listener:" + f.listener.id, "chats") == "1");

    v1::RelayClientMessage end;
    end.mutable_end();
    CHECK(listener.call(end).has_ok());
    auto s_end = seeker.until([](const M& m) { return m.has_ended(); });
    auto l_end = listener.until([](const M& m) { return m.has_ended(); });
    CHECK(s_end.ended().ended_by() == v1::LISTENER);
    CHECK(l_end.ended().ended_by() == v1::LISTENER);
    CHECK(f.mm.server.cmd({"EXISTS", log_key(session, "s")}) == "0");
    CHECK(f.mm.server.cmd({"EXISTS", relay_key(session)}) == "0");
    CHECK(f.mm.field("wl:session:" + session, "state") == "ended");
    CHECK(f.mm.field("wl:listener:" + f.listener.id, "chats") == "0");  // capacity freed
    CHECK(f.mm.seeker_state(f.seeker) == "ended");                      // may rate and block
}

TEST_CASE("relay: a chat ended on the control Redis is purged from the chat Redis, also when no relay ran "
          "at that moment" * doctest::timeout(60)) {
    relay_fixture f;
    std::string held, orphaned;
    {
        relay_process a(f.mm.server.url(), f.log);
        held = f.open_chat();
        orphaned = f.open_chat();
        relay_peer seeker(a.port, relay_fixture::ticket_for(held, ticket::role::seeker));
        relay_peer other(a.port, relay_fixture::ticket_for(orphaned, ticket::role::seeker));
        REQUIRE(seeker.hello(key_of('s')).has_welcome());
        REQUIRE(other.hello(key_of('s')).has_welcome());
        REQUIRE(other.send_sealed(1, "kept until the chat ends").has_ack());

        // the matchmaker ends one (as EndChat does): the relay holding its side tells it and purges
        auto ended = f.mm.run(f.mm.store->end_chat("listener", f.listener.id, held));
        REQUIRE(ended);
        auto e = seeker.until([](const M& m) { return m.has_ended(); }, std::chrono::seconds(10));
        CHECK(e.ended().ended_by() == v1::LISTENER);
    }  // the relay stops (as if it died): nobody is left to purge what ends now
    CHECK(f.mm.server.cmd({"EXISTS", relay_key(held)}) == "0");
    auto ended = f.mm.run(f.mm.store->end_chat("listener", f.listener.id, orphaned));
    REQUIRE(ended);
    CHECK(f.mm.server.cmd({"ZSCORE", keys::relay_ended(), orphaned}) != "");
    CHECK(f.mm.server.cmd({"EXISTS", log_key(orphaned, "s")}) == "1");

    // the next relay's first sweep drains the queue: records and log gone, queue empty
    relay_process b(f.mm.server.url(), f.log, {"--presence-sweep-ms=50", "--node-lease-ms=500"});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (f.mm.server.cmd({"ZCARD", keys::relay_ended()}) != "0") REQUIRE(std::chrono::steady_clock::now() < deadline);
    CHECK(f.mm.server.cmd({"EXISTS", log_key(orphaned, "s")}) == "0");
    CHECK(f.mm.server.cmd({"EXISTS", relay_key(orphaned)}) == "0");
    CHECK(f.mm.server.cmd({"ZSCORE", keys::relay_active(relay::bucket_of(orphaned)), orphaned}).empty());
}

TEST_CASE("relay: a chat nobody writes in ends with a notice" * doctest::timeout(60)) {
    relay_fixture f;
    auto session = f.open_chat();
    // 150 entries in the chat's bucket, older than it, of chats whose records expired without an
    // end: more than one sweep takes, so the real chat is reached only if the sweep drops them
    const auto active = keys::relay_active(relay::bucket_of(session));
    for (int i = 0; i < 150; ++i) f.mm.server.cmd({"ZADD", active, "1", "c-expired-" + std::to_string(i)});
    relay_process a(f.mm.server.url(), f.log, {"--idle-limit-ms=300", "--idle-sweep-ms=50"});
    a.wait_ready();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    auto ended = seeker.until([](const M& m) { return m.has_ended(); }, std::chrono::seconds(10));
    CHECK(f.mm.server.cmd({"ZCARD", active}) == "0");
    // counted once, though the sweep also met 150 chats it could not end (counted when the
    // sweep over every bucket is done, which may be just after the notice)
    const auto counted = [&] {
        return net::http_request_blocking("127.0.0.1", a.port, "GET", "/metrics").body.find(
                   "warmline_relay_idle_ended_total 1\n") != std::string::npos;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!counted()) REQUIRE(std::chrono::steady_clock::now() < deadline);
    CHECK(ended.ended().reason() == "idle");
    CHECK(ended.ended().ended_by() == v1::ROLE_UNSPECIFIED);
    CHECK(f.mm.field("wl:session:" + session, "state") == "ended");
    CHECK(f.mm.server.cmd({"ZSCORE", active, session}).empty());
}

TEST_CASE("relay: a receiver that stops reading is closed and resumes from the log" * doctest::timeout(90)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, {"--write-queue-max=8", "--rate-burst=1000", "--max-log=2000"});
    auto session = f.open_chat();
    auto listener_ticket = relay_fixture::ticket_for(session, ticket::role::listener);
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    // more than the kernel's socket buffers hold, so the relay's own queue must fill
    const std::uint64_t total = 800;
    {
        relay_peer slow(a.port, listener_ticket);
        REQUIRE(slow.hello(key_of('l')).has_welcome());
        // the receiver reads nothing while 800 messages of 16 KB arrive for it
        std::string body(16000, 'm');
        for (std::uint64_t i = 1; i <= total; ++i) REQUIRE(seeker.send_sealed(i, body + std::to_string(i)).has_ack());
        CHECK(slow.read_until_closed() == 1013);
    }
    relay_peer back(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(back.hello(key_of('l')).has_welcome());
    for (std::uint64_t i = 1; i <= total; ++i) {
        auto d = back.next_delivery();
        REQUIRE(d.seq() == i);
    }
}

TEST_CASE("relay: two sides saying hello at once each get the other's key and first message" * doctest::timeout(90)) {
    // A side's key event could come between its peer's hello script and the peer's connection
    // being registered in the process, and be dropped: the peer then waited for a key forever.
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log), b(f.mm.server.url(), f.log);
    for (int chat = 0; chat < 30; ++chat) {
        CAPTURE(chat);
        auto session = f.open_chat();
        // half the chats with both sides on one process, half across two
        relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
        relay_peer listener(chat % 2 ? b.port : a.port, relay_fixture::ticket_for(session, ticket::role::listener));
        v1::RelayClientMessage hs, hl, ms, ml;
        hs.mutable_hello()->set_public_key(key_of('s'));
        hs.mutable_hello()->set_ticket(seeker.ticket);
        hl.mutable_hello()->set_public_key(key_of('l'));
        hl.mutable_hello()->set_ticket(listener.ticket);
        ms.mutable_send()->set_seq(1);
        ms.mutable_send()->set_ciphertext(sealed("s", 1));
        ml.mutable_send()->set_seq(1);
        ml.mutable_send()->set_ciphertext(sealed("l", 1));
        // pipelined: neither waits for its welcome before the other's hello or its own message
        auto s_hello = seeker.send(hs);
        auto l_hello = listener.send(hl);
        seeker.send(ms);
        listener.send(ml);
        for (auto* side : {&seeker, &listener}) {
            const std::string want = side == &seeker ? key_of('l') : key_of('s');
            auto w = side->reply(side == &seeker ? s_hello : l_hello);
            REQUIRE(w.has_welcome());
            // nothing is pushed before the welcome
            for (const auto& early : side->pending) CHECK_FALSE(early.has_peer_key());
            std::string got = w.welcome().peer_public_key();
            if (got.empty())
                got = side->until([](const M& m) { return m.has_peer_key(); }, std::chrono::seconds(3))
                          .peer_key()
                          .public_key();
            CHECK(got == want);
            auto d = side->next_delivery(std::chrono::seconds(3));
            CHECK(d.seq() == 1);
            CHECK(d.ciphertext() == sealed(side == &seeker ? "l" : "s", 1));
        }
        v1::RelayClientMessage end;
        end.mutable_end();
        REQUIRE(seeker.call(end).has_ok());  // frees the listener's slot for the next chat
    }
}

TEST_CASE("relay: a Redis at its maxmemory (noeviction) refuses a send with UNAVAILABLE, and the resend is kept" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    relay_peer listener(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    REQUIRE(listener.hello(key_of('l')).has_welcome());
    REQUIRE(seeker.send_sealed(1, sealed("s", 1)).has_ack());

    f.mm.server.cmd({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
    f.mm.server.cmd({"CONFIG", "SET", "maxmemory", "1"});
    auto full = seeker.send_sealed(2, sealed("s", 2));
    REQUIRE(full.has_error());
    CHECK(full.error().code() == v1::UNAVAILABLE);
    CHECK(full.error().message().find("out of room") != std::string::npos);
    f.mm.server.cmd({"CONFIG", "SET", "maxmemory", "0"});
    CHECK(seeker.send_sealed(2, sealed("s", 2)).ack().seq() == 2);
    CHECK(listener.next_delivery().seq() == 1);
    CHECK(listener.next_delivery().seq() == 2);
}

TEST_CASE("relay: a resend must be the message stored under its seq; other content is refused, not acknowledged" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    REQUIRE(seeker.send_sealed(1, "sealed once").has_ack());
    // a second tab that sealed another message under seq 1 (one key, one nonce, two texts)
    auto conflict = seeker.send_sealed(1, "sealed twice");
    REQUIRE(conflict.has_error());
    CHECK(conflict.error().code() == v1::SEQ_CONFLICT);
    CHECK(seeker.send_sealed(1, "sealed once").ack().seq() == 1);  // the same bytes: a plain resend
    const auto stored = f.mm.server.cmd({"EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+')[1][2][2]", "1",
                                         log_key(session, "s")});
    CHECK(stored == "sealed once");
    CHECK(f.mm.server.cmd({"XLEN", log_key(session, "s")}) == "1");
    auto metrics = net::http_request_blocking("127.0.0.1", a.port, "GET", "/metrics");
    CHECK(metrics.body.find("warmline_relay_seq_conflicts_total 1") != std::string::npos);
}

TEST_CASE("relay: a connection whose side another connection took over may no longer send or skip" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log);
    relay_process b(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    auto fresh = [&] { return relay_fixture::ticket_for(session, ticket::role::seeker); };

    SUBCASE("refused in Redis even before the takeover's kick arrives") {
        relay_peer tab(a.port, fresh());
        REQUIRE(tab.hello(key_of('s')).has_welcome());
        REQUIRE(tab.send_sealed(1, "one").has_ack());
        // another relay's hello for this side, whose kick has not reached relay a yet
        f.mm.server.cmd({"HSET", relay_key(session), "conn_s", "elsewhere:1"});
        auto refused = tab.send_sealed(2, "two");
        REQUIRE(refused.has_error());
        CHECK(refused.error().code() == v1::PERMISSION_DENIED);
        CHECK(tab.read_until_closed() == 4001);
        CHECK(f.mm.server.cmd({"XLEN", log_key(session, "s")}) == "1");
        CHECK(f.mm.server.cmd({"HGET", relay_key(session), "sent_s"}) == "1");
    }
    SUBCASE("two tabs on two relays: only the newer one writes") {
        relay_peer older(a.port, fresh());
        REQUIRE(older.hello(key_of('s')).has_welcome());
        REQUIRE(older.send_sealed(1, "one").has_ack());
        relay_peer newer(b.port, fresh());
        auto welcome = newer.hello(key_of('s'));
        REQUIRE(welcome.has_welcome());
        CHECK(welcome.welcome().sent_through() == 1);
        // the older tab's next message is refused, or finds itself closed by the kick first
        v1::RelayClientMessage m;
        m.mutable_send()->set_seq(2);
        m.mutable_send()->set_ciphertext("from the old tab");
        try {
            auto r = older.call(m);
            CHECK_FALSE(r.has_ack());
        } catch (const std::exception&) {
        }
        CHECK(older.read_until_closed() == 4001);
        REQUIRE(newer.send_sealed(2, "from the new tab").has_ack());
        CHECK(f.mm.server.cmd({"XLEN", log_key(session, "s")}) == "2");
    }
}
