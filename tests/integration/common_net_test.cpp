// The server of common/net.hpp and the client of clients/ws_client.hpp over real loopback
// sockets: HTTP, echo, refusals (handler, Origin, capacity), the 1009 and 1013 close codes,
// on_close bookkeeping, graceful shutdown and TLS. The server runs on two io_context threads so
// that strand mistakes can show; the test thread drives it with the blocking client.
#include "common/net.hpp"
#include "clients/ws_client.hpp"
#include "tests/support/tls_cert.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <stdlib.h>

namespace net = warmline::net;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// How long a test waits for something that should happen at once; only reached on failure.
constexpr auto wait_limit = 5s;
const std::string loopback = "127.0.0.1";

// Echoes messages, answers HTTP with a description of the request it saw, refuses upgrades on
// /refuse, and counts opens and closes so tests can wait for them.
class test_handler : public net::handler {
public:
    std::atomic<std::size_t> flood_count{0};  // "flood" makes the handler send this many at once

    asio::awaitable<net::http_response> on_http(net::http_request req) override {
        net::http_response r;
        r.content_type = "text/plain";
        if (req.path == "/teapot") {
            r.status = 418;
            r.body = "short and stout";
            co_return r;
        }
        r.body = "method=" + req.method + " path=" + req.path + " remote=" + req.remote + " client=" + req.client +
                 " bucket=" + req.client_bucket;
        for (const auto& [k, v] : req.query) r.body += " q:" + k + "=" + v;
        if (auto it = req.headers.find("x-probe"); it != req.headers.end())
            r.body += " h:x-probe=" + it->second;
        if (!req.body.empty()) r.body += " body=" + req.body;
        co_return r;
    }

    asio::awaitable<std::optional<net::http_response>> on_upgrade(const net::http_request& req) override {
        if (req.path == "/refuse") {
            net::http_response r;
            r.status = 401;
            r.content_type = "text/plain";
            r.body = "no token";
            co_return r;
        }
        co_return std::nullopt;
    }

    void on_open(std::shared_ptr<net::connection> c) override {
        std::lock_guard lock(mu_);
        ++opened_;
        last_id_ = c->id();
        last_ = std::move(c);
        cv_.notify_all();
    }

    asio::awaitable<void> on_message(std::shared_ptr<net::connection> c, std::string data,
                                     bool binary) override {
        if (data == "flood") {
            // All sent before this coroutine yields: the queue fills faster than any socket.
            for (std::size_t i = 0; i < flood_count; ++i) c->send("flood " + std::to_string(i), false);
        } else if (data == "close-me") {
            c->send("bye", false);
            c->close(4000, "asked to");
        } else {
            c->send(std::move(data), binary);
        }
        co_return;
    }

    void on_close(std::shared_ptr<net::connection> c) override {
        std::lock_guard lock(mu_);
        ++closes_[c->id()];
        ++closed_;
        if (last_ == c) last_.reset();
        cv_.notify_all();
    }

    bool wait_opened(int n) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, wait_limit, [&] { return opened_ >= n; });
    }
    bool wait_closed(int n) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, wait_limit, [&] { return closed_ >= n; });
    }
    int opened() {
        std::lock_guard lock(mu_);
        return opened_;
    }
    int closed() {
        std::lock_guard lock(mu_);
        return closed_;
    }
    std::uint64_t last_id() {
        std::lock_guard lock(mu_);
        return last_id_;
    }
    std::map<std::uint64_t, int> closes() {
        std::lock_guard lock(mu_);
        return closes_;
    }
    // The most recently opened connection, while it is open.
    std::shared_ptr<net::connection> last() {
        std::lock_guard lock(mu_);
        return last_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    int opened_ = 0;
    int closed_ = 0;
    std::uint64_t last_id_ = 0;
    std::shared_ptr<net::connection> last_;
    std::map<std::uint64_t, int> closes_;
};

