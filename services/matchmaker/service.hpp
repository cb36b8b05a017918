// The matchmaker process: the WebSocket API on top of the store. It keeps only what it needs to
// reach its own connections (which seeker or listener is on which socket); every fact about a
// queue, an offer or a chat is in Redis, so any process can die and another carries on.
// Changes made by any process reach the right socket through the wl:events channel.
#pragma once

#include "common/catalogue.hpp"
#include "common/codec.hpp"
#include "common/metrics.hpp"
#include "common/net.hpp"
#include "common/rate_limit.hpp"
#include "common/redis.hpp"
#include "services/matchmaker/store.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace warmline::matchmaker {

struct service_settings {
    store_settings store;
    std::string ticket_secret;
    std::string relay_url = "ws://127.0.0.1:8091/v1/relay";
    std::chrono::milliseconds ticket_ttl{5 * 60 * 1000};
    std::chrono::milliseconds sweep_interval{250};
    std::chrono::milliseconds position_interval{1000};
    std::chrono::milliseconds stats_interval{1000};
    // The supervisors' stats history: one sample per step (taken by one process of all those
    // running, whether or not anyone watches; every process checks once per stats_interval),
    // kept for the window.
    std::chrono::milliseconds stats_history_step{20000};
    std::chrono::milliseconds stats_history_window{3600 * 1000};
    std::size_t max_request_ids = 4096;  // remembered per connection to refuse reuse
    int max_bad_frames = 20;             // then the connection is closed with 1008
    // Requests of one signed-in connection answered at once (replies carry the request id and
    // may come back out of order); beyond it the connection's frames wait. Sign-in is serial.
    std::size_t requests_in_flight = 32;
    // a waiting seeker's position is recomputed when its queue changes, and at least this often
    std::chrono::milliseconds position_refresh{30000};
    double rate_burst = 20;              // requests a connection may send at once
    double rate_per_second = 10;         // and sustained
};

// One connection's protocol state: who it is and which request ids it has used. Pure, so the
// state machine is unit-tested without sockets.
class client_state {
public:
    enum class role { none, seeker, listener, supervisor };

    // Remember a request id; false if it is empty, too long or already used on this connection.
    bool use_request_id(const std::string& id, std::size_t max_remembered);
    // A token bucket per connection: `burst` requests at once, refilled at `per_second`. False
    // when the request must be refused with RATE_LIMITED. now_ms comes from the caller's clock.
    bool take_token(std::int64_t now_ms, double burst, double per_second);
    // Which requests a connection may make in its current role (a first message must say who).
    static bool allowed(role r, v1::ClientMessage::BodyCase body);

    role who = role::none;
    std::string id;  // seeker or listener id
    codec::format format = codec::format::json;
    int bad_frames = 0;
    bool waiting = false;                // seeker: queued or offered
    v1::QueueUpdate last_update;         // last position sent
    // seeker: the queue ("topic:lang") it waits in and the version of that queue its last
    // position was computed at (-1: compute next tick); a named listener's queue is not versioned
    std::string queue;
    bool named_listener = false;
    std::int64_t queue_version = -1;
    std::int64_t position_at_ms = 0;
    std::string announced_session;       // seeker: last ChatStarted pushed

private:
    token_bucket bucket_;
    std::unordered_set<std::string> used_;
    std::deque<std::string> order_;
};

class service : public net::handler, public std::enable_shared_from_this<service> {
public:
    service(boost::asio::io_context& ioc, service_settings s, catalogue cat, std::shared_ptr<redis::client> redis,
            std::shared_ptr<redis::subscriber> events, clock_fn now = system_now_ms);

    // Start the timers (sweep, heartbeat, positions, stats) and subscribe to events.
    void start();
    void stop();
    const std::string& node() const { return node_; }
    store& state() { return store_; }
    // Offer this process's sample of the stats history for the current step; true if it was
    // the one stored. The history loop calls it; tests call it to take samples on their clock.
    // Call on the service's executor.
    boost::asio::awaitable<bool> sample_history();
    metrics::registry& metrics() { return metrics_; }

