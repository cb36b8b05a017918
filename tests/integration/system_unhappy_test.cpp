// The unhappy paths of issue 9 with every process real: a matchmaker and a relay started from the
// built binaries with short timings, Redis, and clients over WebSockets. A declined seeker is
// told the truth and offered again after the cool-down; a listener who vanishes mid-chat hands
// the seeker back to the front of the line (and a new device of theirs ends the chat at once);
// a seeker who vanishes frees the listener's slot; an absent seeker is never offered; the
// crisis flag travels with the chat.
#include "tests/integration/system_fixture.hpp"

#include "common/crypto.hpp"

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;
using R = v1::RelayServerMessage;

namespace {

const std::vector<std::string> short_times{"--decline-cooldown-ms=1500", "--grace-ms=20000",
                                           "--offer-timeout-ms=20000", "--node-lease-ms=3000"};

// A relay with presence times short enough for a test: announced after 400 ms, lost after 1.5 s.
const std::vector<std::string> short_presence{"--peer-away-ms=400", "--peer-grace-ms=1500", "--presence-sweep-ms=20"};

}  // namespace

TEST_CASE("unhappy (case 1): a crisis request declined by the only listener is told nobody can take it now, "
          "with the crisis lines, and is offered to them again after the cool-down" *
          doctest::timeout(60)) {
    stack s(1, 1, short_times, short_presence);
    auto port = s.matchmakers[0].port;
    auto account = s.f.listener({"anxiety"}, {"en"}, 1, false);
    peer listener(port);
    listener_sign_in(listener, account.token);
    peer seeker(port);
    seeker_hello(seeker);
    auto queued = seeker.call(R"("requestChat":{"topic":"anxiety","language":"en","crisis":true})");
    REQUIRE(queued.has_request_queued());
    REQUIRE(listener.call(R"("declineOffer":{"offerId":")" + offer_id(listener) + "\"}").has_ok());

    auto told = seeker.until([](const M& m) { return m.has_queue_update() && m.queue_update().no_listener_now(); });
    CHECK(told.queue_update().estimated_wait_s() == 0);
    CHECK(told.queue_update().crisis_resources_size() > 0);
    // the dashboard shows the pair as one nobody available can serve
    auto sup = s.f.run(s.f.accounts->create_supervisor("Sam"));
    peer supervisor(port);
    auto stats = supervisor.call(R"("supervisorSignIn":{"token":")" + sup.token + "\"}");
    bool counted = false;
    for (const auto& q : stats.stats().queues())
        if (q.topic() == "anxiety" && q.language() == "en") counted = q.seekers_unservable() == 1 && q.crisis_waiting() == 1;
    CHECK(counted);

    // after the cool-down (1.5 s) the same listener is offered the seeker again
    auto again = listener.until([](const M& m) { return m.has_offer(); }, std::chrono::seconds(10));
    CHECK(again.offer().crisis());
    CHECK(seeker.until([](const M& m) { return m.has_queue_update() && !m.queue_update().no_listener_now(); })
              .has_queue_update());
}

