// The supervisors' stats history: one sample per step, taken by one process even when several
// run, kept in Redis for an hour (so a reload or a restart keeps it), sent oldest first in the
// reply to SupervisorSignIn with empty queue rows left out, and never in the pushed snapshots.
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"
#include "tests/support/process.hpp"

#include <doctest/doctest.h>

#include <future>

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;

namespace {

constexpr std::int64_t step = 20'000;

// Settings on a manual clock whose history loop offers a sample only when it starts (its tick,
// the stats interval, is an hour), so the test decides when samples are offered.
matchmaker::service_settings quiet_settings() {
    auto s = manual_clock_settings(fast_settings());
    s.stats_interval = std::chrono::hours(1);
    return s;
}

// Both processes offer a sample for the current step at the same moment; how many were stored.
int offer_both(running_matchmaker& a, running_matchmaker& b) {
    auto fa = boost::asio::co_spawn(a.ioc, a.svc->sample_history(), boost::asio::use_future);
    auto fb = boost::asio::co_spawn(b.ioc, b.svc->sample_history(), boost::asio::use_future);
    REQUIRE(fa.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    REQUIRE(fb.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    return static_cast<int>(fa.get()) + static_cast<int>(fb.get());
}

// The times of the stored samples, oldest first (read without the binary members).
std::vector<std::int64_t> sample_times(const redis_server& r) {
    auto text = r.cmd({"EVAL",
                       "local r = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') local out = {} "
                       "for i = 2, #r, 2 do out[#out + 1] = r[i] end return out",
                       "1", "wl:stats:history"});
    std::vector<std::int64_t> out;
    for (const auto& line : lines(text)) out.push_back(std::stoll(line));
    return out;
}

}  // namespace

TEST_CASE("matchmaker ws: the stats history has one sample per step across processes, oldest first" *
          doctest::timeout(60)) {
    matchmaker_fixture f;
    manual_clock clock;
    const std::int64_t t0 = (clock.now() / step + 1) * step + 5'000;  // 5 s into a step
    clock.set(t0);
    auto sup = f.run(f.accounts->create_supervisor("Ana"));
    auto a = std::make_unique<running_matchmaker>(f.server.url(), quiet_settings(), net::server_options{}, clock.fn());
    auto b = std::make_unique<running_matchmaker>(f.server.url(), quiet_settings(), net::server_options{}, clock.fn());
    // the loops offered a sample when they started (if Redis was up by then): one is kept
    CHECK(offer_both(*a, *b) <= 1);
    CHECK(sample_times(f.server) == std::vector<std::int64_t>{t0});

    // step 1: nothing happening; then one seeker waits for grief in German
    clock.advance(step);
    CHECK(offer_both(*a, *b) == 1);
    clock.advance(step / 2);  // later in the same step: neither process stores another
    CHECK(offer_both(*a, *b) == 0);
    peer seeker(a->port());
    seeker.call(R"("seekerHello":{})");
    REQUIRE(seeker.call(R"("requestChat":{"topic":"grief","language":"de"})").has_request_queued());
    clock.advance(step / 2);  // step 2
    CHECK(offer_both(*a, *b) == 1);
    CHECK(sample_times(f.server) == std::vector<std::int64_t>{t0, t0 + step, t0 + 2 * step});

    auto check_history = [&](const v1::StatsSnapshot& s, std::size_t expect) {
        REQUIRE(s.history_size() == static_cast<int>(expect));
        for (int i = 0; i < s.history_size(); ++i) {
            const auto& h = s.history(i);
            CHECK(h.history_size() == 0);
            CHECK(h.has_total());
            if (i > 0) CHECK(h.at_unix_ms() > s.history(i - 1).at_unix_ms());
        }
    };
    {
        clock.advance(step / 4);
        peer watcher(b->port());
        auto first = watcher.call(R"("supervisorSignIn":{"token":")" + sup.token + "\"}");
        REQUIRE(first.has_stats());
        const auto& s = first.stats();
        CHECK(s.queues_size() == 28);  // the live snapshot has every row
        check_history(s, 3);
        CHECK(s.history(0).at_unix_ms() == t0);
        CHECK(s.history(2).at_unix_ms() == t0 + 2 * step);
        // empty rows are left out of samples: none before the seeker came, one after
        CHECK(s.history(0).queues_size() == 0);
        CHECK(s.history(1).queues_size() == 0);
        REQUIRE(s.history(2).queues_size() == 1);
        CHECK(s.history(2).queues(0).topic() == "grief");
        CHECK(s.history(2).queues(0).language() == "de");
        CHECK(s.history(2).queues(0).seekers_waiting() == 1);
        CHECK(s.history(2).total().seekers_waiting() == 1);
    }

    // a restart of every process keeps the hour
    a.reset();
    b.reset();
    auto c = std::make_unique<running_matchmaker>(f.server.url(), quiet_settings(), net::server_options{}, clock.fn());
    {
        peer watcher(c->port());
        auto again = watcher.call(R"("supervisorSignIn":{"token":")" + sup.token + "\"}");
        REQUIRE(again.has_stats());
        check_history(again.stats(), 3);  // c's own first offer fell in step 2, which had its sample
    }

