// Reports of a chat: only its two sides, once each, within the limits, stored atomically with a
// 90-day expiry and an index, readable by `warmline-admin reports`, and the plaintext in them
// never written to a log; a listener's report may end the chat and block the seeker.
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"
#include "tests/support/process.hpp"

#include "services/admin/reports.hpp"

#include <doctest/doctest.h>

#include <signal.h>

#include <fstream>
#include <sstream>

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;

namespace {

constexpr std::int64_t report_ttl_s = 90LL * 24 * 3600;

struct matched {
    std::unique_ptr<peer> seeker, listener;
    std::string session, listener_id;
};

// A seeker and a listener in a chat on this matchmaker.
matched start_chat(matchmaker_fixture& f, std::uint16_t port, const std::string& topic = "anxiety") {
    matched m;
    auto account = f.listener({topic}, {"en"}, 1, /*available=*/false);
    m.listener_id = account.id;
    m.listener = std::make_unique<peer>(port);
    REQUIRE(m.listener->call(R"("listenerSignIn":{"token":")" + account.token + "\"}").has_listener_welcome());
    REQUIRE(m.listener->call(R"("setAvailability":{"available":true})").has_status_changed());
    m.seeker = std::make_unique<peer>(port);
    REQUIRE(m.seeker->call(R"("seekerHello":{})").has_seeker_welcome());
    REQUIRE(m.seeker->call(R"("requestChat":{"topic":")" + topic + R"(","language":"en"})").has_request_queued());
    auto offer = m.listener->until([](const M& x) { return x.has_offer(); });
    auto started = m.listener->call(R"("acceptOffer":{"offerId":")" + offer.offer().offer_id() + "\"}");
    REQUIRE(started.has_chat_started());
    m.session = started.chat_started().session_id();
    m.seeker->until([](const M& x) { return x.has_chat_started(); });
    return m;
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        if (c == '\x1b') {
            out += "\\u001b";
            continue;
        }
        out += c;
    }
    return out + "\"";
}

// A reportChat body with `n` messages, alternating sides, each with text `text(i)`.
std::string report_body(const std::string& session, const std::string& reason, int n,
                        const std::function<std::string(int)>& text) {
    std::string msgs;
    for (int i = 1; i <= n; ++i) {
        if (!msgs.empty()) msgs += ",";
        msgs += R"({"from":")" + std::string(i % 2 ? "LISTENER" : "SEEKER") + R"(","seq":")" + std::to_string(i) +
                R"(","text":)" + json_string(text(i)) + R"(,"sentUnixMs":")" + std::to_string(1'800'000'000'000 + i) +
                "\"}";
    }
    return R"("reportChat":{"sessionId":")" + session + R"(","reason":)" + json_string(reason) + R"(,"messages":[)" +
           msgs + "]}";
}

std::string repeat(const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
}

bool nothing_stored(const redis_server& r, const std::string& session) {
    return r.cmd({"EXISTS", "wl:report:" + session}) == "0" && r.cmd({"ZCARD", "wl:reports"}) == "0";
}

}  // namespace