// A flag one thread sets and another waits for, shared so that a late setter is harmless.
class done_flag {
public:
    void set() {
        std::lock_guard lock(mu_);
        done_ = true;
        cv_.notify_all();
    }
    bool wait() {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, wait_limit, [&] { return done_; });
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
};

net::server_options test_options() {
    net::server_options o;
    o.port = 0;
    o.handshake_timeout = 2s;
    o.idle_timeout = 20s;
    return o;
}

// The server under test on port 0, run by two threads until the object goes away.
class test_server {
public:
    explicit test_server(net::server_options o = test_options()) : guard_(asio::make_work_guard(ioc_)) {
        server_ = std::make_unique<net::server>(ioc_, std::move(o), handler_);
        server_->start();
        for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
    }
    ~test_server() {
        shutdown(1s);
        guard_.reset();
        ioc_.stop();
        for (auto& t : threads_) t.join();
    }

    // Start a shutdown on the server's io_context; the flag is set when it returns.
    std::shared_ptr<done_flag> start_shutdown(std::chrono::milliseconds drain) {
        auto done = std::make_shared<done_flag>();
        asio::co_spawn(ioc_, server_->shutdown(drain), [done](std::exception_ptr) { done->set(); });
        return done;
    }
    bool shutdown(std::chrono::milliseconds drain) { return start_shutdown(drain)->wait(); }

    std::uint16_t port() const { return server_->port(); }
    net::server& server() { return *server_; }
    test_handler& handler() { return handler_; }

private:
    // Declared in this order so that the handler and the server go before the io_context.
    asio::io_context ioc_;
    test_handler handler_;
    std::unique_ptr<net::server> server_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    std::vector<std::thread> threads_;
};

// Read until the server closes; the close code it sent, or 0 if it never did.
std::uint16_t read_until_closed(net::ws_client& c, std::size_t max_messages = 1000) {
    for (std::size_t i = 0; i <= max_messages; ++i) {
        try {
            if (!c.read(wait_limit)) return 0;
        } catch (const std::runtime_error&) {
            return c.close_code();
        }
    }
    return 0;
}

