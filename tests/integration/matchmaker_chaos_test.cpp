// The invariants under a randomized concurrent run: two matchmaker processes share one Redis,
// seekers and listeners act at random on either, and one process is killed with SIGKILL in the
// middle and restarted. Clients reconnect, find their state, and Redis stays consistent.
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"
#include "tests/support/process.hpp"

#include <signal.h>

#include <random>

using namespace warmline;
using namespace warmline::test;

namespace {

std::unique_ptr<child_process> start_matchmaker(const std::string& redis_url, const std::string& log) {
    std::vector<std::string> argv{
        WARMLINE_BINARY_DIR "/services/matchmaker/matchmaker",
        "--listen=127.0.0.1:0",
        "--dev=true",
        "--redis-url=" + redis_url,
        "--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json",
        "--ticket-secret=chaos-secret-chaos-secret-chaos-secret",
        "--offer-timeout-ms=400",
        "--grace-ms=2000",
        "--node-lease-ms=500",
        "--sweep-interval-ms=20",
        "--position-interval-ms=100",
        "--log-level=warn",
        // 18 seekers on loopback make hundreds of requests a minute: one address to the limits
        "--requests-per-address-per-min=0",
        "--crisis-per-address-per-hour=0",
    };
    return std::make_unique<child_process>(argv, log);
}


struct actor {
    bool seeker = true;
    std::string credential;  // listener token, or seeker resume token once known
    std::unique_ptr<net::ws_client> ws;
    int next = 0;
    std::vector<std::string> offers, sessions, ended_sessions;
    std::string seeker_id;

    std::string send(const std::string& body) {
        std::string id = "r" + std::to_string(++next);
        ws->send_text(R"({"requestId":")" + id + "\"," + body + "}");
        return id;
    }
};

}  // namespace

TEST_CASE("matchmaker chaos: invariants hold across two processes and a SIGKILL" * doctest::timeout(120)) {
    matchmaker_fixture f;
    std::mt19937 rng(20261125);
    std::string log = f.server.dir() + "/matchmakers.log";
    std::unique_ptr<child_process> procs[2] = {start_matchmaker(f.server.url(), log),
                                               start_matchmaker(f.server.url(), log)};
    std::uint16_t ports[2] = {procs[0]->ready_port(), procs[1]->ready_port()};

    const std::vector<std::string> topics{"anxiety", "grief"}, langs{"en", "es"};
    std::vector<actor> actors(24);
    for (std::size_t i = 0; i < actors.size(); ++i) {
        actors[i].seeker = i >= 6;
        if (!actors[i].seeker)
            actors[i].credential = f.listener(topics, langs, 1 + static_cast<int>(i % 3), false).token;
    }

    auto connect = [&](actor& a) {
        a.ws = std::make_unique<net::ws_client>();
        a.ws->connect("127.0.0.1", ports[rng() % 2], "/v1/ws");
        if (a.seeker) a.send(R"("seekerHello":{"resumeToken":")" + a.credential + "\"}");
        else a.send(R"("listenerSignIn":{"token":")" + a.credential + "\"}");
    };
    for (auto& a : actors) connect(a);

    // read what has arrived for one actor, remembering offers, chats and the seeker's token
    int resumed_in_state = 0;
    auto drain = [&](actor& a) {
        try {
            while (auto m = a.ws->read(std::chrono::milliseconds(1))) {
                v1::ServerMessage s;
                std::string err;
                REQUIRE(codec::decode(m->data, codec::format::json, s, err));
                if (s.has_seeker_welcome()) {
                    if (!s.seeker_welcome().seeker_id().empty()) {
                        if (s.seeker_welcome().resumed()) {
                            // the state the seeker is told is the state Redis holds
                            CHECK(s.seeker_welcome().seeker_id() == a.seeker_id);
                            ++resumed_in_state;
                        }
                        a.seeker_id = s.seeker_welcome().seeker_id();
                        a.credential = s.seeker_welcome().resume_token();
                    }
                } else if (s.has_offer()) {
                    a.offers.push_back(s.offer().offer_id());
                } else if (s.has_chat_started()) {
                    a.sessions.push_back(s.chat_started().session_id());
                } else if (s.has_listener_welcome()) {
                    for (auto& o : s.listener_welcome().open_offers()) a.offers.push_back(o.offer_id());
                    for (auto& c : s.listener_welcome().open_chats()) a.sessions.push_back(c.session_id());
                }
            }
        } catch (const std::exception&) {
            connect(a);  // the process died or closed us: reconnect to either and resume
        }
    };
    auto pick = [&](std::vector<std::string>& xs) -> std::string {
        if (xs.empty()) return "none";
        auto i = rng() % xs.size();
        std::string x = xs[i];
        xs.erase(xs.begin() + static_cast<long>(i));
        return x;
    };

    for (int step = 0; step < 240; ++step) {
        if (step == 120) {
            // kill one process mid-run and start a replacement on a new port
            int victim = static_cast<int>(rng() % 2);
            procs[victim]->signal(SIGKILL);
            procs[victim]->wait(std::chrono::seconds(5));
            procs[victim] = start_matchmaker(f.server.url(), log);
            ports[victim] = procs[victim]->ready_port();
        }
        for (int k = 0; k < 4; ++k) {
            actor& a = actors[rng() % actors.size()];
            int r = static_cast<int>(rng() % 10);
            try {
            if (a.seeker) {
                if (r < 5) a.send(R"("requestChat":{"topic":")" + topics[rng() % 2] + R"(","language":")" + langs[rng() % 2] +
                                  R"(","crisis":)" + (rng() % 5 == 0 ? "true" : "false") + "}");
                else if (r < 7) a.send(R"("cancelRequest":{})");
                else if (r < 9) a.send(R"("endChat":{"sessionId":")" + pick(a.sessions) + "\"}");
                else a.ws->abort();  // a phone dropping off Wi-Fi
            } else {
                if (r < 3) a.send(R"("setAvailability":{"available":true})");
                else if (r < 4) a.send(R"("setAvailability":{"available":false})");
                else if (r < 7) a.send(R"("acceptOffer":{"offerId":")" + pick(a.offers) + "\"}");
                else if (r < 8) a.send(R"("declineOffer":{"offerId":")" + pick(a.offers) + "\"}");
                else a.send(R"("endChat":{"sessionId":")" + pick(a.sessions) + "\"}");
            }
            } catch (const std::exception&) {
                connect(a);  // its process died under it
            }
        }
        for (auto& a : actors) drain(a);
        if (step % 20 == 19) {
            auto bad = check_invariants(f.server);
            for (auto& b : bad) MESSAGE("step " << step << ": " << b);
            REQUIRE(bad.empty());
        }
    }
    // the run did real work: chats were made and seekers resumed
    CHECK(std::stoi("0" + f.server.cmd({"HGET", "wl:stats:anxiety:en", "accepted"})) +
              std::stoi("0" + f.server.cmd({"HGET", "wl:stats:grief:es", "accepted"})) +
              std::stoi("0" + f.server.cmd({"HGET", "wl:stats:anxiety:es", "accepted"})) +
              std::stoi("0" + f.server.cmd({"HGET", "wl:stats:grief:en", "accepted"})) >
          0);
    CHECK(resumed_in_state > 0);
    REQUIRE(check_invariants(f.server).empty());
}
