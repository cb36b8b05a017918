// A process's two Redis connections come back in the awkward order: the subscriber first, the
// command connection later (seen in about one kill -9 of Redis in four). What was published
// while the subscriber was away is lost, and the recovery needs the command connection, so it
// must wait for it and then run, instead of failing once and never again. Forced here by taking
// the connections' slots (CONFIG SET maxclients) and giving them back in that order.
#include "tests/integration/system_fixture.hpp"

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;
using R = v1::RelayServerMessage;

namespace {

bool subscribed(const std::string& client_list_line) {
    // a matchmaker's channel (sub=1) or a relay's shard channels (ssub=256)
    return client_list_line.find(" sub=0 ") == std::string::npos ||
           client_list_line.find(" ssub=0 ") == std::string::npos;
}

}  // namespace

TEST_CASE("reconnect order: a matchmaker whose subscriber comes back before its command connection "
          "still delivers the offer it missed" *
          doctest::timeout(120)) {
    // a long lease: the other process must not judge this one dead while it is cut off
    stack s(2, 0, {"--node-lease-ms=60000", "--offer-timeout-ms=60000"});
    auto& a = s.matchmakers[0];
    auto& b = s.matchmakers[1];
    auto account = s.f.listener({"anxiety"}, {"en"}, 1, false);
    peer listener(a.port);
    listener_sign_in(listener, account.token);

    connection_gate gate(s.f.server);
    gate.shut_out(a.name("matchmaker", "cmd"));
    gate.shut_out(a.name("matchmaker", "events"));

    // an offer is made (through the other process) while this one hears nothing
    peer seeker(b.port);
    const std::string sid = seeker_hello(seeker);
    REQUIRE(seeker.call(R"("requestChat":{"topic":"anxiety","language":"en"})").has_request_queued());
    const std::string oid = gate.cmd({"HGET", "wl:seeker:" + sid, "offer"});
    REQUIRE_FALSE(oid.empty());

    // the subscriber first; the recovery must wait for the command connection, not give up
    gate.let_in(a.name("matchmaker", "events"), a.name("matchmaker", "cmd"), subscribed);
    CHECK_FALSE(a.ready());
    gate.open();

    // the listener learns of the offer: pushed with the welcome the recovery sends
    auto welcome = listener.until([](const M& m) { return m.has_listener_welcome(); }, std::chrono::seconds(15));
    REQUIRE(welcome.listener_welcome().open_offers_size() == 1);
    CHECK(welcome.listener_welcome().open_offers(0).offer_id() == oid);
    REQUIRE(s.all_ready(std::chrono::seconds(15)));
    // and can take it
    auto chat = listener.call(R"("acceptOffer":{"offerId":")" + oid + "\"}");
    CHECK(chat.has_chat_started());
    CHECK(s.invariant_violations().empty());
}

TEST_CASE("reconnect order: a relay whose subscriber comes back before its command connection "
          "still delivers the acknowledged message it missed" *
          doctest::timeout(120)) {
    stack s(0, 2);
    auto& a = s.relays[0];
    auto& b = s.relays[1];
    auto account = s.f.listener({"grief"}, {"en"}, 5);
    auto sid = s.f.seeker();
    s.f.request(sid, "grief", "en");
    auto opened = s.f.run(s.f.store->accept_offer(account.id, s.f.offer_of(sid)));
    REQUIRE(opened);
    const std::string session = opened.value->session_id;

    relay_peer receiver(a.port, ticket::sign(system_secret, {session, ticket::role::seeker, wall_ms() + 600000}));
    relay_peer sender(b.port, ticket::sign(system_secret, {session, ticket::role::listener, wall_ms() + 600000}));
    REQUIRE(receiver.hello(std::string(32, 's')).has_welcome());
    REQUIRE(sender.hello(std::string(32, 'l')).has_welcome());

    connection_gate gate(s.f.server);
    gate.shut_out(a.name("relay", "cmd"));
    gate.shut_out(a.name("relay", "events"));

    // stored and acknowledged; its live copy goes to a process that is not listening
    REQUIRE(sender.send_sealed(1, "sealed-1").ack().seq() == 1);

    gate.let_in(a.name("relay", "events"), a.name("relay", "cmd"), subscribed);
    gate.open();

    // delivered without the sender writing again
    auto d = receiver.next_delivery(std::chrono::seconds(15));
    CHECK(d.seq() == 1);
    CHECK(d.ciphertext() == "sealed-1");
    REQUIRE(s.all_ready(std::chrono::seconds(15)));
}
