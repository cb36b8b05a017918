// Starts and tears down the Sentinel deployment of tests/support/redis_sentinel.hpp: the primary
// and replica are redis_servers; each sentinel is a redis-sentinel process with its own config
// file (Sentinel rewrites it) in a mkdtemp directory. Readiness is polled with a deadline on what
// the processes report (INFO replication, SENTINEL replicas / sentinels), never slept for.
#include "tests/support/redis_sentinel.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace warmline::test {

namespace {

using namespace std::chrono_literals;

std::string read_tail(const std::string& path, std::size_t max = 3000) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > max ? text.substr(text.size() - max) : text;
}

template <typename F>
void poll_until(F condition, std::chrono::milliseconds limit, const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("the Sentinel test cluster: " + what + " within " +
                                     std::to_string(limit.count()) + " ms");
        std::this_thread::sleep_for(20ms);
    }
}

// How many times `needle` appears in `text` as a whole line.
std::size_t count_lines(const std::string& text, const std::string& needle) {
    std::size_t n = 0, start = 0;
    while (start <= text.size()) {
        const auto end = text.find('\n', start);
        const auto line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (line == needle) ++n;
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return n;
}

}  // namespace

class sentinel_cluster::sentinel_process {
public:
    sentinel_process(std::uint16_t primary_port, const options& o) {
        char dir_template[] = "/tmp/warmline-sentinel-XXXXXX";
        if (::mkdtemp(dir_template) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        dir_ = dir_template;
        try {
            for (int attempt = 0;; ++attempt) {
                port_ = free_port();
                if (launch(primary_port, o)) return;
                if (attempt == 4) throw std::runtime_error("redis-sentinel did not start; log tail:\n" + log_tail());
            }
        } catch (...) {
            stop();
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
            throw;
        }
    }

    ~sentinel_process() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    std::uint16_t port() const { return port_; }
    bool running() const { return pid_ > 0; }
    std::string log_tail() const { return read_tail(dir_ + "/sentinel.log"); }

    void signal(int sig) {
        if (pid_ > 0) ::kill(pid_, sig);
    }

    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);  // a sentinel has nothing to flush that a test needs
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

private:
    // False if the port was taken meanwhile (then the caller tries another).
    bool launch(std::uint16_t primary_port, const options& o) {
        const std::string conf = dir_ + "/sentinel.conf";
        {
            std::ofstream out(conf, std::ios::trunc);
            out << "port " << port_ << "\n"
                << "bind 127.0.0.1\n"
                << "daemonize no\n"
                << "dir " << dir_ << "\n"
                << "sentinel monitor " << master_name << " 127.0.0.1 " << primary_port << " " << o.quorum << "\n"
                << "sentinel down-after-milliseconds " << master_name << " " << o.down_after.count() << "\n"
                << "sentinel failover-timeout " << master_name << " " << o.failover_timeout.count() << "\n"
                << "sentinel parallel-syncs " << master_name << " 1\n";
            if (!o.password.empty()) out << "sentinel auth-pass " << master_name << " " << o.password << "\n";
            if (!out) throw std::runtime_error("cannot write " + conf);
        }
        pid_ = spawn_logged({"redis-sentinel", conf}, dir_ + "/sentinel.log");
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (true) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                if (log_tail().find("Address already in use") != std::string::npos) return false;
                throw std::runtime_error("redis-sentinel exited during start-up; log tail:\n" + log_tail());
            }
            if (answers_ping(port_)) return true;
            if (std::chrono::steady_clock::now() > deadline) {
                stop();
                throw std::runtime_error("redis-sentinel did not answer PING within 5 s; log tail:\n" + log_tail());
            }
            std::this_thread::sleep_for(10ms);
        }
    }

    int pid_ = -1;
    std::uint16_t port_ = 0;
    std::string dir_;
};

sentinel_cluster::sentinel_cluster() : sentinel_cluster(options{}) {}

