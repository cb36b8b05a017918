// The safety team's review queue, over real WebSockets against a real redis-server: reports of
// both sides wait in it with a status, supervisors act on the report's listener (suspend pending
// review, reinstate, revoke), seekers' reports of one listener suspend them automatically, and
// every step is in the audit stream, which warmline-admin reads.
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"
#include "tests/support/process.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;

namespace {

struct chat {
    std::unique_ptr<peer> seeker;
    std::string session;
};

// A seeker in a chat with the (available, signed-in) listener on `desk`.
chat chat_with(std::uint16_t port, peer& desk, const std::string& topic = "anxiety") {
    chat c;
    c.seeker = std::make_unique<peer>(port);
    REQUIRE(c.seeker->call(R"("seekerHello":{})").has_seeker_welcome());
    REQUIRE(c.seeker->call(R"("requestChat":{"topic":")" + topic + R"(","language":"en"})").has_request_queued());
    auto offer = desk.until([](const M& m) { return m.has_offer(); });
    auto started = desk.call(R"("acceptOffer":{"offerId":")" + offer.offer().offer_id() + "\"}");
    REQUIRE(started.has_chat_started());
    c.session = started.chat_started().session_id();
    c.seeker->until([](const M& m) { return m.has_chat_started(); });
    return c;
}

std::unique_ptr<peer> signed_in_listener(std::uint16_t port, const admin::created& account) {
    auto desk = std::make_unique<peer>(port);
    REQUIRE(desk->call(R"("listenerSignIn":{"token":")" + account.token + "\"}").has_listener_welcome());
    REQUIRE(desk->call(R"("setAvailability":{"available":true})").has_status_changed());
    return desk;
}

std::string report(const std::string& session, const std::string& reason) {
    return R"("reportChat":{"sessionId":")" + session + R"(","reason":")" + reason +
           R"(","messages":[{"from":"LISTENER","seq":"1","text":"give me your address","sentUnixMs":"1"}]})";
}

}  // namespace

TEST_CASE("review: reports wait in the queue; a supervisor suspends the listener, then reinstates them; all "
          "audited" * doctest::timeout(40)) {
    matchmaker_fixture f;
    auto settings = fast_settings();
    settings.store.suspend_after_reports = 0;
    running_matchmaker mm(f.server.url(), settings);
    auto account = f.listener({"anxiety"}, {"en"}, 2, /*available=*/false);
    auto desk = signed_in_listener(mm.port(), account);
    auto c = chat_with(mm.port(), *desk);
    REQUIRE(c.seeker->call(report(c.session, "Asked where I live.")).has_ok());

    auto sup_account = f.run(f.accounts->create_supervisor("Ana"));
    peer sup(mm.port());
    auto first = sup.call(R"("supervisorSignIn":{"token":")" + sup_account.token + "\"}");
    REQUIRE(first.has_stats());
    CHECK(first.stats().reports_open() == 1);
    auto list = sup.call(R"("listReports":{})");
    REQUIRE(list.reports().reports_size() == 1);
    const auto& r = list.reports().reports(0);
    CHECK(r.report_id() == c.session);
    CHECK(r.by() == v1::SEEKER);
    CHECK(r.status() == v1::REPORT_OPEN);
    CHECK(r.listener_id() == account.id);
    CHECK_FALSE(r.listener_name().empty());
    CHECK(r.reason() == "Asked where I live.");
    REQUIRE(r.messages_size() == 1);
    CHECK(r.messages(0).text() == "give me your address");

    // a listener and a seeker may not read the queue
    CHECK(desk->call(R"("listReports":{})").error().code() == v1::PERMISSION_DENIED);

    auto reviewed = sup.call(R"("reviewReport":{"reportId":")" + c.session +
                             R"(","action":"SUSPEND_LISTENER","note":"Checking with them."})");
    REQUIRE(reviewed.has_report());
    CHECK(reviewed.report().status() == v1::REPORT_ACTIONED);
    CHECK(reviewed.report().listener_suspended());
    CHECK(reviewed.report().reviewed_by() == "supervisor:" + sup_account.id);
    CHECK(reviewed.report().note() == "Checking with them.");
    // the listener is off the line: told why, their chat handed on (the seeker back at the front)
    auto told = desk->until([](const M& m) { return m.has_status_changed() && m.status_changed().profile().suspended(); });
    CHECK(told.status_changed().reason().find("paused pending a review") != std::string::npos);
    auto ended = c.seeker->until([](const M& m) { return m.has_chat_ended(); });
    CHECK(ended.chat_ended().requeued());
    auto refused = desk->call(R"("setAvailability":{"available":true})");
    CHECK(refused.error().code() == v1::WRONG_STATE);
    CHECK(refused.error().message() ==
          "Your account is paused pending a review by the safety team. They will be in touch.");
    // out of the open queue
    CHECK(sup.call(R"("listReports":{})").reports().reports_size() == 0);
    CHECK(sup.call(R"("listReports":{"includeClosed":true})").reports().reports_size() == 1);

    auto lifted = sup.call(R"("reviewReport":{"reportId":")" + c.session + R"(","action":"REINSTATE_LISTENER"})");
    CHECK_FALSE(lifted.report().listener_suspended());
    CHECK(desk->call(R"("setAvailability":{"available":true})").has_status_changed());
    CHECK(sup.call(R"("reviewReport":{"reportId":"c-none","status":"REPORT_DISMISSED"})").error().code() ==
          v1::NOT_FOUND);

    // every step in the audit stream, newest first, and never the report's words
    auto log = f.run(f.store->audit_log(20));
    std::vector<std::string> events;
    for (const auto& e : log)
        for (const auto& [k, v] : e)
            if (k == "event") events.push_back(v);
    REQUIRE(events.size() >= 6);
    CHECK(events[0] == "listener_reinstate");
    CHECK(events[1] == "report_review");
    CHECK(std::find(events.begin(), events.end(), "listener_suspend") != events.end());
    CHECK(std::find(events.begin(), events.end(), "reports_list") != events.end());
    CHECK(std::find(events.begin(), events.end(), "supervisor_sign_in") != events.end());
    const std::string raw = f.server.cmd({"XRANGE", "wl:audit", "-", "+"});
    CHECK(raw.find("address") == std::string::npos);
    CHECK(raw.find("Checking with them") == std::string::npos);

    // warmline-admin reads it (and its own reads are audited too)
    std::vector<std::string> argv{WARMLINE_BINARY_DIR "/services/admin/warmline-admin", "audit", "--limit", "3",
                                  "--redis-url=" + f.server.url(),
                                  "--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json"};
    child_process admin(argv, f.server.dir() + "/admin.err");
    std::string out;
    while (auto line = admin.read_line(std::chrono::seconds(10))) out += *line + "\n";
    CHECK(admin.wait(std::chrono::seconds(10)) == 0);
    CHECK(out.find("listener_reinstate") != std::string::npos);
    CHECK(out.find("supervisor:" + sup_account.id) != std::string::npos);
    CHECK(out.find(account.id) != std::string::npos);
    CHECK(f.run(f.store->audit_log(1))[0][0].second == "audit_read");
}

