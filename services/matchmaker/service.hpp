// The matchmaker process: the WebSocket API on top of the store, as the net::handler the server
// calls. It wires the parts of one process together: the peer registry (who is on which
// socket), the request handlers, the wl:events fan-out and the timer loops. It keeps only what
// it needs to reach its own connections; every fact about a queue, an offer or a chat is in
// Redis, so any process can die and another carries on.
#pragma once

#include "common/catalogue.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "common/net.hpp"
#include "common/recovery.hpp"
#include "common/redis.hpp"
#include "services/matchmaker/client_state.hpp"
#include "services/matchmaker/events.hpp"
#include "services/matchmaker/handlers.hpp"
#include "services/matchmaker/peers.hpp"
#include "services/matchmaker/settings.hpp"
#include "services/matchmaker/store.hpp"
#include "services/matchmaker/tickers.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <string>

namespace warmline::matchmaker {

class service : public net::handler, public std::enable_shared_from_this<service> {
public:
    // `promises`: with settings.ack_replicas, a connection of its own for the writes whose WAIT
    // blocks it (started and stopped by the service; null: `redis` carries them too).
    service(boost::asio::io_context& ioc, service_settings s, catalogue cat, std::shared_ptr<redis::client> redis,
            std::shared_ptr<redis::subscriber> events, clock_fn now = system_now_ms,
            std::shared_ptr<redis::client> promises = nullptr);

    // Start the timers (sweep, heartbeat, positions, stats) and subscribe to events.
    void start();
    void stop();
    const std::string& node() const { return node_; }
    store& state() { return store_; }
    // Offer this process's sample of the stats history for the current step (tickers.hpp).
    // Call on the service's executor.
    boost::asio::awaitable<bool> sample_history() { return tickers_.sample_history(); }
    metrics::registry& metrics() { return metrics_; }

    boost::asio::awaitable<net::http_response> on_http(net::http_request req) override;
    boost::asio::awaitable<std::optional<net::http_response>> on_upgrade(const net::http_request& req) override;
    void on_open(std::shared_ptr<net::connection> c) override;
    boost::asio::awaitable<void> on_message(std::shared_ptr<net::connection> c, std::string data, bool binary) override;
    void on_close(std::shared_ptr<net::connection> c) override;

private:
    // After an outage: confirm this process's clients to Redis, then push them what changed.
    boost::asio::awaitable<void> recover();
    boost::asio::awaitable<void> answer(peer_ptr p, v1::ClientMessage m, bool concurrent);
    void reply_to(const peer_ptr& p, const std::string& request_id, v1::ServerMessage reply);

    boost::asio::io_context& ioc_;
    service_settings settings_;
    catalogue catalogue_;
    std::shared_ptr<redis::client> redis_;
    std::shared_ptr<redis::subscriber> events_;
    std::shared_ptr<redis::client> promises_;  // null unless a connection of its own for WAITed writes
    std::string node_;
    metrics::registry metrics_;
    store store_;
    peer_registry peers_;
    request_handlers handlers_;
    event_fanout fanout_;
    std::shared_ptr<recovery> recovery_;
    tickers tickers_;
    std::atomic<bool> stopping_{false};
};

}  // namespace warmline::matchmaker
