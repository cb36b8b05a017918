// A real redis-server for integration tests: started on a free loopback port in its own temp
// directory (AOF on), stopped and removed when the object goes away.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace warmline::test {

class redis_server {
public:
    explicit redis_server(std::vector<std::string> extra_args = {});
    ~redis_server();
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    std::uint16_t port() const { return port_; }
    std::string url() const;          // redis://127.0.0.1:<port>
    const std::string& dir() const { return dir_; }
    // Run one command with redis-cli-like semantics over a blocking hiredis connection and
    // return the reply rendered as text (integers as digits, arrays one element per line, nil as
    // empty). For assertions about state in tests.
    std::string cmd(const std::vector<std::string>& args) const;

    // Stop the server (SIGTERM, so the AOF is flushed) and wait for it to exit; the directory
    // stays. Clients see their connections close.
    void kill();
    // Start it again on the same port and directory (kill()ing it first if it runs), and wait
    // until it answers. For tests of reconnection.
    void restart();
    // Stall it (SIGSTOP): its sockets stay open and nothing is answered, as in a long fork, a
    // frozen VM or a partition. resume() sends SIGCONT.
    void pause();
    void resume();
    // Kill it with SIGKILL (no AOF flush beyond what everysec already wrote) and reap it; the
    // directory stays, so restart() starts it again from its AOF.
    void crash();
    bool running() const { return pid_ > 0; }

private:
    void launch();

    int pid_ = -1;
    std::uint16_t port_ = 0;
    std::string dir_;
    std::vector<std::string> extra_args_;
    std::string password_;  // from --requirepass in extra_args, so cmd() can AUTH
};

// One connection to a test redis-server kept open, for tests that must still reach Redis when
// no new connection can be made (CONFIG SET maxclients).
class redis_connection {
public:
    explicit redis_connection(const redis_server& server);
    ~redis_connection();
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;
    // As redis_server::cmd, on this connection.
    std::string cmd(const std::vector<std::string>& args);

private:
    void* context_;  // redisContext
};

// Wait (up to `limit`, else throw) until `replica` replicates `primary` live: it has synced, and
// a write made on the primary after that has reached it. The second half matters: after a
// diskless full sync Redis 7 holds writes back from a new replica until the replica's first ack
// (up to a second later), so a replica that says master_link_status:up may still miss a write
// made now, and WAIT would not count it yet.
void wait_until_replicating(const redis_server& primary, const redis_server& replica,
                            std::chrono::milliseconds limit = std::chrono::seconds(20));

// A loopback TCP port that was free a moment ago.
std::uint16_t free_port();

// Start `args` (args[0] found on PATH) with stdout and stderr appended to `log_file`; the child
// dies with the test binary. Returns its pid. For the harness's own servers (redis_server,
// tests/support/redis_sentinel).
int spawn_logged(std::vector<std::string> args, const std::string& log_file);

// As redis_server::cmd, on a fresh blocking connection to 127.0.0.1:<port> (a sentinel, say).
// Throws if nothing answers there within two seconds.
std::string redis_command(std::uint16_t port, const std::vector<std::string>& args,
                          const std::string& password = {});

// True if 127.0.0.1:<port> answers PING with PONG within a short timeout.
bool answers_ping(std::uint16_t port, const std::string& password = {});

}  // namespace warmline::test