struct temp_dir {
    std::string path;
    temp_dir() {
        char pattern[] = "/tmp/warmline-net-test-XXXXXX";
        const char* p = ::mkdtemp(pattern);
        REQUIRE(p != nullptr);
        path = p;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

}  // namespace

TEST_CASE("net server: an HTTP request gets the handler's status and body" * doctest::timeout(10)) {
    test_server s;
    auto r = net::http_request_blocking(loopback, s.port(), "GET", "/hello");
    CHECK(r.status == 200);
    CHECK(r.body.find("method=GET path=/hello") != std::string::npos);

    r = net::http_request_blocking(loopback, s.port(), "GET", "/teapot");
    CHECK(r.status == 418);
    CHECK(r.body == "short and stout");

    r = net::http_request_blocking(loopback, s.port(), "POST", "/submit", "payload");
    CHECK(r.status == 200);
    CHECK(r.body.find("method=POST path=/submit") != std::string::npos);
    CHECK(r.body.find("body=payload") != std::string::npos);
}

TEST_CASE("net server: the query is percent-decoded with '+' as a space, and header names are lower-cased" *
          doctest::timeout(10)) {
    test_server s;
    const auto r = net::http_request_blocking(loopback, s.port(), "GET",
                                              "/q?name=hello+world&path=%2Fa%20b&flag&bad=%zz&name=second",
                                              {}, {{"X-Probe", "Yes"}});
    REQUIRE(r.status == 200);
    CHECK(r.body.find("path=/q ") != std::string::npos);
    CHECK(r.body.find(" q:name=hello world") != std::string::npos);
    CHECK(r.body.find(" q:path=/a b") != std::string::npos);
    CHECK(r.body.find(" q:flag=") != std::string::npos);
    CHECK(r.body.find(" q:bad=%zz") != std::string::npos);
    CHECK(r.body.find("second") == std::string::npos);  // the first of a repeated key wins
    CHECK(r.body.find(" h:x-probe=Yes") != std::string::npos);
    CHECK(r.body.find("remote=127.0.0.1:") != std::string::npos);
}

TEST_CASE("net server: text and binary messages echo back with their type" * doctest::timeout(10)) {
    test_server s;
    net::ws_client c;
    c.connect(loopback, s.port(), "/ws");
    REQUIRE(s.handler().wait_opened(1));
    CHECK(s.server().connection_count() == 1);

    c.send_text("hello");
    auto m = c.read(wait_limit);
    REQUIRE(m);
    CHECK(m->data == "hello");
    CHECK_FALSE(m->binary);

    const std::string bytes("\x00\x01\xff\x7f", 4);
    c.send_binary(bytes);
    m = c.read(wait_limit);
    REQUIRE(m);
    CHECK(m->data == bytes);
    CHECK(m->binary);

    c.close();
    CHECK(s.handler().wait_closed(1));
    CHECK(s.handler().opened() == 1);
}

TEST_CASE("net server: send() from a thread outside the server arrives complete and in order" *
          doctest::timeout(10)) {
    test_server s;
    net::ws_client c;
    c.connect(loopback, s.port(), "/ws");
    REQUIRE(s.handler().wait_opened(1));
    const auto conn = s.handler().last();
    REQUIRE(conn);
    CHECK(conn->remote().rfind("127.0.0.1:", 0) == 0);
    CHECK(conn->upgrade_request().path == "/ws");
    // Two threads, neither of them the server's: each one's messages keep their order.
    std::thread other([&] {
        for (int i = 0; i < 100; ++i) conn->send("b" + std::to_string(i), false);
    });
    for (int i = 0; i < 100; ++i) conn->send("a" + std::to_string(i), false);
    other.join();
    int next_a = 0;
    int next_b = 0;
    for (int i = 0; i < 200; ++i) {
        const auto m = c.read(wait_limit);
        REQUIRE(m);
        if (m->data[0] == 'a')
            CHECK(m->data == "a" + std::to_string(next_a++));
        else
            CHECK(m->data == "b" + std::to_string(next_b++));
    }
    CHECK(next_a == 100);
    CHECK(next_b == 100);
}

TEST_CASE("ws_client: a read that times out leaves the stream usable for the next read" *
          doctest::timeout(10)) {
    test_server s;
    net::ws_client c;
    c.connect(loopback, s.port(), "/ws");
    CHECK_FALSE(c.read(20ms));
    CHECK_FALSE(c.read(20ms));
    c.send_text("still there?");
    const auto m = c.read(wait_limit);
    REQUIRE(m);
    CHECK(m->data == "still there?");
    CHECK(c.is_open());
}

TEST_CASE("net server: an upgrade the handler refuses reaches the client as that HTTP status" *
          doctest::timeout(10)) {
    test_server s;
    net::ws_client c;
    std::string what;
    try {
        c.connect(loopback, s.port(), "/refuse");
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    CHECK(c.refused_status() == 401);
    CHECK(what.find("401") != std::string::npos);
    CHECK(what.find("no token") != std::string::npos);
    CHECK_FALSE(c.is_open());
    CHECK(s.handler().opened() == 0);
}

TEST_CASE("net server: an Origin outside allowed_origins gets 403, an allowed one or none is let in" *
          doctest::timeout(10)) {
    auto o = test_options();
    o.allowed_origins = {"https://warmline.example"};
    test_server s(o);

    SUBCASE("a foreign origin is refused") {
        net::ws_client c;
        CHECK_THROWS_AS(c.connect(loopback, s.port(), "/ws", {{"Origin", "https://evil.example"}}),
                        std::runtime_error);
        CHECK(c.refused_status() == 403);
    }
    SUBCASE("the allowed origin is accepted") {
        net::ws_client c;
        c.connect(loopback, s.port(), "/ws", {{"Origin", "https://warmline.example"}});
        c.send_text("hi");
        const auto m = c.read(wait_limit);
        REQUIRE(m);
        CHECK(m->data == "hi");
    }
    SUBCASE("a client without an Origin header is accepted") {
        net::ws_client c;
        c.connect(loopback, s.port(), "/ws");
        CHECK(c.is_open());
    }
}

TEST_CASE("net server: upgrades beyond max_connections get 503" * doctest::timeout(10)) {
    auto o = test_options();
    o.max_connections = 1;
    test_server s(o);
    net::ws_client first;
    first.connect(loopback, s.port(), "/ws");
    net::ws_client second;
    CHECK_THROWS_AS(second.connect(loopback, s.port(), "/ws"), std::runtime_error);
    CHECK(second.refused_status() == 503);
    CHECK(first.is_open());
}

namespace {

// A raw loopback connection that writes `bytes` (a PROXY header and what follows) and returns
// all the server answers until it closes.
std::string raw_exchange(std::uint16_t port, const std::string& bytes) {
    asio::io_context ioc;
    asio::ip::tcp::socket socket(ioc);
    socket.connect({asio::ip::make_address(loopback), port});
    asio::write(socket, asio::buffer(bytes));
    std::string out;
    boost::system::error_code ec;
    char chunk[4096];
    for (;;) {
        const auto n = socket.read_some(asio::buffer(chunk), ec);
        if (ec) break;
        out.append(chunk, n);
    }
    return out;
}

const std::string plain_get = "GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

}  // namespace

TEST_CASE("net server: the client is the peer, or what a trusted proxy forwards in X-Forwarded-For" *
          doctest::timeout(10)) {
    SUBCASE("no proxies trusted: a forged header changes nothing") {
        test_server s;
        auto r = net::http_request_blocking(loopback, s.port(), "GET", "/who", {}, {{"X-Forwarded-For", "6.6.6.6"}});
        CHECK(r.body.find(" client=127.0.0.1 bucket=127.0.0.1") != std::string::npos);
    }
    SUBCASE("the loopback proxy trusted: the last untrusted entry, an IPv6 one counted by its /64") {
        auto o = test_options();
        o.trusted_proxies = {"127.0.0.0/8"};
        test_server s(o);
        auto r = net::http_request_blocking(loopback, s.port(), "GET", "/who", {},
                                            {{"X-Forwarded-For", "6.6.6.6, 2001:db8:1:2::77"}});
        CHECK(r.body.find(" client=2001:db8:1:2::77 bucket=2001:db8:1:2::/64") != std::string::npos);
    }
}

TEST_CASE("net server: with proxy_protocol the client is the PROXY header's source, v1 or v2, and a "
          "connection without one is closed" * doctest::timeout(10)) {
    auto o = test_options();
    o.trusted_proxies = {"127.0.0.1"};
    o.proxy_protocol = true;
    test_server s(o);
    auto r = raw_exchange(s.port(), "PROXY TCP4 203.0.113.9 10.0.0.1 40000 443\r\n" + plain_get);
    CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(r.find(" client=203.0.113.9 bucket=203.0.113.9") != std::string::npos);

    std::string v2("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
    v2 += std::string{'\xc6', '\x33', '\x64', '\x04', '\x7f', '\x00', '\x00', '\x01', '\x9c', '\x40', '\x01', '\xbb'};
    r = raw_exchange(s.port(), v2 + plain_get);
    CHECK(r.find(" client=198.51.100.4 ") != std::string::npos);

    // a health check's LOCAL header: the proxy itself
    r = raw_exchange(s.port(), std::string("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16) + plain_get);
    CHECK(r.find(" client=127.0.0.1 ") != std::string::npos);

    // no header: closed without an answer, and the server goes on
    CHECK(raw_exchange(s.port(), plain_get).empty());
    CHECK(raw_exchange(s.port(), "PROXY TCP4 nonsense\r\n" + plain_get).empty());
    r = raw_exchange(s.port(), "PROXY UNKNOWN\r\n" + plain_get);
    CHECK(r.find(" client=127.0.0.1 ") != std::string::npos);
}

TEST_CASE("net server: a peer that is not a trusted proxy may not send a PROXY header" * doctest::timeout(10)) {
    auto o = test_options();
    o.trusted_proxies = {"10.0.0.0/8"};
    o.proxy_protocol = true;
    test_server s(o);
    CHECK(raw_exchange(s.port(), "PROXY TCP4 203.0.113.9 10.0.0.1 40000 443\r\n" + plain_get).empty());
    auto bad = test_options();
    bad.proxy_protocol = true;  // and nobody to trust: refused at start
    asio::io_context ioc;
    test_handler h;
    net::server srv(ioc, bad, h);
    CHECK_THROWS_AS(srv.start(), std::invalid_argument);
}

TEST_CASE("net server: upgrades beyond max_connections_per_address from one address get 429; other addresses "
          "and a freed slot are let in" * doctest::timeout(10)) {
    auto o = test_options();
    o.max_connections_per_address = 2;
    o.trusted_proxies = {"127.0.0.1"};
    test_server s(o);
    const std::map<std::string, std::string> from_a{{"X-Forwarded-For", "203.0.113.9"}};
    const std::map<std::string, std::string> from_a_v6{{"X-Forwarded-For", "2001:db8:5:5::1"}};
    const std::map<std::string, std::string> same_64{{"X-Forwarded-For", "2001:db8:5:5::2"}};
    net::ws_client a1, a2, a3;
    a1.connect(loopback, s.port(), "/ws", from_a);
    a2.connect(loopback, s.port(), "/ws", from_a);
    CHECK_THROWS_AS(a3.connect(loopback, s.port(), "/ws", from_a), std::runtime_error);
    CHECK(a3.refused_status() == 429);
    // another address has its own two
    net::ws_client b1, b2, b3;
    b1.connect(loopback, s.port(), "/ws", from_a_v6);
    b2.connect(loopback, s.port(), "/ws", same_64);
    CHECK_THROWS_AS(b3.connect(loopback, s.port(), "/ws", from_a_v6), std::runtime_error);  // one /64
    CHECK(b3.refused_status() == 429);
    // a closed connection gives its slot back
    a1.close();
    REQUIRE(s.handler().wait_closed(1));
    // the slot is released just after on_close, on the session's strand
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    while (s.server().connection_count() > 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(s.server().connection_count() == 3);
    net::ws_client again;
    again.connect(loopback, s.port(), "/ws", from_a);
    CHECK(again.is_open());
}

TEST_CASE("net server: a frame over read_message_max closes with 1009" * doctest::timeout(10)) {
    auto o = test_options();
    o.read_message_max = 1024;
    test_server s(o);
    net::ws_client c;
    c.connect(loopback, s.port(), "/ws");
    c.send_text(std::string(1024, 'a'));  // at the limit: still fine
    REQUIRE(c.read(wait_limit));
    c.send_text(std::string(4000, 'x'));
    CHECK(read_until_closed(c) == 1009);
    CHECK(s.handler().wait_closed(1));
}

TEST_CASE("net server: a consumer that overflows write_queue_max is closed with 1013" *
          doctest::timeout(10)) {
    auto o = test_options();
    o.write_queue_max = 4;
    test_server s(o);
    s.handler().flood_count = o.write_queue_max + 10;
    net::ws_client c;
    c.connect(loopback, s.port(), "/ws");
    c.send_text("flood");
    // The client does not read while the handler floods; at most the queue's worth arrives.
    CHECK(read_until_closed(c, o.write_queue_max) == 1013);
    CHECK(s.handler().wait_closed(1));

    // 1013 means "come back": the server takes the client again.
    net::ws_client again;
    again.connect(loopback, s.port(), "/ws");
    again.send_text("back");
    const auto m = again.read(wait_limit);
    REQUIRE(m);
    CHECK(m->data == "back");
}

TEST_CASE("net server: a handler's close() sends what it queued first, then its close code" *
          doctest::timeout(10)) {
    test_server s;
    net::ws_client c;
    c.connect(loopback, s.port(), "/ws");
    c.send_text("close-me");
    const auto m = c.read(wait_limit);
    REQUIRE(m);
    CHECK(m->data == "bye");
    CHECK(read_until_closed(c) == 4000);
    CHECK(s.handler().wait_closed(1));
}

TEST_CASE("net server: on_close runs exactly once when the client vanishes without a close frame" *
          doctest::timeout(10)) {
    test_server s;
    net::ws_client c;
    c.connect(loopback, s.port(), "/ws");
    REQUIRE(s.handler().wait_opened(1));
    const auto id = s.handler().last_id();
    c.abort();
    CHECK_FALSE(c.is_open());
    REQUIRE(s.handler().wait_closed(1));
    // Shutdown would run any second on_close that was still coming; once it has drained there
    // can be none.
    CHECK(s.shutdown(1s));
    CHECK(s.server().connection_count() == 0);
    const auto closes = s.handler().closes();
    CHECK(closes.size() == 1);
    CHECK(closes.at(id) == 1);
}

TEST_CASE("net server: shutdown() closes every WebSocket with 1001 and returns once they are gone" *
          doctest::timeout(10)) {
    test_server s;
    net::ws_client a;
    net::ws_client b;
    a.connect(loopback, s.port(), "/ws");
    b.connect(loopback, s.port(), "/ws");
    REQUIRE(s.handler().wait_opened(2));
    CHECK(s.server().connection_count() == 2);

    const auto done = s.start_shutdown(3s);
    CHECK(read_until_closed(a) == 1001);
    CHECK(read_until_closed(b) == 1001);
    CHECK(done->wait());
    CHECK(s.server().connection_count() == 0);
    CHECK(s.handler().closed() == 2);

    // The listener is closed too.
    net::ws_client late;
    CHECK_THROWS_AS(late.connect(loopback, s.port(), "/ws", {}, 1s), std::runtime_error);
}

TEST_CASE("net server: a public port hides /metrics and /readyz's details; an internal one takes no WebSocket" *
          doctest::timeout(10)) {
    auto o = test_options();
    o.internal_endpoints = false;
    test_server outside(o);
    CHECK(net::http_request_blocking(loopback, outside.port(), "GET", "/metrics").status == 404);
    const auto ready = net::http_request_blocking(loopback, outside.port(), "GET", "/readyz");
    CHECK(ready.status == 200);
    CHECK(ready.body == R"({"status":"ready"})");  // the handler's own body said more
    CHECK(net::http_request_blocking(loopback, outside.port(), "GET", "/other").body.find("path=/other") !=
          std::string::npos);
    // draining is a status, not a detail: said on the public port too
    outside.server().start_draining();
    const auto draining = net::http_request_blocking(loopback, outside.port(), "GET", "/readyz");
    CHECK(draining.status == 503);
    CHECK(draining.body == R"({"status":"draining"})");

    auto i = test_options();
    i.websockets = false;
    test_server inside(i);
    CHECK(net::http_request_blocking(loopback, inside.port(), "GET", "/metrics").body.find("path=/metrics") !=
          std::string::npos);
    net::ws_client ws;
    CHECK_THROWS_AS(ws.connect(loopback, inside.port(), "/ws"), std::runtime_error);
    CHECK(ws.refused_status() == 404);
}

TEST_CASE("net server: while draining, /readyz is 503 \"draining\" and everything else goes on as before" *
          doctest::timeout(10)) {
    test_server s;
    net::ws_client open_before;
    open_before.connect(loopback, s.port(), "/ws");
    REQUIRE(s.handler().wait_opened(1));
    // the handler's own answer until then
    CHECK(net::http_request_blocking(loopback, s.port(), "GET", "/readyz").status == 200);

    s.server().start_draining();
    CHECK(s.server().draining());
    const auto ready = net::http_request_blocking(loopback, s.port(), "GET", "/readyz");
    CHECK(ready.status == 503);
    CHECK(ready.body == R"({"status":"draining"})");
    // other requests, open WebSockets and new ones are served: only the balancer is told
    CHECK(net::http_request_blocking(loopback, s.port(), "GET", "/healthz").body.find("path=/healthz") !=
          std::string::npos);
    open_before.send_text("still here");
    CHECK(open_before.read(wait_limit)->data == "still here");
    net::ws_client opened_while_draining;
    opened_while_draining.connect(loopback, s.port(), "/ws");
    opened_while_draining.send_text("new");
    CHECK(opened_while_draining.read(wait_limit)->data == "new");

    // the shutdown that follows closes them all with 1001, as without a drain
    const auto done = s.start_shutdown(3s);
    CHECK(read_until_closed(open_before) == 1001);
    CHECK(read_until_closed(opened_while_draining) == 1001);
    CHECK(done->wait());
}

TEST_CASE("net server: a WebSocket over TLS with a self-signed certificate echoes" * doctest::timeout(10)) {
    temp_dir dir;
    const auto [cert, key] = warmline::test::make_test_certificate(dir.path);

    auto o = test_options();
    o.tls_cert_file = cert;
    o.tls_key_file = key;
    test_server s(o);

    net::ws_client c;
    c.connect_tls(loopback, s.port(), "/ws", cert);
    c.send_text("over tls");
    const auto m = c.read(wait_limit);
    REQUIRE(m);
    CHECK(m->data == "over tls");
    c.close();
    CHECK(s.handler().wait_closed(1));

    // A plain client cannot talk to the TLS port.
    net::ws_client plain;
    CHECK_THROWS_AS(plain.connect(loopback, s.port(), "/ws", {}, 2s), std::runtime_error);
}

TEST_CASE("ws_client: TLS is verified by default: an unknown CA or another name is refused, --insecure is explicit" *
          doctest::timeout(10)) {
    temp_dir dir;
    const auto [cert, key] = warmline::test::make_test_certificate(dir.path);
    auto o = test_options();
    o.address = "0.0.0.0";  // reachable as 127.0.0.2 too, a name the certificate does not carry
    o.tls_cert_file = cert;
    o.tls_key_file = key;
    test_server s(o);

    // the system's trust store does not know our self-signed certificate
    net::ws_client by_default;
    CHECK_THROWS_AS(by_default.connect_tls(loopback, s.port(), "/ws", {}), std::runtime_error);
    // the right CA, but a host name the certificate does not carry
    net::ws_client wrong_name;
    CHECK_THROWS_AS(wrong_name.connect_tls("127.0.0.2", s.port(), "/ws", cert), std::runtime_error);
    net::ws_client right;
    right.connect_tls(loopback, s.port(), "/ws", cert);
    CHECK(right.is_open());
    // asked for: nothing is checked
    net::ws_client::tls_trust insecure;
    insecure.insecure = true;
    net::ws_client anything;
    anything.connect_tls(loopback, s.port(), "/ws", insecure);
    CHECK(anything.is_open());
}

TEST_CASE("net server: half a TLS configuration is refused at start" * doctest::timeout(10)) {
    asio::io_context ioc;
    test_handler h;
    auto o = test_options();
    o.tls_cert_file = "/nonexistent/cert.pem";
    net::server srv(ioc, o, h);
    CHECK_THROWS_AS(srv.start(), std::invalid_argument);
}
