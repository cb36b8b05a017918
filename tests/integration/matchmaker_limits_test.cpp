// Per-address limits on anonymous access, over two matchmaker processes sharing one Redis: new
// seekers and requests per minute, crisis requests per hour (served, but in the normal tier),
// the address behind a trusted proxy, and the supervisors' crisis spike alert.
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"

#include "common/keys.hpp"

#include <string>

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;

namespace {

// A matchmaker behind a proxy on 127.0.0.1: the client is what X-Forwarded-For says.
net::server_options behind_proxy() {
    net::server_options so;
    so.trusted_proxies = {"127.0.0.1"};
    return so;
}

std::map<std::string, std::string> from(const std::string& address) { return {{"X-Forwarded-For", address}}; }

bool rate_limited(const M& m) { return m.has_error() && m.error().code() == v1::RATE_LIMITED; }

}  // namespace

TEST_CASE("matchmaker limits: new seekers per address per minute are counted over every process, by /64 for "
          "IPv6, and a returning seeker is never refused" * doctest::timeout(30)) {
    matchmaker_fixture f;
    manual_clock clock;
    clock.set(1'800'000'000'000);  // the start of a minute
    auto s = manual_clock_settings(fast_settings());
    s.limits.new_seekers_per_min = 3;
    running_matchmaker one(f.server.url(), s, behind_proxy(), clock.fn());
    running_matchmaker two(f.server.url(), s, behind_proxy(), clock.fn());

    peer a1(one.port(), from("203.0.113.9")), a2(two.port(), from("203.0.113.9")), a3(one.port(), from("203.0.113.9"));
    std::string resume;
    for (auto* p : {&a1, &a2, &a3}) {
        auto w = p->call(R"("seekerHello":{})");
        REQUIRE(w.has_seeker_welcome());
        resume = w.seeker_welcome().resume_token();
    }
    peer a4(two.port(), from("203.0.113.9"));
    auto refused = a4.call(R"("seekerHello":{})");
    REQUIRE(rate_limited(refused));
    CHECK(refused.error().message().find("emergency") != std::string::npos);
    // the refused hello made nobody
    CHECK(f.server.cmd({"EVAL", "return #redis.call('KEYS', 'wl:resume:*')", "0"}) == "3");

    // coming back with a token is not a new seeker
    auto back = a4.call(R"("seekerHello":{"resumeToken":")" + resume + "\"}");
    REQUIRE(back.has_seeker_welcome());
    CHECK(back.seeker_welcome().resumed());

    // another address has its own count; two addresses of one /64 share theirs
    peer b(one.port(), from("198.51.100.4"));
    CHECK(b.call(R"("seekerHello":{})").has_seeker_welcome());
    for (int i = 0; i < 3; ++i) {
        peer v6(i % 2 ? one.port() : two.port(), from("2001:db8:7:7::" + std::to_string(i + 1)));
        CHECK(v6.call(R"("seekerHello":{})").has_seeker_welcome());
    }
    peer v6_more(one.port(), from("2001:db8:7:7:ffff::1"));
    CHECK(rate_limited(v6_more.call(R"("seekerHello":{})")));

    // Redis holds no address, only keyed hashes, and each counter expires
    auto keys = f.server.cmd({"EVAL", "return table.concat(redis.call('KEYS', 'wl:addr:*'), ' ')", "0"});
    CHECK(keys.find("wl:addr:seekers:") != std::string::npos);
    CHECK(keys.find("203.0.113") == std::string::npos);
    CHECK(keys.find("2001:db8") == std::string::npos);
    const auto first_key = keys.substr(0, keys.find(' '));
    const auto ttl = std::stoll(f.server.cmd({"PTTL", first_key}));
    CHECK(ttl > 0);
    CHECK(ttl <= 61000);

    // the next minute starts a new count
    clock.advance(60000);
    peer a5(two.port(), from("203.0.113.9"));
    CHECK(a5.call(R"("seekerHello":{})").has_seeker_welcome());
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("matchmaker limits: an untrusted peer's X-Forwarded-For is ignored: its own address is counted" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    auto s = fast_settings();
    s.limits.new_seekers_per_min = 2;
    running_matchmaker mm(f.server.url(), s);  // no trusted proxies
    peer a(mm.port(), from("1.1.1.1")), b(mm.port(), from("2.2.2.2")), c(mm.port(), from("3.3.3.3"));
    CHECK(a.call(R"("seekerHello":{})").has_seeker_welcome());
    CHECK(b.call(R"("seekerHello":{})").has_seeker_welcome());
    CHECK(rate_limited(c.call(R"("seekerHello":{})")));  // all three are 127.0.0.1
}