TEST_CASE("unhappy (case 2): a listener who vanishes mid-chat is announced to the seeker, who then goes back "
          "to the front of the line and to the next listener" *
          doctest::timeout(60)) {
    stack s(1, 1, short_times, short_presence);
    auto port = s.matchmakers[0].port;
    auto first_account = s.f.listener({"grief"}, {"en"}, 1, false);
    auto second_account = s.f.listener({"grief"}, {"en"}, 1, false);
    auto first = std::make_unique<peer>(port);
    listener_sign_in(*first, first_account.token);
    peer seeker(port);
    seeker_hello(seeker);
    REQUIRE(seeker.call(R"("requestChat":{"topic":"grief","language":"en"})").has_request_queued());
    auto [seeker_chat, listener_chat] = accept(*first, seeker, offer_id(*first));
    relay_peer seeker_side(s.relays[0].port, seeker_chat.relay_ticket());
    REQUIRE(seeker_side.hello(std::string(32, 's')).has_welcome());
    {
        relay_peer listener_side(s.relays[0].port, listener_chat.relay_ticket());
        REQUIRE(listener_side.hello(std::string(32, 'l')).has_welcome());
        // the listener's browser closes: both sockets go without a goodbye
        listener_side.ws.abort();
        first->ws.abort();
        first.reset();
    }
    CHECK(seeker_side.until([](const R& m) { return m.has_peer_presence() && !m.peer_presence().present(); })
              .has_peer_presence());
    auto ended = seeker.until([](const M& m) { return m.has_chat_ended(); }, std::chrono::seconds(10)).chat_ended();
    CHECK(ended.reason() == "peer_lost");
    CHECK(ended.lost() == v1::LISTENER);
    CHECK(ended.requeued());
    // a second listener who comes online gets this seeker first
    peer second(port);
    listener_sign_in(second, second_account.token);
    auto next = accept(second, seeker, offer_id(second));
    CHECK(next.first.session_id() != seeker_chat.session_id());
}

TEST_CASE("unhappy (case 2, new device): the listener back on a new device ends the chat at once, and the "
          "seeker is back in line" *
          doctest::timeout(60)) {
    stack s(1, 1, short_times, short_presence);
    auto port = s.matchmakers[0].port;
    auto account = s.f.listener({"work"}, {"en"}, 1, false);
    auto old_device = std::make_unique<peer>(port);
    listener_sign_in(*old_device, account.token);
    peer seeker(port);
    const std::string sid = seeker_hello(seeker);
    REQUIRE(seeker.call(R"("requestChat":{"topic":"work","language":"en"})").has_request_queued());
    auto [seeker_chat, listener_chat] = accept(*old_device, seeker, offer_id(*old_device));
    relay_peer seeker_side(s.relays[0].port, seeker_chat.relay_ticket());
    REQUIRE(seeker_side.hello(std::string(32, 's')).has_welcome());
    {
        relay_peer old_relay(s.relays[0].port, listener_chat.relay_ticket());
        REQUIRE(old_relay.hello(std::string(32, 'l')).has_welcome());
        old_relay.ws.close();
        old_device->ws.close();
        old_device.reset();
    }
    // a new browser: signs in, is given the open chat, and joins it with keys of its own
    peer new_device(port);
    auto welcome = new_device.call(R"("listenerSignIn":{"token":")" + account.token + "\"}");
    REQUIRE(welcome.listener_welcome().open_chats_size() == 1);
    relay_peer new_relay(s.relays[0].port, welcome.listener_welcome().open_chats(0).relay_ticket());
    auto refused = new_relay.hello(std::string(32, 'n'));
    REQUIRE(refused.has_error());
    CHECK(refused.error().code() == v1::NOT_FOUND);
    // at once, not after the grace
    auto ended = new_device.until([](const M& m) { return m.has_chat_ended(); }).chat_ended();
    CHECK(ended.reason() == "peer_lost");
    CHECK(ended.lost() == v1::LISTENER);
    CHECK(seeker.until([](const M& m) { return m.has_chat_ended(); }).chat_ended().requeued());
    CHECK(s.f.seeker_state(sid) == "queued");
}