sentinel_cluster::sentinel_cluster(options o) : opts_(o) {
    // Redis 7 waits 5 s before a diskless full sync, in case more replicas come; none will.
    std::vector<std::string> common_args{"--repl-diskless-sync-delay", "0"};
    if (!opts_.password.empty())
        common_args.insert(common_args.end(), {"--requirepass", opts_.password, "--masterauth", opts_.password});
    primary_ = std::make_unique<redis_server>(common_args);
    auto replica_args = common_args;
    replica_args.insert(replica_args.end(), {"--replicaof", "127.0.0.1", std::to_string(primary_->port())});
    replica_ = std::make_unique<redis_server>(replica_args);
    // Sentinels learn of replicas from the master's INFO, which they read on connecting and then
    // only every 10 s: the replica must be attached before they start.
    wait_until_replicating(*primary_, *replica_, 10s);
    for (std::size_t i = 0; i < opts_.sentinels; ++i)
        sentinels_.push_back(std::make_unique<sentinel_process>(primary_->port(), opts_));
    wait_settled(15s);
}

sentinel_cluster::~sentinel_cluster() {
    // Sentinels first, so that none fails over while the servers go.
    sentinels_.clear();
    replica_.reset();
    primary_.reset();
}

void sentinel_cluster::wait_settled(std::chrono::milliseconds limit) {
    const std::string replica_name = "127.0.0.1:" + std::to_string(replica_->port());
    for (std::size_t i = 0; i < sentinels_.size(); ++i) {
        poll_until(
            [&] {
                // Sentinels find each other through hello messages on the master, every 2 s.
                const std::string peers = sentinel_cmd(i, {"SENTINEL", "sentinels", master_name});
                const std::string replicas = sentinel_cmd(i, {"SENTINEL", "replicas", master_name});
                return count_lines(peers, "runid") + 1 == sentinels_.size() &&
                       count_lines(replicas, replica_name) == 1;
            },
            limit, "sentinel " + std::to_string(i) + " did not learn of the replica and the other sentinels");
    }
}

std::string sentinel_cluster::url() const {
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < sentinels_.size(); ++i) order.push_back(i);
    return url(order);
}

std::string sentinel_cluster::url(const std::vector<std::size_t>& order) const {
    std::string out = "redis-sentinel://";
    for (std::size_t k = 0; k < order.size(); ++k) {
        if (k > 0) out += ',';
        out += "127.0.0.1:" + std::to_string(sentinel_port(order[k]));
    }
    return out + "/" + master_name;
}

std::uint16_t sentinel_cluster::sentinel_port(std::size_t i) const { return sentinels_.at(i)->port(); }

std::string sentinel_cluster::sentinel_cmd(std::size_t i, const std::vector<std::string>& args) const {
    return redis_command(sentinel_port(i), args);
}

std::uint16_t sentinel_cluster::master_port_by(std::size_t i) const {
    try {
        const std::string reply = sentinel_cmd(i, {"SENTINEL", "get-master-addr-by-name", master_name});
        const auto newline = reply.find('\n');
        if (newline == std::string::npos) return 0;
        return static_cast<std::uint16_t>(std::stoul(reply.substr(newline + 1)));
    } catch (const std::exception&) {
        return 0;
    }
}

std::size_t sentinel_cluster::add_sentinel_for(std::uint16_t port) {
    sentinels_.push_back(std::make_unique<sentinel_process>(port, opts_));
    return sentinels_.size() - 1;
}

void sentinel_cluster::kill_sentinel(std::size_t i) { sentinels_.at(i)->stop(); }
void sentinel_cluster::pause_sentinel(std::size_t i) { sentinels_.at(i)->signal(SIGSTOP); }
void sentinel_cluster::resume_sentinel(std::size_t i) { sentinels_.at(i)->signal(SIGCONT); }
std::string sentinel_cluster::sentinel_log_tail(std::size_t i) const { return sentinels_.at(i)->log_tail(); }

}  // namespace warmline::test
