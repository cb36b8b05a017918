// A fleet on one box behind HAProxy, as `scripts/up --fleet` runs it: Redis under Sentinel (a
// primary, a replica, three sentinels), three matchmakers and three relays with a drain delay,
// HAProxy as the only door. With seekers waiting and chats writing both ways through HAProxy
// only, every service is restarted in turn (SIGTERM, the drain, exit, started again, back in
// HAProxy). Nobody waiting is dropped or moved, no chat wedges, every line arrives exactly once
// and in order, the invariants hold, and every client was closed with 1001 and came back through
// the front door. The test reports how long each step of a restart took.
#include "tests/integration/chat_side.hpp"
#include "tests/integration/fleet_fixture.hpp"
#include "tests/support/redis_sentinel.hpp"

#include <sys/wait.h>

#include <thread>

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;
using clock_type = std::chrono::steady_clock;

namespace {

// HAProxy asks every server's /readyz this often and takes it out after two failures, so a drain
// of 600 ms is seen with room to spare even on a loaded machine.
constexpr auto check_interval = std::chrono::milliseconds(100);
constexpr auto drain_delay = std::chrono::milliseconds(600);

redis_server& master_of(sentinel_cluster& sc) {
    for (auto* r : {&sc.primary(), &sc.replica()})
        if (r->running() && r->cmd({"ROLE"}).rfind("master", 0) == 0) return *r;
    FAIL("no server is master");
    return sc.primary();
}

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

// One chat through the front door: both sides of the relay protocol (they resume by themselves),
// and what each side said, to compare with what the other heard.
struct fleet_chat {
    std::unique_ptr<front_client> seeker_mm;  // the seeker's matchmaker connection
    std::unique_ptr<side> seeker, listener;
    std::vector<std::string> said_by_seeker, said_by_listener;

    // A new line from each side, unless that side already has a few the other has not confirmed
    // (so a wedged chat shows as a stall, not as a growing pile).
    void talk(int chat) {
        if (seeker->chat.unreceived() < 8) {
            said_by_seeker.push_back("seeker " + std::to_string(chat) + " line " + std::to_string(said_by_seeker.size()));
            REQUIRE(seeker->chat.say(said_by_seeker.back()));
        }
        if (listener->chat.unreceived() < 8) {
            said_by_listener.push_back("listener " + std::to_string(chat) + " line " +
                                       std::to_string(said_by_listener.size()));
            REQUIRE(listener->chat.say(said_by_listener.back()));
        }
    }
    // Each side has heard at least the first `s` lines of the seeker and `l` of the listener.
    bool heard(std::size_t s, std::size_t l) const {
        return listener->chat.heard().size() >= s && seeker->chat.heard().size() >= l;
    }
    // Closes with 1001 (the relay shutting down) one side saw.
    static int going_away(const side& x) {
        int n = 0;
        for (const auto& e : x.seen)
            if (e.what == client::chat_event::kind::connection_lost && e.close_code == 1001) ++n;
        return n;
    }
};

struct waiting_seeker {
    std::unique_ptr<front_client> mm;
    std::string id, score;
};

}  // namespace