    // an hour on, only the last hour is kept and sent
    clock.set(t0 + 3600 * 1000 + step / 2);  // t0 is now more than an hour ago, t0 + step not
    REQUIRE(c->call(c->svc->sample_history()));
    CHECK(sample_times(f.server) == std::vector<std::int64_t>{t0 + step, t0 + 2 * step, t0 + 3600 * 1000 + step / 2});
    auto pttl = std::stoll(f.server.cmd({"PTTL", "wl:stats:history"}));
    CHECK(pttl > 0);
    CHECK(pttl <= 3600 * 1000 + step);
    clock.advance(step);  // now t0 + step is out of the window too, though still stored
    peer watcher(c->port());
    auto later = watcher.call(R"("supervisorSignIn":{"token":")" + sup.token + "\"}");
    REQUIRE(later.has_stats());
    check_history(later.stats(), 2);
    CHECK(later.stats().history(0).at_unix_ms() == t0 + 2 * step);
}

TEST_CASE("matchmaker ws: samples are taken with no supervisor connected, one per step" * doctest::timeout(30)) {
    matchmaker_fixture f;
    manual_clock clock;
    const std::int64_t t0 = (clock.now() / step + 1) * step;
    clock.set(t0);
    auto s = manual_clock_settings(fast_settings());  // the loop checks every 50 ms of real time
    running_matchmaker a(f.server.url(), s, {}, clock.fn());
    running_matchmaker b(f.server.url(), s, {}, clock.fn());
    auto wait_for_samples = [&](std::size_t n) {
        // the loops run on the services' threads: poll Redis until they stored the sample
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (sample_times(f.server).size() < n) {
            REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "no sample within 10 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    };
    wait_for_samples(1);
    for (int i = 1; i <= 3; ++i) {
        clock.advance(step);
        wait_for_samples(static_cast<std::size_t>(i) + 1);
    }
    auto sup = f.run(f.accounts->create_supervisor("Bo"));
    peer watcher(b.port());
    auto first = watcher.call(R"("supervisorSignIn":{"token":")" + sup.token + "\"}");
    REQUIRE(first.has_stats());
    CHECK(first.stats().history_size() == 4);
    // pushed snapshots carry no history
    auto pushed = watcher.until([](const M& m) { return m.has_stats() && m.request_id().empty(); });
    CHECK(pushed.stats().history_size() == 0);
    CHECK(pushed.stats().queues_size() == 28);
    // both loops kept ticking (every 50 ms) while the clock stood still: one sample per step
    CHECK(sample_times(f.server) == std::vector<std::int64_t>{t0, t0 + step, t0 + 2 * step, t0 + 3 * step});
}

TEST_CASE("matchmaker: the history step is a flag of the binary" * doctest::timeout(30)) {
    child_process help({WARMLINE_BINARY_DIR "/services/matchmaker/matchmaker", "--help"});
    std::string out;
    while (auto line = help.read_line(std::chrono::seconds(10))) out += *line + "\n";
    help.wait(std::chrono::seconds(10));
    CHECK(out.find("--stats-history-step-s") != std::string::npos);
    matchmaker::service_settings s;
    CHECK(s.stats_history_step == std::chrono::seconds(20));
    CHECK(s.stats_history_window == std::chrono::hours(1));
}
