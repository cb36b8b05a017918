// The pub/sub subscriber: a dedicated connection that subscribes every channel and shard channel
// again after each reconnect (then calls on_resubscribed), dispatches messages by channel, and
// PINGs a connection that has nothing in flight so a stalled Redis is noticed. The same class,
// pointed at the sentinels, is the watch that reports +switch-master (make_switch_watch), and,
// pointed at one cluster node, what cluster_subscriber.cpp keeps per primary.
#include "common/redis/detail.hpp"

#include "common/crypto.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <map>
#include <utility>

// The standing callback below is written against hiredis 0.14's async.c; another version
// routes pub/sub replies differently (1.x knows SSUBSCRIBE and RESP3 pushes) and needs a re-read.
static_assert(HIREDIS_MAJOR == 0 && HIREDIS_MINOR == 14, "re-read subscriber.cpp's notes on hiredis for this version");

namespace warmline::redis {

namespace asio = boost::asio;

namespace {

// A command in Redis's wire format (RESP), for the commands hiredis must not see as commands.
std::string resp_command(std::string_view name, const std::vector<std::string_view>& args) {
    std::string out = "*" + std::to_string(args.size() + 1) + "\r\n";
    auto add = [&out](std::string_view a) {
        out += "$" + std::to_string(a.size()) + "\r\n";
        out += a;
        out += "\r\n";
    };
    add(name);
    for (auto a : args) add(a);
    return out;
}

// Channels per (S)SUBSCRIBE command (a single server takes any mix of slots): one write for
// many channels, without an unbounded command.
constexpr std::size_t max_channels_per_command = 512;

}  // namespace

struct subscriber::impl : detail::connection {
    impl(asio::any_io_executor ex, client_options opts, const char* role = "subscriber",
         std::optional<detail::target_kind> kind = std::nullopt)
        : connection(std::move(ex), std::move(opts), role, kind), probe_timer_(strand_) {}

    struct channel_state {
        handler on_message;
        bool confirmed = false;  // (S)SUBSCRIBE acknowledged on the current connection
    };
    using channel_map = std::map<std::string, channel_state, std::less<>>;

    std::shared_ptr<impl> self() { return std::static_pointer_cast<impl>(shared_from_this()); }

    void subscribe(std::string channel, handler h) { add(false, std::move(channel), std::move(h)); }
    void ssubscribe(std::string channel, handler h) { add(true, std::move(channel), std::move(h)); }

    void add(bool shard, std::string channel, handler h) {
        asio::post(strand_, [self = self(), shard, channel = std::move(channel), h = std::move(h)]() mutable {
            auto [it, added] = self->channels(shard).try_emplace(channel);
            it->second.on_message = std::move(h);
            if (added && self->ready_) self->send_later(shard, it->first);
        });
    }

    // cluster_subscriber: the channel moved to another node.
    void forget(std::string channel) {
        asio::post(strand_, [self = self(), channel = std::move(channel)] {
            if (self->shard_channels_.erase(channel) == 0) return;
            if (redisAsyncContext* ac = self->ready_context()) self->append(ac, resp_command("SUNSUBSCRIBE", {channel}));
            self->check_all_confirmed();
        });
    }

    // cluster_subscriber: SSUBSCRIBE again what is not confirmed (a refusal, then a new map).
    void resend() {
        asio::post(strand_, [self = self()] {
            if (!self->ready_) return;
            for (const auto& [name, state] : self->shard_channels_)
                if (!state.confirmed) self->send_later(true, name);
        });
    }

    void set_shard_hooks(detail::shard_hooks h) {
        asio::post(strand_, [self = self(), h = std::move(h)]() mutable { self->hooks_ = std::move(h); });
    }

    void set_on_resubscribed(std::function<void()> f) {
        asio::post(strand_, [self = self(), f = std::move(f)]() mutable { self->on_resubscribed_ = std::move(f); });
    }

    channel_map& channels(bool shard) { return shard ? shard_channels_ : channels_; }

    bool satisfied() const override {
        const auto confirmed = [](const auto& c) { return c.second.confirmed; };
        return ready_ && std::all_of(channels_.begin(), channels_.end(), confirmed) &&
               std::all_of(shard_channels_.begin(), shard_channels_.end(), confirmed);
    }

    void on_ready() override {
        resubscribe_pending_ = was_ready_before_;
        was_ready_before_ = true;
        if (!stand(ready_context())) return;
        for (bool shard : {false, true}) {
            std::vector<std::string_view> names;
            for (const auto& [name, state] : channels(shard)) names.push_back(name);
            send(shard, names);
        }
        check_all_confirmed();
    }

