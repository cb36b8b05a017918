// Sharded pub/sub on a Redis Cluster: which primary carries each shard channel (by the slot map
// of CLUSTER SLOTS, parsed by slots.cpp), one `subscriber` per such primary (subscriber.cpp does
// the SSUBSCRIBE on each connection), and moving channels when the map changes: a node's
// connection drops, Redis refuses an SSUBSCRIBE with MOVED, or drops a channel whose slot moved.
// All state lives on one strand; the node subscribers report to it by posting.
#include "common/redis/detail.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <tuple>
#include <utility>

namespace warmline::redis {

namespace asio = boost::asio;

struct cluster_subscriber::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor ex, client_options opts)
        : ex_(std::move(ex)),
          strand_(asio::make_strand(ex_)),
          opts_(std::move(opts)),
          retry_timer_(strand_),
          reload_backoff_(opts_.backoff_initial) {}

    struct channel_state {
        handler on_message;
        std::uint16_t slot = 0;
        std::string node;  // "host:port" of the node it is subscribed on; empty: none yet
        bool confirmed = false;
    };

    struct node_state {
        std::shared_ptr<subscriber> sub;
        std::uint64_t id = 0;  // tells a late report of a replaced subscriber from the current one's
    };

    // ---- any thread: each posts to the strand

    void ssubscribe(std::string channel, handler h) {
        asio::post(strand_, [self = shared_from_this(), channel = std::move(channel), h = std::move(h)]() mutable {
            auto [it, added] = self->channels_.try_emplace(channel);
            it->second.on_message = std::move(h);
            if (added) {
                it->second.slot = key_slot(it->first);
            } else if (auto n = self->nodes_.find(it->second.node); n != self->nodes_.end()) {
                n->second.sub->ssubscribe(it->first, it->second.on_message);  // the new handler
            }
            if (self->running_ && self->map_) self->place(it->first, it->second);
            self->update();
        });
    }

    void start() {
        asio::post(strand_, [self = shared_from_this()] {
            if (self->running_) return;
            self->running_ = true;
            self->reload();
        });
    }

    void stop() {
        asio::post(strand_, [self = shared_from_this()] {
            self->running_ = false;
            self->retry_timer_.cancel();
            if (auto probe = std::exchange(self->asking_, nullptr)) probe->stop();
            for (auto& [key, node] : self->nodes_) node.sub->stop();
            self->nodes_.clear();
            for (auto& [name, state] : self->channels_) {
                state.node.clear();
                state.confirmed = false;
            }
            self->update();
        });
    }

    // ---- strand only

    // Subscribe `name` on the primary that serves its slot, if that is not where it is.
    void place(const std::string& name, channel_state& c) {
        const auto owner = map_->owner_of(c.slot);
        const std::string key = owner ? detail::describe(*owner) : std::string();
        if (key == c.node) return;
        if (!c.node.empty()) {
            // A move, not a first subscription: messages may have been missed meanwhile.
            resync_pending_ = true;
            if (auto old = nodes_.find(c.node); old != nodes_.end())
                detail::subscriber_access::forget(*old->second.sub, name);
        }
        c.node = key;
        c.confirmed = false;
        if (owner) node(*owner).sub->ssubscribe(name, c.on_message);
    }

    node_state& node(const endpoint::address& a) {
        const std::string key = detail::describe(a);
        if (auto it = nodes_.find(key); it != nodes_.end()) return it->second;
        node_state n;
        n.id = ++node_ids_;
        n.sub = subscriber::create(ex_, detail::node_options(opts_, a));
        std::weak_ptr<impl> weak = weak_from_this();
        // Each report goes to our strand, and counts only if it comes from the current
        // subscriber of that node.
        auto report = [weak, key, id = n.id](auto f) {
            return [weak, key, id, f](auto... args) {
                if (auto self = weak.lock())
                    asio::post(self->strand_, [self, key, id, f, a = std::make_tuple(std::string(args)...)] {
                        auto it = self->nodes_.find(key);
                        if (it == self->nodes_.end() || it->second.id != id) return;
                        std::apply([&](const auto&... s) { f(*self, key, s...); }, a);
                    });
            };
        };
        detail::shard_hooks hooks;
        hooks.per_slot = true;
        hooks.confirmed = report([](impl& self, const std::string& key, const std::string& channel) {
            auto it = self.channels_.find(channel);
            if (it == self.channels_.end() || it->second.node != key) return;
            it->second.confirmed = true;
            self.update();
        });
        hooks.dropped = report([](impl& self, const std::string& key, const std::string& channel) {
            spdlog::info("redis cluster subscriber: {} unsubscribed shard channel {} (its slot moved)", key, channel);
            if (auto it = self.channels_.find(channel); it != self.channels_.end() && it->second.node == key)
                it->second.confirmed = false;
            self.update();
            self.refused_ = true;
            self.reload();
        });
        hooks.refused = report([](impl& self, const std::string& key, const std::string& error) {
            spdlog::info("redis cluster subscriber: {} refused SSUBSCRIBE: {}", key, error);
            self.refused_ = true;
            self.reload();
        });
        hooks.lost = report([](impl& self, const std::string& key) {
            for (auto& [name, state] : self.channels_)
                if (state.node == key) state.confirmed = false;
            self.update();
            self.reload();
        });
        detail::subscriber_access::set_shard_hooks(*n.sub, std::move(hooks));
        n.sub->on_resubscribed(report([](impl& self, const std::string&) {
            self.resync_pending_ = true;
            self.update();
        }));
        n.sub->start();
        return nodes_.emplace(key, std::move(n)).first->second;
    }

    // ---- the slot map

    // Load the map, unless a load is under way (it looks again before it ends).
    void reload() {
        if (!running_) return;
        if (std::exchange(reloading_, true)) {
            reload_again_ = true;
            return;
        }
        asio::co_spawn(strand_, reload_loop(shared_from_this()), asio::detached);
    }

    // Until the map is loaded and every node we use is reachable: while a primary is down, the
    // map keeps naming it until the cluster fails it over, so look again (with backoff).
    asio::awaitable<void> reload_loop(std::shared_ptr<impl> /*keep_alive*/) {
        while (running_) {
            reload_again_ = false;
            if (auto m = co_await fetch_map()) {
                if (!running_) break;
                apply(std::move(*m));
                if (!reload_again_ && settled()) {
                    reload_backoff_ = opts_.backoff_initial;
                    break;
                }
            }
            if (!running_) break;
            retry_timer_.expires_after(reload_backoff_);
            reload_backoff_ = std::min(reload_backoff_ * 2, opts_.backoff_max);
            co_await retry_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        reloading_ = false;
    }

    // Every channel has an owner, and every node we subscribe on is connected.
    bool settled() const {
        return std::all_of(channels_.begin(), channels_.end(), [](const auto& c) { return !c.second.node.empty(); }) &&
               std::all_of(nodes_.begin(), nodes_.end(), [](const auto& n) { return n.second.sub->connected(); });
    }

    // CLUSTER SLOTS from the first node that answers: the primaries we know, then the seeds. A
    // short-lived connection each: this is rare, and the node subscribers cannot run commands.
    asio::awaitable<std::optional<detail::slot_map>> fetch_map() {
        std::vector<endpoint::address> candidates;
        if (map_) candidates = map_->primaries;
        for (const auto& s : opts_.where.cluster_nodes)
            if (std::find(candidates.begin(), candidates.end(), s) == candidates.end()) candidates.push_back(s);
        // Connected nodes first: an unreachable one may cost a connect attempt.
        std::stable_partition(candidates.begin(), candidates.end(), [&](const endpoint::address& a) {
            auto it = nodes_.find(detail::describe(a));
            return it != nodes_.end() && it->second.sub->connected();
        });
        std::string errors;
        for (const auto& a : candidates) {
            if (!running_) co_return std::nullopt;
            std::string error;
            auto c = client::create(ex_, detail::node_options(opts_, a));
            asking_ = c;
            c->start();
            try {
                co_await detail::client_access::wait_attempt(*c, opts_.connect_timeout);
                // Not a braced list in a statement that co_awaits (GCC 12, see common/argv.hpp).
                std::vector<std::string> cluster_slots{"CLUSTER", "SLOTS"};
                const value v = co_await c->command(std::move(cluster_slots));
                if (auto m = detail::parse_slot_map(v, a)) {
                    c->stop();
                    co_return m;
                }
                error = "no usable answer to CLUSTER SLOTS";
            } catch (const std::exception& e) {  // unavailable, reply_error
                error = e.what();
            }
            c->stop();
            errors += (errors.empty() ? "" : "; ") + detail::describe(a) + ": " + error;
        }
        if (running_ && !std::exchange(map_error_logged_, true))
            spdlog::warn("redis cluster subscriber: no node gave the slot map ({}); retrying", errors);
        co_return std::nullopt;
    }

    void apply(detail::slot_map m) {
        if (!map_ || map_->primaries != m.primaries) {
            std::string list;
            for (const auto& p : m.primaries) list += (list.empty() ? "" : ", ") + detail::describe(p);
            spdlog::info("redis cluster subscriber: {} primaries ({})", m.primaries.size(), list);
        }
        map_error_logged_ = false;
        map_ = std::move(m);
        for (auto& [name, state] : channels_) place(name, state);
        // Nodes that carry none of our channels now (failed, demoted, resharded away): close.
        for (auto it = nodes_.begin(); it != nodes_.end();) {
            const bool used = std::any_of(channels_.begin(), channels_.end(),
                                          [&](const auto& c) { return c.second.node == it->first; });
            if (used) {
                ++it;
            } else {
                it->second.sub->stop();
                it = nodes_.erase(it);
            }
        }
        // A refused or dropped channel that stays where it was: ask again.
        if (std::exchange(refused_, false))
            for (auto& [key, n] : nodes_) detail::subscriber_access::resend(*n.sub);
        update();
    }

    // ---- state

    void update() {
        const bool up = running_ && map_ &&
                        std::all_of(channels_.begin(), channels_.end(), [](const auto& c) { return c.second.confirmed; });
        connected_ = up;
        if (up != reported_up_) {
            reported_up_ = up;
            call("on_state_change", [&] {
                if (on_state_) on_state_(up);
            });
        }
        if (up) {
            for (auto* w : waiters_) w->cancel();
            if (std::exchange(resync_pending_, false))
                call("on_resubscribed", [&] {
                    if (on_resubscribed_) on_resubscribed_();
                });
        } else if (!running_) {
            for (auto* w : waiters_) w->cancel();
        }
    }

    template <typename F>
    static void call(const char* what, F f) {
        try {
            f();
        } catch (const std::exception& e) {
            spdlog::error("redis cluster subscriber: {} threw: {}", what, e.what());
        }
    }

    // Runs on the strand.
    asio::awaitable<void> wait(std::chrono::milliseconds timeout) {
        auto self = shared_from_this();
        asio::steady_timer timer(strand_, timeout);
        while (!connected_) {
            if (!running_) throw unavailable("the Redis cluster subscriber is stopped");
            waiters_.push_back(&timer);
            auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            std::erase(waiters_, &timer);
            if (!ec && !connected_)
                throw unavailable("Redis cluster: not every shard channel is subscribed (waited " +
                                  std::to_string(timeout.count()) + " ms)");
        }
    }

    asio::any_io_executor ex_;
    asio::strand<asio::any_io_executor> strand_;
    client_options opts_;
    std::map<std::string, channel_state, std::less<>> channels_;
    std::map<std::string, node_state> nodes_;  // by "host:port"
    std::uint64_t node_ids_ = 0;
    std::optional<detail::slot_map> map_;
    std::shared_ptr<client> asking_;  // the connection asking for the map, if any
    asio::steady_timer retry_timer_;
    std::chrono::milliseconds reload_backoff_;
    bool running_ = false;
    bool reloading_ = false;
    bool reload_again_ = false;
    bool refused_ = false;
    bool map_error_logged_ = false;
    bool resync_pending_ = false;
    bool reported_up_ = false;
    std::atomic<bool> connected_{false};
    std::vector<asio::steady_timer*> waiters_;
    std::function<void()> on_resubscribed_;
    std::function<void(bool)> on_state_;
};

