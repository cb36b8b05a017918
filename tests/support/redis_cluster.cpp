// Starts and tears down the Redis Cluster of tests/support/redis_cluster.hpp: six redis_servers
// with cluster-enabled and an explicit cluster-port (a free port, not port+10000, which may be
// taken or past 65535), joined by redis-cli --cluster create. Who serves what is read from
// CLUSTER NODES; readiness is polled with a deadline, never slept for.
#include "tests/support/redis_cluster.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace warmline::test {

namespace {

using namespace std::chrono_literals;

constexpr std::size_t node_count = 6;

struct node_line {
    std::string id;
    std::uint16_t port = 0;
    bool primary = false;
    bool failed = false;
    bool myself = false;
    std::string primary_id;  // for a replica
    std::vector<std::pair<int, int>> slots;
};

std::vector<std::string> words(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

int to_int(std::string_view s) {
    int v = -1;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

// CLUSTER NODES: "<id> <ip:port@cport> <flags> <primary> <ping> <pong> <epoch> <link> <slot>..."
std::vector<node_line> parse_nodes(const std::string& text) {
    std::vector<node_line> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        const auto w = words(line);
        if (w.size() < 8) continue;
        node_line n;
        n.id = w[0];
        const auto colon = w[1].rfind(':', w[1].find('@'));
        const auto at = w[1].find('@');
        if (colon == std::string::npos || at == std::string::npos) continue;
        n.port = static_cast<std::uint16_t>(to_int(std::string_view(w[1]).substr(colon + 1, at - colon - 1)));
        n.primary = w[2].find("master") != std::string::npos;
        // "fail" and "fail?" (suspected) both: either way it serves nothing for now.
        n.failed = w[2].find("fail") != std::string::npos || w[2].find("noaddr") != std::string::npos;
        n.myself = w[2].find("myself") != std::string::npos;
        n.primary_id = w[3];
        for (std::size_t i = 8; i < w.size(); ++i) {
            if (w[i].starts_with('[')) continue;  // a slot being imported or migrated
            const auto dash = w[i].find('-');
            if (dash == std::string::npos) {
                n.slots.emplace_back(to_int(w[i]), to_int(w[i]));
            } else {
                n.slots.emplace_back(to_int(std::string_view(w[i]).substr(0, dash)),
                                     to_int(std::string_view(w[i]).substr(dash + 1)));
            }
        }
        out.push_back(std::move(n));
    }
    return out;
}

// Who serves which slots, as one node sees it: "port:ranges" of every live primary, sorted.
std::string view_of(const std::vector<node_line>& nodes) {
    std::vector<std::string> parts;
    for (const auto& n : nodes) {
        if (!n.primary || n.failed || n.slots.empty()) continue;
        std::string p = std::to_string(n.port) + ":";
        for (const auto& [a, b] : n.slots) p += std::to_string(a) + "-" + std::to_string(b) + ",";
        parts.push_back(p);
    }
    std::sort(parts.begin(), parts.end());
    std::string out;
    for (const auto& p : parts) out += p + " ";
    return out;
}

template <typename F>
void poll_until(F condition, std::chrono::milliseconds limit, const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("the test Redis Cluster: " + what + " within " + std::to_string(limit.count()) +
                                     " ms");
        std::this_thread::sleep_for(20ms);
    }
}

}  // namespace

redis_cluster::redis_cluster() : redis_cluster(options{}) {}

redis_cluster::redis_cluster(options o) : opts_(std::move(o)) {
    for (std::size_t i = 0; i < node_count; ++i) {
        std::vector<std::string> args{"--cluster-enabled",      "yes",
                                      "--cluster-port",         std::to_string(free_port()),
                                      "--cluster-config-file",  "nodes.conf",
                                      "--cluster-node-timeout", std::to_string(opts_.node_timeout.count()),
                                      "--appendonly",           "no"};
        if (!opts_.password.empty()) {
            args.insert(args.end(), {"--requirepass", opts_.password, "--masterauth", opts_.password});
        }
        nodes_.push_back(std::make_unique<redis_server>(std::move(args)));
    }

    // redis-cli decides which nodes become primaries (the first three) and pairs the replicas.
    std::vector<std::string> create{"redis-cli", "--cluster", "create"};
    for (const auto& n : nodes_) create.push_back("127.0.0.1:" + std::to_string(n->port()));
    create.insert(create.end(), {"--cluster-replicas", "1", "--cluster-yes"});
    if (!opts_.password.empty()) create.insert(create.end(), {"-a", opts_.password, "--no-auth-warning"});
    const std::string log = nodes_.front()->dir() + "/cluster-create.log";
    const int pid = spawn_logged(std::move(create), log);
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            throw std::runtime_error("redis-cli --cluster create did not finish within 30 s");
        }
        std::this_thread::sleep_for(20ms);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::ifstream in(log);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        throw std::runtime_error("redis-cli --cluster create failed:\n" + text);
    }

    wait_settled(20s);
    // A replica promotes itself only if it has been replicating: wait for every link.
    poll_until(
        [&] {
            for (std::size_t i = 0; i < nodes_.size(); ++i) {
                const auto info = cmd(i, {"INFO", "replication"});
                if (info.find("role:slave") != std::string::npos &&
                    info.find("master_link_status:up") == std::string::npos)
                    return false;
            }
            return true;
        },
        20s, "replicas did not all reach their primaries");
}