    void on_lost() override {
        for (auto& [name, state] : channels_) state.confirmed = false;
        for (auto& [name, state] : shard_channels_) state.confirmed = false;
        for (auto& u : unsent_) u.clear();
        if (hooks_.lost) hooks_.lost();
        ++probe_gen_;
        probe_timer_.cancel();
        awaiting_pong_ = false;
        report_state(false);
    }

    // ---- hiredis 0.14 and pub/sub. hiredis knows SUBSCRIBE and PSUBSCRIBE only, and its own
    // bookkeeping for them does not fit this connection (async.c, redisProcessCallbacks and
    // __redisGetSubscribeCallback):
    //  - a reply no command waits for is routed by the first letter of its type: 'p' is a
    //    pattern, anything else a channel, looked up by name among the SUBSCRIBEd ones. An
    //    SSUBSCRIBE's ["ssubscribe", ch, n] and ["smessage", ch, payload] are not found there,
    //    and run whatever callback ran before them in the same read, or nothing (dropped);
    //  - an error reply no command waits for (MOVED or NOPERM for an SSUBSCRIBE) makes hiredis
    //    drop the connection, and any other such reply outside subscribed mode is an assert;
    //  - in subscribed mode a command that is not (P)SUBSCRIBE parks its callback in a list
    //    that only non-array replies drain (SSUBSCRIBE, PING: one entry per command, forever).
    // So hiredis is never told that this is a pub/sub connection. Once the handshake is done,
    // one standing callback (on_reply) always waits in hiredis's reply queue: it is queued as
    // a command of 0 bytes (redisAsyncFormattedCommand with length 0 queues the callback and
    // appends nothing; the text is parsed, never sent) and queued again each time it runs.
    // SUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE and PING go to the output buffer as bytes
    // (redisAppendFormattedCommand), so hiredis queues nothing for them. Every reply, pushed or
    // answered, errors included, then takes the standing callback in order, and on_reply routes
    // it by what it is. hiredis stays out of subscribed mode: its routing, its dropping of the
    // connection on an error and its assert are never reached. Queuing one asks the event loop
    // for a write turn (hiredis's addWrite), so they are queued in batches: up to
    // standing_target, topped up when fewer than standing_low are left, never zero.
    static constexpr int standing_target = 64;
    static constexpr int standing_low = 16;

    bool stand(redisAsyncContext* ac) {
        if (ac == nullptr) return false;
        if (!top_up(ac)) {
            close_link_later(link_.get(), "cannot queue the reply callback");
            return false;
        }
        return true;
    }

    static bool top_up(redisAsyncContext* ac) {
        auto* l = static_cast<detail::link*>(ac->data);
        if (l == nullptr) return false;
        while (l->standing < standing_target) {
            if (redisAsyncFormattedCommand(ac, &impl::on_reply, nullptr, standing_text().c_str(), 0) != REDIS_OK)
                return false;
            ++l->standing;
        }
        return true;
    }

    // Bytes for Redis that hiredis queues no callback for.
    bool append(redisAsyncContext* ac, const std::string& cmd) {
        if (redisAppendFormattedCommand(&ac->c, cmd.data(), cmd.size()) != REDIS_OK) {
            close_link_later(link_.get(), "cannot queue a command");
            return false;
        }
        if (ac->ev.addWrite) ac->ev.addWrite(ac->ev.data);
        return true;
    }

    // Channels added while connected, sent by one posted flush: a burst (a cluster node taking
    // over eighty channels) goes in as few commands as it can.
    void send_later(bool shard, const std::string& channel) {
        unsent_[shard].push_back(channel);
        if (std::exchange(flush_posted_, true)) return;
        asio::post(strand_, [self = self()] {
            self->flush_posted_ = false;
            for (bool shard : {false, true}) {
                auto names = std::exchange(self->unsent_[shard], {});
                std::sort(names.begin(), names.end());
                names.erase(std::unique(names.begin(), names.end()), names.end());
                std::vector<std::string_view> wanted;
                for (const auto& n : names)
                    if (auto it = self->channels(shard).find(n); it != self->channels(shard).end() && !it->second.confirmed)
                        wanted.push_back(it->first);
                self->send(shard, wanted);
            }
        });
    }

