// What the files of common/redis/ share and nothing else includes: completions that resume a
// caller on its own executor, a link (one hiredis context and what is known about it), and the
// connection life cycle that client and subscriber both derive from. A connection reaches its
// target directly (redis://), through the sentinels (redis-sentinel://: ask, connect, check
// ROLE), or is itself the watch on the sentinels that reports master switches.
//
// Threading: every member of `connection` marked "strand" runs on its strand_ only; the rest
// may be called from any thread. hiredis callbacks run on the strand, inside hiredis.
#pragma once

#include "common/redis.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;
struct redisReply;

namespace warmline::redis::detail {

namespace asio = boost::asio;

struct asio_events;

value copy_reply(const redisReply* r);
// Throw Redis's error reply `text`: out_of_memory for an OOM refusal, else reply_error.
[[noreturn]] void throw_error_reply(const std::string& text);

// A type-erased completion handler. complete() posts the handler to its associated executor (for
// an awaitable: the awaiting coroutine's), never runs it inline, so a coroutine never resumes
// inside a hiredis callback; the tracked work keeps that executor's run() from returning early.
template <typename... Args>
class completion {
public:
    virtual ~completion() = default;
    virtual void complete(Args... args) = 0;
};

template <typename Handler, typename... Args>
class completion_for final : public completion<Args...> {
public:
    explicit completion_for(Handler h)
        : handler_(std::move(h)),
          work_(asio::prefer(asio::get_associated_executor(handler_),
                             asio::execution::outstanding_work.tracked)) {}

    void complete(Args... args) override {
        auto ex = asio::get_associated_executor(handler_);
        asio::post(ex, [h = std::move(handler_), ... a = std::move(args)]() mutable {
            std::move(h)(std::move(a)...);
        });
    }

private:
    Handler handler_;
    std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler>>(),
                                       asio::execution::outstanding_work.tracked))>
        work_;
};

template <typename... Args, typename Handler>
std::unique_ptr<completion<Args...>> make_completion(Handler&& h) {
    return std::make_unique<completion_for<std::decay_t<Handler>, Args...>>(std::forward<Handler>(h));
}

struct connection;

// How a connection finds what to connect to.
enum class target_kind {
    direct,          // redis://: the host and port of the URL
    via_sentinels,   // redis-sentinel://: the master the sentinels name, checked with ROLE
    sentinel_watch,  // a sentinel itself (the first that answers), for +switch-master
};

// What one hiredis context is for.
enum class link_purpose {
    redis,           // the connection's own: commands, or subscriptions
    sentinel_query,  // one question to one sentinel: where is the master?
};

// One hiredis context's worth of state. hiredis's `data` points here; the connection drops its
// reference only via a posted handler, so the struct (and its events) outlives every hiredis
// call that might still touch it.
struct link {
    redisAsyncContext* ac = nullptr;  // null once freed by hiredis or handed to redisAsyncFree
    std::uint64_t id = 0;             // tells a posted handler whether its link is still current
    std::shared_ptr<asio_events> events;
    std::weak_ptr<connection> owner;
    link_purpose purpose = link_purpose::redis;
    endpoint::address peer;  // where it goes
    int handshake_left = 0;
    bool ready = false;
    // subscriber: standing reply callbacks queued in hiredis (subscriber.cpp)
    int standing = 0;
    // Through Sentinel, a READONLY reply means the server was demoted: the link ends.
    bool readonly_ends_link = false;
    // sentinel_query: the master's address, once the sentinel has answered.
    std::optional<endpoint::address> found;
    // via_sentinels: the server the sentinel named says ROLE is not master.
    bool not_master = false;
    // Redis answers in order, so "every batch up to `answered` has its replies" is all the
    // command deadlines need to know.
    std::uint64_t sent = 0;
    std::uint64_t answered = 0;
};

// "host:port" (IPv6 in brackets), for log lines and messages.
std::string describe(const endpoint::address& a);

