// The matchmaker over real WebSockets: whole flows between a seeker and a listener, and every
// class of bad input getting its error code while Redis stays consistent.
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"

#include "common/ticket.hpp"

#include <algorithm>

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;

namespace {

// Create a listener account in `redis` with the admin code, return its token.
std::string make_listener(matchmaker_fixture& f, std::vector<std::string> topics, std::vector<std::string> langs,
                          int max_chats = 1) {
    return f.listener(std::move(topics), std::move(langs), max_chats, /*available=*/false).token;
}

}  // namespace

TEST_CASE("matchmaker ws: a seeker and a listener are matched, chat, end and rate" * doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    std::string token = make_listener(f, {"anxiety"}, {"en"}, 2);

    peer seeker(mm.port());
    auto hello = seeker.call(R"("seekerHello":{})");
    REQUIRE(hello.has_seeker_welcome());
    CHECK(hello.seeker_welcome().seeker_id().size() == 32);
    CHECK_FALSE(hello.seeker_welcome().resume_token().empty());
    auto queued = seeker.call(R"("requestChat":{"topic":"anxiety","language":"en"})");
    REQUIRE(queued.has_request_queued());
    CHECK(queued.request_queued().position() == 1);

    peer listener(mm.port());
    auto welcome = listener.call(R"("listenerSignIn":{"token":")" + token + "\"}");
    REQUIRE(welcome.has_listener_welcome());
    CHECK(welcome.listener_welcome().profile().status() == v1::AWAY);
    auto status = listener.call(R"("setAvailability":{"available":true})");
    REQUIRE(status.has_status_changed());
    auto offer = listener.until([](const M& m) { return m.has_offer(); });
    CHECK(offer.offer().topic() == "anxiety");
    CHECK_FALSE(offer.offer().crisis());

    auto started = listener.call(R"("acceptOffer":{"offerId":")" + offer.offer().offer_id() + "\"}");
    REQUIRE(started.has_chat_started());
    auto seeker_started = seeker.until([](const M& m) { return m.has_chat_started(); });
    CHECK(seeker_started.chat_started().session_id() == started.chat_started().session_id());
    ticket::claims c;
    REQUIRE(ticket::verify(fast_settings().ticket_secret, seeker_started.chat_started().relay_ticket(),
                           warmline::system_now_ms(), c) == ticket::verdict::ok);
    CHECK(c.who == ticket::role::seeker);
    REQUIRE(ticket::verify(fast_settings().ticket_secret, started.chat_started().relay_ticket(),
                           warmline::system_now_ms(), c) == ticket::verdict::ok);
    CHECK(c.who == ticket::role::listener);

    std::string session = started.chat_started().session_id();
    auto ended = seeker.call(R"("endChat":{"sessionId":")" + session + "\"}");
    CHECK(ended.has_ok());
    auto told = listener.until([](const M& m) { return m.has_chat_ended(); });
    CHECK(told.chat_ended().ended_by() == v1::SEEKER);
    auto rated = seeker.call(R"("rateChat":{"sessionId":")" + session + R"(","stars":5,"comment":"thank you"})");
    CHECK(rated.has_ok());
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("matchmaker ws: a crisis request gets its language's resources at once" * doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    peer seeker(mm.port());
    seeker.call(R"("seekerHello":{})");
    auto q = seeker.call(R"("requestChat":{"topic":"grief","language":"es","crisis":true})");
    REQUIRE(q.has_request_queued());
    REQUIRE(q.request_queued().crisis_resources_size() > 0);
    CHECK(q.request_queued().crisis_resources(0).name() == "Servicios de emergencia");
}

