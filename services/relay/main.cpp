// The relay binary: read configuration, connect to Redis, serve /v1/relay and the HTTP
// endpoints, stop cleanly on SIGINT/SIGTERM. Everything else lives in relay_core.
#include "common/config.hpp"
#include "common/net.hpp"
#include "common/redis.hpp"
#include "common/service_main.hpp"
#include "services/relay/service.hpp"

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <iostream>

namespace asio = boost::asio;
using namespace warmline;

int main(int argc, char** argv) {
    config::options opts("relay", "Carries the end-to-end encrypted messages of chats the matchmaker started.");
    // a Send frame is the ciphertext plus a few dozen bytes of envelope (base64 in JSON frames)
    net::add_server_flags(opts, "127.0.0.1:8091", "32768");
    net::add_redis_flags(opts);
    opts.add("chat-redis-url", "",
             "where chats' records and messages are kept, when not in the --redis-url Redis: redis://, "
             "redis-sentinel:// or redis-cluster://[:password@]host:port,host:port,... (seed nodes of a Redis Cluster; "
             "docs/operations.md, \"Redis Cluster for chats\")");
    opts.add("ticket-secret", "", "the matchmaker's relay-ticket secret (32+ characters)");
    opts.add("state-ttl-s", "86400", "expiry of a chat's relay records and log in Redis (as the matchmaker's)");
    opts.add("max-ciphertext-bytes", "16384", "largest sealed message accepted");
    opts.add("max-log", "5000", "messages kept per direction of a chat");
    opts.add("unreceived-window", "1000", "messages one side may be ahead of the other's receipts");
    opts.add("idle-limit-ms", "1800000", "a chat nobody writes in for this long ends");
    opts.add("idle-sweep-ms", "5000", "how often idle chats are looked for");
    opts.add("peer-away-ms", "30000",
             "a side with no connection this long is announced to the other side (\"waiting for them to come back\")");
    opts.add("peer-grace-ms", "120000",
             "a side with no connection this long ends the chat as peer_lost (a lost listener's seeker goes back to "
             "the front of the line)");
    opts.add("node-lease-ms", "5000", "a relay process that has not renewed its lease this long is presumed dead");
    opts.add("presence-sweep-ms", "1000", "how often absent sides and dead relay processes are looked for");
    net::add_ack_flags(opts, "an Ack (docs/relay-protocol.md, \"Acknowledged means kept\")", "a send", "0");
    opts.add("ticket-ttl-ms", "300000",
             "how long the fresh ticket each welcome gives (for the next connection) stays valid; as the "
             "matchmaker's --ticket-ttl-ms");
    opts.add("hello-timeout-ms", "10000",
             "a connection that has not said hello with a valid ticket this long after opening is closed with 1008 "
             "(0: never)");
    opts.add("rate-burst", "60", "messages one connection may send at once");
    opts.add("rate-per-second", "20", "messages per second one connection may sustain");
    try {
        if (!net::parse_and_log(opts, argc, argv, "relay")) return 0;

        relay::relay_settings s;
        s.ticket_secret = opts.str("ticket-secret");
        if (s.ticket_secret.size() < 32)
            throw config::config_error("--ticket-secret must be at least 32 characters (WARMLINE_TICKET_SECRET), "
                                       "the same as the matchmaker's");
        s.store.state_ttl_s = opts.integer("state-ttl-s", 60, 30 * 86400);
        s.store.max_log = opts.integer("max-log", 10, 1000000);
        s.store.window = opts.integer("unreceived-window", 1, 1000000);
        s.max_ciphertext = static_cast<std::size_t>(opts.integer("max-ciphertext-bytes", 64, 8 << 20));
        s.idle_limit = opts.millis("idle-limit-ms", 10, 7 * 86400000LL);
        s.idle_sweep_interval = opts.millis("idle-sweep-ms", 5, 3600000);
        s.peer_away = opts.millis("peer-away-ms", 10, 86400000);
        s.peer_grace = opts.millis("peer-grace-ms", 10, 7 * 86400000LL);
        if (s.peer_grace <= s.peer_away)
            throw config::config_error("--peer-grace-ms must be longer than --peer-away-ms");
        s.node_lease = opts.millis("node-lease-ms", 100, 600000);
        s.presence_interval = opts.millis("presence-sweep-ms", 5, 60000);
        // every sweep renews the lease and marks the relays' clock: a lease it cannot renew in
        // time would make this process look dead, and each sweep look like an outage
        if (s.presence_interval * 3 > s.node_lease)
            throw config::config_error("--presence-sweep-ms must be at most a third of --node-lease-ms");
        s.ticket_ttl = opts.millis("ticket-ttl-ms", 1000, 86400000);
        s.hello_timeout = opts.millis("hello-timeout-ms", 0, 600000);
        s.rate_burst = static_cast<double>(opts.integer("rate-burst", 1, 100000));
        s.rate_per_second = static_cast<double>(opts.integer("rate-per-second", 1, 100000));

        net::server_options so = net::server_options_from(opts);
        s.catch_up_window = std::max<std::size_t>(1, so.write_queue_max / 2);
        if (so.read_message_max < s.max_ciphertext + 1024)
            throw config::config_error("--read-message-max must leave room for --max-ciphertext-bytes plus 1024 "
                                       "bytes of envelope");

        redis::client_options ro = net::redis_options_from(opts, "relay");
        const net::ack_settings acks = net::ack_settings_from(opts, ro);
        s.ack_replicas = acks.replicas;
        s.ack_timeout = acks.timeout;
        s.ack_degrade_after = acks.degrade_after;

        // the chat Redis: the control Redis unless --chat-redis-url names another
        const std::string chat_url = opts.str("chat-redis-url");
        redis::client_options co = ro;
        if (!chat_url.empty()) {
            try {
                co.where = redis::endpoint::parse(chat_url);
            } catch (const std::invalid_argument& e) {
                throw config::config_error(std::string("--chat-redis-url: ") + e.what());
            }
            co.name += "-chat";
        }

        net::serve("relay", so, net::internal_options_from(opts, so), ro, "/v1/relay", [&](asio::io_context& ioc, auto redis, auto events) {
            std::shared_ptr<redis::any_client> chat;
            std::shared_ptr<redis::any_subscriber> node_events = redis::any_subscriber::of(events);
            if (!chat_url.empty()) {
                chat = redis::any_client::create(ioc.get_executor(), co);
                auto eo = co;
                eo.name += "-events";
                node_events = redis::any_subscriber::create(ioc.get_executor(), eo);
            }
            // a WAIT holds its connection: with acks on, messages are stored over one of their own
            std::shared_ptr<redis::any_client> writes;
            if (s.ack_replicas > 0) {
                auto wo = co;
                wo.name += "-writes";
                writes = redis::any_client::create(ioc.get_executor(), wo);
            }
            return std::make_shared<relay::service>(ioc, s, redis, node_events, system_now_ms, writes, chat);
        });
        return 0;
    } catch (const config::config_error& e) {
        std::cerr << "relay: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "relay: " << e.what() << "\n";
        return 1;
    }
}
