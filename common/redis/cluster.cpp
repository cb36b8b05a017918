// The Redis Cluster client: the slot map (loaded with CLUSTER SLOTS from any node that answers),
// one `client` per primary (each with the whole connection life cycle of connection.cpp), and the
// routing of commands, pipelines and scripts by slot with MOVED, ASK, CLUSTERDOWN/TRYAGAIN and
// lost nodes handled as the Redis Cluster specification asks. State is behind one mutex, held
// only between awaits; the coroutines run on their callers' executors. Longer than most files:
// routing, the map and the node table share one lock and one set of invariants (a node client
// exists for every primary of the map; a refresh drops the others); split, they would be spread
// over files that each need the other's internals.
#include "common/redis/detail.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <utility>

namespace warmline::redis {

namespace asio = boost::asio;

namespace {

// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381"; the host may be empty (":6381",
// meaning the node that answered) or IPv6 (the port follows the last ':').
struct redirect {
    bool ask = false;
    std::uint16_t slot = 0;
    endpoint::address to;
};

std::optional<redirect> parse_redirect(const value& v) {
    if (!v.is_error()) return std::nullopt;
    redirect r;
    std::string_view rest;
    if (v.str.starts_with("MOVED ")) {
        rest = std::string_view(v.str).substr(6);
    } else if (v.str.starts_with("ASK ")) {
        r.ask = true;
        rest = std::string_view(v.str).substr(4);
    } else {
        return std::nullopt;
    }
    const auto space = rest.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    unsigned slot = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + space, slot);
    if (ec != std::errc{} || end != rest.data() + space || slot >= cluster_slot_count) return std::nullopt;
    const std::string_view where = rest.substr(space + 1);
    const auto colon = where.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    unsigned port = 0;
    auto [pend, pec] = std::from_chars(where.data() + colon + 1, where.data() + where.size(), port);
    if (pec != std::errc{} || pend != where.data() + where.size() || port == 0 || port > 65535) return std::nullopt;
    r.slot = static_cast<std::uint16_t>(slot);
    r.to.host = std::string(where.substr(0, colon));
    if (r.to.host.size() > 2 && r.to.host.front() == '[' && r.to.host.back() == ']')
        r.to.host = r.to.host.substr(1, r.to.host.size() - 2);
    r.to.port = static_cast<std::uint16_t>(port);
    return r;
}

// The cluster cannot serve the slot right now (a failover, a multi-key command during a move):
// worth trying again shortly, unlike any other error reply.
bool transient_cluster_error(const value& v) {
    return v.is_error() && (v.str.starts_with("CLUSTERDOWN") || v.str.starts_with("TRYAGAIN"));
}

bool is_transaction(const std::vector<std::string>& cmd) {
    std::string name = cmd.front();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return name == "MULTI" || name == "EXEC" || name == "DISCARD" || name == "WATCH" || name == "UNWATCH";
}

void check_cluster_commands(const std::vector<std::vector<std::string>>& cmds) {
    detail::check_commands(cmds);
    for (const auto& c : cmds)
        if (is_transaction(c))
            throw std::invalid_argument(
                "MULTI/EXEC/WATCH are not allowed on a redis::cluster_client (their commands could reach "
                "different nodes); use a Lua script");
}

asio::awaitable<void> pause_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

}  // namespace