TEST_CASE("matchmaker ws: the crisis lines follow the seeker's region, also after a resume; a bad region is "
          "refused" * doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    std::string token;
    {
        peer seeker(mm.port());
        token = seeker.call(R"("seekerHello":{})").seeker_welcome().resume_token();
        auto bad = seeker.call(R"("requestChat":{"topic":"grief","language":"en","crisis":true,"region":"uk!"})");
        CHECK(bad.error().code() == v1::INVALID_ARGUMENT);
        auto q = seeker.call(R"("requestChat":{"topic":"grief","language":"en","crisis":true,"region":"GB"})");
        REQUIRE(q.request_queued().crisis_resources_size() == 2);
        CHECK(q.request_queued().crisis_resources(0).name() == "Samaritans");
        CHECK(q.request_queued().crisis_resources(1).phone() == "999");
    }
    // back on a new connection: nobody covers grief in English, so the pushed update says so with
    // the lines of the region the request was made from
    peer again(mm.port());
    REQUIRE(again.call(R"("seekerHello":{"resumeToken":")" + token + "\"}").has_seeker_welcome());
    auto u = again.until([](const M& m) { return m.has_queue_update() && m.queue_update().no_listener_now(); },
                         std::chrono::seconds(5));
    REQUIRE(u.queue_update().crisis_resources_size() > 0);
    CHECK(u.queue_update().crisis_resources(0).name() == "Samaritans");
    // a region the language does not list: its general lines
    peer other(mm.port());
    other.call(R"("seekerHello":{})");
    auto general = other.call(R"("requestChat":{"topic":"grief","language":"en","crisis":true,"region":"FR"})");
    CHECK(general.request_queued().crisis_resources(0).phone() == "112");
}

TEST_CASE("matchmaker ws: a seeker whose connection drops resumes its place with its token" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    std::string sid, token;
    {
        peer seeker(mm.port());
        auto hello = seeker.call(R"("seekerHello":{})");
        sid = hello.seeker_welcome().seeker_id();
        token = hello.seeker_welcome().resume_token();
        seeker.call(R"("requestChat":{"topic":"loneliness","language":"de"})");
        seeker.ws.abort();
    }
    peer again(mm.port());
    auto back = again.call(R"("seekerHello":{"resumeToken":")" + token + "\"}");
    REQUIRE(back.has_seeker_welcome());
    CHECK(back.seeker_welcome().seeker_id() == sid);
    CHECK(back.seeker_welcome().resumed());
    CHECK(back.seeker_welcome().state() == v1::QUEUED);
    CHECK(f.seeker_state(sid) == "queued");
    auto bad = peer(mm.port()).call(R"("seekerHello":{"resumeToken":"wlr_nonsense"})");
    CHECK(bad.error().code() == v1::RESUME_FAILED);
}

