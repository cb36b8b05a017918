// The relay's state in Redis: who is connected where, each side's public key, and each side's
// messages as a bounded stream (see lua/lib.lua for the keys). Every change is one Lua script,
// so a relay process can die at any instant and another finds a consistent chat.
//
// Two Redis deployments (docs/architecture.md, "Redis Cluster for the chat path"): the control
// Redis (the matchmaker's: whether a chat is open, and ending it) and the chat Redis (this
// relay's records, one server or a Cluster; both may be the same server). A chat's keys carry
// the hash tag of one of 256 buckets, so every chat script is one single-slot step; the sweeps
// visit every bucket. Ending a chat is two idempotent steps: the control Redis ends it
// (finish.lua), then purge.lua deletes its records here; a relay that dies in between leaves
// it in the control Redis's wl:relay:ended, which every relay's sweep drains.
#pragma once

#include "common/clock.hpp"
#include "common/lua_scripts.hpp"
#include "common/redis.hpp"
#include "common/script_reply.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace warmline::relay {

// The 256 buckets of chats: "b" and two hex digits, from the CRC16 of the chat id.
inline constexpr int bucket_count = 256;
std::string bucket_name(int b);
std::string bucket_of(std::string_view session);

struct store_settings {
    std::int64_t state_ttl_s = 24 * 3600;  // relay keys of a chat; the chat's end deletes them sooner
    std::int64_t max_log = 5000;           // messages kept per direction
    std::int64_t window = 1000;            // messages one side may be ahead of the other's receipts
};

struct hello_result {
    std::uint64_t sent_through = 0;
    std::string peer_public_key;    // raw 32 bytes, or empty
    std::int64_t peer_away_since = 0;  // the other side was announced away since then (0: it is not)
    std::uint64_t peer_received_through = 0;  // the other side has this side's messages up to here
};

// How long a side may be gone before the other is told, and before the chat ends as lost.
struct presence_settings {
    std::string node;
    std::int64_t lease_ms = 5000;   // a relay process silent this long (on Redis's clock) is presumed dead
    std::int64_t away_ms = 30000;
    std::int64_t grace_ms = 120000;
    std::int64_t sweep_ms = 1000;  // --presence-sweep-ms
    int limit = 200;
};

// One entry of a side's log: a message, or (lost_from > 0) the messages lost_from..seq, which
// Redis lost and the sender no longer had (skip.lua).
struct log_entry {
    std::uint64_t seq = 0;
    std::int64_t stored_ms = 0;
    std::string ciphertext;
    std::uint64_t lost_from = 0;
};

class store {
public:
    store(std::shared_ptr<redis::client> control, std::shared_ptr<redis::any_client> chat, store_settings s,
          clock_fn now);

