#include "common/service_main.hpp"

#include "common/client_address.hpp"
#include "common/log.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <iostream>
#include <stdexcept>
#include <tuple>

#include <unistd.h>
#include <memory>

namespace warmline::net {

void add_server_flags(config::options& opts, const std::string& listen, const std::string& read_message_max) {
    opts.add("listen", listen, "address:port for the WebSocket and HTTP endpoints");
    opts.add("read-message-max", read_message_max, "largest WebSocket message accepted, in bytes");
    opts.add("write-queue-max", "256", "messages queued to a slow client before it is closed");
    opts.add("handshake-timeout-ms", "10000", "time allowed for the HTTP/WebSocket handshake");
    opts.add("idle-timeout-ms", "60000", "a silent connection is pinged, then closed");
    opts.add("max-connections", "200000", "WebSocket connections this process accepts");
    opts.add("max-connections-per-address", "64",
             "WebSocket connections open at once from one client address (an IPv4 address, an IPv6 /64) on this "
             "process; beyond it the upgrade gets HTTP 429. 0: no limit");
    opts.add("trusted-proxies", "",
             "comma-separated addresses or blocks (10.0.0.0/8, fd00::/8) of the proxies in front of this service: "
             "only their X-Forwarded-For, or their PROXY header, names the client. Empty: every peer is the client");
    opts.add("proxy-protocol", "false",
             "every connection starts with a PROXY protocol header, v1 or v2 (HAProxy's send-proxy, send-proxy-v2 and "
             "check-send-proxy), from one of --trusted-proxies; other connections are closed");
    opts.add("drain-delay-ms", "0",
             "on SIGTERM/SIGINT, answer /readyz with 503 \"draining\" this long, still serving, before closing "
             "WebSockets with 1001 (set it above the load balancer's health-check interval)");
    opts.add("allowed-origins", "",
             "comma-separated Origins allowed to open a WebSocket from a browser (the web app's, e.g. "
             "https://warmline.example.org); required by the matchmaker and the relay unless --dev");
    opts.add("dev", "false",
             "local development: a matchmaker or relay starts without --allowed-origins (then any Origin may open a "
             "WebSocket), and /metrics and the details of /readyz are served on --listen too (scripts/up sets it)");
    opts.add("internal-listen", "",
             "address:port of an HTTP-only listener for /metrics and /readyz with details (keep it off the public "
             "network); without --dev the main port answers /metrics with 404 and /readyz with its status alone. "
             "Empty: none. Port 0: any free port, printed as INTERNAL http://address:port");
    opts.add("tls-cert", "", "PEM certificate chain; with --tls-key, serve wss/https");
    opts.add("tls-key", "", "PEM private key");
    opts.add("log-format", "plain", "plain or json");
    opts.add("log-level", "info", "trace, debug, info, warn, error or off");
}

void add_redis_flags(config::options& opts) {
    opts.add("redis-url", "redis://127.0.0.1:6379",
             "where Redis is: redis://[:password@]host:port[/db], or through Sentinel: "
             "redis-sentinel://[:password@]host:26379,host:26379,.../master-name[/db] (the password is the "
             "master's; the sentinels are asked in order)");
    opts.add("redis-timeout-ms", "3000",
             "a Redis command with no reply this long fails and its connection is reopened (Redis is stalled or "
             "gone); also the socket's TCP_USER_TIMEOUT");
}

redis::client_options redis_options_from(const config::options& opts, const std::string& program) {
    redis::client_options ro;
    try {
        ro.where = redis::endpoint::parse(opts.str("redis-url"));
    } catch (const std::invalid_argument& e) {
        throw config::config_error(std::string("--redis-url: ") + e.what());
    }
    ro.command_timeout = opts.millis("redis-timeout-ms", 100, 600000);
    ro.name = program + "-" + std::to_string(::getpid());
    return ro;
}

void add_ack_flags(config::options& opts, const std::string& what, const std::string& refused,
                   const std::string& degrade_after) {
    opts.add("ack-replicas", "0",
             what + " waits until this many Redis replicas have the write (WAIT), so that it survives a failover; "
                    "0: it follows the write on the primary");
    opts.add("ack-timeout-ms", "1000",
             "with --ack-replicas, how long to wait for the replicas before " + refused +
                 " is refused with UNAVAILABLE (below --redis-timeout-ms)");
    opts.add("ack-degrade-after-ms", degrade_after,
             "with --ack-replicas, replicas silent this long are presumed gone: writes are confirmed without them "
             "(as with --ack-replicas 0) until ROLE shows them attached again; 0: never, " + refused +
                 " is refused while no replica confirms it. Keep it above a failover's switch (a few seconds)");
}

ack_settings ack_settings_from(const config::options& opts, const redis::client_options& ro) {
    ack_settings a;
    a.replicas = static_cast<int>(opts.integer("ack-replicas", 0, 100));
    a.timeout = opts.millis("ack-timeout-ms", 1, 600000);
    a.degrade_after = opts.millis("ack-degrade-after-ms", 0, 86400000);
    if (a.replicas > 0 && ro.command_timeout.count() > 0 && a.timeout >= ro.command_timeout)
        throw config::config_error("--ack-timeout-ms must be below --redis-timeout-ms: a WAIT that outlasts the "
                                   "command deadline would close the connection");
    return a;
}

bool parse_and_log(config::options& opts, int argc, char** argv, const std::string& program) {
    if (!opts.parse(argc, argv)) {
        std::cout << opts.help();
        return false;
    }
    log::init(program, opts.str("log-format"), opts.str("log-level"));
    return true;
}

namespace {

// "address:port" of a flag: address and port, or a config_error naming the flag.
std::pair<std::string, std::uint16_t> address_port(const std::string& flag, const std::string& value) {
    auto colon = value.rfind(':');
    if (colon == std::string::npos)
        throw config::config_error("--" + flag + " must be address:port, e.g. 127.0.0.1:8090");
    config::options port_only("", "");
    port_only.add("port", value.substr(colon + 1), "");
    return {value.substr(0, colon), static_cast<std::uint16_t>(port_only.integer("port", 0, 65535))};
}

}  // namespace

std::optional<server_options> internal_options_from(const config::options& opts, const server_options& main) {
    const auto where = opts.str("internal-listen");
    if (where.empty()) return std::nullopt;
    server_options io = main;
    std::tie(io.address, io.port) = address_port("internal-listen", where);
    io.internal_endpoints = true;
    io.websockets = false;
    io.tls_cert_file.clear();  // inside: plain HTTP
    io.tls_key_file.clear();
    io.proxy_protocol = false;
    io.drain_delay = std::chrono::milliseconds(0);
    return io;
}

std::unique_ptr<server> start_internal(boost::asio::io_context& ioc, const std::optional<server_options>& io,
                                       handler& h) {
    if (!io) return nullptr;
    auto srv = std::make_unique<server>(ioc, *io, h);
    srv->start();
    std::cout << "INTERNAL http://" << io->address << ":" << srv->port() << std::endl;
    return srv;
}

server_options server_options_from(const config::options& opts, bool browser_websockets) {
    server_options so;
    std::tie(so.address, so.port) = address_port("listen", opts.str("listen"));
    so.read_message_max = static_cast<std::size_t>(opts.integer("read-message-max", 1024, 16 << 20));
    so.write_queue_max = static_cast<std::size_t>(opts.integer("write-queue-max", 4, 100000));
    so.handshake_timeout = opts.millis("handshake-timeout-ms", 100, 600000);
    so.idle_timeout = opts.millis("idle-timeout-ms", 100, 3600000);
    so.max_connections = static_cast<std::size_t>(opts.integer("max-connections", 1, 10000000));
    so.drain_delay = opts.millis("drain-delay-ms", 0, 600000);
    so.allowed_origins = opts.list("allowed-origins");
    so.max_connections_per_address =
        static_cast<std::size_t>(opts.integer("max-connections-per-address", 0, 10000000));
    so.trusted_proxies = opts.list("trusted-proxies");
    try {
        trusted_proxies check(so.trusted_proxies);
    } catch (const std::invalid_argument& e) {
        throw config::config_error(std::string("--trusted-proxies: ") + e.what());
    }
    so.proxy_protocol = opts.boolean("proxy-protocol");
    const bool dev = opts.boolean("dev");
    so.internal_endpoints = dev;
    if (browser_websockets && so.allowed_origins.empty() && !dev)
        throw config::config_error("--allowed-origins is required: the web app's origin (e.g. "
                                   "https://warmline.example.org), so that no other page can open a WebSocket here "
                                   "in a visitor's browser; --dev allows any Origin for local development");
    if (so.proxy_protocol && so.trusted_proxies.empty())
        throw config::config_error("--proxy-protocol needs --trusted-proxies: the proxies allowed to send the header");
    so.tls_cert_file = opts.str("tls-cert");
    so.tls_key_file = opts.str("tls-key");
    if (so.tls_cert_file.empty() != so.tls_key_file.empty())
        throw config::config_error("--tls-cert and --tls-key go together: give both or neither");
    return so;
}

void stop_on_signal(boost::asio::io_context& ioc, server& srv, std::chrono::milliseconds drain_delay,
                    std::chrono::milliseconds close_within, std::function<void()> after) {
    auto signals = std::make_shared<boost::asio::signal_set>(ioc, SIGINT, SIGTERM);
    auto delay = std::make_shared<boost::asio::steady_timer>(ioc);
    signals->async_wait([&ioc, &srv, drain_delay, close_within, after = std::move(after), signals,
                         delay](const boost::system::error_code& ec, int) {
        if (ec) return;
        // a second signal means "now": it ends the drain delay, whether or not the wait has
        // begun (an expiry in the past cancels a wait in progress and makes a later one return)
        delay->expires_after(drain_delay);
        signals->async_wait([delay](const boost::system::error_code& again, int) {
            if (!again) delay->expires_at(boost::asio::steady_timer::time_point::min());
        });
        srv.start_draining();
        if (drain_delay.count() > 0) {
            spdlog::info("draining: /readyz answers 503 for {} ms, then connections are closed", drain_delay.count());
        } else {
            spdlog::info("shutting down");
        }
        boost::asio::co_spawn(ioc, [&ioc, &srv, drain_delay, close_within, after, signals,
                                    delay]() -> boost::asio::awaitable<void> {
            if (drain_delay.count() > 0) {
                co_await delay->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
                spdlog::info("shutting down");
            }
            co_await srv.shutdown(close_within);
            after();
            ioc.stop();
        }, boost::asio::detached);
    });
}

}  // namespace warmline::net