TEST_CASE("matchmaker ws: a missed offer sets the listener away and tells them why" * doctest::timeout(30)) {
    matchmaker_fixture f;
    auto settings = fast_settings();
    settings.store.offer_timeout_ms = 300;
    running_matchmaker mm(f.server.url(), settings);
    std::string token = make_listener(f, {"work"}, {"en"});
    peer listener(mm.port());
    listener.call(R"("listenerSignIn":{"token":")" + token + "\"}");
    listener.call(R"("setAvailability":{"available":true})");
    peer seeker(mm.port());
    seeker.call(R"("seekerHello":{})");
    seeker.call(R"("requestChat":{"topic":"work","language":"en"})");
    listener.until([](const M& m) { return m.has_offer(); });
    auto closed = listener.until([](const M& m) { return m.has_offer_closed(); });
    CHECK(closed.offer_closed().outcome() == v1::TIMED_OUT);
    auto away = listener.until([](const M& m) { return m.has_status_changed(); });
    CHECK(away.status_changed().profile().status() == v1::AWAY);
    CHECK(away.status_changed().reason().find("away") != std::string::npos);
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("matchmaker ws: bad input gets a typed error and leaves Redis consistent" * doctest::timeout(30)) {
    matchmaker_fixture f;
    net::server_options so;
    so.read_message_max = 4096;
    running_matchmaker mm(f.server.url(), fast_settings(), so);
    std::string token = make_listener(f, {"anxiety"}, {"en"});

    peer p(mm.port());
    SUBCASE("malformed JSON") {
        p.ws.send_text("{this is not json");
        auto e = p.until([](const M& m) { return m.has_error(); });
        CHECK(e.error().code() == v1::MALFORMED_FRAME);
    }
    SUBCASE("bad protobuf") {
        p.ws.send_binary(std::string("\x0a\xff\xff\xff", 4));
        auto e = p.until([](const M& m) { return m.has_error(); });
        CHECK(e.error().code() == v1::MALFORMED_FRAME);
    }
    SUBCASE("a request before saying who you are") {
        CHECK(p.call(R"("requestChat":{"topic":"anxiety","language":"en"})").error().code() == v1::UNAUTHENTICATED);
    }
    SUBCASE("unknown topic and language") {
        p.call(R"("seekerHello":{})");
        CHECK(p.call(R"("requestChat":{"topic":"astrology","language":"en"})").error().code() == v1::UNKNOWN_TOPIC);
        CHECK(p.call(R"("requestChat":{"topic":"anxiety","language":"xx-YY"})").error().code() == v1::UNKNOWN_LANGUAGE);
        CHECK(p.call(R"("requestChat":{"topic":"anxiety","language":"en","preferredListener":"nobody"})")
                  .error().code() == v1::NOT_FOUND);
    }
    SUBCASE("bad and revoked tokens") {
        CHECK(p.call(R"("listenerSignIn":{"token":"wll_forged"})").error().code() == v1::UNAUTHENTICATED);
        auto lid = f.server.cmd({"SMEMBERS", "wl:listeners"});
        f.run(f.accounts->revoke(lid));
        CHECK(p.call(R"("listenerSignIn":{"token":")" + token + "\"}").error().code() == v1::UNAUTHENTICATED);
        CHECK(p.call(R"("supervisorSignIn":{"token":")" + token + "\"}").error().code() == v1::UNAUTHENTICATED);
    }
    SUBCASE("a reused or missing request id") {
        p.ws.send_text(R"({"requestId":"same","seekerHello":{}})");
        p.reply("same");
        p.ws.send_text(R"({"requestId":"same","requestChat":{"topic":"anxiety","language":"en"}})");
        CHECK(p.reply("same").error().code() == v1::DUPLICATE_REQUEST_ID);
        p.ws.send_text(R"({"cancelRequest":{}})");
        CHECK(p.until([](const M& m) { return m.has_error(); }).error().code() == v1::INVALID_ARGUMENT);
    }
    SUBCASE("a role asking for another role's request") {
        p.call(R"("seekerHello":{})");
        CHECK(p.call(R"("acceptOffer":{"offerId":"o1"})").error().code() == v1::PERMISSION_DENIED);
        CHECK(p.call(R"("rateChat":{"sessionId":"c1","stars":9})").error().code() == v1::INVALID_ARGUMENT);
    }
    SUBCASE("a flood of requests is rate limited") {
        p.call(R"("seekerHello":{})");
        int limited = 0;
        for (int i = 0; i < 40; ++i) limited += p.call(R"("ping":{})").error().code() == v1::RATE_LIMITED;
        CHECK(limited >= 10);  // burst 20 and 10/s: most of 40 back-to-back pings past the burst
    }
    SUBCASE("an oversized frame closes with 1009") {
        p.call(R"("seekerHello":{})");
        p.ws.send_text(R"({"requestId":"big","requestChat":{"topic":")" + std::string(8000, 'a') + R"("}})");
        bool closed = false;
        try {
            while (p.ws.read(std::chrono::seconds(2))) {
            }
        } catch (const std::exception&) {
            closed = true;
        }
        CHECK(closed);
        CHECK(p.ws.close_code() == 1009);
    }
    // the service is still up and Redis is consistent
    peer q(mm.port());
    CHECK(q.call(R"("ping":{})").has_pong());
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("matchmaker ws: supervisors see counts only, live and over HTTP; health endpoints answer" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    auto sup = f.run(f.accounts->create_supervisor("Ana"));
    peer seeker(mm.port());
    std::string seeker_id = seeker.call(R"("seekerHello":{})").seeker_welcome().seeker_id();
    seeker.call(R"("requestChat":{"topic":"grief","language":"en"})");
    auto lid = f.listener({"grief"}, {"en"}, 1, /*available=*/false).id;

    peer watcher(mm.port());
    auto first = watcher.call(R"("supervisorSignIn":{"token":")" + sup.token + "\"}");
    REQUIRE(first.has_stats());
    CHECK(first.stats().total().seekers_waiting() == 1);
    CHECK(first.stats().total().shortage());
    auto live = watcher.until([](const M& m) { return m.has_stats() && m.request_id().empty(); });
    CHECK(live.stats().queues_size() > 0);
    CHECK(f.server.cmd({"XLEN", "wl:audit"}) == "1");

    auto denied = net::http_request_blocking("127.0.0.1", mm.port(), "GET", "/v1/stats");
    CHECK(denied.status == 401);
    auto stats = net::http_request_blocking("127.0.0.1", mm.port(), "GET", "/v1/stats", "",
                                            {{"Authorization", "Bearer " + sup.token}});
    CHECK(stats.status == 200);
    CHECK(stats.body.find("\"seekersWaiting\":1") != std::string::npos);
    // counts only: no id of anyone appears
    CHECK(stats.body.find(seeker_id) == std::string::npos);
    CHECK(stats.body.find(lid) == std::string::npos);
    CHECK(stats.body.find("\"listenersAway\":1") != std::string::npos);
    CHECK(net::http_request_blocking("127.0.0.1", mm.port(), "GET", "/healthz").status == 200);
    CHECK(net::http_request_blocking("127.0.0.1", mm.port(), "GET", "/readyz").status == 200);
    auto metrics = net::http_request_blocking("127.0.0.1", mm.port(), "GET", "/metrics");
    CHECK(metrics.body.find("warmline_matchmaker_connections") != std::string::npos);
    CHECK(metrics.body.find("warmline_matchmaker_settled 1") != std::string::npos);
    // counters exist at 0 before they first move
    CHECK(metrics.body.find("warmline_errors_total{code=\"UNAVAILABLE\"} 0") != std::string::npos);
    CHECK(metrics.body.find("warmline_bad_frames_total 0") != std::string::npos);
    CHECK(metrics.body.find("warmline_reports_total 0") != std::string::npos);
}