    // role: 's' or 'l'.
    boost::asio::awaitable<outcome<hello_result>> hello(std::string session, char role, std::string node,
                                                        std::string conn_id, std::string public_key,
                                                        std::int64_t lease_ms);
    // true: stored now; false: already stored (a resend of the same ciphertext; other content
    // is refused, SEQ_CONFLICT). `touch`: a resend writes too, so that a WAIT after it on this
    // connection covers the first copy. conn_id: the sender's; refused (PERMISSION_DENIED) once
    // another connection took this side over (send.lua).
    boost::asio::awaitable<outcome<bool>> send(std::string session, char role, std::uint64_t seq,
                                               std::string ciphertext, bool touch, std::string conn_id);
    // This side's messages after what is stored, up to `through`, are lost (skip.lua); returns
    // the first lost seq, 0 when there was nothing to skip. conn_id as for send.
    boost::asio::awaitable<outcome<std::uint64_t>> skip(std::string session, char role, std::uint64_t through,
                                                        std::string conn_id);
    boost::asio::awaitable<outcome<bool>> received(std::string session, char role, std::uint64_t through);
    boost::asio::awaitable<outcome<bool>> signal(std::string session, char role, std::string kind,
                                                 std::string value);
    boost::asio::awaitable<void> gone(std::string session, char role, std::string conn_id);
    // One side ends its chat (its relay ticket proved which), as the matchmaker's EndChat does.
    boost::asio::awaitable<outcome<bool>> end(std::string session, char role);
    // End the chats nobody wrote in since `since_unix_ms` (up to `limit` per bucket); returns
    // how many this call ended. One relay process a turn (`every_ms`, this process's interval)
    // sweeps the buckets; the others find the turn taken and do nothing.
    boost::asio::awaitable<int> end_idle(std::int64_t since_unix_ms, int limit, std::int64_t every_ms,
                                         const std::string& node);
    // One round of the presence sweep: this process's lease (lease.lua); then, if it is this
    // process's turn (one relay process a --presence-sweep-ms, wl:{relay}:turn:presence): in
    // every bucket the sides of dead processes, sides away, sides lost (presence.lua), the chats
    // the control Redis ended (wl:relay:ended) purged, and chats no side ever joined ended as
    // lost. Returns how many items it handled.
    boost::asio::awaitable<int> presence(const presence_settings& p);
    // After an outage: renew the lease and say which sides this process holds, each as
    // "<session>|<s|l>|<connection id>" (node_sync.lua, in every bucket).
    boost::asio::awaitable<void> node_sync(const presence_settings& p, std::vector<std::string> sides);
    // The key a send's WAIT must follow (its log), for replica_acks.
    static std::string log_key(const std::string& session, char role);
    // Up to `count` messages `from` sent after seq `after`, in order.
    boost::asio::awaitable<std::vector<log_entry>> log_after(std::string session, char from, std::uint64_t after,
                                                             std::size_t count);
    // Use a relay ticket up (by its hash) for the rest of its life (ttl_ms, at least a second):
    // false when it was used before. One SET NX on the chat Redis, in the chat's slot.
    boost::asio::awaitable<bool> use_ticket(std::string session, std::string ticket_hash, std::int64_t ttl_ms);
    // Whether the matchmaker still has this chat open.
    boost::asio::awaitable<bool> chat_open(std::string session);
    // The other side's public key, or "" while it has not said hello.
    boost::asio::awaitable<std::string> peer_key(std::string session, char role);

    std::int64_t now_ms() const { return now_(); }

private:
    // A chat script of `session`'s bucket (`bucket` for a bucket's sweeps, session ""), and a
    // control script.
    boost::asio::awaitable<redis::value> run(std::string name, std::string session, char role,
                                             std::vector<std::string> args, std::string bucket = {});
    boost::asio::awaitable<redis::value> run_control(std::string name, std::string session,
                                                     std::vector<std::string> args);
    // End the chat on the control Redis (finish.lua) and purge it here; true if it ended now.
    boost::asio::awaitable<bool> finish(std::string session, std::string by, std::string lost = {},
                                        bool requeue_seeker = false);
    boost::asio::awaitable<void> purge(std::string session, std::string ended_pb);
    boost::asio::awaitable<std::vector<std::string>> lease(const presence_settings& p);
    // Whether this process takes this turn of `sweep` (the first to ask in `every_ms` does).
    boost::asio::awaitable<bool> my_turn(const std::string& sweep, const std::string& node, std::int64_t every_ms);
    // Run `step` for every bucket at once; rethrows the first failure once all are done.
    boost::asio::awaitable<void> each_bucket(std::function<boost::asio::awaitable<void>(int)> step);
    boost::asio::awaitable<int> drain_ended();
    boost::asio::awaitable<int> end_unseen(std::int64_t grace_ms);

    std::shared_ptr<redis::client> control_;
    std::shared_ptr<redis::any_client> chat_;
    bool leased_ = false;  // this process's lease was written once (before its first hello)
    store_settings settings_;
    clock_fn now_;
    script_set scripts_;
};

}  // namespace warmline::relay