// The life cycle shared by client and subscriber: find the target, connect (with timeout),
// handshake, ready, lost, backoff, reconnect.
struct connection : std::enable_shared_from_this<connection> {
    // `kind`: by default, direct or via_sentinels as the endpoint says.
    connection(asio::any_io_executor ex, client_options opts, const char* role,
               std::optional<target_kind> kind = std::nullopt);
    virtual ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // ---- any thread
    // Called once, right after construction (weak_from_this needs the owning shared_ptr).
    void watch_context_shutdown();
    // The io_context is being destroyed and no thread runs it: act as the posted stop() would.
    void abandon();
    void start();
    void stop();
    bool connected() const { return connected_.load(); }
    // The current link's number, unique in the process (0 while not ready): see client::link_id.
    std::uint64_t link_id() const { return link_id_.load(); }
    std::string last_error() const;
    // Completes once satisfied() holds; throws unavailable after `timeout`, or, with
    // `fail_fast`, as soon as a connection attempt fails (a refused port costs no timeout).
    asio::awaitable<void> wait_until_satisfied(std::chrono::milliseconds timeout, bool fail_fast = false);
    const asio::strand<asio::any_io_executor>& strand() const { return strand_; }
    void set_state_handler(std::function<void(bool)> f);
    // A +switch-master event's payload ("<name> <old ip> <old port> <new ip> <new port>").
    void master_switched(std::string_view payload);

    // ---- strand (also from inside hiredis)
    // Something went wrong inside a hiredis callback: tear the link down from a fresh handler,
    // because the context must never be freed while hiredis is still on the stack.
    void close_link_later(const link* l, std::string reason);

protected:
    // ---- strand only, for the derived classes
    virtual void on_ready() {}
    virtual void on_lost() {}
    virtual bool satisfied() const { return ready_; }

    // Tell the owner the connection came up or went down (once per change).
    void report_state(bool up);
    redisAsyncContext* ready_context() const;
    std::string not_connected_message() const;
    void notify_waiters();
    // Free our context (from a handler of our own, never from inside hiredis). hiredis runs
    // every pending callback with a null reply, which fails those commands with `unavailable`.
    void close_link(const std::string& reason);

    asio::strand<asio::any_io_executor> strand_;
    client_options opts_;
    const char* role_;
    target_kind kind_;
    std::shared_ptr<link> link_;
    bool ready_ = false;

private:
    struct waiter {
        explicit waiter(const asio::strand<asio::any_io_executor>& s) : timer(s) {}
        asio::steady_timer timer;
        std::unique_ptr<completion<std::exception_ptr>> done;
        bool fail_fast = false;
    };

    void add_waiter(const std::shared_ptr<waiter>& w, std::chrono::milliseconds timeout);
    static void finish_waiter(waiter& w, std::exception_ptr e);
    void set_last_error(std::string e);

    // ---- the life cycle (connection.cpp)
    void connect();
    void connect_to(const endpoint::address& where, link_purpose purpose, std::chrono::milliseconds timeout);
    void open_link(const std::string& ip, const endpoint::address& where, link_purpose purpose);
    std::vector<std::vector<std::string>> handshake(link_purpose purpose) const;
    void link_ready(link* l);
    void link_lost(link* l, const std::string& reason);
    void step_failed(link_purpose purpose, std::string reason, bool was_ready);
    void attempt_failed(std::string reason, bool was_ready);
    void schedule_retry();
    void do_stop();
    static void on_connect(const redisAsyncContext* ac, int status) noexcept;
    static void on_disconnect(const redisAsyncContext* ac, int status) noexcept;
    static void on_handshake_reply(redisAsyncContext* ac, void* reply, void* privdata) noexcept;

    // ---- Sentinel (sentinel.cpp)
    void ask_next_sentinel();
    void sentinel_failed(std::string reason);
    void sentinel_answered(const endpoint::address& master);
    void distrust_sentinel(const endpoint::address& sentinel);
    void follow_switch(const endpoint::address& from, const endpoint::address& to);
    // A handshake reply that is Sentinel's business: ROLE on the master, or the sentinel's
    // answer. Returns why the link must end, or nothing if it may go on.
    static std::optional<std::string> check_sentinel_reply(link& l, const redisReply& r, const void* tag,
                                                          const std::string& master_name);
    static const char role_tag;
    static const char query_tag;

