// Safe defaults of the binaries as an operator starts them: a matchmaker or relay will not start
// without an Origin allowlist unless --dev; /metrics and /readyz's details stay off the main port
// and are served on --internal-listen; the web app sends HSTS and has /metrics there too.
#include "common/net.hpp"
#include "clients/ws_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_server.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace warmline;
using namespace warmline::test;

namespace {

const std::string secret = "defaults-secret-defaults-secret-defaults!";

std::uint16_t port_of(const std::string& url_rest) {  // "127.0.0.1:1234/..." or "127.0.0.1:1234"
    const auto colon = url_rest.rfind(':');
    return static_cast<std::uint16_t>(std::stoi(url_rest.substr(colon + 1)));
}

std::string slurp(const std::string& file) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// GET `path` until it answers `status` (a service reaching Redis, or finding it gone), at most 10 s.
net::http_result until_status(std::uint16_t port, const std::string& path, unsigned status) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    net::http_result r;
    for (;;) {
        r = net::http_request_blocking("127.0.0.1", port, "GET", path);
        if (r.status == status || std::chrono::steady_clock::now() > deadline) return r;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition
    }
}

std::vector<std::string> service(const std::string& binary, const redis_server& redis, std::vector<std::string> extra) {
    std::vector<std::string> argv{WARMLINE_BINARY_DIR + binary, "--listen=127.0.0.1:0", "--redis-url=" + redis.url(),
                                  "--ticket-secret=" + secret};
    if (binary.find("matchmaker") != std::string::npos)
        argv.push_back("--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json");
    for (auto& e : extra) argv.push_back(std::move(e));
    return argv;
}

}  // namespace

TEST_CASE("defaults: a matchmaker or relay without --allowed-origins refuses to start unless --dev" *
          doctest::timeout(60)) {
    redis_server redis;
    for (const std::string binary : {"/services/matchmaker/matchmaker", "/services/relay/relay"}) {
        CAPTURE(binary);
        const std::string err = redis.dir() + "/refused.err";
        child_process refused(service(binary, redis, {}), err);
        const int status = refused.wait(std::chrono::seconds(20));
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 2);
        CHECK(slurp(err).find("--allowed-origins is required") != std::string::npos);

        child_process dev(service(binary, redis, {"--dev=true"}), redis.dir() + "/dev.err");
        CHECK(dev.ready_port() > 0);
        child_process allowed(service(binary, redis, {"--allowed-origins=https://warmline.example.org"}),
                              redis.dir() + "/allowed.err");
        CHECK(allowed.ready_port() > 0);
    }
}

TEST_CASE("defaults: /metrics and /readyz's details are on the internal listener only" * doctest::timeout(60)) {
    redis_server redis;
    for (const std::string binary : {"/services/matchmaker/matchmaker", "/services/relay/relay"}) {
        CAPTURE(binary);
        child_process p(service(binary, redis,
                                {"--allowed-origins=https://warmline.example.org", "--internal-listen=127.0.0.1:0"}),
                        redis.dir() + "/internal.err");
        const auto inside = port_of(p.wait_for("INTERNAL http://", std::chrono::seconds(20)));
        const auto outside = p.ready_port(std::chrono::seconds(20));
        // ready once Redis is reached: the public answer is the status alone
        const auto ready = until_status(outside, "/readyz", 200);
        REQUIRE(ready.status == 200);
        CHECK(ready.body == R"({"status":"ready"})");
        CHECK(net::http_request_blocking("127.0.0.1", outside, "GET", "/metrics").status == 404);
        CHECK(net::http_request_blocking("127.0.0.1", outside, "GET", "/healthz").status == 200);

        const auto metrics = net::http_request_blocking("127.0.0.1", inside, "GET", "/metrics");
        CHECK(metrics.status == 200);
        CHECK(metrics.body.find("warmline_") != std::string::npos);
        CHECK(net::http_request_blocking("127.0.0.1", inside, "GET", "/readyz").status == 200);
        // no WebSocket inside
        net::ws_client ws;
        CHECK_THROWS(ws.connect("127.0.0.1", inside, binary.find("relay") != std::string::npos ? "/v1/relay" : "/v1/ws"));
        CHECK(ws.refused_status() == 404);

        // with Redis gone the public /readyz says "not ready" and nothing of why; inside says why
        redis.kill();
        const auto down = until_status(outside, "/readyz", 503);
        REQUIRE(down.status == 503);
        CHECK(down.body == R"({"status":"not ready"})");
        CHECK(net::http_request_blocking("127.0.0.1", inside, "GET", "/readyz").body.find("redis") != std::string::npos);
        redis.restart();
    }
}

TEST_CASE("defaults: the web app sends HSTS, and its /metrics is on the internal listener" * doctest::timeout(60)) {
    redis_server redis;  // only for a folder
    child_process web({WARMLINE_BINARY_DIR "/services/web/warmline-web", "--listen=127.0.0.1:0",
                       "--internal-listen=127.0.0.1:0", "--root=" WARMLINE_SOURCE_DIR "/services/web/static",
                       "--catalogue=" WARMLINE_SOURCE_DIR "/deploy/catalogue.json"},
                      redis.dir() + "/web.err");
    const auto inside = port_of(web.wait_for("INTERNAL http://", std::chrono::seconds(20)));
    const auto outside = web.ready_port(std::chrono::seconds(20));
    const auto page = net::http_request_blocking("127.0.0.1", outside, "GET", "/");
    CHECK(page.status == 200);
    CHECK(page.headers.count("strict-transport-security") == 1);
    CHECK(net::http_request_blocking("127.0.0.1", outside, "GET", "/metrics").status == 404);
    const auto metrics = net::http_request_blocking("127.0.0.1", inside, "GET", "/metrics");
    CHECK(metrics.status == 200);
    CHECK(metrics.body.find("warmline_web_requests_total{code=\"2xx\"}") != std::string::npos);
    CHECK(net::http_request_blocking("127.0.0.1", inside, "GET", "/readyz").status == 200);
}