TEST_CASE("matchmaker ws: a waiting seeker is told when its place in the queue moves" * doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    peer first(mm.port()), second(mm.port());
    first.call(R"("seekerHello":{})");
    second.call(R"("seekerHello":{})");
    CHECK(first.call(R"("requestChat":{"topic":"grief","language":"de"})").request_queued().position() == 1);
    CHECK(second.call(R"("requestChat":{"topic":"grief","language":"de"})").request_queued().position() == 2);
    CHECK(first.call(R"("cancelRequest":{})").has_ok());
    auto moved = second.until([](const M& m) { return m.has_queue_update(); });
    CHECK(moved.queue_update().position() == 1);
}

TEST_CASE("matchmaker ws: requests sent without waiting each get their own reply" * doctest::timeout(30)) {
    matchmaker_fixture f;
    auto settings = fast_settings();
    settings.requests_in_flight = 4;  // so that some of the requests below wait for a free slot
    settings.rate_burst = 1000;
    running_matchmaker mm(f.server.url(), settings);
    peer seeker(mm.port());
    // sign-in is answered before the next frame is read, so a request right behind it counts
    auto hello = seeker.send(R"("seekerHello":{})");
    auto request = seeker.send(R"("requestChat":{"topic":"grief","language":"de"})");
    CHECK(seeker.reply(hello).has_seeker_welcome());
    CHECK(seeker.reply(request).has_request_queued());
    // Concurrently, not one at a time: with Redis writes paused, requests that need a script
    // wait, and a ping sent after them is answered first. (One at a time, it would come last.)
    f.server.cmd({"CLIENT", "PAUSE", "400", "WRITE"});
    std::vector<std::string> slow;
    for (int i = 0; i < 3; ++i) slow.push_back(seeker.send(R"("rateChat":{"sessionId":"c-none","stars":5})"));
    auto ping = seeker.send(R"("ping":{})");
    auto first = seeker.until([&](const M& m) {
        return m.request_id() == ping || std::find(slow.begin(), slow.end(), m.request_id()) != slow.end();
    });
    CHECK(first.request_id() == ping);
    for (const auto& id : slow) CHECK(seeker.reply(id).error().code() == v1::NOT_FOUND);
    // more requests in flight than the connection's slots: none lost, each answered once
    std::vector<std::string> ids;
    for (int i = 0; i < 40; ++i) ids.push_back(seeker.send(R"("ping":{})"));
    for (const auto& id : ids) CHECK(seeker.reply(id).has_pong());
    for (const auto& m : seeker.pending) CHECK_MESSAGE(!m.has_pong(), "a ping was answered twice");
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("matchmaker ws: a connection that does not sign in in time is closed, and nothing is kept for it before" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    auto s = fast_settings();
    s.sign_in_timeout = std::chrono::milliseconds(400);
    running_matchmaker mm(f.server.url(), s);

    // before sign-in no request id is remembered: a refused sign-in may be sent again as it was
    peer anon(mm.port());
    const std::string bad = R"({"requestId":"same","listenerSignIn":{"token":"wll_not-a-token"}})";
    anon.ws.send_text(bad);
    CHECK(anon.reply("same").error().code() == v1::UNAUTHENTICATED);
    anon.ws.send_text(bad);
    CHECK(anon.reply("same").error().code() == v1::UNAUTHENTICATED);  // not DUPLICATE_REQUEST_ID
    // and then it is closed: it never said who it is
    CHECK(close_code_within(anon.ws, std::chrono::seconds(5)) == 1008);

    // one that signed in stays, and from then on its ids are remembered
    peer seeker(mm.port());
    seeker.ws.send_text(R"({"requestId":"one","seekerHello":{}})");
    REQUIRE(seeker.reply("one").has_seeker_welcome());
    seeker.ws.send_text(R"({"requestId":"one","cancelRequest":{}})");
    CHECK(seeker.reply("one").error().code() == v1::DUPLICATE_REQUEST_ID);
    // past the deadline it is still open: reading for 600 ms sees no close
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
    while (std::chrono::steady_clock::now() < until) REQUIRE_NOTHROW(seeker.ws.read(std::chrono::milliseconds(100)));
    CHECK(seeker.call(R"("cancelRequest":{})").has_error());  // answered (nothing to cancel)
}

TEST_CASE("matchmaker ws: a Redis at its maxmemory (noeviction) refuses with UNAVAILABLE, not a crash or INTERNAL" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    f.server.cmd({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
    f.server.cmd({"CONFIG", "SET", "maxmemory", "1"});  // full: every write is refused
    peer p(mm.port());
    auto refused = p.call(R"("seekerHello":{})");
    REQUIRE(refused.has_error());
    CHECK(refused.error().code() == v1::UNAVAILABLE);
    CHECK(refused.error().message().find("out of room") != std::string::npos);
    f.server.cmd({"CONFIG", "SET", "maxmemory", "0"});
    auto again = p.call(R"("seekerHello":{})");
    CHECK(again.has_seeker_welcome());
    CHECK(check_invariants(f.server).empty());
}