TEST_CASE("matchmaker limits: chat requests per address per minute, and crisis requests beyond the hour's quota "
          "are served in the normal tier with the crisis lines" * doctest::timeout(30)) {
    matchmaker_fixture f;
    auto s = fast_settings();
    s.limits.requests_per_min = 3;
    s.limits.crisis_per_hour = 1;
    running_matchmaker mm(f.server.url(), s, behind_proxy());

    peer first(mm.port(), from("203.0.113.9"));
    const auto sid1 = first.call(R"("seekerHello":{})").seeker_welcome().seeker_id();
    auto q = first.call(R"("requestChat":{"topic":"anxiety","language":"en","crisis":true})");
    REQUIRE(q.has_request_queued());
    CHECK(f.server.cmd({"HGET", keys::seeker(sid1), "tier"}) == "0");

    peer second(mm.port(), from("203.0.113.9"));
    const auto sid2 = second.call(R"("seekerHello":{})").seeker_welcome().seeker_id();
    auto q2 = second.call(R"("requestChat":{"topic":"anxiety","language":"en","crisis":true})");
    REQUIRE(q2.has_request_queued());
    CHECK(q2.request_queued().crisis_resources_size() > 0);  // still shown where to get help now
    CHECK(f.server.cmd({"HGET", keys::seeker(sid2), "tier"}) == "1");
    CHECK(q2.request_queued().position() == 2);  // behind the crisis request, not ahead of anyone

    // the third request of the minute is let through, the fourth refused with nothing changed
    CHECK(second.call(R"("cancelRequest":{})").has_ok());
    CHECK(second.call(R"("requestChat":{"topic":"anxiety","language":"en"})").has_request_queued());
    CHECK(second.call(R"("cancelRequest":{})").has_ok());
    auto refused = second.call(R"("requestChat":{"topic":"anxiety","language":"en"})");
    REQUIRE(rate_limited(refused));
    CHECK(f.server.cmd({"HGET", keys::seeker(sid2), "state"}) == "idle");

    auto metrics = net::http_request_blocking("127.0.0.1", mm.port(), "GET", "/metrics");
    CHECK(metrics.body.find("warmline_address_limited_total{limit=\"crisis\"} 1") != std::string::npos);
    CHECK(metrics.body.find("warmline_address_limited_total{limit=\"requests\"} 1") != std::string::npos);
    CHECK(metrics.body.find("warmline_requests_total{tier=\"crisis\"} 1") != std::string::npos);
    CHECK(check_invariants(f.server).empty());
}

TEST_CASE("matchmaker limits: supervisors are alerted when crisis requests spike against the hour before" *
          doctest::timeout(30)) {
    matchmaker_fixture f;
    manual_clock clock;
    clock.set(1'800'000'030'000);  // half a minute into a minute
    auto s = manual_clock_settings(fast_settings());
    s.store.crisis_alert_min = 3;
    s.store.crisis_alert_factor = 3;
    running_matchmaker mm(f.server.url(), s, {}, clock.fn());
    auto sup = f.run(f.accounts->create_supervisor("Ana"));
    const auto minute = clock.now() / 60000;

    std::vector<std::unique_ptr<peer>> seekers;
    auto crisis_request = [&] {
        seekers.push_back(std::make_unique<peer>(mm.port()));
        seekers.back()->call(R"("seekerHello":{})");
        REQUIRE(seekers.back()->call(R"("requestChat":{"topic":"grief","language":"en","crisis":true})")
                    .has_request_queued());
    };
    crisis_request();
    crisis_request();
    peer watcher(mm.port());
    auto calm = watcher.call(R"("supervisorSignIn":{"token":")" + sup.token + "\"}");
    REQUIRE(calm.has_stats());
    CHECK(calm.stats().crisis_requests_5m() == 2);
    CHECK_FALSE(calm.stats().crisis_spike());

    crisis_request();
    auto spike = watcher.until([](const M& m) { return m.has_stats() && m.stats().crisis_requests_5m() == 3; });
    CHECK(spike.stats().crisis_spike());
    CHECK(spike.stats().crisis_requests_usual_5m() == 0);
    CHECK(f.server.cmd({"TTL", keys::crisis_minute(std::to_string(minute))}) != "-1");

    // the same three after a busy hour are usual: no alert
    f.server.cmd({"SET", keys::crisis_minute(std::to_string(minute - 30)), "24"});
    auto usual = watcher.until([](const M& m) { return m.has_stats() && m.stats().crisis_requests_usual_5m() == 2; });
    CHECK(usual.stats().crisis_requests_5m() == 3);
    CHECK_FALSE(usual.stats().crisis_spike());
}