struct cluster_client::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor ex, client_options opts) : ex_(std::move(ex)), opts_(std::move(opts)) {
        owner_.fill(-1);
    }

    // ---- the map and the node clients (any thread, under mutex_)

    bool map_loaded() const {
        std::lock_guard lock(mutex_);
        return !primaries_.empty();
    }

    // Where a command for `slot` goes now: the slot's primary, or any primary for a keyless
    // command or a slot the map does not cover (that node answers MOVED if it is wrong).
    std::optional<endpoint::address> target(std::optional<std::uint16_t> slot) {
        std::lock_guard lock(mutex_);
        if (primaries_.empty()) return std::nullopt;
        if (slot && owner_[*slot] >= 0) return primaries_[static_cast<std::size_t>(owner_[*slot])];
        return primaries_[next_any_++ % primaries_.size()];
    }

    // The node's client, created (and started) if there is none; `fresh` says it was.
    std::shared_ptr<client> node(const endpoint::address& a, bool& fresh) {
        std::lock_guard lock(mutex_);
        if (!running_) throw unavailable("the Redis cluster client was stopped");
        const std::string key = detail::describe(a);
        auto it = nodes_.find(key);
        fresh = it == nodes_.end();
        if (!fresh) return it->second;
        auto c = client::create(ex_, detail::node_options(opts_, a));
        std::weak_ptr<impl> weak = shared_from_this();
        c->on_state_change([weak](bool) {
            if (auto self = weak.lock()) self->report_state();
        });
        c->start();
        nodes_.emplace(key, c);
        return c;
    }

    void note_moved(const redirect& r) {
        {
            std::lock_guard lock(mutex_);
            ++stats_.moved;
            auto it = std::find(primaries_.begin(), primaries_.end(), r.to);
            if (it == primaries_.end()) it = primaries_.insert(primaries_.end(), r.to);
            owner_[r.slot] = static_cast<std::int16_t>(it - primaries_.begin());
        }
        // One slot moved usually means more did (a reshard, a failover): load the whole map.
        refresh_in_background();
    }

    void set_last_error(std::string e) {
        std::lock_guard lock(mutex_);
        last_error_ = std::move(e);
    }

    // ---- sending

    // The commands on the node at `a`, as one pipeline. Throws unavailable if the node cannot be
    // reached: a fresh client gets one connection attempt, a known one that is down none.
    asio::awaitable<std::vector<value>> send_to(endpoint::address a, std::vector<std::vector<std::string>> cmds) {
        bool fresh = false;
        auto c = node(a, fresh);
        if (!c->connected()) {
            if (!fresh) throw unavailable("not connected to cluster node " + detail::describe(a));
            co_await detail::client_access::wait_attempt(*c, opts_.connect_timeout);
        }
        co_return co_await c->pipeline(std::move(cmds));
    }

    // Run `cmds` (one unit: a command, or SCRIPT LOAD and EVALSHA) on the node for `slot`,
    // following redirections and retrying unreachable nodes; returns the last command's reply,
    // error replies included. `ask_first`: the unit already got ASK towards that node.
    asio::awaitable<value> run_unit(std::vector<std::vector<std::string>> cmds, std::optional<std::uint16_t> slot,
                                    std::optional<endpoint::address> ask_first = std::nullopt) {
        int redirects = 0;
        int failures = 0;
        std::optional<endpoint::address> ask_to = std::move(ask_first);
        std::string why;
        while (true) {
            std::optional<endpoint::address> where = ask_to;
            if (!where) where = target(slot);
            std::vector<value> replies;
            bool lost = false;
            if (!where) {
                lost = true;
                std::lock_guard lock(mutex_);
                why = last_error_.empty() ? "no slot map yet" : last_error_;
            } else {
                std::vector<std::vector<std::string>> batch = cmds;
                // ASKING lets exactly the next command through, so it goes right before the last.
                if (ask_to) batch.insert(batch.end() - 1, std::vector<std::string>{"ASKING"});
                try {
                    replies = co_await send_to(*where, std::move(batch));
                } catch (const unavailable& e) {
                    lost = true;
                    why = e.what();
                }
            }
            ask_to.reset();
            if (!lost) {
                value v = std::move(replies.back());
                if (auto r = parse_redirect(v)) {
                    if (++redirects > opts_.cluster_redirects) co_return v;
                    if (r->to.host.empty()) r->to.host = where->host;
                    if (r->ask) {
                        std::lock_guard lock(mutex_);
                        ++stats_.asked;
                        ask_to = r->to;
                    } else {
                        note_moved(*r);
                    }
                    continue;
                }
                if (!transient_cluster_error(v)) co_return v;
                why = v.str;
            }
            if (++failures >= opts_.cluster_attempts)
                throw unavailable("Redis cluster: no answer for the command after " + std::to_string(failures) +
                                  " tries (" + why + ")");
            {
                std::lock_guard lock(mutex_);
                ++stats_.retries;
            }
            co_await pause_for(backoff(failures));
            co_await refresh_quietly();
        }
    }

    std::chrono::milliseconds backoff(int failures) const {
        auto d = opts_.backoff_initial;
        for (int i = 1; i < failures && d < opts_.backoff_max; ++i) d *= 2;
        return std::min(d, opts_.backoff_max);
    }

    struct group_result {
        bool lost = false;
        std::vector<value> replies;
    };

    // One node's share of a pipeline; an unreachable node is an answer here, not an exception.
    asio::awaitable<group_result> send_group(endpoint::address a, std::vector<std::vector<std::string>> batch) {
        group_result r;
        try {
            r.replies = co_await send_to(std::move(a), std::move(batch));
        } catch (const unavailable&) {
            r.lost = true;
        }
        co_return r;
    }

    asio::awaitable<std::vector<value>> pipeline(std::vector<std::vector<std::string>> cmds) {
        if (!map_loaded()) co_await refresh_quietly();
        // Group by node, in order of first appearance.
        std::vector<std::pair<std::optional<endpoint::address>, std::vector<std::size_t>>> groups;
        std::vector<std::optional<std::uint16_t>> slots(cmds.size());
        for (std::size_t i = 0; i < cmds.size(); ++i) {
            slots[i] = command_slot(cmds[i]);
            auto where = target(slots[i]);
            auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == where; });
            if (g == groups.end()) g = groups.insert(groups.end(), {where, {}});
            g->second.push_back(i);
        }
        std::vector<std::optional<value>> results(cmds.size());
        // Commands that need another try, and the node an ASK named for them.
        std::vector<std::pair<std::size_t, std::optional<endpoint::address>>> again;
        // Every node's group at once: the pipeline takes as long as its slowest node, not the sum.
        const auto ex = co_await asio::this_coro::executor;
        using send_op = decltype(asio::co_spawn(ex, send_group(endpoint::address{}, {}), asio::deferred));
        std::vector<send_op> sends;
        std::vector<std::size_t> sent_groups;
        for (std::size_t g = 0; g < groups.size(); ++g) {
            const auto& [where, indexes] = groups[g];
            if (!where) {
                for (auto i : indexes) again.emplace_back(i, std::nullopt);
                continue;
            }
            std::vector<std::vector<std::string>> batch;
            for (auto i : indexes) batch.push_back(cmds[i]);
            sends.push_back(asio::co_spawn(ex, send_group(*where, std::move(batch)), asio::deferred));
            sent_groups.push_back(g);
        }
        std::vector<group_result> answers;
        if (!sends.empty()) {
            auto [order, errors, got] = co_await asio::experimental::make_parallel_group(std::move(sends))
                                            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
            for (auto& e : errors)
                if (e) std::rethrow_exception(e);  // not `unavailable` (send_group keeps those): a bug or no memory
            answers = std::move(got);
        }
        for (std::size_t n = 0; n < sent_groups.size(); ++n) {
            const auto& [where, indexes] = groups[sent_groups[n]];
            const bool lost = answers[n].lost;
            auto& replies = answers[n].replies;
            for (std::size_t k = 0; k < indexes.size(); ++k) {
                const std::size_t i = indexes[k];
                if (lost) {
                    again.emplace_back(i, std::nullopt);
                } else if (auto r = parse_redirect(replies[k])) {
                    if (r->to.host.empty()) r->to.host = where->host;
                    if (r->ask) {
                        {
                            std::lock_guard lock(mutex_);
                            ++stats_.asked;
                        }
                        again.emplace_back(i, r->to);
                    } else {
                        note_moved(*r);
                        again.emplace_back(i, std::nullopt);
                    }
                } else if (transient_cluster_error(replies[k])) {
                    again.emplace_back(i, std::nullopt);
                } else {
                    results[i] = std::move(replies[k]);
                }
            }
        }
        std::sort(again.begin(), again.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (auto& [i, ask] : again) {
            std::vector<std::vector<std::string>> unit;
            unit.push_back(cmds[i]);
            results[i] = co_await run_unit(std::move(unit), slots[i], ask);
        }
        std::vector<value> out;
        out.reserve(results.size());
        for (auto& r : results) out.push_back(std::move(*r));
        co_return out;
    }

    // ---- the slot map

    // Load the map from the first node that answers: the primaries we know, then the seeds.
    asio::awaitable<void> refresh() {
        std::vector<endpoint::address> candidates;
        {
            std::lock_guard lock(mutex_);
            candidates = primaries_;
            for (const auto& s : opts_.where.cluster_nodes)
                if (std::find(candidates.begin(), candidates.end(), s) == candidates.end()) candidates.push_back(s);
            // Connected nodes first: an unreachable one may cost a connect attempt.
            std::stable_partition(candidates.begin(), candidates.end(), [&](const endpoint::address& a) {
                auto it = nodes_.find(detail::describe(a));
                return it != nodes_.end() && it->second->connected();
            });
        }
        std::string errors;
        for (const auto& a : candidates) {
            std::string error;
            try {
                std::vector<std::vector<std::string>> ask;
                ask.push_back({"CLUSTER", "SLOTS"});
                auto replies = co_await send_to(a, std::move(ask));
                if (apply_map(replies.at(0), a)) co_return;
                error = replies[0].is_error() ? replies[0].str : "no usable answer to CLUSTER SLOTS";
            } catch (const unavailable& e) {
                error = e.what();
            }
            if (!errors.empty()) errors += "; ";
            errors += detail::describe(a) + ": " + error;
        }
        std::string message = "no Redis cluster node gave the slot map (" + errors + ")";
        set_last_error(message);
        throw unavailable(message);
    }

    // One refresh at a time: when a node dies, every command waiting on it would otherwise ask
    // for the map at once. A caller that finds one in flight goes on (its backoff gives the
    // refresh time) instead of adding another.
    asio::awaitable<void> refresh_quietly() {
        if (refreshing_.exchange(true)) co_return;
        struct reset {
            std::atomic<bool>& flag;
            ~reset() { flag = false; }
        } guard{refreshing_};
        try {
            co_await refresh();
        } catch (const unavailable&) {
            // The caller's next try fails, and counts, on its own.
        }
    }

    void refresh_in_background() {
        if (refreshing_.load()) return;
        asio::co_spawn(
            ex_, [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->refresh_quietly(); },
            asio::detached);
    }

    // CLUSTER SLOTS as `from` answered it. Returns false if the answer is unusable (an error, or
    // a node that is not in a cluster).
    bool apply_map(const value& v, const endpoint::address& from) {
        auto parsed = detail::parse_slot_map(v, from);
        if (!parsed) return false;
        const auto& primaries = parsed->primaries;
        std::vector<std::shared_ptr<client>> dropped;
        std::vector<endpoint::address> connect;
        bool changed = false;
        {
            std::lock_guard lock(mutex_);
            if (!running_) return true;
            changed = primaries != primaries_;
            primaries_ = primaries;
            owner_ = parsed->owner;
            ++stats_.refreshes;
            last_error_.clear();
            // Nodes that are not primaries any more (failed, demoted, or seeds only): close.
            for (auto it = nodes_.begin(); it != nodes_.end();) {
                const bool keep = std::any_of(primaries_.begin(), primaries_.end(),
                                              [&](const auto& p) { return detail::describe(p) == it->first; });
                if (keep) {
                    ++it;
                } else {
                    dropped.push_back(std::move(it->second));
                    it = nodes_.erase(it);
                }
            }
            for (const auto& p : primaries_)
                if (!nodes_.contains(detail::describe(p))) connect.push_back(p);
        }
        for (auto& c : dropped) c->stop();
        for (const auto& p : connect) {
            bool fresh = false;
            try {
                node(p, fresh);
            } catch (const unavailable&) {
            }
        }
        report_state();
        if (changed) {
            std::string list;
            for (const auto& p : primaries) list += (list.empty() ? "" : ", ") + detail::describe(p);
            spdlog::info("redis cluster: slot map from {}: {} primaries ({})", detail::describe(from),
                         primaries.size(), list);
        }
        return true;
    }

    void start() {
        {
            std::lock_guard lock(mutex_);
            if (running_) return;
            running_ = true;
        }
        refresh_in_background();
    }

    void stop() {
        std::map<std::string, std::shared_ptr<client>> nodes;
        {
            std::lock_guard lock(mutex_);
            running_ = false;
            nodes.swap(nodes_);
        }
        for (auto& [name, c] : nodes) c->stop();
    }

    // Tell the state handler when connected() changed (a node client's state, or the map).
    void report_state() {
        const bool up = connected();
        std::function<void(bool)> f;
        {
            std::lock_guard lock(mutex_);
            // nothing to report before the first time it is up (a client's first connect is
            // not a loss either)
            if ((reported_ && *reported_ == up) || (!reported_ && !up)) return;
            reported_ = up;
            f = on_state_;
        }
        if (f) f(up);
    }

    bool connected() const {
        std::lock_guard lock(mutex_);
        if (primaries_.empty()) return false;
        return std::all_of(primaries_.begin(), primaries_.end(), [&](const auto& p) {
            auto it = nodes_.find(detail::describe(p));
            return it != nodes_.end() && it->second->connected();
        });
    }

    asio::any_io_executor ex_;
    client_options opts_;
    std::atomic<bool> refreshing_{false};

    mutable std::mutex mutex_;
    bool running_ = false;
    std::array<std::int16_t, cluster_slot_count> owner_;  // index into primaries_, -1: unknown
    std::vector<endpoint::address> primaries_;
    std::map<std::string, std::shared_ptr<client>> nodes_;  // by "host:port"
    std::function<void(bool)> on_state_;
    std::optional<bool> reported_;
    std::size_t next_any_ = 0;
    counters stats_;
    std::string last_error_;
};

