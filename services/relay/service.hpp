// The relay: carries the sealed messages of one chat between its two participants, who may be
// connected to different relay processes. Every message is stored in Redis (the session's log)
// before it is acknowledged to its sender, then pushed to the relay process of the other side
// over its node channels (wl:relaynode:{<bucket>}:<node>, one shard channel per bucket); a client
// that reconnects anywhere says what it has and gets the rest from the log. The relay never
// holds a key or a plaintext.
//
// The members are defined by concern: service.cpp (the door and the requests), delivery.cpp
// (the node channel, delivery, catch-up) and upkeep.cpp (timer loops, recovery after an outage).
//
// Threading: one I/O thread (as the matchmaker); participant state assumes it.
#pragma once

#include "common/clock.hpp"
#include "common/codec.hpp"
#include "common/metrics.hpp"
#include "common/net.hpp"
#include "common/recovery.hpp"
#include "common/rate_limit.hpp"
#include "common/redis.hpp"
#include "common/replica_acks.hpp"
#include "services/relay/store.hpp"
#include "warmline/v1/events.pb.h"
#include "warmline/v1/relay.pb.h"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace warmline::relay {

struct relay_settings {
    std::string ticket_secret;             // shared with the matchmaker, at least 32 bytes
    store_settings store;
    std::size_t max_ciphertext = 16 * 1024;
    std::chrono::milliseconds idle_limit{30 * 60 * 1000};  // a chat nobody writes in ends
    std::chrono::milliseconds idle_sweep_interval{5000};
    // a side with no connection this long is announced to the other side, this long ends the
    // chat as lost (presence.lua); the node id and lease are the process's
    std::chrono::milliseconds peer_away{30000};
    std::chrono::milliseconds peer_grace{120000};
    std::chrono::milliseconds node_lease{5000};
    std::chrono::milliseconds presence_interval{1000};
    std::size_t catch_up_batch = 256;      // log entries read per round trip when catching up
    std::size_t catch_up_window = 64;      // a catch-up waits while this many messages are queued
                                           // to the client (keep it below --write-queue-max)
    // an Ack waits until this many replicas have the message (WAIT), at most ack_timeout; 0: an
    // Ack follows the write on the primary alone (docs/relay-protocol.md, "Acknowledged means kept")
    int ack_replicas = 0;
    std::chrono::milliseconds ack_timeout{1000};
    // replicas silent this long are presumed gone and Acks go on without them (0: never)
    std::chrono::milliseconds ack_degrade_after{0};
    // the lifetime of the next ticket a welcome gives (as the matchmaker's --ticket-ttl-ms)
    std::chrono::milliseconds ticket_ttl{5 * 60 * 1000};
    // a connection that has not been admitted by a hello with a valid ticket this long after
    // opening is closed with 1008 (0: never)
    std::chrono::milliseconds hello_timeout{10000};
    double rate_burst = 60;                // messages a connection may send at once
    double rate_per_second = 20;           // and sustained
    int max_bad_frames = 20;               // then the connection is closed with 1008
};

// A side of a chat as the relay's records spell it ('s' | 'l'), as the protos do, and the other.
inline v1::Role role_of(char r) { return r == 's' ? v1::SEEKER : v1::LISTENER; }
inline char peer_of(char r) { return r == 's' ? 'l' : 's'; }

class service : public net::handler, public std::enable_shared_from_this<service> {
public:
    // `redis`: the control Redis (the matchmaker's). `chat`: the chat Redis, this relay's records
    // (one server or a Cluster; null: the control Redis); `events`: its node channels. `writes`:
    // a connection of the chat Redis of its own for storing messages when acks wait for replicas
    // (a WAIT blocks its connection); null: messages go over `chat`. The service starts and
    // stops `chat` and `writes`.
    service(boost::asio::io_context& ioc, relay_settings s, std::shared_ptr<redis::client> redis,
            std::shared_ptr<redis::any_subscriber> events, clock_fn now = system_now_ms,
            std::shared_ptr<redis::any_client> writes = nullptr, std::shared_ptr<redis::any_client> chat = nullptr);

    // Subscribe to this process's node channel and start the idle sweep. Call once.
    void start();
    void stop();
    const std::string& node() const { return node_; }
    metrics::registry& metrics() { return metrics_; }