    void send(bool shard, const std::vector<std::string_view>& names) {
        redisAsyncContext* ac = ready_context();
        if (ac == nullptr || names.empty()) return;  // on_ready() subscribes everything once connected
        // A cluster node refuses shard channels of different slots in one command (CROSSSLOT);
        // otherwise any mix goes, a bounded number per command.
        std::vector<std::vector<std::string_view>> commands;
        if (shard && hooks_.per_slot) {
            std::map<std::uint16_t, std::vector<std::string_view>> by_slot;
            for (auto c : names) by_slot[key_slot(c)].push_back(c);
            for (auto& [slot, group] : by_slot) commands.push_back(std::move(group));
        } else {
            for (std::size_t i = 0; i < names.size(); i += max_channels_per_command) {
                const auto from = names.begin() + static_cast<std::ptrdiff_t>(i);
                commands.emplace_back(from, from + static_cast<std::ptrdiff_t>(
                                                       std::min(max_channels_per_command, names.size() - i)));
            }
        }
        for (const auto& group : commands)
            if (!append(ac, resp_command(shard ? "SSUBSCRIBE" : "SUBSCRIBE", group))) return;
    }

    // ---- liveness: a subscribed connection has nothing in flight, so a stalled Redis would go
    // unnoticed. Every half command timeout it sends PING <probe>, answered ["pong", <probe>]
    // in subscribed mode (<probe> if no subscription went through), which on_reply recognises.
    void probe_later() {
        if (opts_.command_timeout.count() <= 0) return;
        probe_timer_.expires_after(std::max(std::chrono::milliseconds(50), opts_.command_timeout / 2));
        probe_timer_.async_wait([self = self(), gen = ++probe_gen_](boost::system::error_code ec) {
            if (!ec && gen == self->probe_gen_) self->probe();
        });
    }

    void probe() {
        redisAsyncContext* ac = ready_context();
        if (ac == nullptr || (channels_.empty() && shard_channels_.empty())) return;
        const auto now = std::chrono::steady_clock::now();
        if (awaiting_pong_) {
            if (now - ping_sent_ >= opts_.command_timeout) {
                close_link("no answer to PING within " + std::to_string(opts_.command_timeout.count()) + " ms");
                return;
            }
        } else {
            if (!append(ac, resp_command("PING", {probe_}))) return;
            awaiting_pong_ = true;
            ping_sent_ = now;
        }
        probe_later();
    }

    void check_all_confirmed() {
        if (!satisfied()) return;
        notify_waiters();
        report_state(true);
        if (!awaiting_pong_) probe_later();
        if (std::exchange(resubscribe_pending_, false) && on_resubscribed_) {
            try {
                on_resubscribed_();
            } catch (const std::exception& e) {
                spdlog::error("redis subscriber: on_resubscribed threw: {}", e.what());
            }
        }
    }

    // Every reply after the handshake: confirmations, messages, pongs and refusals.
    static void on_reply(redisAsyncContext* ac, void* reply, void*) noexcept {
        if (reply == nullptr) return;  // the context is being freed
        auto* l = static_cast<detail::link*>(ac->data);
        auto owner = l != nullptr && l->ac != nullptr ? l->owner.lock() : nullptr;
        auto* self = static_cast<impl*>(owner.get());
        // Stand again before anything else: a reply that found no callback would be an assert.
        if (l == nullptr) {
            redisAsyncFormattedCommand(ac, &impl::on_reply, nullptr, standing_text().c_str(), 0);
            return;
        }
        if (--l->standing < standing_low && !top_up(ac)) {
            if (self) self->close_link_later(l, "cannot queue the reply callback");
            return;
        }
        if (self == nullptr) return;
        try {
            self->dispatch(*l, *static_cast<redisReply*>(reply));
        } catch (const std::exception& e) {
            spdlog::error("redis subscriber: reply handling failed: {}", e.what());
        }
    }

    static const std::string& standing_text() {
        static const std::string standing = resp_command("STANDING", {});
        return standing;
    }

    void dispatch(detail::link& l, const redisReply& r) {
        if (r.type == REDIS_REPLY_ERROR) {
            refused(std::string(r.str, r.len));
            return;
        }
        if (r.type == REDIS_REPLY_STRING && std::string_view(r.str, r.len) == probe_) {
            awaiting_pong_ = false;  // PING <probe> outside subscribed mode
            return;
        }
        if (r.type != REDIS_REPLY_ARRAY || r.elements < 2 || r.element[0]->type != REDIS_REPLY_STRING ||
            r.element[1]->type != REDIS_REPLY_STRING)
            return;
        const std::string_view kind(r.element[0]->str, r.element[0]->len);
        const std::string_view channel(r.element[1]->str, r.element[1]->len);
        if (kind == "pong") {
            if (channel == probe_) awaiting_pong_ = false;
            return;
        }
        const bool shard = kind == "smessage" || kind == "ssubscribe" || kind == "sunsubscribe";
        auto& map = channels(shard);
        const auto it = map.find(channel);
        if (it == map.end()) return;  // e.g. the sunsubscribe of a channel we forgot
        if (kind == "message" || kind == "smessage") {
            if (r.elements < 3 || r.element[2]->type != REDIS_REPLY_STRING) return;
            // Called in place: subscribe() and stop() only post, and ~subscriber hands the impl
            // to the strand, so nothing the handler does can change the maps under us.
            try {
                if (const auto& h = it->second.on_message) h(channel, std::string_view(r.element[2]->str, r.element[2]->len));
            } catch (const std::exception& e) {
                // The channel name is ours; the payload is never logged.
                spdlog::error("redis subscriber: handler for channel {} threw: {}", it->first, e.what());
            } catch (...) {
                spdlog::error("redis subscriber: handler for channel {} threw", it->first);
            }
        } else if (kind == "subscribe" || kind == "ssubscribe") {
            if (!std::exchange(it->second.confirmed, true) && shard && hooks_.confirmed) hooks_.confirmed(it->first);
            check_all_confirmed();
        } else if (kind == "sunsubscribe") {
            // Redis dropped a shard channel we still want: its slot moved to another node.
            it->second.confirmed = false;
            if (hooks_.dropped)
                hooks_.dropped(it->first);
            else
                close_link_later(&l, "Redis unsubscribed shard channel " + it->first);
        }
    }

