// Each side knows when the other is gone, against a real redis-server and relay processes with
// short presence times: a side with no connection for the away time is announced to the other
// side and its return too; past the grace the chat ends as lost (a lost listener's seeker goes
// back to the front of the line, the listener's slot is freed at once); a relay process that
// dies takes its sides with it; a device without the chat's keys cannot continue the chat.
#include "tests/integration/relay_fixture.hpp"

#include <signal.h>

using namespace warmline;
using namespace warmline::test;
using M = v1::RelayServerMessage;

namespace {

std::string key_of(char c) { return std::string(32, c); }

std::vector<std::string> presence_flags(int away_ms, int grace_ms) {
    return {"--peer-away-ms=" + std::to_string(away_ms), "--peer-grace-ms=" + std::to_string(grace_ms),
            "--presence-sweep-ms=20", "--node-lease-ms=1000"};
}

bool presence(const M& m, bool present) { return m.has_peer_presence() && m.peer_presence().present() == present; }

}  // namespace

TEST_CASE("presence: a side whose connection closed is announced after the away time, and its return too" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, presence_flags(300, 600000));
    auto session = f.open_chat();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    {
        relay_peer listener(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
        REQUIRE(listener.hello(key_of('l')).has_welcome());
        listener.ws.close();
    }
    const auto closed = std::chrono::steady_clock::now();
    auto away = seeker.until([](const M& m) { return presence(m, false); }, std::chrono::seconds(5));
    // not before the away time
    CHECK(std::chrono::steady_clock::now() - closed >= std::chrono::milliseconds(250));
    CHECK(away.peer_presence().away_since_unix_ms() > 0);
    // a side that joins while the other is away hears it right after its welcome
    relay_peer second_seeker_tab(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(second_seeker_tab.hello(key_of('s')).has_welcome());
    CHECK(second_seeker_tab.until([](const M& m) { return presence(m, false); }).peer_presence().away_since_unix_ms() ==
          away.peer_presence().away_since_unix_ms());

    relay_peer listener(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(listener.hello(key_of('l')).has_welcome());
    CHECK(second_seeker_tab.until([](const M& m) { return presence(m, true); }).has_peer_presence());
    // the chat goes on
    REQUIRE(second_seeker_tab.send_sealed(1, "after").ack().seq() == 1);
    CHECK(listener.next_delivery().ciphertext() == "after");
}

TEST_CASE("presence: a listener gone past the grace ends the chat as peer_lost; the slot is freed at once "
          "and the seeker is back at the front of the line" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, presence_flags(200, 800));
    auto session = f.open_chat();
    // someone else waits in the same queue, and arrived before the chat ended
    auto other = f.mm.seeker();
    f.mm.now = wall_ms();
    f.mm.request(other, "grief", "en");
    REQUIRE(f.mm.seeker_state(other) == "offered");  // the listener has room for 5
    REQUIRE(f.mm.run(f.mm.store->decline_offer(f.listener.id, f.mm.offer_of(other))));
    REQUIRE(f.mm.seeker_state(other) == "queued");
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    {
        relay_peer listener(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
        REQUIRE(listener.hello(key_of('l')).has_welcome());
        listener.ws.abort();  // the browser closed, no goodbye
    }
    CHECK(seeker.until([](const M& m) { return presence(m, false); }).has_peer_presence());
    auto ended = seeker.until([](const M& m) { return m.has_ended(); }, std::chrono::seconds(5)).ended();
    CHECK(ended.reason() == "peer_lost");
    CHECK(ended.lost() == v1::LISTENER);
    CHECK(ended.requeued());
    CHECK(ended.ended_by() == v1::ROLE_UNSPECIFIED);
    // the listener's slot is free; the seeker waits again, ahead of the one who came earlier
    CHECK(f.mm.field("wl:listener:" + f.listener.id, "chats") == "0");
    CHECK(f.mm.server.cmd({"SISMEMBER", "wl:listener:" + f.listener.id + ":chats", session}) == "0");
    CHECK(f.mm.seeker_state(f.seeker) == "queued");
    const auto mine = std::stod(f.mm.server.cmd({"ZSCORE", "wl:q:grief:en", f.seeker}));
    const auto theirs = std::stod(f.mm.server.cmd({"ZSCORE", "wl:q:grief:en", other}));
    CHECK(mine < theirs);
    // not offered to the listener who vanished for a while; the matchmakers' sweep is told to match
    CHECK_FALSE(f.mm.server.cmd({"ZSCORE", "wl:seeker:" + f.seeker + ":cooldown", f.listener.id}).empty());
    CHECK_FALSE(f.mm.server.cmd({"ZSCORE", "wl:due:cooldown", f.seeker + "|" + f.listener.id}).empty());
    CHECK_FALSE(f.mm.server.cmd({"ZSCORE", "wl:due:match", "s:" + f.seeker}).empty());
    CHECK(f.mm.field("wl:session:" + session, "lost") == "l");
    CHECK(f.mm.field("wl:stats:grief:en", "peer_lost") == "1");
    CHECK(f.mm.server.cmd({"EXISTS", relay_key(session)}) == "0");
}

TEST_CASE("presence: a seeker gone past the grace ends the chat and the listener is told; a side that "
          "never joined is lost the same way" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, presence_flags(200, 700));
    auto session = f.open_chat();
    relay_peer listener(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(listener.hello(key_of('l')).has_welcome());
    // the seeker never says hello: announced, then lost
    CHECK(listener.until([](const M& m) { return presence(m, false); }).has_peer_presence());
    auto ended = listener.until([](const M& m) { return m.has_ended(); }, std::chrono::seconds(5)).ended();
    CHECK(ended.reason() == "peer_lost");
    CHECK(ended.lost() == v1::SEEKER);
    CHECK_FALSE(ended.requeued());
    CHECK(f.mm.seeker_state(f.seeker) == "ended");
    CHECK(f.mm.field("wl:listener:" + f.listener.id, "chats") == "0");
}

TEST_CASE("presence: a chat neither side ever joins ends after the grace as lost, and the seeker is served "
          "again" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, presence_flags(200, 700));
    auto session = f.open_chat();
    CHECK(f.mm.server.cmd({"ZSCORE", keys::relay_unseen(), session}) != "");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (f.mm.field("wl:session:" + session, "state") != "ended") REQUIRE(std::chrono::steady_clock::now() < deadline);
    // the listener counted lost, so the seeker goes back to the front of the line
    CHECK(f.mm.field("wl:session:" + session, "ended_by") == "peer_lost");
    CHECK(f.mm.field("wl:session:" + session, "lost") == "l");
    CHECK(f.mm.seeker_state(f.seeker) == "queued");
    CHECK(f.mm.field("wl:listener:" + f.listener.id, "chats") == "0");
    CHECK(f.mm.server.cmd({"ZCARD", keys::relay_unseen()}) == "0");
}

TEST_CASE("presence: the sides of a relay process killed with SIGKILL are gone once its lease runs out" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, presence_flags(300, 600000));
    relay_process b(f.mm.server.url(), f.log, presence_flags(300, 600000));
    auto session = f.open_chat();
    relay_peer listener(b.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(listener.hello(key_of('l')).has_welcome());
    {
        relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
        REQUIRE(seeker.hello(key_of('s')).has_welcome());
        a.proc->signal(SIGKILL);
        a.proc->wait(std::chrono::seconds(5));
    }
    // no goodbye from a dead process: its lease (1 s) runs out, then the away time
    CHECK(listener.until([](const M& m) { return presence(m, false); }, std::chrono::seconds(10)).has_peer_presence());
    relay_peer seeker(b.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    CHECK(listener.until([](const M& m) { return presence(m, true); }).has_peer_presence());
}

TEST_CASE("new device: a hello with other keys is refused while the side's own device is connected; once it "
          "is gone the chat ends as lost at once and the seeker is back at the front of the line" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, presence_flags(60000, 600000));
    auto session = f.open_chat();
    relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(seeker.hello(key_of('s')).has_welcome());
    auto old_device = std::make_unique<relay_peer>(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(old_device->hello(key_of('l')).has_welcome());

    relay_peer new_device(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    auto refused = new_device.hello(key_of('n'));
    REQUIRE(refused.has_error());
    CHECK(refused.error().code() == v1::WRONG_STATE);
    CHECK(f.mm.field("wl:session:" + session, "state") == "active");

    old_device->ws.close();
    old_device.reset();
    // the close is recorded (gone.lua) before the new device tries again
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!f.mm.field(relay_key(session), "conn_l").empty()) REQUIRE(std::chrono::steady_clock::now() < deadline);
    relay_peer newer(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    auto lost = newer.hello(key_of('n'));
    REQUIRE(lost.has_error());
    CHECK(lost.error().code() == v1::NOT_FOUND);
    CHECK(lost.error().message().find("front of the line") != std::string::npos);
    auto ended = seeker.until([](const M& m) { return m.has_ended(); }).ended();
    CHECK(ended.reason() == "peer_lost");
    CHECK(ended.lost() == v1::LISTENER);
    CHECK(ended.requeued());
    CHECK(f.mm.seeker_state(f.seeker) == "queued");
}

TEST_CASE("new device: a seeker back without the chat's keys is still here: the chat ends and the seeker is "
          "back at the front of the line" *
          doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log, presence_flags(60000, 600000));
    auto session = f.open_chat();
    relay_peer listener(a.port, relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(listener.hello(key_of('l')).has_welcome());
    {
        relay_peer seeker(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
        REQUIRE(seeker.hello(key_of('s')).has_welcome());
        seeker.ws.close();
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!f.mm.field(relay_key(session), "conn_s").empty()) REQUIRE(std::chrono::steady_clock::now() < deadline);
    relay_peer again(a.port, relay_fixture::ticket_for(session, ticket::role::seeker));
    auto lost = again.hello(key_of('x'));
    REQUIRE(lost.has_error());
    CHECK(lost.error().code() == v1::NOT_FOUND);
    auto ended = listener.until([](const M& m) { return m.has_ended(); }).ended();
    CHECK(ended.lost() == v1::SEEKER);
    CHECK(ended.requeued());
    CHECK(f.mm.seeker_state(f.seeker) == "queued");
    // the listener did nothing wrong: the seeker may be offered to them again at once
    CHECK(f.mm.server.cmd({"ZSCORE", "wl:seeker:" + f.seeker + ":cooldown", f.listener.id}).empty());
}