    std::function<void(bool)> state_handler_;
    bool reported_up_ = false;
    asio::steady_timer connect_timer_;
    asio::steady_timer retry_timer_;
    asio::ip::tcp::resolver resolver_;
    std::chrono::milliseconds backoff_;
    std::uint64_t attempt_ = 0;   // bumps on every step and stop, so late timer/resolve results drop
    std::uint64_t link_ids_ = 0;
    bool running_ = false;
    bool resolving_ = false;
    link_purpose resolving_for_ = link_purpose::redis;
    bool down_logged_ = false;  // one warning per outage, not one per retry
    std::vector<std::shared_ptr<waiter>> waiters_;
    std::atomic<bool> connected_{false};
    std::atomic<std::uint64_t> link_id_{0};
    mutable std::mutex error_mutex_;
    std::string last_error_;

    // Sentinel: the sentinels in the order to ask them (the last to answer first), the one being
    // asked in this round and why the others failed, the master last connected to, the sentinel
    // that named the current target, and the watch that reports switches (via_sentinels only).
    std::vector<endpoint::address> sentinels_;
    std::size_t asking_ = 0;
    std::string sentinel_errors_;
    endpoint::address master_;
    endpoint::address found_by_;
    bool master_known_ = false;
    std::shared_ptr<connection> watch_;
};

// The checks every command client makes before sending (client.cpp): no empty command, no
// command that would switch the connection into pub/sub or MONITOR mode.
void check_commands(const std::vector<std::vector<std::string>>& cmds);

// What cluster.cpp needs of a client beyond its public members (client.cpp).
struct client_access {
    // As wait_connected, but fails as soon as a connection attempt fails.
    static asio::awaitable<void> wait_attempt(client& c, std::chrono::milliseconds timeout);
};

// ---- Redis Cluster (slots.cpp), for cluster.cpp and cluster_subscriber.cpp

// Who serves which slot, as CLUSTER SLOTS said.
struct slot_map {
    std::array<std::int16_t, cluster_slot_count> owner;  // index into primaries, -1: no one
    std::vector<endpoint::address> primaries;
    std::optional<endpoint::address> owner_of(std::uint16_t slot) const;
};
// CLUSTER SLOTS as `from` answered it: [[start, end, [host, port, id, ...], replica...], ...].
// nullopt if the answer is unusable (an error, or a node that is not in a cluster).
std::optional<slot_map> parse_slot_map(const value& v, const endpoint::address& from);
// The options of a connection to one node of the cluster `cluster` describes: its address as a
// redis:// endpoint, with the cluster's password.
client_options node_options(const client_options& cluster, const endpoint::address& node);

// What cluster_subscriber.cpp needs of the subscriber it keeps on one cluster node
// (subscriber.cpp). The hooks run on that subscriber's strand.
struct shard_hooks {
    bool per_slot = false;  // SSUBSCRIBE one slot's channels per command (else CROSSSLOT)
    std::function<void(std::string_view channel)> confirmed;  // an SSUBSCRIBE acknowledged
    std::function<void(std::string_view channel)> dropped;    // Redis sunsubscribed it: its slot moved
    std::function<void(std::string_view error)> refused;      // an error reply to SSUBSCRIBE (MOVED...)
    std::function<void()> lost;                               // no connection: nothing is confirmed
};
struct subscriber_access {
    // Before start().
    static void set_shard_hooks(subscriber& s, shard_hooks h);
    // Stop listening to a shard channel (SUNSUBSCRIBE if connected): it moved to another node.
    static void forget(subscriber& s, std::string channel);
    // SSUBSCRIBE again every shard channel not confirmed yet.
    static void resend(subscriber& s);
};

// subscriber.cpp: a subscriber to +switch-master on the sentinels of `opts`, started. `on_switch`
// gets every event's payload, on the watch's strand.
std::shared_ptr<connection> make_switch_watch(const asio::any_io_executor& ex, const client_options& opts,
                                              std::function<void(std::string_view)> on_switch);

}  // namespace warmline::redis::detail
