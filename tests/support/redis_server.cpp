// Starts, restarts and removes the real redis-server behind the integration tests, and gives
// tests a blocking hiredis side door (cmd()) for checking state behind the client's back. Each
// server gets a fresh loopback port and a mkdtemp directory, so parallel test runs never meet.
#include "tests/support/redis_server.hpp"

#include <cstdlib>
#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace warmline::test {

namespace {

using namespace std::chrono_literals;

constexpr auto start_deadline = 5s;

// The port was taken between free_port() and redis-server's bind: try another one.
struct port_taken : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct context_deleter {
    void operator()(redisContext* c) const { redisFree(c); }
};
struct reply_deleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using context_ptr = std::unique_ptr<redisContext, context_deleter>;
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

std::string log_path(const std::string& dir) { return dir + "/redis.log"; }

std::string log_tail(const std::string& dir, std::size_t max = 3000) {
    std::ifstream in(log_path(dir));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > max ? text.substr(text.size() - max) : text;
}

context_ptr connect_blocking(std::uint16_t port, std::chrono::milliseconds timeout) {
    const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                     static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    context_ptr c(redisConnectWithTimeout("127.0.0.1", port, tv));
    if (!c || c->err) return nullptr;
    // Bound every later command too: a wedged server must fail the test, not hang it.
    redisSetTimeout(c.get(), timeval{5, 0});
    return c;
}

reply_ptr run(redisContext* c, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    return reply_ptr(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
}

bool authenticate(redisContext* c, const std::string& password) {
    if (password.empty()) return true;
    auto r = run(c, {"AUTH", password});
    return r && r->type == REDIS_REPLY_STATUS;
}


void render(const redisReply* r, std::string& out) {
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        out.append(r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        out += std::to_string(r->integer);
        break;
    case REDIS_REPLY_ARRAY:
        for (std::size_t i = 0; i < r->elements; ++i) {
            if (i > 0) out += '\n';
            render(r->element[i], out);
        }
        break;
    default:  // nil
        break;
    }
}

}  // namespace

// Ready means PONG, not merely "accepts connections": while loading the AOF Redis accepts and
// answers -LOADING.
bool answers_ping(std::uint16_t port, const std::string& password) {
    auto c = connect_blocking(port, 200ms);
    if (!c || !authenticate(c.get(), password)) return false;
    auto r = run(c.get(), {"PING"});
    return r && r->type == REDIS_REPLY_STATUS && std::string_view(r->str, r->len) == "PONG";
}

std::string redis_command(std::uint16_t port, const std::vector<std::string>& args, const std::string& password) {
    auto c = connect_blocking(port, 2000ms);
    if (!c) throw std::runtime_error("cannot connect to the test server on port " + std::to_string(port));
    if (!authenticate(c.get(), password)) throw std::runtime_error("AUTH to the test server failed");
    auto r = run(c.get(), args);
    if (!r) throw std::runtime_error(std::string("test server command failed: ") + c->errstr);
    std::string out;
    render(r.get(), out);
    return out;
}

int spawn_logged(std::vector<std::string> args, const std::string& log_file) {
    // Everything the child needs is prepared before fork(): after it, only async-signal-safe
    // calls are allowed in a multi-threaded parent.
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::system_error(errno, std::generic_category(), "open " + log_file);
    const pid_t parent = ::getpid();

    const pid_t pid = ::fork();
    if (pid < 0) {
        const int e = errno;
        ::close(log_fd);
        throw std::system_error(e, std::generic_category(), "fork");
    }
    if (pid == 0) {
        // Die with the test binary even if it crashes, instead of leaking servers.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
        ::close_range(3, ~0U, 0);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(log_fd);
    return pid;
}

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        const int e = errno;
        ::close(fd);
        throw std::system_error(e, std::generic_category(), "bind 127.0.0.1:0");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

redis_server::redis_server(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
    for (std::size_t i = 0; i + 1 < extra_args_.size(); ++i)
        if (extra_args_[i] == "--requirepass") password_ = extra_args_[i + 1];

    char dir_template[] = "/tmp/warmline-redis-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr)
        throw std::system_error(errno, std::generic_category(), "mkdtemp");
    dir_ = dir_template;

    // The constructor may throw, and then no destructor runs: clean up here.
    try {
        for (int attempt = 0;; ++attempt) {
            port_ = free_port();
            try {
                launch();
                return;
            } catch (const port_taken&) {
                if (attempt == 4) throw;
            }
        }
    } catch (...) {
        kill();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        throw;
    }
}

redis_server::~redis_server() {
    kill();
    std::error_code ec;
    if (!std::getenv("WL_KEEP")) std::filesystem::remove_all(dir_, ec);
}

std::string redis_server::url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

void redis_server::launch() {
    std::vector<std::string> args{"redis-server", "--port",       std::to_string(port_),
                                  "--bind",       "127.0.0.1",    "--dir",
                                  dir_,           "--appendonly", "yes",
                                  "--save",       "",             "--daemonize",
                                  "no"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    pid_ = spawn_logged(std::move(args), log_path(dir_));

    const auto deadline = std::chrono::steady_clock::now() + start_deadline;
    while (true) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            const std::string tail = log_tail(dir_);
            if (tail.find("Address already in use") != std::string::npos)
                throw port_taken("port " + std::to_string(port_) + " was taken");
            throw std::runtime_error("redis-server exited during start-up; log tail:\n" + tail);
        }
        if (answers_ping(port_, password_)) return;
        if (std::chrono::steady_clock::now() > deadline) {
            kill();
            throw std::runtime_error("redis-server did not answer PING within 5 s; log tail:\n" +
                                     log_tail(dir_));
        }
        std::this_thread::sleep_for(10ms);
    }
}

void redis_server::pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void redis_server::resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void redis_server::crash() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

void redis_server::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);  // a paused server would never see the SIGTERM
    ::kill(pid_, SIGTERM);
    // SIGTERM lets Redis flush the AOF; a server that hangs on shutdown gets SIGKILL.
    const auto deadline = std::chrono::steady_clock::now() + start_deadline;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    pid_ = -1;
}

void redis_server::restart() {
    kill();
    launch();
}

std::string redis_server::cmd(const std::vector<std::string>& args) const {
    return redis_command(port_, args, password_);
}

redis_connection::redis_connection(const redis_server& server) {
    auto c = connect_blocking(server.port(), 2000ms);
    if (!c) throw std::runtime_error("cannot connect to the test redis-server on port " + std::to_string(server.port()));
    context_ = c.release();
}

redis_connection::~redis_connection() { redisFree(static_cast<redisContext*>(context_)); }

std::string redis_connection::cmd(const std::vector<std::string>& args) {
    auto* c = static_cast<redisContext*>(context_);
    auto r = run(c, args);
    if (!r) throw std::runtime_error(std::string("test redis-server command failed: ") + c->errstr);
    std::string out;
    render(r.get(), out);
    return out;
}

}  // namespace warmline::test

namespace warmline::test {

void wait_until_replicating(const redis_server& primary, const redis_server& replica,
                            std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (int n = 1;; ++n) {
        if (replica.cmd({"INFO", "replication"}).find("master_link_status:up") != std::string::npos) {
            primary.cmd({"SET", "wl:test:replicating", std::to_string(n)});
            if (replica.cmd({"GET", "wl:test:replicating"}) == std::to_string(n)) break;
        }
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("the replica on port " + std::to_string(replica.port()) +
                                     " did not start replicating the primary");
        // Redis has no way to say when this happens: look again shortly
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    primary.cmd({"DEL", "wl:test:replicating"});
}

}  // namespace warmline::test