TEST_CASE("unhappy (case 3): a seeker who closes the tab mid-chat is announced to the listener, and the chat's "
          "end frees the listener's slot for the next seeker" *
          doctest::timeout(60)) {
    stack s(1, 1, short_times, short_presence);
    auto port = s.matchmakers[0].port;
    auto account = s.f.listener({"loneliness"}, {"en"}, 1, false);
    peer listener(port);
    listener_sign_in(listener, account.token);
    auto seeker = std::make_unique<peer>(port);
    seeker_hello(*seeker);
    REQUIRE(seeker->call(R"("requestChat":{"topic":"loneliness","language":"en"})").has_request_queued());
    auto [seeker_chat, listener_chat] = accept(listener, *seeker, offer_id(listener));
    // someone else waits meanwhile: the listener has no room
    peer next(port);
    seeker_hello(next);
    REQUIRE(next.call(R"("requestChat":{"topic":"loneliness","language":"en"})").has_request_queued());
    relay_peer listener_side(s.relays[0].port, listener_chat.relay_ticket());
    REQUIRE(listener_side.hello(std::string(32, 'l')).has_welcome());
    {
        relay_peer seeker_side(s.relays[0].port, seeker_chat.relay_ticket());
        REQUIRE(seeker_side.hello(std::string(32, 's')).has_welcome());
        seeker_side.ws.abort();
        seeker->ws.abort();
        seeker.reset();
    }
    CHECK(listener_side.until([](const R& m) { return m.has_peer_presence() && !m.peer_presence().present(); })
              .has_peer_presence());
    auto ended = listener.until([](const M& m) { return m.has_chat_ended(); }, std::chrono::seconds(10)).chat_ended();
    CHECK(ended.reason() == "peer_lost");
    CHECK(ended.lost() == v1::SEEKER);
    // the freed slot goes to the next seeker (through the matchmakers' sweep)
    CHECK_FALSE(offer_id(listener).empty());
    CHECK(s.invariant_violations().empty());
}

TEST_CASE("unhappy (case 4): a waiting seeker whose connection dropped is not offered; back within the grace "
          "they keep their place and are offered" *
          doctest::timeout(60)) {
    stack s(1, 1, short_times, short_presence);
    auto port = s.matchmakers[0].port;
    auto account = s.f.listener({"relationships"}, {"en"}, 1, false);
    std::string token;
    {
        peer seeker(port);
        auto w = seeker.call(R"("seekerHello":{})");
        token = w.seeker_welcome().resume_token();
        REQUIRE(seeker.call(R"("requestChat":{"topic":"relationships","language":"en"})").has_request_queued());
        seeker.ws.abort();
    }
    const std::string sid = s.f.server.cmd({"GET", "wl:resume:" + crypto::sha256_hex(token)});
    const auto parked_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (s.f.field("wl:seeker:" + sid, "parked") != "1") REQUIRE(std::chrono::steady_clock::now() < parked_by);
    peer listener(port);
    listener_sign_in(listener, account.token);
    // nobody offered while they are gone (the listener is free and covers the pair)
    CHECK(s.f.seeker_state(sid) == "queued");
    CHECK(s.f.field("wl:listener:" + account.id, "offers") == "0");
    peer back(port);
    auto w = back.call(R"("seekerHello":{"resumeToken":")" + token + "\"}");
    CHECK(w.seeker_welcome().resumed());
    CHECK_FALSE(offer_id(listener).empty());
}

TEST_CASE("unhappy (case 6): the crisis flag travels with the chat to both sides and to supervisors" *
          doctest::timeout(60)) {
    stack s(1, 1, short_times, short_presence);
    auto port = s.matchmakers[0].port;
    auto account = s.f.listener({"depression"}, {"en"}, 1, false);
    peer listener(port);
    listener_sign_in(listener, account.token);
    peer seeker(port);
    seeker_hello(seeker);
    REQUIRE(seeker.call(R"("requestChat":{"topic":"depression","language":"en","crisis":true})").has_request_queued());
    auto [seeker_chat, listener_chat] = accept(listener, seeker, offer_id(listener));
    CHECK(listener_chat.crisis());
    CHECK(seeker_chat.crisis());
    // a listener's reload is given the open chat with the flag too
    peer reload(port);
    auto welcome = reload.call(R"("listenerSignIn":{"token":")" + account.token + "\"}");
    REQUIRE(welcome.listener_welcome().open_chats_size() == 1);
    CHECK(welcome.listener_welcome().open_chats(0).crisis());
    auto sup = s.f.run(s.f.accounts->create_supervisor("Ari"));
    peer supervisor(port);
    auto stats = supervisor.call(R"("supervisorSignIn":{"token":")" + sup.token + "\"}");
    CHECK(stats.stats().total().crisis_chats_active() == 1);
}
