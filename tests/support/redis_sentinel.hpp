// A real Sentinel deployment for integration tests: a primary, one replica and three sentinels
// (redis-sentinel), each on a free loopback port in its own temp directory, with failure
// detection in about a second (down-after-milliseconds 1000) and a short failover-timeout.
// Torn down (sentinels first, so none fails over meanwhile) when the object goes away.
#pragma once

#include "tests/support/redis_server.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace warmline::test {

class sentinel_cluster {
public:
    static constexpr const char* master_name = "mymaster";

    struct options {
        std::size_t sentinels = 3;
        int quorum = 2;
        std::chrono::milliseconds down_after{1000};
        std::chrono::milliseconds failover_timeout{3000};
        // Non-empty: the primary and the replica require it (and the replica replicates with it),
        // and the sentinels are given it to monitor them; the sentinels themselves require none.
        std::string password;
    };

    // Returns once the replica is in sync and every sentinel knows the replica and the other
    // sentinels, so that both SENTINEL FAILOVER and an automatic failover can work.
    sentinel_cluster();
    explicit sentinel_cluster(options o);
    ~sentinel_cluster();
    sentinel_cluster(const sentinel_cluster&) = delete;
    sentinel_cluster& operator=(const sentinel_cluster&) = delete;

    // The server started as master, and the one started as its replica (roles change on failover).
    redis_server& primary() { return *primary_; }
    redis_server& replica() { return *replica_; }

    // redis-sentinel://127.0.0.1:<s0>,127.0.0.1:<s1>,.../mymaster: the sentinels in this order.
    std::string url() const;
    // The same with the sentinels in the order given (indexes into the cluster's sentinels).
    std::string url(const std::vector<std::size_t>& order) const;

    std::size_t sentinel_count() const { return sentinels_.size(); }
    std::uint16_t sentinel_port(std::size_t i) const;
    // A command on sentinel i (e.g. SENTINEL FAILOVER mymaster), rendered as redis_server::cmd does.
    std::string sentinel_cmd(std::size_t i, const std::vector<std::string>& args) const;
    // The master's port as sentinel i names it now; 0 if it names none or does not answer.
    std::uint16_t master_port_by(std::size_t i) const;
    // Start one more sentinel that monitors the server on `port` under the master's name (say,
    // the replica: a sentinel with a wrong view of the world). Returns its index.
    std::size_t add_sentinel_for(std::uint16_t port);
    // SIGKILL sentinel i (and reap it); SIGSTOP / SIGCONT it.
    void kill_sentinel(std::size_t i);
    void pause_sentinel(std::size_t i);
    void resume_sentinel(std::size_t i);
    // Where the sentinel's logs are, for failure messages.
    std::string sentinel_log_tail(std::size_t i) const;

private:
    class sentinel_process;

    void wait_settled(std::chrono::milliseconds limit);

    options opts_;
    std::unique_ptr<redis_server> primary_;
    std::unique_ptr<redis_server> replica_;
    std::vector<std::unique_ptr<sentinel_process>> sentinels_;
};

}  // namespace warmline::test