TEST_CASE("review: seekers' reports of one listener in 3 chats within the window suspend them automatically" *
          doctest::timeout(40)) {
    matchmaker_fixture f;
    auto settings = fast_settings();
    settings.store.suspend_after_reports = 3;
    running_matchmaker mm(f.server.url(), settings);
    auto account = f.listener({"anxiety"}, {"en"}, 3, /*available=*/false);
    auto desk = signed_in_listener(mm.port(), account);
    std::vector<chat> chats;
    for (int i = 0; i < 3; ++i) chats.push_back(chat_with(mm.port(), *desk));
    // the same chat reported twice counts once (the second report is refused anyway)
    REQUIRE(chats[0].seeker->call(report(chats[0].session, "one")).has_ok());
    REQUIRE(chats[1].seeker->call(report(chats[1].session, "two")).has_ok());
    CHECK(f.field("wl:listener:" + account.id, "suspended") != "1");
    REQUIRE(chats[2].seeker->call(report(chats[2].session, "three")).has_ok());
    CHECK(f.field("wl:listener:" + account.id, "suspended") == "1");
    CHECK(f.field("wl:listener:" + account.id, "suspended_why") == "reports");
    desk->until([](const M& m) { return m.has_status_changed() && m.status_changed().profile().suspended(); });
    // every chat of theirs was handed on
    for (auto& c : chats) c.seeker->until([](const M& m) { return m.has_chat_ended(); });
    CHECK(f.server.cmd({"SCARD", "wl:listener:" + account.id + ":chats"}) == "0");
    CHECK(f.server.cmd({"ZCARD", "wl:reports:open"}) == "3");
    // the queue lists all three (newest first; these may share a millisecond, so no order is
    // asserted), each with its listener's account as it is now
    auto sup_account = f.run(f.accounts->create_supervisor("Ana"));
    peer sup(mm.port());
    REQUIRE(sup.call(R"("supervisorSignIn":{"token":")" + sup_account.token + "\"}").stats().reports_open() == 3);
    auto list = sup.call(R"("listReports":{})").reports();
    REQUIRE(list.reports_size() == 3);
    std::set<std::string> listed, reported;
    for (const auto& r : list.reports()) {
        listed.insert(r.report_id());
        CHECK(r.listener_suspended());
        CHECK(r.messages_size() == 1);
    }
    for (const auto& c : chats) reported.insert(c.session);
    CHECK(listed == reported);
    CHECK(check_invariants(f.server).empty());
}
