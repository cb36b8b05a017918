// What every service's main() shares: the flags of its net::server (listen address, limits,
// timeouts, Origin allowlist, TLS, logging), declared once so each --help and check agree, and
// the run itself (Redis connections, the server, READY line, clean stop on SIGINT/SIGTERM after
// an optional drain that a load balancer can see on /readyz).
#pragma once

#include "common/config.hpp"
#include "common/net.hpp"
#include "common/redis.hpp"

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

namespace warmline::net {

// Declare the shared flags; `listen` and `read_message_max` are the service's own defaults.
void add_server_flags(config::options& opts, const std::string& listen, const std::string& read_message_max);
// --redis-url and --redis-timeout-ms, for every program that talks to Redis.
void add_redis_flags(config::options& opts);
// Read them back: connections named "<program>-<pid>" (CLIENT LIST); throws config::config_error.
redis::client_options redis_options_from(const config::options& opts, const std::string& program);
// --ack-replicas, --ack-timeout-ms and --ack-degrade-after-ms (common/replica_acks.hpp): `what`
// is what waits ("an Ack", "a reply that changed something"), `refused` what is refused when the
// replicas do not confirm it; `degrade_after` the service's default (milliseconds, "0": never).
void add_ack_flags(config::options& opts, const std::string& what, const std::string& refused,
                   const std::string& degrade_after);
struct ack_settings {
    int replicas = 0;  // 0: off
    std::chrono::milliseconds timeout{1000};
    std::chrono::milliseconds degrade_after{0};
};
// Read them back; the timeout must stay below the command deadline of `ro` (a WAIT that
// outlasts it would close the connection). Throws config::config_error.
ack_settings ack_settings_from(const config::options& opts, const redis::client_options& ro);
// Parse flags and WARMLINE_* variables; on --help print the help and return false; otherwise
// start logging as `program` (--log-format, --log-level) and return true.
bool parse_and_log(config::options& opts, int argc, char** argv, const std::string& program);
// Read them back (after opts.parse); throws config::config_error with a sentence on bad values.
// browser_websockets: the service takes WebSockets from browsers (matchmaker, relay), so it
// refuses to start without --allowed-origins unless --dev. Without --dev /metrics and the
// details of /readyz are not on this port (internal_endpoints false): see internal_options_from.
server_options server_options_from(const config::options& opts, bool browser_websockets = true);
// The internal listener (--internal-listen): plain HTTP, no WebSockets, /metrics and /readyz with
// details; nothing when the flag is empty.
std::optional<server_options> internal_options_from(const config::options& opts, const server_options& main);
// Start it (when asked for) on the same handler, and say where it is on standard output
// ("INTERNAL http://address:port"). The server lives as long as the returned pointer.
std::unique_ptr<server> start_internal(boost::asio::io_context& ioc, const std::optional<server_options>& io,
                                       handler& h);

// On SIGINT or SIGTERM: report not ready on /readyz ("draining") for `drain_delay` while
// serving on as before (a second signal cuts it short), then close the server's connections
// (1001, waiting up to `close_within` for them), run `after` (stop the service and its Redis
// connections), then stop `ioc`. Call before ioc.run().
void stop_on_signal(boost::asio::io_context& ioc, server& srv, std::chrono::milliseconds drain_delay,
                    std::chrono::milliseconds close_within, std::function<void()> after);

// The rest of every service's main(). One I/O thread: a process mostly waits on Redis, and more
// capacity comes from more processes against the same Redis. make(ioc, redis, events) builds
// the service (a handler with start(), stop() and node()) on a Redis client and subscriber;
// prints "READY <ws|wss>://address:port<path>" once serving and returns after a clean stop.
template <class Make>
void serve(const std::string& program, const server_options& so, const std::optional<server_options>& internal,
           const redis::client_options& ro, const std::string& path, Make make) {
    boost::asio::io_context ioc(1);
    auto redis = redis::client::create(ioc.get_executor(), ro);
    auto events = redis::subscriber::create(ioc.get_executor(), ro);
    auto svc = make(ioc, redis, events);
    server srv(ioc, so, *svc);
    redis->start();
    events->start();
    svc->start();
    srv.start();
    spdlog::info("{} {} listening on {}:{} (redis {})", program, svc->node(), so.address, srv.port(),
                 ro.where.to_string());
    auto inside = start_internal(ioc, internal, *svc);
    std::cout << "READY " << (so.tls_cert_file.empty() ? "ws" : "wss") << "://" << so.address << ":" << srv.port()
              << path << std::endl;
    stop_on_signal(ioc, srv, so.drain_delay, std::chrono::seconds(5), [&] {
        svc->stop();
        events->stop();
        redis->stop();
    });
    ioc.run();
}

}  // namespace warmline::net