std::shared_ptr<cluster_client> cluster_client::create(asio::any_io_executor ex, client_options opts) {
    if (!opts.where.is_cluster())
        throw std::invalid_argument("redis::cluster_client needs a redis-cluster:// endpoint");
    auto p = std::make_shared<impl>(std::move(ex), std::move(opts));
    return std::shared_ptr<cluster_client>(new cluster_client(std::move(p)));
}

cluster_client::cluster_client(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
cluster_client::~cluster_client() { impl_->stop(); }

void cluster_client::start() { impl_->start(); }
void cluster_client::stop() { impl_->stop(); }
bool cluster_client::connected() const { return impl_->connected(); }

std::string cluster_client::last_error() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->last_error_;
}

asio::awaitable<void> cluster_client::wait_connected(std::chrono::milliseconds timeout) {
    auto p = impl_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int failures = 0;
    while (!p->map_loaded()) {
        std::string why;
        try {
            co_await p->refresh();
            break;
        } catch (const unavailable& e) {
            why = e.what();
        }
        if (std::chrono::steady_clock::now() >= deadline)
            throw unavailable(why + " (waited " + std::to_string(timeout.count()) + " ms)");
        co_await pause_for(p->backoff(++failures));
    }
    std::vector<std::shared_ptr<client>> nodes;
    {
        std::lock_guard lock(p->mutex_);
        for (const auto& [name, c] : p->nodes_) nodes.push_back(c);
    }
    for (auto& c : nodes) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        co_await c->wait_connected(std::max(left, std::chrono::milliseconds(1)));
    }
}