    boost::asio::awaitable<net::http_response> on_http(net::http_request req) override;
    boost::asio::awaitable<std::optional<net::http_response>> on_upgrade(const net::http_request& req) override;
    void on_open(std::shared_ptr<net::connection> c) override;
    boost::asio::awaitable<void> on_message(std::shared_ptr<net::connection> c, std::string data,
                                            bool binary) override;
    void on_close(std::shared_ptr<net::connection> c) override;

private:
    // One side of one chat on one connection.
    struct participant {
        std::weak_ptr<net::connection> conn;
        std::string session;
        char role = 's';              // 's' seeker, 'l' listener
        std::string conn_id;          // node:connection, unique across processes
        bool admitted = false;        // a hello's ticket bound it to `session` and `role` (used up)
        bool greeted = false;         // hello done
        bool welcomed = false;        // ... and its welcome built: live events may go out
        std::string early_peer_key;   // the other side's key, if it came before the welcome
        bool has_peer_key = false;    // the client was given the other side's key
        std::int64_t peer_away_since = 0;  // the other side is away: say so right after the welcome
        codec::format format = codec::format::binary;
        std::uint64_t forwarded = 0;  // highest seq of the other side's messages sent to this client
        bool filling = false;         // a catch-up from the log is running
        bool refill = false;          // ... and must look again when done
        bool ending = false;          // this side asked to end: close after the reply
        bool taken_over = false;      // another connection has this side now: close (4001) after the reply
        token_bucket bucket;
        int bad_frames = 0;
    };
    using participant_ptr = std::shared_ptr<participant>;

    boost::asio::awaitable<v1::RelayServerMessage> handle(participant_ptr p, const v1::RelayClientMessage& m);
    boost::asio::awaitable<v1::RelayServerMessage> hello(participant_ptr p, const v1::RelayHello& m);
    // Check a first hello's ticket and use it up; binds p to its chat side. A refusal to send, or
    // nothing when admitted.
    boost::asio::awaitable<std::optional<v1::RelayServerMessage>> admit(participant_ptr p, const std::string& ticket);
    boost::asio::awaitable<v1::RelayServerMessage> send_message(participant_ptr p, const v1::Send& m);
    boost::asio::awaitable<v1::RelayServerMessage> skip(participant_ptr p, const v1::Skip& m);
    // Send the other side's messages after p->forwarded from the log, in order, until caught up.
    // False when the log could not be read (Redis unreachable): the recovery retries.
    boost::asio::awaitable<bool> catch_up(participant_ptr p);
    // After an outage: what was published meanwhile is lost, so every side catches up from the
    // log; throws until every catch-up has succeeded.
    boost::asio::awaitable<void> recover();
    void tell_all(const v1::RelayServerMessage& m);
    // One entry of the other side's log (a message, or messages lost), in order, exactly once.
    void deliver(const participant_ptr& p, log_entry e);
    void on_node_event(std::string_view payload);
    void on_node_event(const v1::RelayEvent& e);
    boost::asio::awaitable<void> idle_loop();
    boost::asio::awaitable<void> presence_loop();
    // Wait `every` on t; false once stop() was called.
    boost::asio::awaitable<bool> tick(boost::asio::steady_timer& t, std::chrono::milliseconds every);
    presence_settings presence() const;
    void push(const participant_ptr& p, const v1::RelayServerMessage& m);
    participant_ptr current(const std::string& session, char role);
    participant_ptr by_connection(std::uint64_t id);

    boost::asio::io_context& ioc_;
    relay_settings settings_;
    std::shared_ptr<redis::client> redis_;   // control
    std::shared_ptr<redis::any_client> chat_;  // wraps redis_ unless a chat Redis of its own
    bool own_chat_ = false;
    std::shared_ptr<redis::any_subscriber> events_;
    std::shared_ptr<redis::any_client> writes_;  // chat_ unless acks wait for replicas
    store store_;
    store send_store_;                       // store_ over writes_
    std::unique_ptr<replica_acks> acks_;     // set when settings_.ack_replicas > 0
    std::string node_;
    metrics::registry metrics_;
    // looked up once: send_message runs for every message
    std::atomic<std::uint64_t>& messages_total_;
    std::atomic<std::uint64_t>& ciphertext_bytes_total_;
    std::atomic<std::uint64_t>& acks_unreplicated_total_;
    std::atomic<std::uint64_t>& messages_skipped_total_;

    std::mutex mutex_;
    std::unordered_map<std::uint64_t, participant_ptr> by_conn_;
    std::map<std::pair<std::string, char>, participant_ptr> by_side_;  // the greeted connection per side
    // hellos on their way (between their hello.lua and by_side_), and every one ever begun: the
    // recovery's node_sync must not let go of a side a hello registered while it ran (upkeep.cpp)
    int hellos_in_flight_ = 0;
    std::uint64_t hellos_begun_ = 0;
    // cancelled when the last hello on its way is done: what recover() waits on
    std::shared_ptr<boost::asio::steady_timer> hellos_done_;
    std::shared_ptr<recovery> recovery_;
    std::shared_ptr<boost::asio::steady_timer> idle_timer_;
    std::shared_ptr<boost::asio::steady_timer> presence_timer_;
    bool stopped_ = false;
};

}  // namespace warmline::relay