redis_cluster::~redis_cluster() = default;

std::string redis_cluster::url() const {
    std::string out = "redis-cluster://";
    if (!opts_.password.empty()) out += ":" + opts_.password + "@";
    for (std::size_t i = 0; i < 3; ++i) out += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(port(i));
    return out + "/0";
}

std::optional<std::size_t> redis_cluster::index_of(std::uint16_t p) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i]->port() == p) return i;
    return std::nullopt;
}

std::string redis_cluster::cmd(std::size_t i, const std::vector<std::string>& args) const {
    return nodes_.at(i)->cmd(args);
}

std::string redis_cluster::node_id(std::size_t i) const { return cmd(i, {"CLUSTER", "MYID"}); }

std::optional<std::size_t> redis_cluster::first_running() const {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i]->running()) return i;
    return std::nullopt;
}

std::string redis_cluster::cluster_nodes_text(std::size_t asked) const { return cmd(asked, {"CLUSTER", "NODES"}); }

std::optional<std::size_t> redis_cluster::primary_of(std::uint16_t slot) const {
    const auto asked = first_running();
    if (!asked) return std::nullopt;
    return primary_of(slot, *asked);
}

std::optional<std::size_t> redis_cluster::primary_of(std::uint16_t slot, std::size_t asked) const {
    for (const auto& n : parse_nodes(cluster_nodes_text(asked))) {
        if (!n.primary || n.failed) continue;
        for (const auto& [a, b] : n.slots)
            if (slot >= a && slot <= b) return index_of(n.port);
    }
    return std::nullopt;
}

std::vector<std::size_t> redis_cluster::primaries() const {
    std::vector<std::size_t> out;
    const auto asked = first_running();
    if (!asked) return out;
    for (const auto& n : parse_nodes(cluster_nodes_text(*asked)))
        if (n.primary && !n.failed && !n.slots.empty())
            if (auto i = index_of(n.port)) out.push_back(*i);
    std::sort(out.begin(), out.end());
    return out;
}

std::optional<std::size_t> redis_cluster::replica_of(std::size_t primary) const {
    const auto asked = first_running();
    if (!asked) return std::nullopt;
    const auto nodes = parse_nodes(cluster_nodes_text(*asked));
    std::string id;
    for (const auto& n : nodes)
        if (n.port == port(primary)) id = n.id;
    for (const auto& n : nodes)
        if (!n.primary && !id.empty() && n.primary_id == id) return index_of(n.port);
    return std::nullopt;
}

bool redis_cluster::all_ok() const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i]->running()) continue;
        if (cmd(i, {"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) return false;
    }
    return true;
}

void redis_cluster::wait_settled(std::chrono::milliseconds limit) {
    poll_until(
        [&] {
            if (!all_ok()) return false;
            std::optional<std::string> first;
            for (std::size_t i = 0; i < nodes_.size(); ++i) {
                if (!nodes_[i]->running()) continue;
                const auto v = view_of(parse_nodes(cluster_nodes_text(i)));
                if (!first) first = v;
                if (v != *first) return false;
            }
            return first.has_value();
        },
        limit, "the nodes did not all say cluster_state:ok and agree on the slots");
}

std::string redis_cluster::log_tail(std::size_t i) const {
    std::ifstream in(nodes_.at(i)->dir() + "/redis.log");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 3000 ? text.substr(text.size() - 3000) : text;
}

}  // namespace warmline::test
