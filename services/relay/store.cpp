// Script calls and reply parsing for services/relay/store.hpp.
#include "services/relay/store.hpp"

#include "common/argv.hpp"
#include "common/keys.hpp"
#include "services/relay/lua_sources.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>

namespace warmline::relay {
namespace asio = boost::asio;

namespace {

// Every key a chat script may touch, in the order lua/lib.lua names them.
std::vector<std::string> chat_keys(const std::string& bucket, const std::string& session) {
    return {keys::relay(bucket, session), keys::log(bucket, session, "s"), keys::log(bucket, session, "l"),
            keys::relay_active(bucket),   keys::relay_absent(bucket),      keys::relay_away(bucket),
            keys::relay_sides(bucket),    keys::relay_clock(bucket)};
}

// "<session>|<s|l>[|...]" -> session and role ('\0' when it does not parse).
std::pair<std::string, char> split_side(const std::string& side) {
    const auto bar = side.find('|');
    if (bar == std::string::npos || bar + 1 >= side.size()) return {side, '\0'};
    return {side.substr(0, bar), side[bar + 1]};
}

}  // namespace

std::string bucket_name(int b) {
    char out[4];
    std::snprintf(out, sizeof out, "b%02x", b & 0xff);
    return out;
}

std::string bucket_of(std::string_view session) { return bucket_name(redis::crc16(session) & 0xff); }

std::string store::log_key(const std::string& session, char role) {
    return keys::log(bucket_of(session), session, std::string(1, role));
}

store::store(std::shared_ptr<redis::client> control, std::shared_ptr<redis::any_client> chat, store_settings s,
             clock_fn now)
    : control_(std::move(control)),
      chat_(std::move(chat)),
      settings_(s),
      now_(std::move(now)),
      scripts_(lua_sources()) {}

asio::awaitable<redis::value> store::run(std::string name, std::string session, char role,
                                         std::vector<std::string> args, std::string bucket) {
    if (bucket.empty()) bucket = bucket_of(session);
    auto keys = chat_keys(bucket, session);
    auto full = warmline::argv(std::to_string(now_()), std::to_string(settings_.state_ttl_s), std::move(session),
                               std::string(1, role));
    for (auto& a : args) full.push_back(std::move(a));
    co_return co_await chat_->eval(scripts_.at(name), std::move(keys), std::move(full));
}

asio::awaitable<redis::value> store::run_control(std::string name, std::string session,
                                                 std::vector<std::string> args) {
    auto full = warmline::argv(std::to_string(now_()), std::to_string(settings_.state_ttl_s), std::move(session), "s");
    for (auto& a : args) full.push_back(std::move(a));
    std::vector<std::string> no_keys;
    co_return co_await control_->eval(scripts_.at(name), std::move(no_keys), std::move(full));
}

// ---- ending a chat: the control Redis first, then this chat's records -------------------------

asio::awaitable<bool> store::finish(std::string session, std::string by, std::string lost, bool requeue_seeker) {
    // (no ?: or temporaries inside a co_await's arguments: GCC 12 destroys such a temporary twice)
    std::string requeue = requeue_seeker ? "1" : "0";
    auto args = argv(std::move(by), std::move(lost), std::move(requeue));
    auto v = co_await run_control("finish", session, std::move(args));
    std::string ended_pb = str_at(v, 1);
    co_await purge(std::move(session), std::move(ended_pb));
    co_return str_at(v, 0) == "ok";
}

asio::awaitable<void> store::purge(std::string session, std::string ended_pb) {
    if (ended_pb.empty()) {
        // a chat the control Redis no longer knows (its records expired): its sides hear it ended
        v1::ChatEnded e;
        e.set_session_id(session);
        ended_pb = e.SerializeAsString();
    }
    co_await run("purge", session, 's', argv(std::move(ended_pb)));
    co_await control_->command(argv("ZREM", keys::relay_ended(), std::move(session)));
}

asio::awaitable<int> store::drain_ended() {
    auto due = co_await control_->command(argv("ZRANGE", keys::relay_ended(), "0", "99"));
    for (const auto& s : due.elements) {
        auto pb = co_await control_->command(argv("HGET", keys::session(s.str), "ended_pb"));
        std::string ended_pb;
        if (!pb.is_nil()) ended_pb = pb.str;
        co_await purge(s.str, std::move(ended_pb));
    }
    co_return static_cast<int>(due.elements.size());
}

asio::awaitable<int> store::end_unseen(std::int64_t grace_ms) {
    // chats neither side joined within the grace; one a side did join (a relay died before it
    // could say so here) is only taken off the list
    auto due = co_await control_->command(argv("ZRANGEBYSCORE", keys::relay_unseen(), "-inf",
                                               std::to_string(now_() - grace_ms), "LIMIT", "0", "100"));
    for (const auto& s : due.elements) {
        auto seen = co_await chat_->command(argv("EXISTS", keys::relay(bucket_of(s.str), s.str)));
        if (seen.as_int() == 1) co_await control_->command(argv("ZREM", keys::relay_unseen(), s.str));
        else co_await finish(s.str, "peer_lost", "l");
    }
    co_return static_cast<int>(due.elements.size());
}

// ---- a side's requests ------------------------------------------------------------------------

asio::awaitable<outcome<hello_result>> store::hello(std::string session, char role, std::string node,
                                                    std::string conn_id, std::string public_key, std::int64_t lease_ms) {
    outcome<hello_result> out;
    std::vector<std::vector<std::string>> ask;
    ask.push_back(argv("HGET", keys::session(session), "state"));
    ask.push_back(argv("ZSCORE", keys::relay_unseen(), session));
    auto open = co_await control_->pipeline(std::move(ask));
    if (open[0].is_nil() || open[0].str != "active") {
        out.error.code = "NOT_FOUND";
        out.error.message = "This chat has ended.";
        co_return out;
    }
    const std::int64_t unseen_since = open[1].is_nil() ? 0 : static_cast<std::int64_t>(std::stod(open[1].str));
    if (!leased_) {
        // a lease before the first side it holds, so that its sides are let go if it dies
        // before its first presence sweep
        presence_settings p;
        p.node = node;
        p.lease_ms = lease_ms;
        co_await lease(p);
    }
    auto v = co_await run("hello", session, role,
                          argv(std::move(node), std::move(conn_id), std::move(public_key), std::to_string(unseen_since)));
    if (str_at(v, 0) == "keys_lost") {
        // a seeker here without the keys is still here: back to the front of the line
        co_await finish(session, "peer_lost", std::string(1, role), role == 's');
        out.error.code = "NOT_FOUND";
        if (role == 'l')
            out.error.message = "This chat was open on another device, which is gone, and its keys went with it, so it "
                                "has ended here. The person is back at the front of the line and will be matched "
                                "again quickly.";
        else
            out.error.message = "This chat's keys are not in this browser any more, so it has ended. You are back at "
                                "the front of the line, and we are finding someone for you now.";
        co_return out;
    }
    if (refused(v, out.error)) co_return out;
    if (unseen_since > 0) co_await control_->command(argv("ZREM", keys::relay_unseen(), session));
    out.value = hello_result{static_cast<std::uint64_t>(int_at(v, 1)), str_at(v, 2), int_at(v, 3),
                             static_cast<std::uint64_t>(int_at(v, 4))};
    co_return out;
}

asio::awaitable<outcome<bool>> store::send(std::string session, char role, std::uint64_t seq,
                                           std::string ciphertext, bool touch, std::string conn_id) {
    auto v = co_await run("send", std::move(session), role,
                          argv(std::to_string(seq), std::move(ciphertext), std::to_string(settings_.max_log),
                               std::to_string(settings_.window), touch ? "1" : "0", std::move(conn_id)));
    outcome<bool> out;
    if (!refused(v, out.error)) out.value = str_at(v, 1) == "stored";
    co_return out;
}

asio::awaitable<outcome<std::uint64_t>> store::skip(std::string session, char role, std::uint64_t through,
                                                    std::string conn_id) {
    auto v = co_await run("skip", std::move(session), role,
                          argv(std::to_string(through), std::to_string(settings_.max_log),
                               std::to_string(settings_.window), std::move(conn_id)));
    outcome<std::uint64_t> out;
    if (!refused(v, out.error)) out.value = static_cast<std::uint64_t>(int_at(v, 1));
    co_return out;
}

asio::awaitable<outcome<bool>> store::received(std::string session, char role, std::uint64_t through) {
    auto v = co_await run("received", std::move(session), role, argv(std::to_string(through)));
    outcome<bool> out;
    if (!refused(v, out.error)) out.value = true;
    co_return out;
}

asio::awaitable<outcome<bool>> store::signal(std::string session, char role, std::string kind, std::string value) {
    auto v = co_await run("signal", std::move(session), role, argv(std::move(kind), std::move(value)));
    outcome<bool> out;
    if (!refused(v, out.error)) out.value = true;
    co_return out;
}

asio::awaitable<void> store::gone(std::string session, char role, std::string conn_id) {
    co_await run("gone", std::move(session), role, argv(std::move(conn_id)));
}

asio::awaitable<outcome<bool>> store::end(std::string session, char role) {
    outcome<bool> out;
    std::string by = role == 's' ? "seeker" : "listener";
    if (co_await finish(std::move(session), std::move(by))) out.value = true;
    else out.error.message = "That chat is not open.", out.error.code = "NOT_FOUND";
    co_return out;
}

// ---- the sweeps -------------------------------------------------------------------------------

asio::awaitable<void> store::each_bucket(std::function<asio::awaitable<void>(int)> step) {
    // all at once: their commands share the connection's pipeline (one per node on a cluster),
    // so a sweep costs about one round trip, not 256; the first failure is rethrown once all
    // have finished
    auto ex = co_await asio::this_coro::executor;
    struct state {
        explicit state(asio::any_io_executor e) : done(e, asio::steady_timer::time_point::max()) {}
        int left = bucket_count;
        asio::steady_timer done;
        std::exception_ptr error;
    };
    auto st = std::make_shared<state>(ex);
    for (int b = 0; b < bucket_count; ++b)
        asio::co_spawn(ex, step(b), [st](std::exception_ptr e) {
            if (e && !st->error) st->error = e;
            if (--st->left == 0) st->done.cancel();
        });
    boost::system::error_code ec;
    co_await st->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (st->error) std::rethrow_exception(st->error);
}

asio::awaitable<bool> store::my_turn(const std::string& sweep, const std::string& node, std::int64_t every_ms) {
    // a little shorter than the interval, so that the next tick of any process finds it free
    auto v = co_await chat_->command(argv("SET", keys::relay_turn(sweep), node, "NX", "PX",
                                          std::to_string(std::max<std::int64_t>(1, every_ms * 9 / 10))));
    co_return !v.is_nil();
}

asio::awaitable<int> store::end_idle(std::int64_t since_unix_ms, int limit, std::int64_t every_ms,
                                     const std::string& node) {
    if (!co_await my_turn("idle", node, every_ms)) co_return 0;
    std::vector<std::string> idle;
    co_await each_bucket([&](int b) -> asio::awaitable<void> {
        auto v = co_await run("end_idle", "", 's', argv(std::to_string(since_unix_ms), std::to_string(limit)),
                              bucket_name(b));
        for (std::size_t i = 1; i < v.elements.size(); ++i) idle.push_back(v.elements[i].str);
    });
    int ended = 0;
    for (auto& s : idle)
        if (co_await finish(std::move(s), "idle")) ++ended;
    co_return ended;
}

asio::awaitable<std::vector<std::string>> store::lease(const presence_settings& p) {
    std::vector<std::string> lease_keys{keys::relay_nodes(), keys::relay_nodes_clock()};
    auto v = co_await chat_->eval(scripts_.at("lease"), std::move(lease_keys),
                                  argv(std::to_string(now_()), std::to_string(settings_.state_ttl_s), "", "s", p.node,
                                       std::to_string(p.lease_ms)));
    leased_ = true;
    std::vector<std::string> dead;
    for (std::size_t i = 1; i < v.elements.size(); ++i) dead.push_back(v.elements[i].str);
    co_return dead;
}

asio::awaitable<int> store::presence(const presence_settings& p) {
    const auto dead = co_await lease(p);
    int handled = 0;
    if (co_await my_turn("presence", p.node, p.sweep_ms)) {
        std::vector<std::string> lost;
        co_await each_bucket([&](int b) -> asio::awaitable<void> {
            auto args = argv(std::to_string(p.lease_ms), std::to_string(p.away_ms), std::to_string(p.grace_ms),
                             std::to_string(p.limit));
            args.insert(args.end(), dead.begin(), dead.end());
            auto v = co_await run("presence", "", 's', std::move(args), bucket_name(b));
            handled += static_cast<int>(int_at(v, 1));
            for (std::size_t i = 2; i < v.elements.size(); ++i) lost.push_back(v.elements[i].str);
        });
        for (const auto& side : lost) {
            auto [session, role] = split_side(side);
            if (role) co_await finish(session, "peer_lost", std::string(1, role));
        }
        // every bucket has let the dead processes' sides go: they can leave the lease list
        if (!dead.empty()) {
            auto args = argv(std::to_string(now_()), std::to_string(settings_.state_ttl_s), "", "s");
            args.insert(args.end(), dead.begin(), dead.end());
            std::vector<std::string> nodes_key{keys::relay_nodes()};
            co_await chat_->eval(scripts_.at("drop_nodes"), std::move(nodes_key), std::move(args));
        }
        // the control Redis's queues too: every relay doing them each tick purged the same chats
        // several times over
        handled += co_await drain_ended();
        handled += co_await end_unseen(p.grace_ms);
    }
    co_return handled;
}

asio::awaitable<void> store::node_sync(const presence_settings& p, std::vector<std::string> sides) {
    co_await lease(p);
    std::map<std::string, std::vector<std::string>> by_bucket;
    for (auto& s : sides) by_bucket[bucket_of(split_side(s).first)].push_back(std::move(s));
    co_await each_bucket([&](int b) -> asio::awaitable<void> {
        auto args = argv(p.node);
        auto it = by_bucket.find(bucket_name(b));
        if (it != by_bucket.end()) args.insert(args.end(), it->second.begin(), it->second.end());
        co_await run("node_sync", "", 's', std::move(args), bucket_name(b));
    });
}

// ---- reads ------------------------------------------------------------------------------------

asio::awaitable<std::vector<log_entry>> store::log_after(std::string session, char from, std::uint64_t after,
                                                         std::size_t count) {
    // entry ids are 0-<seq>: "(0-<after>" is the first id after it
    auto v = co_await chat_->command(argv("XRANGE", log_key(session, from), "(0-" + std::to_string(after), "+",
                                          "COUNT", std::to_string(count)));
    std::vector<log_entry> out;
    for (const auto& e : v.elements) {
        if (e.elements.size() < 2) continue;
        log_entry le;
        const std::string& id = e.elements[0].str;
        le.seq = std::stoull(id.substr(id.find('-') + 1));
        const auto& fields = e.elements[1].elements;
        for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
            if (fields[i].str == "c") le.ciphertext = fields[i + 1].str;
            else if (fields[i].str == "t") le.stored_ms = std::stoll(fields[i + 1].str);
            else if (fields[i].str == "g") le.lost_from = std::stoull(fields[i + 1].str);
        }
        out.push_back(std::move(le));
    }
    co_return out;
}

asio::awaitable<bool> store::use_ticket(std::string session, std::string ticket_hash, std::int64_t ttl_ms) {
    const auto key = keys::relay_ticket(bucket_of(session), ticket_hash.substr(0, 32));
    auto v = co_await chat_->command(argv("SET", key, "1", "PX", std::to_string(std::max<std::int64_t>(ttl_ms, 1000)), "NX"));
    co_return !v.is_nil();
}

asio::awaitable<bool> store::chat_open(std::string session) {
    auto v = co_await control_->command(argv("HGET", keys::session(session), "state"));
    co_return !v.is_nil() && v.str == "active";
}

asio::awaitable<std::string> store::peer_key(std::string session, char role) {
    auto v = co_await chat_->command(argv("HGET", keys::relay(bucket_of(session), session),
                                          std::string("pub_") + (role == 's' ? 'l' : 's')));
    co_return v.is_nil() ? std::string() : v.str;
}

}  // namespace warmline::relay
