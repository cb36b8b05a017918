// The matchmaker with --ack-replicas over real WebSockets, against a real primary and replica: a
// reply that changed something (a welcome, a queued request, an accepted offer) means the
// replica has the change, and while the replica cannot confirm it the request gets UNAVAILABLE,
// so that a seeker is never told "you are waiting" by a primary that a failover is about to
// throw away (docs/architecture.md, "Acknowledged means kept").
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;

TEST_CASE("matchmaker acks: with --ack-replicas every promise is on the replica, and none is made without it" *
          doctest::timeout(60)) {
    matchmaker_fixture f;
    f.server.cmd({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});
    redis_server replica({"--replicaof", "127.0.0.1", std::to_string(f.server.port())});
    wait_until_replicating(f.server, replica);
    auto s = fast_settings();
    s.ack_replicas = 1;
    s.ack_timeout = std::chrono::milliseconds(300);
    s.ack_degrade_after = std::chrono::milliseconds(0);  // strict: refused for as long as the replica is silent
    running_matchmaker mm(f.server.url(), s);
    const std::string token = f.listener({"anxiety"}, {"en"}, 1, /*available=*/false).token;

    // what the seeker is told is what the replica holds when they are told it
    peer seeker(mm.port());
    auto hello = seeker.call(R"("seekerHello":{})");
    REQUIRE(hello.has_seeker_welcome());
    const std::string sid = hello.seeker_welcome().seeker_id();
    REQUIRE(seeker.call(R"("requestChat":{"topic":"anxiety","language":"en"})").has_request_queued());
    CHECK(replica.cmd({"HGET", "wl:seeker:" + sid, "state"}) == "queued");

    // a stalled replica: nothing new is promised; the seeker asks again and is served once it is back
    replica.pause();
    peer late(mm.port());
    auto refused = late.call(R"("seekerHello":{})");
    REQUIRE(refused.has_error());
    CHECK(refused.error().code() == v1::UNAVAILABLE);
    replica.resume();
    auto again = late.call(R"("seekerHello":{})");
    REQUIRE(again.has_seeker_welcome());
    CHECK(replica.cmd({"HGET", "wl:seeker:" + again.seeker_welcome().seeker_id(), "state"}) == "idle");

    // a listener's accept: the chat exists on the replica when ChatStarted comes back
    peer listener(mm.port());
    REQUIRE(listener.call(R"("listenerSignIn":{"token":")" + token + "\"}").has_listener_welcome());
    REQUIRE(listener.call(R"("setAvailability":{"available":true})").has_status_changed());
    auto offer = listener.until([](const M& m) { return m.has_offer(); });
    auto started = listener.call(R"("acceptOffer":{"offerId":")" + offer.offer().offer_id() + "\"}");
    REQUIRE(started.has_chat_started());
    CHECK(replica.cmd({"HGET", "wl:seeker:" + sid, "state"}) == "chat");
    CHECK(replica.cmd({"EXISTS", "wl:session:" + started.chat_started().session_id()}) == "1");

    // reads and refusals wait for nobody: a refused request is answered at once even now
    replica.pause();
    const auto t0 = std::chrono::steady_clock::now();
    auto wrong = seeker.call(R"("requestChat":{"topic":"anxiety","language":"en"})");
    REQUIRE(wrong.has_error());
    CHECK(wrong.error().code() == v1::WRONG_STATE);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(250));
    replica.resume();
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("matchmaker acks: replicas silent for --ack-degrade-after-ms are presumed gone; writes wait for them "
          "again once they are back" * doctest::timeout(90)) {
    matchmaker_fixture f;
    f.server.cmd({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});
    auto replica = std::make_unique<redis_server>(
        std::vector<std::string>{"--replicaof", "127.0.0.1", std::to_string(f.server.port())});
    wait_until_replicating(f.server, *replica);
    auto s = fast_settings();
    s.ack_replicas = 1;
    s.ack_timeout = std::chrono::milliseconds(200);
    s.ack_degrade_after = std::chrono::milliseconds(1500);
    running_matchmaker mm(f.server.url(), s);

    // the only replica dies: refused at first (it might be a failover's window), then served
    replica->kill();
    const auto killed = std::chrono::steady_clock::now();
    int refused = 0;
    std::string sid;
    for (;;) {
        peer p(mm.port());
        auto hello = p.call(R"("seekerHello":{})");
        if (hello.has_seeker_welcome()) {
            sid = hello.seeker_welcome().seeker_id();
            break;
        }
        REQUIRE(hello.has_error());
        CHECK(hello.error().code() == v1::UNAVAILABLE);
        ++refused;
        REQUIRE(std::chrono::steady_clock::now() - killed < std::chrono::seconds(20));
    }
    CHECK(refused >= 1);
    CHECK(std::chrono::steady_clock::now() - killed >= std::chrono::milliseconds(1300));
    CHECK(f.server.cmd({"HGET", "wl:seeker:" + sid, "state"}) == "idle");
    // degraded: answered at once, no WAIT per request
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) REQUIRE(peer(mm.port()).call(R"("seekerHello":{})").has_seeker_welcome());
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(5 * 200));

    // back: once ROLE shows it attached (asked at most once a second), replies wait for it again
    const auto rounds = [&] {
        return mm.call([&]() -> boost::asio::awaitable<std::uint64_t> { co_return mm.svc->state().acks()->rounds(); }());
    };
    replica->restart();
    wait_until_replicating(f.server, *replica);
    const auto back = std::chrono::steady_clock::now();
    const auto rounds_before = rounds();
    while (rounds() == rounds_before) {
        REQUIRE(peer(mm.port()).call(R"("seekerHello":{})").has_seeker_welcome());
        REQUIRE(std::chrono::steady_clock::now() - back < std::chrono::seconds(10));
    }
    // and now the replica holds each one when it is told
    peer p(mm.port());
    auto hello = p.call(R"("seekerHello":{})");
    REQUIRE(hello.has_seeker_welcome());
    CHECK(replica->cmd({"HGET", "wl:seeker:" + hello.seeker_welcome().seeker_id(), "state"}) == "idle");
    CHECK(check_invariants(f.server).empty());
}
