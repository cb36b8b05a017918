// A real Redis Cluster for integration tests: six redis_servers (cluster-enabled, each on a free
// loopback port with its cluster bus on another, in its own temp directory) joined by
// `redis-cli --cluster create --cluster-replicas 1` into three primaries with a replica each,
// with failure detection in about a second (cluster-node-timeout 1000). Torn down when the
// object goes away.
#pragma once

#include "tests/support/redis_server.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace warmline::test {

class redis_cluster {
public:
    struct options {
        std::chrono::milliseconds node_timeout{1000};
        // Non-empty: every node requires it (and replicates with it).
        std::string password;
    };

    // Returns once every node says cluster_state:ok, every node has the same view of which
    // primary serves which slots, and every replica's link to its primary is up.
    redis_cluster();
    explicit redis_cluster(options o);
    ~redis_cluster();
    redis_cluster(const redis_cluster&) = delete;
    redis_cluster& operator=(const redis_cluster&) = delete;

    // redis-cluster://[:password@]127.0.0.1:<p0>,127.0.0.1:<p1>,127.0.0.1:<p2>/0: three seeds.
    std::string url() const;
    std::size_t size() const { return nodes_.size(); }
    redis_server& node(std::size_t i) { return *nodes_.at(i); }
    std::uint16_t port(std::size_t i) const { return nodes_.at(i)->port(); }
    // The node listening on `port`, if any.
    std::optional<std::size_t> index_of(std::uint16_t port) const;
    // A command on node i, rendered as redis_server::cmd does.
    std::string cmd(std::size_t i, const std::vector<std::string>& args) const;
    std::string node_id(std::size_t i) const;

    // As a running node sees it now (CLUSTER NODES on the first running node, or on `asked`):
    // the node that serves `slot` as a primary not marked failed, or nullopt.
    std::optional<std::size_t> primary_of(std::uint16_t slot) const;
    std::optional<std::size_t> primary_of(std::uint16_t slot, std::size_t asked) const;
    // The primaries, and the replica of primary i, as a running node sees them now.
    std::vector<std::size_t> primaries() const;
    std::optional<std::size_t> replica_of(std::size_t primary) const;

    // True when every running node says cluster_state:ok.
    bool all_ok() const;
    // Poll (with a deadline, throwing on timeout) until every running node says cluster_state:ok
    // and agrees on who serves each slot.
    void wait_settled(std::chrono::milliseconds limit);

    std::string log_tail(std::size_t i) const;

private:
    std::string cluster_nodes_text(std::size_t asked) const;
    std::optional<std::size_t> first_running() const;

    options opts_;
    std::vector<std::unique_ptr<redis_server>> nodes_;
};

}  // namespace warmline::test