TEST_CASE("matchmaker ws: a seeker reports its own chat once, within the limits" * doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    auto chat = start_chat(f, mm.port());
    auto& seeker = *chat.seeker;
    auto short_text = [](int i) { return "message " + std::to_string(i); };

    SUBCASE("a supervisor may not report, and a seeker may not block with a report") {
        peer sup(mm.port());
        auto s = f.run(f.accounts->create_supervisor("Ana"));
        REQUIRE(sup.call(R"("supervisorSignIn":{"token":")" + s.token + "\"}").has_stats());
        CHECK(sup.call(report_body(chat.session, "", 1, short_text)).error().code() == v1::PERMISSION_DENIED);
        auto body = report_body(chat.session, "", 1, short_text);
        body.insert(body.size() - 1, R"(,"block":true)");
        auto e = seeker.call(body);
        CHECK(e.error().code() == v1::INVALID_ARGUMENT);
        CHECK(e.error().message().find("rateChat.blockListener") != std::string::npos);
        CHECK(nothing_stored(f.server, chat.session));
    }
    SUBCASE("someone else's chat, or one that does not exist, is not found and nothing is stored") {
        peer other(mm.port());
        other.call(R"("seekerHello":{})");
        auto e = other.call(report_body(chat.session, "they were rude", 2, short_text));
        REQUIRE(e.has_error());
        CHECK(e.error().code() == v1::NOT_FOUND);
        CHECK(e.error().message() == "That chat could not be found.");
        CHECK(seeker.call(report_body("c-nonexistent", "", 0, short_text)).error().code() == v1::NOT_FOUND);
        CHECK(nothing_stored(f.server, chat.session));
        CHECK(f.server.cmd({"EXISTS", "wl:report:c-nonexistent"}) == "0");
    }
    SUBCASE("over the limits is refused with a sentence, and nothing is stored") {
        auto fifty_one = seeker.call(report_body(chat.session, "", 51, short_text));
        CHECK(fifty_one.error().code() == v1::INVALID_ARGUMENT);
        CHECK(fifty_one.error().message() == "A report can include at most 50 messages.");
        // characters are code points: 501 two-byte characters are too many, 500 are fine
        auto reason = seeker.call(report_body(chat.session, repeat("é", 501), 1, short_text));
        CHECK(reason.error().code() == v1::INVALID_ARGUMENT);
        CHECK(reason.error().message() == "The reason can be at most 500 characters.");
        auto text = seeker.call(report_body(chat.session, "", 2, [](int i) { return repeat("ü", 2000 + i - 1); }));
        CHECK(text.error().code() == v1::INVALID_ARGUMENT);
        CHECK(text.error().message() == "Each reported message can be at most 2,000 characters.");
        auto nobody = seeker.call(R"("reportChat":{"sessionId":")" + chat.session +
                                  R"(","messages":[{"seq":"1","text":"hi"}]})");
        CHECK(nobody.error().code() == v1::INVALID_ARGUMENT);
        CHECK(nothing_stored(f.server, chat.session));
        // at the limits exactly
        CHECK(seeker.call(report_body(chat.session, repeat("é", 500), 50, [](int) { return repeat("ü", 100); }))
                  .has_ok());
        CHECK(f.server.cmd({"HGET", "wl:report:" + chat.session, "count"}) == "50");
    }
    SUBCASE("a report during the chat is stored with a 90-day expiry, and only once") {
        auto ok = seeker.call(report_body(chat.session, "They asked where I live.", 3, short_text));
        REQUIRE(ok.has_ok());
        const std::string key = "wl:report:" + chat.session;
        CHECK(f.server.cmd({"HGET", key, "listener"}) == chat.listener_id);
        CHECK(f.server.cmd({"HGET", key, "topic"}) == "anxiety");
        CHECK(f.server.cmd({"HGET", key, "lang"}) == "en");
        CHECK(f.server.cmd({"HGET", key, "reason"}) == "They asked where I live.");
        CHECK(f.server.cmd({"HGET", key, "count"}) == "3");
        CHECK(f.server.cmd({"HGET", key, "ended"}).empty());  // still open when reported
        // the seeker stays anonymous in a report
        CHECK(f.server.cmd({"HEXISTS", key, "seeker"}) == "0");
        auto ttl = std::stoll(f.server.cmd({"TTL", key}));
        CHECK(ttl > report_ttl_s - 60);
        CHECK(ttl <= report_ttl_s);
        CHECK_FALSE(f.server.cmd({"ZSCORE", "wl:reports", chat.session}).empty());
        CHECK(std::stoll(f.server.cmd({"TTL", "wl:reports"})) > report_ttl_s - 60);

        auto again = seeker.call(report_body(chat.session, "again", 1, short_text));
        CHECK(again.error().code() == v1::WRONG_STATE);
        CHECK(again.error().message() == "This chat has already been reported.");
        CHECK(f.server.cmd({"HGET", key, "reason"}) == "They asked where I live.");

        // what the safety team reads back is what the seeker sent
        admin::reports reports(*f.redis);
        auto found = f.run(reports.find(chat.session));
        REQUIRE(found);
        REQUIRE(found->messages.messages_size() == 3);
        CHECK(found->messages.messages(0).from() == v1::LISTENER);
        CHECK(found->messages.messages(1).from() == v1::SEEKER);
        CHECK(found->messages.messages(2).seq() == 3);
        CHECK(found->messages.messages(2).text() == "message 3");
        CHECK(found->messages.messages(2).sent_unix_ms() == 1'800'000'000'003);
    }
    SUBCASE("a chat can be reported after it ended") {
        REQUIRE(chat.listener->call(R"("endChat":{"sessionId":")" + chat.session + "\"}").has_ok());
        seeker.until([](const M& m) { return m.has_chat_ended(); });
        REQUIRE(seeker.call(report_body(chat.session, "", 1, short_text)).has_ok());
        CHECK_FALSE(f.server.cmd({"HGET", "wl:report:" + chat.session, "ended"}).empty());
    }
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("matchmaker ws: a listener ends a chat with a report and blocks the seeker, who is never offered to "
          "them again" * doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    auto chat = start_chat(f, mm.port());
    auto short_text = [](int i) { return "message " + std::to_string(i); };

    // not a chat of theirs: nothing happens to it
    auto other = start_chat(f, mm.port(), "grief");
    auto body = report_body(other.session, "", 0, short_text);
    body.insert(body.size() - 1, R"(,"block":true)");
    CHECK(chat.listener->call(body).error().code() == v1::NOT_FOUND);
    CHECK(f.server.cmd({"HGET", "wl:session:" + other.session, "state"}) == "active");

    body = report_body(chat.session, "Sexual messages after I asked them to stop.", 2, short_text);
    body.insert(body.size() - 1, R"(,"block":true)");
    REQUIRE(chat.listener->call(body).has_ok());
    // the seeker is told the chat ended, as for any end by the listener (not why)
    auto ended = chat.seeker->until([](const M& m) { return m.has_chat_ended(); });
    CHECK(ended.chat_ended().ended_by() == v1::LISTENER);
    CHECK(ended.chat_ended().reason().empty());
    CHECK(f.server.cmd({"HGET", "wl:session:" + chat.session, "state"}) == "ended");
    const std::string key = "wl:report:" + chat.session + ":l";
    CHECK(f.server.cmd({"HGET", key, "by"}) == "listener");
    CHECK(f.server.cmd({"HGET", key, "blocked"}) == "1");
    CHECK(f.server.cmd({"HGET", key, "listener"}) == chat.listener_id);
    CHECK(f.server.cmd({"HGET", key, "count"}) == "2");
    CHECK(f.server.cmd({"HEXISTS", key, "seeker"}) == "0");
    CHECK_FALSE(f.server.cmd({"ZSCORE", "wl:reports", chat.session + ":l"}).empty());
    CHECK(std::stoll(f.server.cmd({"TTL", key})) > report_ttl_s - 60);
    // once per side: the listener again is refused, the seeker may still send their own
    CHECK(chat.listener->call(report_body(chat.session, "", 0, short_text)).error().code() == v1::WRONG_STATE);
    REQUIRE(chat.seeker->call(report_body(chat.session, "They ended it suddenly.", 0, short_text)).has_ok());
    CHECK(f.server.cmd({"HGET", "wl:report:" + chat.session, "by"}) == "seeker");
    admin::reports reports(*f.redis);
    auto found = f.run(reports.find(chat.session + ":l"));
    REQUIRE(found);
    CHECK(found->messages.messages_size() == 2);

    // the seeker asks again; the listener who blocked them is free and covers the topic, but is
    // never offered them: they are told nobody can take the request now
    auto q = chat.seeker->call(R"("requestChat":{"topic":"anxiety","language":"en"})");
    REQUIRE(q.has_request_queued());
    CHECK(q.request_queued().no_listener_now());
    CHECK(f.server.cmd({"HGET", "wl:listener:" + chat.listener_id, "offers"}) == "0");
    CHECK(f.server.cmd({"SISMEMBER", "wl:seeker:" + f.server.cmd({"HGET", "wl:session:" + chat.session, "seeker"}) +
                                         ":blocked",
                        chat.listener_id}) == "1");
    // a listener's report without block leaves the chat open
    auto third = start_chat(f, mm.port(), "work");
    REQUIRE(third.listener->call(report_body(third.session, "worried about them", 0, short_text)).has_ok());
    CHECK(f.server.cmd({"HGET", "wl:session:" + third.session, "state"}) == "active");
    CHECK(f.server.cmd({"HGET", "wl:report:" + third.session + ":l", "blocked"}) == "0");
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("matchmaker: the report index keeps 90 days" * doctest::timeout(20)) {
    matchmaker_fixture f;
    auto l = f.listener({"work"}, {"en"}, 2);
    auto chat_of = [&](const std::string& sid) {
        f.request(sid, "work", "en");
        auto c = f.run(f.store->accept_offer(l.id, f.offer_of(sid)));
        REQUIRE(c);
        return c.value->session_id;
    };
    auto a = f.seeker(), b = f.seeker();
    auto first = chat_of(a), second = chat_of(b);
    REQUIRE(f.run(f.store->report_chat("seeker", a, first, "", R"({"messages":[]})", 0)));
    f.now += 91LL * 24 * 3600 * 1000;
    REQUIRE(f.run(f.store->report_chat("seeker", b, second, "", R"({"messages":[]})", 0)));
    CHECK(f.server.cmd({"ZRANGE", "wl:reports", "0", "-1"}) == second);
    // whose chat it is is checked before whether it was reported
    auto refused = f.run(f.store->report_chat("seeker", a, second, "", R"({"messages":[]})", 0));
    CHECK_FALSE(refused);
    CHECK(refused.error.code == "NOT_FOUND");
}

TEST_CASE("warmline-admin reports: list and show print what the safety team needs, safely" *
          doctest::timeout(60)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    auto chat = start_chat(f, mm.port());
    REQUIRE(chat.seeker->call(report_body(chat.session, "Unkind\nreplies", 2, [](int i) {
                                  return i == 1 ? std::string("you should \x1b[31mgive up") : std::string("why?");
                              })).has_ok());

    auto admin = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{WARMLINE_BINARY_DIR "/services/admin/warmline-admin"};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.push_back("--redis-url=" + f.server.url());
        argv.push_back("--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json");
        child_process p(argv, f.server.dir() + "/admin.err");
        std::string out;
        while (auto line = p.read_line(std::chrono::seconds(10))) out += *line + "\n";
        int status = p.wait(std::chrono::seconds(10));
        return std::make_pair(status, out);
    };
    auto [list_status, list] = admin({"reports", "list"});
    CHECK(list_status == 0);
    CHECK(list.find(chat.session) != std::string::npos);
    CHECK(list.find("listener " + chat.listener_id) != std::string::npos);
    CHECK(list.find("2 messages") != std::string::npos);
    CHECK(list.find("UTC") != std::string::npos);

    auto [show_status, show] = admin({"reports", "show", chat.session});
    CHECK(show_status == 0);
    CHECK(show.find("listener:  " + chat.listener_id) != std::string::npos);
    CHECK(show.find("topic:     anxiety (en)") != std::string::npos);
    CHECK(show.find("reason:    Unkind\\nreplies") != std::string::npos);
    // the escape character is shown, not sent to the terminal
    CHECK(show.find("#1 listener") != std::string::npos);
    CHECK(show.find("you should \\x1b[31mgive up") != std::string::npos);
    CHECK(show.find('\x1b') == std::string::npos);
    CHECK(show.find("#2 seeker") != std::string::npos);
    // said plainly before the words: nobody can check them
    CHECK(show.find("UNVERIFIED:") != std::string::npos);
    CHECK(show.find("UNVERIFIED:") < show.find("#1 listener"));
    CHECK(list.find("unverified") != std::string::npos);

    auto [missing_status, missing] = admin({"reports", "show", "c-none"});
    CHECK(missing_status != 0);
    CHECK(missing.empty());
}

