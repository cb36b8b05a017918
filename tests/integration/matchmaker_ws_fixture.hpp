// A matchmaker running in this process on a background thread, against a real redis-server,
// reached over real WebSockets with the blocking test client, speaking JSON.
#pragma once

#include "tests/integration/matchmaker_fixture.hpp"

#include "common/codec.hpp"
#include "common/net.hpp"
#include "clients/ws_client.hpp"
#include "services/matchmaker/service.hpp"
#include "tests/support/pending_reader.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <deque>
#include <future>
#include <functional>
#include <map>
#include <thread>

namespace warmline::test {

struct running_matchmaker {
    boost::asio::io_context ioc{1};
    std::shared_ptr<redis::client> redis;
    std::shared_ptr<redis::subscriber> events;
    std::shared_ptr<matchmaker::service> svc;
    std::unique_ptr<net::server> server;
    std::thread thread;

    // `now`: the service's clock (tests that need time to pass move a clock of their own).
    running_matchmaker(const std::string& redis_url, matchmaker::service_settings s, net::server_options so = {},
                       warmline::clock_fn now = warmline::system_now_ms) {
        redis::client_options o;
        o.where = redis::endpoint::parse(redis_url);
        redis = redis::client::create(ioc.get_executor(), o);
        events = redis::subscriber::create(ioc.get_executor(), o);
        // with acks, as the binary does: the WAITed writes over a connection of their own
        std::shared_ptr<redis::client> promises;
        if (s.ack_replicas > 0) promises = redis::client::create(ioc.get_executor(), o);
        svc = std::make_shared<matchmaker::service>(ioc, s, catalogue::load_file(WARMLINE_SOURCE_DIR "/deploy/catalogue.json"),
                                                    redis, events, std::move(now), promises);
        server = std::make_unique<net::server>(ioc, so, *svc);
        redis->start();
        events->start();
        svc->start();
        server->start();
        // ready once Redis is connected and the events channel subscribed, so no push is missed
        run_sync(ioc, redis->wait_connected(std::chrono::seconds(5)));
        run_sync(ioc, events->wait_subscribed(std::chrono::seconds(5)));
        if (promises) run_sync(ioc, promises->wait_connected(std::chrono::seconds(5)));
        thread = std::thread([this] { ioc.run(); });
    }
    ~running_matchmaker() {
        boost::asio::post(ioc, [this] {
            svc->stop();
            events->stop();
            redis->stop();
        });
        auto f = boost::asio::co_spawn(ioc, server->shutdown(std::chrono::milliseconds(500)), boost::asio::use_future);
        f.wait_for(std::chrono::seconds(3));
        ioc.stop();
        thread.join();
    }
    std::uint16_t port() const { return server->port(); }
    // Run a coroutine on the service's thread and wait for it (e.g. svc->sample_history()).
    template <class T>
    T call(boost::asio::awaitable<T> a, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        auto f = boost::asio::co_spawn(ioc, std::move(a), boost::asio::use_future);
        if (f.wait_for(limit) != std::future_status::ready) throw std::runtime_error("the service did not answer in time");
        return f.get();
    }
};

// A clock tests move by hand, readable from the service's thread.
struct manual_clock {
    std::shared_ptr<std::atomic<std::int64_t>> ms = std::make_shared<std::atomic<std::int64_t>>(1'800'000'000'000);
    warmline::clock_fn fn() const {
        return [ms = ms] { return ms->load(); };
    }
    void set(std::int64_t v) { ms->store(v); }
    void advance(std::int64_t by) { ms->fetch_add(by); }
    std::int64_t now() const { return ms->load(); }
};

// Settings for a service on a manual clock: nothing expires on its own when the test moves the
// clock by minutes or hours (the node lease, the grace period, offers), and the token bucket,
// which refills by that clock, is large enough for a whole test.
inline matchmaker::service_settings manual_clock_settings(matchmaker::service_settings s) {
    s.store.node_lease_ms = 7LL * 24 * 3600 * 1000;
    s.store.grace_ms = 7LL * 24 * 3600 * 1000;
    s.store.offer_timeout_ms = 7LL * 24 * 3600 * 1000;
    s.store.state_ttl_s = 7 * 24 * 3600;
    s.rate_burst = 100000;
    return s;
}

inline matchmaker::service_settings fast_settings() {
    matchmaker::service_settings s;
    s.ticket_secret = "test-secret-test-secret-test-secret!";
    s.sweep_interval = std::chrono::milliseconds(20);
    s.position_interval = std::chrono::milliseconds(30);
    s.stats_interval = std::chrono::milliseconds(50);
    // generous, so a loaded CI machine under ASan never misses an offer or a resume by accident;
    // tests about timeouts shorten them explicitly
    s.store.offer_timeout_ms = 10000;
    s.store.grace_ms = 10000;
    s.store.node_lease_ms = 600;
    return s;
}

// Read whatever comes until the server closes the connection: its close code, or 0 if it is
// still open after `limit`.
inline std::uint16_t close_code_within(net::ws_client& ws, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    try {
        while (std::chrono::steady_clock::now() < deadline) ws.read(std::chrono::milliseconds(100));
    } catch (const std::exception&) {
        return ws.close_code();
    }
    return 0;
}

// One WebSocket client speaking the JSON protocol.
struct peer {
    net::ws_client ws;
    int n = 0;
    std::deque<v1::ServerMessage> pending;

    // headers: of the upgrade, e.g. X-Forwarded-For for a matchmaker that trusts 127.0.0.1
    explicit peer(std::uint16_t port, const std::map<std::string, std::string>& headers = {}) {
        ws.connect("127.0.0.1", port, "/v1/ws", headers);
    }

    std::string send(const std::string& body) {
        std::string id = "r" + std::to_string(++n);
        ws.send_text(R"({"requestId":")" + id + "\"," + body + "}");
        return id;
    }
    // The first message (received earlier and not yet taken, or arriving now) that satisfies
    // `pred`; messages it passes over stay for later calls. Fails the test on timeout.
    v1::ServerMessage until(const std::function<bool(const v1::ServerMessage&)>& pred,
                            std::chrono::milliseconds limit = std::chrono::seconds(3)) {
        auto decode = [](const net::ws_message& f, v1::ServerMessage& m) {
            std::string err;
            REQUIRE_MESSAGE(codec::decode(f.data, f.binary ? codec::format::binary : codec::format::json, m, err), err);
        };
        return take_first<v1::ServerMessage>(pending, ws, decode, pred, limit);
    }
    v1::ServerMessage reply(const std::string& id) {
        return until([&](const v1::ServerMessage& m) { return m.request_id() == id; });
    }
    v1::ServerMessage call(const std::string& body) { return reply(send(body)); }
};

}  // namespace warmline::test
