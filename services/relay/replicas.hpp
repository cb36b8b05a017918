// Acknowledged means kept, also through a failover (--ack-replicas): an Ack goes out once Redis
// says, by WAIT, that enough replicas have the write. WAIT covers every write made before it on
// its connection, so this is a group commit: the sends that arrive while one WAIT is out share
// the next one, a WAIT per round trip rather than per message. WAIT blocks its connection, so
// the relay gives the send path a connection of its own (service.hpp). On a Cluster a write went
// to the primary of its chat's slot, and only that connection's WAIT covers it: one group commit
// per primary (a "lane"), each with its own round out at a time.
#pragma once

#include "common/redis.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace warmline::relay {

class replica_acks {
public:
    replica_acks(boost::asio::any_io_executor ex, std::shared_ptr<redis::any_client> redis, int replicas,
                 std::chrono::milliseconds timeout);

    // True once `replicas` replicas have every write this connection made before the call (on a
    // Cluster: the connection to the primary serving `key`); false when they did not say so
    // within the timeout, or Redis could not be asked.
    boost::asio::awaitable<bool> confirmed(std::string key);
    // WAITs sent so far (one per round, whatever the number of sends in it).
    std::uint64_t rounds() const { return rounds_; }

private:
    struct round {
        explicit round(boost::asio::any_io_executor ex) : wake(ex, boost::asio::steady_timer::time_point::max()) {}
        boost::asio::steady_timer wake;
        std::string key;    // the first caller's: routes the WAIT to the node its write went to
        bool done = false;  // set before wake is cancelled: a caller not yet waiting must not wait
        bool ok = false;
    };
    struct lane {
        std::shared_ptr<round> next;  // the round new callers join; sent when the one out returns
        bool running = false;
    };
    boost::asio::awaitable<void> run(std::string node);

    boost::asio::any_io_executor ex_;
    std::shared_ptr<redis::any_client> redis_;
    int replicas_;
    std::chrono::milliseconds timeout_;
    std::map<std::string, lane> lanes_;  // by node (one, "", on one server)
    std::uint64_t rounds_ = 0;
};

}  // namespace warmline::relay
