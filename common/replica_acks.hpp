// Acknowledged means kept, also through a failover (--ack-replicas on the relay and the
// matchmaker): a reply that promises a write goes out once Redis says, by WAIT, that enough
// replicas have it. WAIT covers every write made before it on its own connection, so this is a
// group commit: the callers that arrive while one WAIT is out share the next one, a WAIT per
// round trip rather than per write. WAIT blocks its connection while it waits, so the writes
// that need it go over a connection of their own (the services' "-writes"/"-promises" clients).
//
// On a Cluster a write went to the primary of its key's slot, and only that connection's WAIT
// covers it: one group commit per primary (a "lane"), each with one round out at a time.
//
// A WAIT on a connection other than the write's proves nothing (a new connection has made no
// write, so WAIT answers at once with every replica there is). That is exactly what happens
// when a Sentinel switch or a reconnect falls between a write and its WAIT, so the caller notes
// the connection's link id before writing (link()) and is confirmed only if the WAIT went over
// that same connection.
//
// With `degrade_after` > 0, replicas that have confirmed nothing for that long are presumed gone
// rather than about to take over. (A failover's window, while the old primary still takes writes
// it will throw away, lasts until the clients follow +switch-master: a second or two.) Writes are
// then confirmed at once without them ("degraded": as durable as with no WAIT at all), and ROLE
// is asked at most once a second whether enough replicas are attached again; once they are,
// writes wait for them again. 0: never; a write is refused for as long as no replica confirms it.
//
// Threading: every caller on one thread (the services run their io_context on one).
#pragma once

#include "common/redis.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace warmline {

class replica_acks {
public:
    replica_acks(boost::asio::any_io_executor ex, std::shared_ptr<redis::any_client> redis, int replicas,
                 std::chrono::milliseconds timeout, std::string who,
                 std::chrono::milliseconds degrade_after = std::chrono::milliseconds(0));

    // The connection a write about `key` is about to go over: call right before the write.
    std::uint64_t link(std::string_view key) const { return redis_->link_id_near(key); }
    // True once `replicas` replicas have every write made on connection `link` (from link()
    // before the write) up to now, or when degraded (above); false when they did not say so
    // within the timeout, when Redis could not be asked, or when the connection changed since
    // `link`.
    boost::asio::awaitable<bool> confirmed(std::string key, std::uint64_t link);
    // WAITs sent so far (one per round, whatever the number of callers in it).
    std::uint64_t rounds() const { return rounds_; }
    // Writes confirmed without their replicas (degraded) so far.
    std::uint64_t degraded() const { return degraded_; }

private:
    using time_point = std::chrono::steady_clock::time_point;
    struct round {
        explicit round(boost::asio::any_io_executor ex) : wake(ex, time_point::max()) {}
        boost::asio::steady_timer wake;
        std::string key;    // the first caller's: routes the WAIT to the node its write went to
        bool done = false;  // set before wake is cancelled: a caller not yet waiting must not wait
        bool ok = false;
        std::uint64_t link = 0;  // the connection the WAIT went over (0: it changed meanwhile)
    };
    struct lane {
        std::shared_ptr<round> next;  // the round new callers join; sent when the one out returns
        bool running = false;
        time_point silent_since{};    // since when no WAIT succeeded ({} while the last one did)
        bool degraded = false;        // confirming without replicas (degrade_after passed)
        time_point probed{};          // the last ROLE asked while degraded
        bool probing = false;
    };
    boost::asio::awaitable<void> run(std::string node);
    boost::asio::awaitable<void> probe(std::string node, std::string key);
    void heard(lane& l, bool confirmed, time_point sent);

    boost::asio::any_io_executor ex_;
    std::shared_ptr<redis::any_client> redis_;
    int replicas_;
    std::chrono::milliseconds timeout_;
    std::string who_;  // for log lines: "relay", "matchmaker"
    std::chrono::milliseconds degrade_after_;
    std::map<std::string, lane> lanes_;  // by node (one, "", on one server)
    std::uint64_t rounds_ = 0;
    std::uint64_t degraded_ = 0;
};

}  // namespace warmline