    boost::asio::awaitable<net::http_response> on_http(net::http_request req) override;
    boost::asio::awaitable<std::optional<net::http_response>> on_upgrade(const net::http_request& req) override;
    void on_open(std::shared_ptr<net::connection> c) override;
    boost::asio::awaitable<void> on_message(std::shared_ptr<net::connection> c, std::string data, bool binary) override;
    void on_close(std::shared_ptr<net::connection> c) override;

private:
    struct peer {
        std::weak_ptr<net::connection> conn;
        client_state state;
        std::size_t in_flight = 0;  // requests being answered concurrently (on the connection's strand)
    };
    using peer_ptr = std::shared_ptr<peer>;

    boost::asio::awaitable<void> answer(peer_ptr p, v1::ClientMessage m, bool concurrent);
    void reply_to(const peer_ptr& p, const std::string& request_id, v1::ServerMessage reply);
    boost::asio::awaitable<v1::ServerMessage> handle(peer_ptr p, const v1::ClientMessage& m);
    boost::asio::awaitable<v1::ServerMessage> seeker_hello(peer_ptr p, const v1::SeekerHello& m);
    boost::asio::awaitable<v1::ServerMessage> request_chat(peer_ptr p, const v1::RequestChat& m);
    boost::asio::awaitable<v1::ServerMessage> listener_sign_in(peer_ptr p, const v1::ListenerSignIn& m);
    boost::asio::awaitable<v1::ServerMessage> supervisor_sign_in(peer_ptr p, const v1::SupervisorSignIn& m);
    boost::asio::awaitable<v1::ServerMessage> listener_welcome(const std::string& listener_id);
    boost::asio::awaitable<v1::ListenerProfile> profile(const std::string& listener_id);
    boost::asio::awaitable<v1::StatsSnapshot> snapshot();

    v1::ChatStarted chat_started(const std::string& session, v1::Role role, const std::string& topic,
                                 const std::string& language) const;
    void send(const peer_ptr& p, const v1::ServerMessage& m);
    void send_to_seeker(const std::string& sid, const v1::ServerMessage& m);
    void send_to_listener(const std::string& lid, const v1::ServerMessage& m);
    void send_offer_closed(const std::string& lid, const std::string& oid, v1::OfferOutcome outcome);
    std::vector<peer_ptr> listener_peers(const std::string& lid);
    peer_ptr seeker_peer(const std::string& sid);

    void on_event(std::string_view payload);
    boost::asio::awaitable<void> push_status(std::string lid, std::string reason);
    boost::asio::awaitable<void> resync();
    boost::asio::awaitable<void> sweep_loop();
    boost::asio::awaitable<void> heartbeat_loop();
    boost::asio::awaitable<void> position_loop();
    boost::asio::awaitable<void> stats_loop();
    boost::asio::awaitable<void> history_loop();
    boost::asio::awaitable<bool> tick(boost::asio::steady_timer& t, std::chrono::milliseconds every);

    boost::asio::io_context& ioc_;
    service_settings settings_;
    catalogue catalogue_;
    std::shared_ptr<redis::client> redis_;
    std::shared_ptr<redis::subscriber> events_;
    store store_;
    std::string node_;
    metrics::registry metrics_;
    std::atomic<bool> stopping_{false};
    std::vector<std::shared_ptr<boost::asio::steady_timer>> timers_;

    std::mutex mutex_;  // guards the maps below
    std::unordered_map<std::uint64_t, peer_ptr> peers_;
    std::unordered_map<std::string, std::uint64_t> seekers_;
    std::unordered_map<std::string, std::set<std::uint64_t>> listeners_;
    std::set<std::uint64_t> supervisors_;
};

}  // namespace warmline::matchmaker
