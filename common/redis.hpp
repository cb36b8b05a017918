// The asynchronous Redis client every service uses: hiredis's async API attached to an Asio
// executor in the shape of hiredis's own adapters/ (a read watch, a write watch, a cleanup hook),
// with commands as awaitables, pipelining, Lua scripts run by EVALSHA with NOSCRIPT recovery,
// reconnection with backoff, a separate pub/sub connection (channels and shard channels), Redis
// Sentinel (the master is found through the sentinels on every (re)connect and followed through
// failovers), and for Redis Cluster a client (cluster_client: the slot map, MOVED and ASK, one
// client per primary) and a sharded subscriber (cluster_subscriber: one subscriber per primary).
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
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace warmline::redis {

namespace detail {
struct client_access;
struct subscriber_access;
}

// Where Redis is, parsed from a URL:
//   redis://[:password@]host[:port][/db]                     (default 127.0.0.1:6379/0), or
//   redis-sentinel://[:password@]host[:port],host[:port],.../master-name[/db]
// (sentinel ports default to 26379): the master is whatever these sentinels say `master-name` is.
// The password is the master's; sentinels are asked without one.
//   redis-cluster://[:password@]host[:port],host[:port],...[/0]
// (ports default to 6379): seed nodes of a Redis Cluster, for cluster_client only; the password
// is every node's. Only database 0 exists in a cluster.
struct endpoint {
    struct address {
        std::string host;
        std::uint16_t port = 0;
        friend bool operator==(const address&, const address&) = default;
    };

    // redis:// only: the Redis server. Empty host and port 0 for the others.
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string password;
    int db = 0;
    // redis-sentinel:// only: the sentinels, in the URL's order, and the master's name.
    std::vector<address> sentinels;
    std::string master_name;

    // redis-cluster:// only: the seed nodes, in the URL's order.
    std::vector<address> cluster_nodes;

    bool via_sentinel() const { return !sentinels.empty(); }
    bool is_cluster() const { return !cluster_nodes.empty(); }

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
// Redis refused a write because it is at its maxmemory (policy noeviction: "OOM command not
// allowed ..."): nothing was changed, and the command may be made again once there is room. An
// `unavailable`, so every caller that waits and tries again does so for this too.
struct out_of_memory : unavailable {
    using unavailable::unavailable;
};
// Redis answered with an error reply (the message is Redis's, e.g. "WRONGTYPE ..."); an OOM reply
// is thrown as out_of_memory instead.
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
    // cluster_client only: how many times a command is tried while its node is unreachable or
    // the cluster answers CLUSTERDOWN/TRYAGAIN (with the slot map refreshed and the backoff
    // doubling between tries) before it fails with `unavailable`; and how many MOVED/ASK
    // redirections one command may follow.
    int cluster_attempts = 6;
    int cluster_redirects = 5;
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
    // The number of the connection in use now, unique in this process (0 while disconnected).
    // WAIT counts only writes made on its own connection: a write and a WAIT that see the same
    // link_id went over one connection (a reconnect in between changes it).
    std::uint64_t link_id() const;
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
    friend struct detail::client_access;
    explicit client(std::shared_ptr<impl> p);
    std::shared_ptr<impl> impl_;
};

// Redis Cluster: the hash slot of a key, as Redis computes it: CRC16 (XMODEM) of the key's hash
// tag (what lies between its first '{' and the first '}' after it, if that is not empty) or else
// of the whole key, modulo 16384.
inline constexpr std::uint16_t cluster_slot_count = 16384;
std::uint16_t crc16(std::string_view data);
std::uint16_t key_slot(std::string_view key);
// The slot a command is routed by: that of its first key (for EVAL/EVALSHA/FCALL the first of
// KEYS, for XREAD the first stream), or none for a command without keys.
std::optional<std::uint16_t> command_slot(const std::vector<std::string>& args);

// A client for a Redis Cluster (a redis-cluster:// endpoint), with the command API of `client`.
// It loads the slot map from any node (CLUSTER SLOTS), keeps one `client` per primary (so each
// has the whole connection life cycle: AUTH, SETNAME, keepalive, command deadline, reconnect),
// and sends each command to the primary of its first key's slot. MOVED updates the map (and
// refreshes it in the background) and retries there; ASK sends ASKING and the command once to
// the named node, map unchanged; an unreachable node, CLUSTERDOWN or TRYAGAIN refresh the map and
// retry, up to `cluster_attempts` times, then `unavailable`. A command lost in flight is retried
// too, so it may run twice: commands through a cluster_client should be idempotent steps.
// MULTI/EXEC/WATCH are refused (use a Lua script); KEYS and SCAN see one node only.
//
// Threading: every member may be called from any thread; awaitables complete on the awaiting
// coroutine's executor.
class cluster_client : public std::enable_shared_from_this<cluster_client> {
public:
    // `opts.where` must be a redis-cluster:// endpoint (else std::invalid_argument).
    static std::shared_ptr<cluster_client> create(boost::asio::any_io_executor ex, client_options opts);
    ~cluster_client();

    // Load the slot map in the background and connect to every primary.
    void start();
    // Close every connection; pending commands fail with `unavailable`.
    void stop();

    // The slot map is loaded and every primary in it is connected.
    bool connected() const;
    // client::link_id of the connection to the primary that serves `key`'s slot (0: none yet).
    std::uint64_t link_id_near(std::string_view key) const;
    std::string last_error() const;
    // Completes once connected(); throws `unavailable` after `timeout`.
    boost::asio::awaitable<void> wait_connected(std::chrono::milliseconds timeout);

    // As client::command: routed by the first key's slot (keyless commands go to any primary).
    boost::asio::awaitable<value> command(std::vector<std::string> args);
    // A keyless command (e.g. WAIT) on the connection to the primary that serves `key`'s slot.
    boost::asio::awaitable<value> command_near(std::string key, std::vector<std::string> args);
    // As client::on_state_change: up while connected() (the map loaded, every primary connected).
    void on_state_change(std::function<void(bool up)> f);
    // As client::pipeline. Commands are grouped by the primary that serves them and each group
    // sent as one pipeline (all groups at once); replies come back in the order of `cmds`. Order
    // holds among commands of one node, not across nodes. Redirected commands are retried one
    // by one after their group.
    boost::asio::awaitable<std::vector<value>> pipeline(std::vector<std::vector<std::string>> cmds);
    // As client::eval, on the primary of keys[0]'s slot; NOSCRIPT loads the script on that node.
    boost::asio::awaitable<value> eval(const script& s, std::vector<std::string> keys,
                                       std::vector<std::string> args);

    // For tests and metrics: where the map says `slot` is served (nullopt before the map is
    // loaded), and counts since creation.
    std::optional<endpoint::address> slot_owner(std::uint16_t slot) const;
    struct counters {
        std::uint64_t moved = 0;      // MOVED replies followed
        std::uint64_t asked = 0;      // ASK replies followed
        std::uint64_t refreshes = 0;  // slot maps loaded
        std::uint64_t retries = 0;    // tries after an unreachable node, CLUSTERDOWN or TRYAGAIN
    };
    counters stats() const;

    struct impl;

private:
    explicit cluster_client(std::shared_ptr<impl> p);
    std::shared_ptr<impl> impl_;
};

// One Redis (plain or under Sentinel) or a Cluster, chosen by the URL, behind one type: for a
// path whose every step is a single-slot command or script (the relay's chat Redis), so that
// the same code runs on both. Members as client's; command_near as cluster_client's (on one
// server, the one connection).
class any_client {
public:
    static std::shared_ptr<any_client> create(boost::asio::any_io_executor ex, client_options opts);
    static std::shared_ptr<any_client> of(std::shared_ptr<client> c);

    void start();
    void stop();
    bool connected() const;
    // As cluster_client::link_id_near; on one server client::link_id.
    std::uint64_t link_id_near(std::string_view key) const;
    bool is_cluster() const { return cluster_ != nullptr; }
    void on_state_change(std::function<void(bool up)> f);
    boost::asio::awaitable<void> wait_connected(std::chrono::milliseconds timeout);
    boost::asio::awaitable<value> command(std::vector<std::string> args);
    boost::asio::awaitable<value> command_near(std::string key, std::vector<std::string> args);
    boost::asio::awaitable<std::vector<value>> pipeline(std::vector<std::vector<std::string>> cmds);
    boost::asio::awaitable<value> eval(const script& s, std::vector<std::string> keys, std::vector<std::string> args);
    // Which connection a command about `key` goes over ("host:port" of its slot's primary on a
    // cluster, "" if not known yet; always "" on one server).
    std::string node_of(std::string_view key) const;

private:
    std::shared_ptr<client> single_;
    std::shared_ptr<cluster_client> cluster_;
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
    // A shard channel (SSUBSCRIBE, Redis 7; what SPUBLISH reaches), with the same guarantees as
    // subscribe(). On a single server any channels mix; for a Redis Cluster use
    // cluster_subscriber. Channels added together (before start(), or in one burst) are sent
    // in a few SSUBSCRIBE commands. A name is a channel or a shard channel, kept apart. If
    // Redis refuses it (NOPERM, Redis < 7), that is logged and wait_subscribed never completes.
    void ssubscribe(std::string channel, handler h);
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
    friend struct detail::subscriber_access;
    explicit subscriber(std::shared_ptr<impl> p);
    std::shared_ptr<impl> impl_;
};

// Sharded pub/sub on a Redis Cluster (a redis-cluster:// endpoint): shard channels, each on the
// primary that serves its key slot (a hash tag picks it: wl:relaynode:{b0a}:n1). It loads the
// slot map as cluster_client does and keeps one `subscriber` per primary that serves a channel
// of ours, so each node connection has the subscriber's whole life cycle (handshake, PING probe,
// reconnect, resubscribe). When a node's connection drops, Redis refuses an SSUBSCRIBE (MOVED)
// or drops a channel (sunsubscribe: its slot moved away), it loads the map again (from any node
// that answers, retrying with backoff while a node is unreachable) and moves the channels to
// their new owners; once every channel is confirmed again it calls on_resubscribed, so the owner
// can resynchronise what it missed.
//
// Threading: every member may be called from any thread. A channel's handler runs on the strand
// of the node connection that carries it, one message at a time per channel, in order; handlers
// of channels on different nodes may run at once on a multi-threaded executor. on_resubscribed
// and on_state_change run on the cluster_subscriber's own strand.
class cluster_subscriber : public std::enable_shared_from_this<cluster_subscriber> {
public:
    using handler = subscriber::handler;

    // `opts.where` must be a redis-cluster:// endpoint (else std::invalid_argument).
    static std::shared_ptr<cluster_subscriber> create(boost::asio::any_io_executor ex, client_options opts);
    ~cluster_subscriber();

    // Call before or after start(); a second call for a channel replaces its handler.
    void ssubscribe(std::string channel, handler h);
    void on_resubscribed(std::function<void()> f);
    // Up once every channel is confirmed on its current owner, down when one is not.
    void on_state_change(std::function<void(bool up)> f);
    void start();
    void stop();
    // Every channel is confirmed on the primary that serves its slot in the current map.
    bool connected() const;
    // Completes once connected(); throws unavailable after timeout or on stop().
    boost::asio::awaitable<void> wait_subscribed(std::chrono::milliseconds timeout);

    struct impl;

private:
    explicit cluster_subscriber(std::shared_ptr<impl> p);
    std::shared_ptr<impl> impl_;
};

// The subscriber counterpart of any_client: shard channels (SSUBSCRIBE) on one server or on a
// Cluster, chosen by the URL. Members as subscriber's.
class any_subscriber {
public:
    using handler = subscriber::handler;
    static std::shared_ptr<any_subscriber> create(boost::asio::any_io_executor ex, client_options opts);
    static std::shared_ptr<any_subscriber> of(std::shared_ptr<subscriber> s);

    void ssubscribe(std::string channel, handler h);
    void on_resubscribed(std::function<void()> f);
    void on_state_change(std::function<void(bool up)> f);
    void start();
    void stop();
    bool connected() const;
    boost::asio::awaitable<void> wait_subscribed(std::chrono::milliseconds timeout);

private:
    std::shared_ptr<subscriber> single_;
    std::shared_ptr<cluster_subscriber> cluster_;
};

}  // namespace warmline::redis
