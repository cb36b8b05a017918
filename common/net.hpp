// The network front of every service: one Beast listener per port that serves plain HTTP
// (health, metrics, JSON APIs) and WebSocket upgrades, optionally over TLS. Each connection is a
// C++20 coroutine on its own strand with a reader and a writer; the writer drains a bounded
// queue so at most one async_write is in flight. Timeouts, read_message_max, keep-alive pings,
// an Origin allowlist and graceful shutdown are configured here, once, for every service.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace warmline::net {

struct server_options {
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;                      // 0: any free port; see server::port()
    std::size_t read_message_max = 64 * 1024;    // bytes; larger frames close with 1009
    std::size_t write_queue_max = 256;           // messages; overflow closes with 1013
    std::chrono::milliseconds handshake_timeout{10000};
    std::chrono::milliseconds idle_timeout{60000};  // a ping is sent at half of it
    std::vector<std::string> allowed_origins;    // empty: any Origin; "*" in the list: any
    std::string tls_cert_file;                   // both set: TLS on this port
    std::string tls_key_file;
    std::size_t max_connections = 200000;        // beyond it: HTTP 503 before the upgrade
    // WebSockets open at once from one client address bucket (an IPv4 address, an IPv6 /64;
    // common/client_address.hpp); beyond it HTTP 429 before the upgrade. 0: no limit.
    std::size_t max_connections_per_address = 0;
    // Addresses or blocks ("10.0.0.0/8") of the proxies in front: only their X-Forwarded-For, or
    // their PROXY header, is believed. Empty: every peer is the client.
    std::vector<std::string> trusted_proxies;
    // Every connection starts with a PROXY protocol header (v1 or v2, as HAProxy's send-proxy
    // writes), from a trusted proxy; a connection from anyone else, or without one, is closed.
    bool proxy_protocol = false;
    // /metrics and the details of /readyz (which connection is down, ...) are served here; when
    // false this server answers /metrics with 404 and /readyz with its status alone, so that a
    // public port shows nothing of the inside (they are then on an internal listener).
    bool internal_endpoints = true;
    // false: every WebSocket upgrade gets 404 (an internal listener is plain HTTP).
    bool websockets = true;
    // Not the server's own: how long stop_on_signal (common/service_main) lets /readyz say
    // "draining" before shutdown() closes the connections, so a load balancer stops sending here.
    std::chrono::milliseconds drain_delay{0};
};

struct http_request {
    std::string method;
    std::string target;                          // path and query, as sent
    std::string path;                            // target without the query
    std::map<std::string, std::string> query;    // decoded query parameters
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
    std::string remote;                          // peer address, "ip:port"
    // The client's address (the peer's, or the one a trusted proxy forwarded) and the bucket
    // per-address limits count it in: "a.b.c.d", or an IPv6 "x:x:x:x::/64".
    std::string client;
    std::string client_bucket;
};

struct http_response {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::map<std::string, std::string> headers;
};

// One open WebSocket. Safe to use from any thread; methods post to the connection's strand.
class connection {
public:
    virtual ~connection() = default;
    // Queue a message. If the queue already holds write_queue_max messages the connection is
    // closed with 1013 ("try again later": the client resumes) and the message is dropped.
    virtual void send(std::string data, bool binary) = 0;
    // Send a close frame with this code and reason, then end the connection.
    virtual void close(std::uint16_t code, std::string reason) = 0;
    virtual std::uint64_t id() const = 0;
    virtual const std::string& remote() const = 0;
    virtual const http_request& upgrade_request() const = 0;
    // Completes once fewer than `n` messages wait to be written (or the connection ended): a
    // producer of many messages, such as a catch-up from a log, keeps pace with a slow client
    // this way instead of overflowing its queue.
    virtual boost::asio::awaitable<void> queue_below(std::size_t n) = 0;
};

// What a service plugs into the server. Called on the connection's strand.
class handler {
public:
    virtual ~handler() = default;
    // A plain HTTP request (not an upgrade).
    virtual boost::asio::awaitable<http_response> on_http(http_request req) = 0;
    // Before a WebSocket upgrade: return a response to refuse it (e.g. 401, 404), or nullopt.
    virtual boost::asio::awaitable<std::optional<http_response>> on_upgrade(const http_request& req) = 0;
    virtual void on_open(std::shared_ptr<connection> c) = 0;
    // Awaited by the connection's reader: the next frame is read only after this returns.
    virtual boost::asio::awaitable<void> on_message(std::shared_ptr<connection> c, std::string data,
                                                    bool binary) = 0;
    // Exactly once per opened connection, however it ended.
    virtual void on_close(std::shared_ptr<connection> c) = 0;
};

// After `timeout`, close `c` with 1008 and `reason` if it is still open and `still_waiting()`
// says so; `still_waiting` runs on an io_context thread and must hold its state weakly (a
// pending deadline must not keep a stopped service alive). For sign-in deadlines: until then an
// anonymous socket costs a slot and a descriptor.
void close_unless_in_time(boost::asio::io_context& ioc, const std::shared_ptr<connection>& c,
                          std::chrono::milliseconds timeout, std::function<bool(const connection&)> still_waiting,
                          std::string reason);

class server {
public:
    server(boost::asio::io_context& ioc, server_options opts, handler& h);
    ~server();
    // Bind and listen (throws std::system_error with the address on failure), then accept.
    void start();
    std::uint16_t port() const;
    std::size_t connection_count() const;
    // From now on the server answers GET /readyz itself with 503 {"status":"draining"}, whatever
    // the handler would say; everything else (accepting, serving, open WebSockets) goes on. A load
    // balancer that checks /readyz stops sending new clients here before shutdown() closes the
    // connections, so the clients that reconnect are sent elsewhere. Any thread; cannot be undone.
    void start_draining();
    bool draining() const;
    // Stop accepting, close every WebSocket with 1001 (going away), wait up to `drain` for them.
    boost::asio::awaitable<void> shutdown(std::chrono::milliseconds drain);

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace warmline::net