std::shared_ptr<cluster_subscriber> cluster_subscriber::create(asio::any_io_executor ex, client_options opts) {
    if (!opts.where.is_cluster())
        throw std::invalid_argument("redis::cluster_subscriber needs a redis-cluster:// endpoint");
    auto p = std::make_shared<impl>(std::move(ex), std::move(opts));
    return std::shared_ptr<cluster_subscriber>(new cluster_subscriber(std::move(p)));
}

cluster_subscriber::cluster_subscriber(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
cluster_subscriber::~cluster_subscriber() { impl_->stop(); }

void cluster_subscriber::ssubscribe(std::string channel, handler h) {
    impl_->ssubscribe(std::move(channel), std::move(h));
}

void cluster_subscriber::on_resubscribed(std::function<void()> f) {
    asio::post(impl_->strand_, [p = impl_, f = std::move(f)]() mutable { p->on_resubscribed_ = std::move(f); });
}

void cluster_subscriber::on_state_change(std::function<void(bool up)> f) {
    asio::post(impl_->strand_, [p = impl_, f = std::move(f)]() mutable { p->on_state_ = std::move(f); });
}

void cluster_subscriber::start() { impl_->start(); }
void cluster_subscriber::stop() { impl_->stop(); }
bool cluster_subscriber::connected() const { return impl_->connected_.load(); }

asio::awaitable<void> cluster_subscriber::wait_subscribed(std::chrono::milliseconds timeout) {
    auto p = impl_;
    co_await asio::co_spawn(p->strand_, p->wait(timeout), asio::use_awaitable);
}

}  // namespace warmline::redis
