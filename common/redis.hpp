// The asynchronous Redis client every service uses: hiredis's async API attached to an Asio
// executor in the shape of hiredis's own adapters/ (a read watch, a write watch, a cleanup hook),
// with commands as awaitables, pipelining, Lua scripts run by EVALSHA with NOSCRIPT recovery,
// reconnection with backoff, a separate pub/sub connection, and Redis Sentinel: the master is
// found through the sentinels on every (re)connect and followed through failovers.
// The implementation is in common/redis/ (one file per concern).
//
// Threading: each client and subscriber owns a strand on the executor it is given. Every public
// member may be called from any thread; awaitables complete on the awaiting coroutine's executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace warmline::redis {

// Where Redis is, parsed from a URL:
//   redis://[:password@]host[:port][/db]                     (default 127.0.0.1:6379/0), or
//   redis-sentinel://[:password@]host[:port],host[:port],.../master-name[/db]
// (sentinel ports default to 26379): the master is whatever these sentinels say `master-name` is.
// The password is the master's; sentinels are asked without one.
struct endpoint {
    struct address {
        std::string host;
        std::uint16_t port = 0;
        friend bool operator==(const address&, const address&) = default;
    };

    // redis:// only: the Redis server. Empty host and port 0 for redis-sentinel://.
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string password;
    int db = 0;
    // redis-sentinel:// only: the sentinels, in the URL's order, and the master's name.
    std::vector<address> sentinels;
    std::string master_name;

    bool via_sentinel() const { return !sentinels.empty(); }

    // Throws std::invalid_argument with a sentence naming what is wrong (never the password).
    static endpoint parse(std::string_view url);
    std::string to_string() const;  // without the password
};

// One reply, copied out of hiredis's redisReply so it outlives the callback.
struct value {
    enum class kind { nil, integer, string, status, error, array };
    kind type = kind::nil;
    long long integer = 0;
    std::string str;  // string, status and error replies
    std::vector<value> elements;

    bool is_nil() const { return type == kind::nil; }
    bool is_error() const { return type == kind::error; }
    // The integer, or a string reply parsed as one; throws std::runtime_error otherwise.
    long long as_int() const;
    // The string/status text; empty for nil; throws std::runtime_error for arrays and errors.
    const std::string& as_string() const;
};

// The connection is down (or never came up): the command was not run, or its outcome is unknown.
struct unavailable : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// Redis answered with an error reply (the message is Redis's, e.g. "WRONGTYPE ...").
struct reply_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct client_options {
    endpoint where;
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds backoff_initial{50};
    std::chrono::milliseconds backoff_max{2000};
    // A command with no reply within this time fails with `unavailable`, and the connection is
    // closed and opened again: Redis is stalled (SIGSTOP, a long fork) or gone. The same bound
    // is the socket's TCP_USER_TIMEOUT, and a subscriber PINGs at half of it, so a dead Redis is
    // noticed in seconds, not after TCP's minutes of retransmission. 0: no deadline.
    std::chrono::milliseconds command_timeout{3000};
    // redis-sentinel:// only: how long one sentinel may take to accept the connection and
    // answer where the master is, before the next one is asked.
    std::chrono::milliseconds sentinel_timeout{500};
    // Sent as CLIENT SETNAME (with ":cmd" or ":events" appended) so that CLIENT LIST shows who
    // each connection is; no spaces. Empty: no name.
    std::string name;
};

// A Lua script: source plus its SHA1, computed locally so the first call is already an EVALSHA.
class script {
public:
    explicit script(std::string source);
    const std::string& source() const { return source_; }
    const std::string& sha1() const { return sha1_; }

private:
    std::string source_;
    std::string sha1_;
};

class client : public std::enable_shared_from_this<client> {
public:
    static std::shared_ptr<client> create(boost::asio::any_io_executor ex, client_options opts);
    ~client();

    // Begin connecting; on loss, reconnect with exponential backoff until stop().
    void start();
    // Close the connection; pending commands fail with `unavailable`.
    void stop();

    bool connected() const;
    // Why the last connection attempt or connection failed; empty while healthy.
    std::string last_error() const;
    // Completes when connected; throws `unavailable` after `timeout`.
    boost::asio::awaitable<void> wait_connected(std::chrono::milliseconds timeout);
    // Called on the client's strand whenever the connection comes up (true; the first time
    // included) or goes down (false). A new connection is a new session: whatever the owner
    // keeps in Redis on its behalf (a lease, a registration) may have lapsed meanwhile.
    void on_state_change(std::function<void(bool up)> f);

    // Run one command. An error reply throws reply_error; a lost connection throws unavailable.
    // Through Sentinel, a READONLY error reply (the server became a replica) also throws
    // unavailable, and the client reconnects to whichever server the sentinels name now.
    boost::asio::awaitable<value> command(std::vector<std::string> args);
    // Send all commands in one write and return the replies in order. Error replies are returned
    // as values (not thrown); a lost connection throws unavailable, and so, through Sentinel,
    // does a READONLY reply to any of them.
    boost::asio::awaitable<std::vector<value>> pipeline(std::vector<std::vector<std::string>> cmds);
    // EVALSHA, and on NOSCRIPT load the script and retry once. Script errors throw reply_error.
    boost::asio::awaitable<value> eval(const script& s, std::vector<std::string> keys,
                                       std::vector<std::string> args);

    struct impl;

private:
    explicit client(std::shared_ptr<impl> p);
    std::shared_ptr<impl> impl_;
};

// A dedicated pub/sub connection. After a reconnect it subscribes again to every channel and
// calls on_resubscribed, so its owner can resynchronise whatever it missed meanwhile.
class subscriber : public std::enable_shared_from_this<subscriber> {
public:
    using handler = std::function<void(std::string_view channel, std::string_view payload)>;

    static std::shared_ptr<subscriber> create(boost::asio::any_io_executor ex, client_options opts);
    ~subscriber();

    // Handlers run on the subscriber's strand. Call before or after start().
    void subscribe(std::string channel, handler h);
    void on_resubscribed(std::function<void()> f);
    // As client::on_state_change: up once every channel is subscribed, down when the
    // connection is lost (or stops answering its PINGs).
    void on_state_change(std::function<void(bool up)> f);
    void start();
    void stop();
    bool connected() const;
    // Completes once connected and every channel subscribed; throws unavailable after timeout.
    boost::asio::awaitable<void> wait_subscribed(std::chrono::milliseconds timeout);

    struct impl;

private:
    explicit subscriber(std::shared_ptr<impl> p);
    std::shared_ptr<impl> impl_;
};

}  // namespace warmline::redis