asio::awaitable<value> cluster_client::command(std::vector<std::string> args) {
    auto p = impl_;
    std::vector<std::vector<std::string>> unit;
    unit.push_back(std::move(args));
    check_cluster_commands(unit);
    const auto slot = command_slot(unit.front());
    if (!p->map_loaded()) co_await p->refresh_quietly();
    value v = co_await p->run_unit(std::move(unit), slot);
    if (v.is_error()) detail::throw_error_reply(v.str);
    co_return v;
}

asio::awaitable<value> cluster_client::command_near(std::string key, std::vector<std::string> args) {
    auto p = impl_;
    std::vector<std::vector<std::string>> unit;
    unit.push_back(std::move(args));
    check_cluster_commands(unit);
    if (!p->map_loaded()) co_await p->refresh_quietly();
    value v = co_await p->run_unit(std::move(unit), key_slot(key));
    if (v.is_error()) detail::throw_error_reply(v.str);
    co_return v;
}

void cluster_client::on_state_change(std::function<void(bool up)> f) {
    std::lock_guard lock(impl_->mutex_);
    impl_->on_state_ = std::move(f);
}

asio::awaitable<std::vector<value>> cluster_client::pipeline(std::vector<std::vector<std::string>> cmds) {
    auto p = impl_;
    check_cluster_commands(cmds);
    if (cmds.empty()) co_return std::vector<value>{};
    co_return co_await p->pipeline(std::move(cmds));
}

