// The terminal client's chat (clients/chat_session.hpp) against a real redis-server and real
// relay processes: two people on two relays hear exactly each other's lines, agree on the safety
// code, survive dropped connections and an expired ticket without losing or repeating a line,
// end the chat, and leave nothing readable in Redis.
#include "tests/integration/chat_side.hpp"
#include "tests/support/tls_cert.hpp"

#include <regex>

using namespace warmline;
using namespace warmline::test;
using client::chat_event;
using client::chat_session;
using namespace std::chrono_literals;

namespace {

// Everything the relay keeps of a chat in Redis, as raw bytes.
std::string relay_records(relay_fixture& f, const std::string& session) {
    return f.mm.server.cmd({"XRANGE", log_key(session, "s"), "-", "+"}) + "\n" +
           f.mm.server.cmd({"XRANGE", log_key(session, "l"), "-", "+"}) + "\n" +
           f.mm.server.cmd({"HGETALL", relay_key(session)});
}

}  // namespace

TEST_CASE("client chat: two people on two relays hear exactly each other's lines, in order" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log), b(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    side seeker(v1::SEEKER, session, relay_url(a), relay_fixture::ticket_for(session, ticket::role::seeker));

    // said before the listener is there: kept here, unsealed, until its key arrives
    const auto early = std::vector<std::string>{"is anyone there?"};
    REQUIRE(seeker.chat.say(early[0]));
    REQUIRE(pump_until({&seeker}, [&] { return seeker.chat.welcomes() == 1; }));
    CHECK_FALSE(seeker.chat.secure());
    CHECK_FALSE(seeker.chat.safety_code());
    CHECK(seeker.chat.pending() == 1);
    CHECK(f.mm.server.cmd({"EXISTS", log_key(session, "s")}) == "0");

    side listener(v1::LISTENER, session, relay_url(b), relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(both_secure(seeker, listener));
    REQUIRE(seeker.chat.safety_code());
    CHECK(seeker.chat.safety_code() == listener.chat.safety_code());
    CHECK(std::regex_match(*seeker.chat.safety_code(), std::regex("[0-9]{5}( [0-9]{5}){5}")));
    CHECK(seeker.text_of(chat_event::kind::peer_joined) == *seeker.chat.safety_code());

    // both talk at once, interleaved
    const auto from_seeker = lines("seeker", 1, 6), from_listener = lines("listener", 1, 5);
    for (std::size_t i = 0; i < from_seeker.size(); ++i) {
        REQUIRE(seeker.chat.say(from_seeker[i]));
        if (i < from_listener.size()) REQUIRE(listener.chat.say(from_listener[i]));
        seeker.pump();
    }
    // once the relay has stored every line, Redis holds a sealed copy of each and none of the words
    REQUIRE(pump_until({&seeker, &listener},
                       [&] { return seeker.chat.pending() == 0 && listener.chat.pending() == 0; }));
    CHECK(f.mm.server.cmd({"XLEN", log_key(session, "s")}) == "7");
    CHECK(f.mm.server.cmd({"XLEN", log_key(session, "l")}) == "5");
    const auto records = relay_records(f, session);
    for (const auto& line : early + from_seeker + from_listener) CHECK(records.find(line) == std::string::npos);
    CHECK(records.find("line") == std::string::npos);
    CHECK(records.find("anyone") == std::string::npos);

    REQUIRE(pump_until({&seeker, &listener}, [&] {
        return listener.chat.heard().size() >= 7 && seeker.chat.heard().size() >= 5;
    }));
    CHECK(listener.chat.heard() == early + from_seeker);
    CHECK(seeker.chat.heard() == from_listener);

    // typing shows on the other side
    listener.chat.typing(true);
    REQUIRE(pump_until({&seeker, &listener}, [&] { return seeker.saw(chat_event::kind::peer_typing); }));
}

TEST_CASE("client chat: dropped connections resume without losing or repeating a line" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log), b(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    side seeker(v1::SEEKER, session, relay_url(a), relay_fixture::ticket_for(session, ticket::role::seeker));
    side listener(v1::LISTENER, session, relay_url(b), relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(both_secure(seeker, listener));
    const auto code = seeker.chat.safety_code();

    std::vector<std::string> said_by_seeker, said_by_listener;
    auto seeker_says = [&](const std::vector<std::string>& ls) {
        for (const auto& l : ls) REQUIRE(seeker.chat.say(l));
        said_by_seeker = said_by_seeker + ls;
    };
    auto listener_says = [&](const std::vector<std::string>& ls) {
        for (const auto& l : ls) REQUIRE(listener.chat.say(l));
        said_by_listener = said_by_listener + ls;
    };
    auto everything_arrived = [&] {
        return listener.chat.heard().size() >= said_by_seeker.size() &&
               seeker.chat.heard().size() >= said_by_listener.size() && seeker.chat.pending() == 0 &&
               listener.chat.pending() == 0;
    };

    seeker_says(lines("seeker", 1, 2));
    listener_says(lines("listener", 1, 2));
    REQUIRE(pump_until({&seeker, &listener}, everything_arrived));

    SUBCASE("the sender drops with lines on the wire, unacknowledged") {
        // sent, but the socket dies before any ack is read: the relay may or may not have them
        seeker_says(lines("seeker", 3, 6));
        CHECK(seeker.chat.pending() == 4);
        seeker.chat.drop_connection();
        // the other side goes on talking meanwhile; the relay keeps it for the seeker
        listener_says(lines("listener", 3, 5));
        REQUIRE(pump_until({&listener}, [&] { return listener.chat.pending() == 0; }));
        REQUIRE(pump_until({&seeker, &listener}, everything_arrived));
        CHECK(seeker.saw(chat_event::kind::connection_lost));
        CHECK(seeker.chat.welcomes() == 2);
    }
    SUBCASE("the receiver drops with deliveries unread") {
        seeker_says(lines("seeker", 3, 7));
        // stored by the relay and pushed to the listener, who reads none of it before the drop
        REQUIRE(pump_until({&seeker}, [&] { return seeker.chat.pending() == 0; }));
        listener.chat.drop_connection();
        REQUIRE(pump_until({&seeker, &listener}, everything_arrived));
        CHECK(listener.chat.welcomes() == 2);
    }
    SUBCASE("the receiver drops after reading part, and again while resuming") {
        seeker_says(lines("seeker", 3, 12));
        REQUIRE(pump_until({&seeker}, [&] { return seeker.chat.pending() == 0; }));
        REQUIRE(pump_until({&listener}, [&] { return listener.chat.heard().size() > 2; }));
        listener.chat.drop_connection();
        REQUIRE(pump_until({&listener}, [&] { return listener.chat.welcomes() == 2; }));
        listener.chat.drop_connection();
        seeker_says(lines("seeker", 13, 14));
        REQUIRE(pump_until({&seeker, &listener}, everything_arrived));
        CHECK(listener.chat.welcomes() == 3);
    }

    // and the chat goes on afterwards, both ways
    seeker_says(lines("seeker", 20, 21));
    listener_says(lines("listener", 20, 21));
    REQUIRE(pump_until({&seeker, &listener}, everything_arrived));
    CHECK(listener.chat.heard() == said_by_seeker);
    CHECK(seeker.chat.heard() == said_by_listener);
    CHECK(seeker.chat.safety_code() == code);  // the same keys throughout
    CHECK(f.mm.server.cmd({"XLEN", log_key(session, "s")}) == std::to_string(said_by_seeker.size()));
    const auto records = relay_records(f, session);
    for (const auto& line : said_by_seeker + said_by_listener) CHECK(records.find(line) == std::string::npos);
}

TEST_CASE("client chat: an expired ticket stops the resume until a fresh one comes" * doctest::timeout(60)) {
    relay_fixture f;
    // the welcome's next ticket expires as fast as the matchmaker's
    relay_process a(f.mm.server.url(), f.log, {"--ticket-ttl-ms=3000"});
    auto session = f.open_chat();
    const std::int64_t ttl_ms = 3000;
    const auto expires = wall_ms() + ttl_ms;
    side seeker(v1::SEEKER, session, relay_url(a), relay_fixture::ticket_for(session, ticket::role::seeker, ttl_ms));
    side listener(v1::LISTENER, session, relay_url(a), relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(both_secure(seeker, listener));

    // an open connection outlives its ticket; only a new one needs a valid ticket
    REQUIRE(pump_until({&seeker, &listener}, [&] { return wall_ms() > expires + 100; }));
    REQUIRE(seeker.chat.say("still here"));
    REQUIRE(pump_until({&seeker, &listener}, [&] { return listener.chat.heard().size() == 1; }));
    seeker.chat.drop_connection();
    REQUIRE(pump_until({&seeker}, [&] { return seeker.chat.current() == chat_session::state::ticket_expired; }));
    CHECK(seeker.saw(chat_event::kind::ticket_expired));
    REQUIRE(seeker.chat.say("back again"));  // kept until it can be sent
    listener.chat.say("are you there?");
    REQUIRE(pump_until({&listener}, [&] { return listener.chat.pending() == 0; }));
    CHECK(seeker.chat.current() == chat_session::state::ticket_expired);

    seeker.chat.renew_ticket(relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(pump_until({&seeker, &listener}, [&] {
        return listener.chat.heard().size() == 2 && seeker.chat.heard().size() == 1;
    }));
    CHECK(listener.chat.heard() == std::vector<std::string>{"still here", "back again"});
    CHECK(seeker.chat.heard() == std::vector<std::string>{"are you there?"});
    CHECK(seeker.chat.welcomes() == 2);
}

TEST_CASE("client chat: either side ends the chat and both are told kindly" * doctest::timeout(60)) {
    relay_fixture f;
    relay_process a(f.mm.server.url(), f.log), b(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    side seeker(v1::SEEKER, session, relay_url(a), relay_fixture::ticket_for(session, ticket::role::seeker));
    side listener(v1::LISTENER, session, relay_url(b), relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(both_secure(seeker, listener));
    REQUIRE(seeker.chat.say("thank you"));
    REQUIRE(pump_until({&seeker, &listener}, [&] { return listener.chat.heard().size() == 1; }));

    REQUIRE(listener.chat.end());
    REQUIRE(pump_until({&seeker, &listener}, [&] { return seeker.chat.finished() && listener.chat.finished(); }));
    CHECK(seeker.chat.current() == chat_session::state::ended);
    CHECK(seeker.text_of(chat_event::kind::ended) == "The other person ended the chat. Thank you for talking.");
    CHECK(listener.text_of(chat_event::kind::ended) == "You ended the chat. Thank you for talking.");
    CHECK(f.mm.field("wl:session:" + session, "state") == "ended");
    CHECK_FALSE(seeker.chat.say("one more thing"));
    CHECK(f.mm.server.cmd({"EXISTS", log_key(session, "s")}) == "0");

    // a chat that has ended is not joined again
    side late(v1::SEEKER, session, relay_url(a), relay_fixture::ticket_for(session, ticket::role::seeker));
    REQUIRE(pump_until({&late}, [&] { return late.chat.finished(); }));
    CHECK(late.chat.current() == chat_session::state::ended);
}

TEST_CASE("client chat: over wss, with the relay's certificate checked" * doctest::timeout(60)) {
    relay_fixture f;
    auto [cert, key] = make_test_certificate(f.mm.server.dir());
    relay_process secure(f.mm.server.url(), f.log, {"--tls-cert=" + cert, "--tls-key=" + key});
    relay_process plain(f.mm.server.url(), f.log);
    auto session = f.open_chat();
    chat_session::options o;
    o.trust = cert;
    side seeker(v1::SEEKER, session, relay_url(secure, "wss"),
                relay_fixture::ticket_for(session, ticket::role::seeker), o);
    side listener(v1::LISTENER, session, relay_url(plain), relay_fixture::ticket_for(session, ticket::role::listener));
    REQUIRE(both_secure(seeker, listener));
    REQUIRE(seeker.chat.say("over tls"));
    REQUIRE(listener.chat.say("over plain"));
    REQUIRE(pump_until({&seeker, &listener}, [&] {
        return listener.chat.heard().size() == 1 && seeker.chat.heard().size() == 1;
    }));
    CHECK(listener.chat.heard().front() == "over tls");
    CHECK(seeker.chat.heard().front() == "over plain");
    seeker.chat.drop_connection();
    REQUIRE(seeker.chat.say("and again after a drop"));
    REQUIRE(pump_until({&seeker, &listener}, [&] { return listener.chat.heard().size() == 2; }));
    CHECK(seeker.chat.welcomes() == 2);
}