TEST_CASE("matchmaker: a report's plaintext never reaches the matchmaker's log" * doctest::timeout(60)) {
    matchmaker_fixture f;
    std::string log = f.server.dir() + "/matchmaker.log";
    child_process mm({WARMLINE_BINARY_DIR "/services/matchmaker/matchmaker", "--listen=127.0.0.1:0", "--dev=true",
                      "--redis-url=" + f.server.url(), "--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json",
                      "--ticket-secret=report-secret-report-secret-report-secret", "--log-level=debug"},
                     log);
    auto port = mm.ready_port();
    const std::string secret_text = "plaintext-canary-7f3a", secret_reason = "reason-canary-91c2";
    {
        auto chat = start_chat(f, port);
        REQUIRE(chat.seeker->call(report_body(chat.session, secret_reason, 1, [&](int) { return secret_text; }))
                    .has_ok());
        // a refused report (someone else's chat) must not leak either
        peer other(port);
        other.call(R"("seekerHello":{})");
        CHECK(other.call(report_body(chat.session, secret_reason, 1, [&](int) { return secret_text; })).has_error());
    }
    mm.signal(SIGTERM);
    CHECK(mm.wait(std::chrono::seconds(10)) != -1);
    std::ifstream in(log);
    std::stringstream all;
    all << in.rdbuf();
    CHECK(all.str().size() > 0);  // it did log (at debug level)
    CHECK(all.str().find(secret_text) == std::string::npos);
    CHECK(all.str().find(secret_reason) == std::string::npos);
}