TEST_CASE("fleet: the HAProxy template renders to a configuration haproxy -c accepts without a warning" *
          doctest::timeout(30)) {
    temp_dir dir;
    const std::string config = dir.path + "/haproxy.cfg";
    std::ofstream(config) << render_haproxy_config(
        {{"FRONT", "127.0.0.1:8080"}, {"STATS", "127.0.0.1:8404"}, {"STATS_SOCKET", dir.path + "/haproxy.sock"},
         {"CHECK_MS", "500"}},
        {{"MATCHMAKERS", {"server matchmaker-1 127.0.0.1:8190", "server matchmaker-2 127.0.0.1:8191"}},
         {"RELAYS", {"server relay-1 127.0.0.1:8290"}},
         {"WEBS", {"server web-1 127.0.0.1:8180"}}});
    std::ifstream in(config);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // every placeholder filled in (the comments at the top name them)
    std::stringstream config_lines(text);
    for (std::string line; std::getline(config_lines, line);)
        if (line.rfind("#", 0) != 0) CHECK_MESSAGE(line.find('@') == std::string::npos, line);
    CHECK(text.find("    server matchmaker-2 127.0.0.1:8191\n") != std::string::npos);

    child_process check({haproxy_binary(), "-c", "-f", config}, dir.path + "/check.log");
    CHECK(check.wait_for("Configuration file is valid", std::chrono::seconds(20)).empty());
    const int status = check.wait(std::chrono::seconds(20));
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    std::ifstream log(dir.path + "/check.log");
    const std::string diagnostics((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    CHECK_MESSAGE(diagnostics.find("WARNING") == std::string::npos, diagnostics);
    CHECK_MESSAGE(diagnostics.find("ALERT") == std::string::npos, diagnostics);
}

TEST_CASE("fleet: a rolling restart of every matchmaker and relay behind HAProxy drops nobody, wedges no chat and "
          "delivers every line exactly once" *
          doctest::timeout(150)) {
    const auto started = clock_type::now();
    sentinel_cluster sc;
    temp_dir dir;
    const std::string log = dir.path + "/fleet.log";
    const std::string drain = "--drain-delay-ms=" + std::to_string(drain_delay.count());
    // the clients' addresses come from HAProxy's X-Forwarded-For, as in scripts/up --fleet
    const std::string proxy = "--trusted-proxies=127.0.0.1";
    // local processes: any Origin, and /readyz's details on the main port (as scripts/up --fleet)
    const std::string dev = "--dev=true";

    // the relays first: the matchmakers hand out the front door's address, which needs a port
    std::vector<fleet_service> relays, matchmakers;
    for (int i = 1; i <= 3; ++i) {
        relays.push_back({"relays/relay-" + std::to_string(i),
                          {WARMLINE_BINARY_DIR "/services/relay/relay", "--redis-url=" + sc.url(),
                           "--ticket-secret=" + system_secret, "--redis-timeout-ms=1000", "--idle-timeout-ms=600000",
                           "--ack-replicas=1", "--ack-timeout-ms=500", "--rate-burst=100000",
                           "--rate-per-second=100000", drain, proxy, dev},
                          log, nullptr, 0});
        relays.back().start();
    }
    // the front door's port is chosen before the matchmakers start (they need it), so HAProxy
    // is configured with the matchmakers' ports chosen here too
    std::map<std::string, std::uint16_t> mm_ports, relay_ports;
    for (auto& r : relays) relay_ports[r.name.substr(r.name.find('/') + 1)] = r.port;
    for (int i = 1; i <= 3; ++i) mm_ports["matchmaker-" + std::to_string(i)] = free_port();
    front_door front(dir.path, mm_ports, relay_ports, check_interval);
    for (int i = 1; i <= 3; ++i) {
        matchmakers.push_back({"matchmakers/matchmaker-" + std::to_string(i),
                               {WARMLINE_BINARY_DIR "/services/matchmaker/matchmaker", "--redis-url=" + sc.url(),
                                "--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json",
                                "--ticket-secret=" + system_secret, "--redis-timeout-ms=1000",
                                "--idle-timeout-ms=600000", "--sweep-interval-ms=50", "--position-interval-ms=100",
                                "--node-lease-ms=3000", "--grace-ms=30000", "--rate-burst=100000",
                                "--ack-replicas=1", "--ack-timeout-ms=500",
                                "--relay-url=" + front.ws_url("/v1/relay"), drain, proxy, dev},
                               log, nullptr, mm_ports["matchmaker-" + std::to_string(i)]});
        matchmakers.back().start();
    }
    std::vector<fleet_service*> services;
    for (auto& m : matchmakers) services.push_back(&m);
    for (auto& r : relays) services.push_back(&r);

    auto wait_for = [&](const char* what, std::chrono::seconds limit, const std::function<bool()>& done,
                        const std::function<void()>& meanwhile = {}) {
        const auto deadline = clock_type::now() + limit;
        while (!done()) {
            REQUIRE_MESSAGE(clock_type::now() < deadline, what);
            if (meanwhile) meanwhile();
            else std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition
        }
    };
    auto all_up = [&] {
        const auto s = front.statuses();
        for (auto* svc : services) {
            auto it = s.find(svc->name);
            if (it == s.end() || it->second != "UP") return false;
        }
        return true;
    };
    wait_for("HAProxy did not see every service up", std::chrono::seconds(30), all_up);

    // a listener through the front door, who takes the chats (anxiety, four at once)
    child_process admin({WARMLINE_BINARY_DIR "/services/admin/warmline-admin", "listener", "create", "--name", "Fleet",
                         "--topics", "anxiety", "--languages", "en", "--max-chats", "4", "--redis-url=" + sc.url(),
                         "--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json"},
                        log);
    const std::string token = admin.wait_for("token: ", std::chrono::seconds(30));
    REQUIRE(admin.wait(std::chrono::seconds(30)) == 0);
    front_client listener_mm(front.port(), token);
    const auto welcome = listener_mm.call(R"("listenerSignIn":{"token":")" + token + "\"}");
    REQUIRE((welcome && welcome->has_listener_welcome()));
    const auto available = listener_mm.call(R"("setAvailability":{"available":true})");
    REQUIRE((available && available->has_status_changed()));

    // three chats, opened through the front door, their relay address the front door too
    std::vector<fleet_chat> chats(3);
    for (auto& c : chats) {
        c.seeker_mm = std::make_unique<front_client>(front.port());
        c.seeker_mm->seeker_hello();
        auto queued = c.seeker_mm->call(R"("requestChat":{"topic":"anxiety","language":"en"})");
        REQUIRE((queued && queued->has_request_queued()));
        auto offer = listener_mm.take([](const M& m) { return m.has_offer(); }, std::chrono::seconds(10));
        REQUIRE(offer);
        auto mine = listener_mm.call(R"("acceptOffer":{"offerId":")" + offer->offer().offer_id() + "\"}");
        REQUIRE((mine && mine->has_chat_started()));
        auto theirs = c.seeker_mm->take([](const M& m) { return m.has_chat_started(); }, std::chrono::seconds(10));
        REQUIRE(theirs);
        CHECK(theirs->chat_started().relay_url() == front.ws_url("/v1/relay"));
        const auto& session = mine->chat_started().session_id();
        c.seeker = std::make_unique<side>(v1::SEEKER, session, theirs->chat_started().relay_url(),
                                          theirs->chat_started().relay_ticket());
        c.listener = std::make_unique<side>(v1::LISTENER, session, mine->chat_started().relay_url(),
                                            mine->chat_started().relay_ticket());
        REQUIRE(both_secure(*c.seeker, *c.listener));
    }

    // four seekers waiting whom nobody can take (no listener for grief), and their places
    std::vector<waiting_seeker> waiting(4);
    for (auto& w : waiting) {
        w.mm = std::make_unique<front_client>(front.port());
        w.id = w.mm->seeker_hello();
        auto queued = w.mm->call(R"("requestChat":{"topic":"grief","language":"en"})");
        REQUIRE((queued && queued->has_request_queued()));
        w.score = master_of(sc).cmd({"ZSCORE", "wl:q:grief:en", w.id});
        REQUIRE_FALSE(w.score.empty());
    }
    REQUIRE(check_invariants(master_of(sc)).empty());

    // the load: every client pumped, every chat saying a line each way per round
    std::vector<front_client*> mm_clients{&listener_mm};
    for (auto& c : chats) mm_clients.push_back(c.seeker_mm.get());
    for (auto& w : waiting) mm_clients.push_back(w.mm.get());
    auto run_load = [&] {
        for (auto* m : mm_clients) m->pump();
        for (std::size_t i = 0; i < chats.size(); ++i) {
            auto& c = chats[i];
            c.talk(static_cast<int>(i));
            c.seeker->pump();
            c.listener->pump();
            if (!c.seeker_mm->fresh_ticket().empty()) c.seeker->chat.renew_ticket(c.seeker_mm->fresh_ticket());
        }
    };
    // no chat wedges: what was said so far arrives on the other side while the load goes on
    auto chats_flow = [&](const char* after) {
        std::vector<std::pair<std::size_t, std::size_t>> said;
        for (auto& c : chats) said.emplace_back(c.said_by_seeker.size(), c.said_by_listener.size());
        wait_for(after, std::chrono::seconds(30), [&] {
            for (std::size_t i = 0; i < chats.size(); ++i)
                if (!chats[i].heard(said[i].first, said[i].second)) return false;
            return true;
        }, run_load);
    };
    auto everyone_back = [&] {
        for (auto* m : mm_clients)
            if (!m->connected()) return false;
        for (auto& c : chats)
            if (c.seeker->chat.current() != client::chat_session::state::open ||
                c.listener->chat.current() != client::chat_session::state::open)
                return false;
        return true;
    };
    chats_flow("the chats did not flow before the restarts");

    // ---- every service in turn: SIGTERM, the drain, exit, start again, back in HAProxy
    const auto restarts_began = clock_type::now();
    for (auto* svc : services) {
        INFO("restarting ", svc->name);
        const auto signalled = clock_type::now();
        svc->proc->signal(SIGTERM);
        bool said_draining = false, down_before_exit = false;
        double to_down = 0, to_exit = 0;
        int status = -1;
        wait_for("the service did not exit after SIGTERM", std::chrono::seconds(20), [&] {
            status = svc->proc->wait(std::chrono::milliseconds(0));
            return status != -1;
        }, [&] {
            run_load();
            if (!said_draining) {
                const auto r = svc->readyz();
                said_draining = r.status == 503 && r.body.find("draining") != std::string::npos;
            }
            if (!down_before_exit && front.status(svc->name).rfind("DOWN", 0) == 0) {
                down_before_exit = true;
                to_down = seconds_since(signalled);
            }
        });
        to_exit = seconds_since(signalled);
        CHECK_MESSAGE(said_draining, "/readyz never said draining");
        CHECK_MESSAGE(down_before_exit, "HAProxy still had it up when it exited");
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));

        const auto restarted = clock_type::now();
        svc->start();
        wait_for("HAProxy did not see it up again", std::chrono::seconds(30),
                 [&] { return front.status(svc->name) == "UP"; }, run_load);
        const double to_up = seconds_since(restarted);
        wait_for("its clients did not come back through the front door", std::chrono::seconds(30), everyone_back,
                 run_load);
        chats_flow("the chats stopped flowing after the restart");
        MESSAGE(svc->name << ": out of HAProxy " << to_down << " s after SIGTERM, exited after " << to_exit
                          << " s, back up " << to_up << " s after its start");
    }
    const double restarts_s = seconds_since(restarts_began);

    // ---- afterwards: everything said arrived once, in order; nobody waiting moved
    wait_for("not every line arrived", std::chrono::seconds(30), [&] {
        for (auto& c : chats)
            if (!c.heard(c.said_by_seeker.size(), c.said_by_listener.size())) return false;
        return true;
    }, [&] {
        for (auto* m : mm_clients) m->pump();
        for (auto& c : chats) {
            c.seeker->pump();
            c.listener->pump();
        }
    });
    int closes_mm = 0, closes_relay = 0;
    std::size_t lines = 0;
    for (auto& c : chats) {
        CHECK(c.listener->chat.heard() == c.said_by_seeker);
        CHECK(c.seeker->chat.heard() == c.said_by_listener);
        // every relay restarted, so each side was closed at least once, and resumed
        CHECK(fleet_chat::going_away(*c.seeker) >= 1);
        CHECK(fleet_chat::going_away(*c.listener) >= 1);
        CHECK(c.seeker_mm->resumed_state() == v1::IN_CHAT);
        closes_relay += fleet_chat::going_away(*c.seeker) + fleet_chat::going_away(*c.listener);
        lines += c.said_by_seeker.size() + c.said_by_listener.size();
    }
    auto& master = master_of(sc);
    for (auto& w : waiting) {
        CAPTURE(w.id);
        CHECK(w.mm->resumed_state() == v1::QUEUED);
        CHECK(master.cmd({"HGET", "wl:seeker:" + w.id, "state"}) == "queued");
        CHECK(master.cmd({"ZSCORE", "wl:q:grief:en", w.id}) == w.score);
        CHECK(master.cmd({"ZSCORE", "wl:gone", w.id}).empty());
    }
    for (auto* m : mm_clients) {
        for (const auto& p : m->problems()) FAIL_CHECK(p);
        CHECK(m->going_away() >= 1);  // every matchmaker restarted, so each client was closed at least once
        closes_mm += m->going_away();
    }
    auto bad = check_invariants(master);
    for (auto& b : bad) MESSAGE(b);
    CHECK(bad.empty());
    MESSAGE("rolling restart of 6 services: " << restarts_s << " s; " << lines << " lines relayed; 1001 closes: "
                                              << closes_mm << " matchmaker, " << closes_relay
                                              << " relay; whole test " << seconds_since(started) << " s");
}