asio::awaitable<value> cluster_client::eval(const script& s, std::vector<std::string> keys,
                                            std::vector<std::string> args) {
    auto p = impl_;
    const std::optional<std::uint16_t> slot =
        keys.empty() ? std::nullopt : std::optional<std::uint16_t>(key_slot(keys.front()));
    std::vector<std::string> evalsha{"EVALSHA", s.sha1(), std::to_string(keys.size())};
    evalsha.insert(evalsha.end(), std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
    evalsha.insert(evalsha.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));

    if (!p->map_loaded()) co_await p->refresh_quietly();
    std::vector<std::vector<std::string>> first;
    first.push_back(evalsha);
    value result = co_await p->run_unit(std::move(first), slot);
    if (result.is_error() && result.str.starts_with("NOSCRIPT")) {
        // This node has not seen the script (each node has its own cache): load it there and
        // run it in one round trip; a redirection takes both to the node that serves the slot.
        std::vector<std::vector<std::string>> load_and_retry;
        load_and_retry.push_back({"SCRIPT", "LOAD", s.source()});
        load_and_retry.push_back(std::move(evalsha));
        result = co_await p->run_unit(std::move(load_and_retry), slot);
    }
    if (result.is_error()) detail::throw_error_reply(result.str);
    co_return result;
}

std::optional<endpoint::address> cluster_client::slot_owner(std::uint16_t slot) const {
    std::lock_guard lock(impl_->mutex_);
    if (slot >= cluster_slot_count || impl_->owner_[slot] < 0) return std::nullopt;
    return impl_->primaries_[static_cast<std::size_t>(impl_->owner_[slot])];
}

std::uint64_t cluster_client::link_id_near(std::string_view key) const {
    std::lock_guard lock(impl_->mutex_);
    const auto slot = key_slot(key);
    if (impl_->owner_[slot] < 0) return 0;
    auto it = impl_->nodes_.find(detail::describe(impl_->primaries_[static_cast<std::size_t>(impl_->owner_[slot])]));
    return it == impl_->nodes_.end() ? 0 : it->second->link_id();
}

cluster_client::counters cluster_client::stats() const {
    std::lock_guard lock(impl_->mutex_);
    return impl_->stats_;
}

}  // namespace warmline::redis