    // An error reply: Redis refused a (S)SUBSCRIBE; which one, the reply does not say.
    void refused(const std::string& error) {
        if (hooks_.refused) {
            hooks_.refused(error);
            return;
        }
        // A single server's refusal (NOPERM, an unknown command) would come again on a new
        // connection: keep the other channels' messages flowing, and stay unsatisfied.
        spdlog::error("redis {}: Redis at {} refused a subscription: {}", role_, opts_.where.to_string(), error);
    }

    channel_map channels_;        // SUBSCRIBE
    channel_map shard_channels_;  // SSUBSCRIBE
    std::array<std::vector<std::string>, 2> unsent_;  // for the posted flush: [shard]
    bool flush_posted_ = false;
    detail::shard_hooks hooks_;  // set on a cluster node's subscriber only
    std::function<void()> on_resubscribed_;
    bool was_ready_before_ = false;
    bool resubscribe_pending_ = false;
    // the PING's argument, which tells its pong from any other reply
    const std::string probe_ = "__warmline_probe:" + crypto::random_id().substr(0, 16);
    asio::steady_timer probe_timer_;
    std::uint64_t probe_gen_ = 0;
    bool awaiting_pong_ = false;
    std::chrono::steady_clock::time_point ping_sent_;
};

std::shared_ptr<subscriber> subscriber::create(asio::any_io_executor ex, client_options opts) {
    if (opts.where.is_cluster())
        throw std::invalid_argument("redis::subscriber takes no redis-cluster:// endpoint; use redis::cluster_subscriber");
    auto p = std::make_shared<impl>(std::move(ex), std::move(opts));
    p->watch_context_shutdown();
    return std::shared_ptr<subscriber>(new subscriber(std::move(p)));
}

subscriber::subscriber(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
subscriber::~subscriber() { impl_->stop(); }

void subscriber::subscribe(std::string channel, handler h) {
    impl_->subscribe(std::move(channel), std::move(h));
}
void subscriber::ssubscribe(std::string channel, handler h) {
    impl_->ssubscribe(std::move(channel), std::move(h));
}
void subscriber::on_resubscribed(std::function<void()> f) { impl_->set_on_resubscribed(std::move(f)); }
void subscriber::on_state_change(std::function<void(bool up)> f) { impl_->set_state_handler(std::move(f)); }
void subscriber::start() { impl_->start(); }
void subscriber::stop() { impl_->stop(); }
bool subscriber::connected() const { return impl_->connected(); }

asio::awaitable<void> subscriber::wait_subscribed(std::chrono::milliseconds timeout) {
    auto p = impl_;
    co_await p->wait_until_satisfied(timeout);
}

namespace detail {

void subscriber_access::set_shard_hooks(subscriber& s, shard_hooks h) { s.impl_->set_shard_hooks(std::move(h)); }
void subscriber_access::forget(subscriber& s, std::string channel) { s.impl_->forget(std::move(channel)); }
void subscriber_access::resend(subscriber& s) { s.impl_->resend(); }

std::shared_ptr<connection> make_switch_watch(const asio::any_io_executor& ex, const client_options& opts,
                                              std::function<void(std::string_view)> on_switch) {
    auto p = std::make_shared<subscriber::impl>(ex, opts, "sentinel watch", target_kind::sentinel_watch);
    p->watch_context_shutdown();
    p->subscribe("+switch-master", [on_switch = std::move(on_switch)](std::string_view, std::string_view payload) {
        on_switch(payload);
    });
    p->start();
    return p;
}

}  // namespace detail

}  // namespace warmline::redis
