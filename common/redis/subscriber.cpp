// The pub/sub subscriber: a dedicated connection that subscribes every channel again after each
// reconnect (then calls on_resubscribed), dispatches messages by channel, and PINGs a connection
// that has nothing in flight so a stalled Redis is noticed. The same class, pointed at the
// sentinels, is the watch that reports +switch-master (make_switch_watch).
#include "common/redis/detail.hpp"

#include "common/crypto.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <utility>

namespace warmline::redis {

namespace asio = boost::asio;

struct subscriber::impl : detail::connection {
    impl(asio::any_io_executor ex, client_options opts, const char* role = "subscriber",
         std::optional<detail::target_kind> kind = std::nullopt)
        : connection(std::move(ex), std::move(opts), role, kind), probe_timer_(strand_) {}

    struct channel_state {
        handler on_message;
        bool confirmed = false;  // SUBSCRIBE acknowledged on the current connection
    };

    void subscribe(std::string channel, handler h) {
        asio::post(strand_, [self = std::static_pointer_cast<impl>(shared_from_this()),
                             channel = std::move(channel), h = std::move(h)]() mutable {
            auto [it, added] = self->channels_.try_emplace(channel);
            it->second.on_message = std::move(h);
            if (added && self->ready_) self->send_subscribe(it->first);
        });
    }

    void set_on_resubscribed(std::function<void()> f) {
        asio::post(strand_, [self = std::static_pointer_cast<impl>(shared_from_this()),
                             f = std::move(f)]() mutable { self->on_resubscribed_ = std::move(f); });
    }

    bool satisfied() const override {
        return ready_ && std::all_of(channels_.begin(), channels_.end(),
                                     [](const auto& c) { return c.second.confirmed; });
    }

    void on_ready() override {
        resubscribe_pending_ = was_ready_before_;
        was_ready_before_ = true;
        for (const auto& [name, state] : channels_) send_subscribe(name);
        if (opts_.command_timeout.count() > 0) {
            redisAsyncContext* ac = ready_context();
            const char* argv[] = {"PSUBSCRIBE", probe_.data()};
            const std::size_t lens[] = {10, probe_.size()};
            if (redisAsyncCommandArgv(ac, &impl::on_pubsub_reply, nullptr, 2, argv, lens) != REDIS_OK)
                close_link_later(link_.get(), "cannot queue PSUBSCRIBE");
        }
        check_all_confirmed();
    }

    void on_lost() override {
        for (auto& [name, state] : channels_) state.confirmed = false;
        ++probe_gen_;
        probe_timer_.cancel();
        awaiting_pong_ = false;
        report_state(false);
    }

    // ---- liveness: a subscribed connection has nothing in flight, so a stalled Redis would go
    // unnoticed. Every half command timeout it sends PING <probe>; in subscribed mode Redis
    // answers ["pong", <probe>]. hiredis 0.14 routes that reply by its first letter: a 'p'
    // reads as a pattern message, so it looks <probe> up among the pattern subscriptions. The
    // connection therefore PSUBSCRIBEs the probe's name (a pattern no channel of ours matches),
    // and the pong reaches on_pubsub_reply. The PING is appended to the output buffer directly
    // (redisAppendFormattedCommand) rather than through redisAsyncCommand: in subscribed mode
    // hiredis would park the command's callback in a list that array replies never drain, one
    // entry per PING until the connection closes.
    void probe_later() {
        if (opts_.command_timeout.count() <= 0) return;
        probe_timer_.expires_after(std::max(std::chrono::milliseconds(50), opts_.command_timeout / 2));
        probe_timer_.async_wait([self = std::static_pointer_cast<impl>(shared_from_this()),
                                 gen = ++probe_gen_](boost::system::error_code ec) {
            if (!ec && gen == self->probe_gen_) self->probe();
        });
    }

    void probe() {
        redisAsyncContext* ac = ready_context();
        if (ac == nullptr || channels_.empty()) return;
        const auto now = std::chrono::steady_clock::now();
        if (awaiting_pong_) {
            if (now - ping_sent_ >= opts_.command_timeout) {
                close_link("no answer to PING within " + std::to_string(opts_.command_timeout.count()) + " ms");
                return;
            }
        } else {
            const std::string cmd =
                "*2\r\n$4\r\nPING\r\n$" + std::to_string(probe_.size()) + "\r\n" + probe_ + "\r\n";
            if (redisAppendFormattedCommand(&ac->c, cmd.data(), cmd.size()) != REDIS_OK) {
                close_link("cannot queue PING");
                return;
            }
            if (ac->ev.addWrite) ac->ev.addWrite(ac->ev.data);
            awaiting_pong_ = true;
            ping_sent_ = now;
        }
        probe_later();
    }

    void send_subscribe(const std::string& channel) {
        redisAsyncContext* ac = ready_context();
        if (ac == nullptr) return;  // on_ready() subscribes everything once connected
        const char* argv[] = {"SUBSCRIBE", channel.data()};
        const std::size_t lens[] = {9, channel.size()};
        if (redisAsyncCommandArgv(ac, &impl::on_pubsub_reply, nullptr, 2, argv, lens) != REDIS_OK)
            close_link_later(link_.get(), "cannot queue SUBSCRIBE");
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

    // Subscription confirmations and messages for every channel arrive here (hiredis keeps one
    // callback per channel; ours is the same for all and dispatches by name).
    static void on_pubsub_reply(redisAsyncContext* ac, void* reply, void*) noexcept {
        auto* l = static_cast<detail::link*>(ac->data);
        if (l == nullptr || l->ac == nullptr || reply == nullptr) return;
        auto owner = l->owner.lock();
        if (!owner) return;
        auto* self = static_cast<impl*>(owner.get());
        auto* r = static_cast<redisReply*>(reply);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_STRING)
            return;
        const std::string_view kind(r->element[0]->str, r->element[0]->len);
        const std::string_view channel(r->element[1]->str, r->element[1]->len);
        if (channel == self->probe_) {
            if (kind == "pong") self->awaiting_pong_ = false;
            return;
        }
        const auto it = self->channels_.find(channel);
        if (it == self->channels_.end()) return;
        try {
            if (kind == "message" && r->elements >= 3 && r->element[2]->type == REDIS_REPLY_STRING) {
                // Called in place: subscribe() and stop() only post, and ~subscriber hands the
                // impl to the strand, so nothing the handler does can change channels_ under us.
                if (const auto& h = it->second.on_message)
                    h(channel, std::string_view(r->element[2]->str, r->element[2]->len));
            } else if (kind == "subscribe") {
                it->second.confirmed = true;
                self->check_all_confirmed();
            }
        } catch (const std::exception& e) {
            // The channel name is ours; the payload is never logged.
            spdlog::error("redis subscriber: handler for channel {} threw: {}", it->first, e.what());
        } catch (...) {
            spdlog::error("redis subscriber: handler for channel {} threw", it->first);
        }
    }

    std::map<std::string, channel_state, std::less<>> channels_;
    std::function<void()> on_resubscribed_;
    bool was_ready_before_ = false;
    bool resubscribe_pending_ = false;
    // the probe's name: a pattern that matches no channel anyone publishes to
    const std::string probe_ = "__warmline_probe:" + crypto::random_id().substr(0, 16);
    asio::steady_timer probe_timer_;
    std::uint64_t probe_gen_ = 0;
    bool awaiting_pong_ = false;
    std::chrono::steady_clock::time_point ping_sent_;
};

std::shared_ptr<subscriber> subscriber::create(asio::any_io_executor ex, client_options opts) {
    if (opts.where.is_cluster())
        throw std::invalid_argument("redis::subscriber does not support redis-cluster:// endpoints yet");
    auto p = std::make_shared<impl>(std::move(ex), std::move(opts));
    p->watch_context_shutdown();
    return std::shared_ptr<subscriber>(new subscriber(std::move(p)));
}

subscriber::subscriber(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
subscriber::~subscriber() { impl_->stop(); }

void subscriber::subscribe(std::string channel, handler h) {
    impl_->subscribe(std::move(channel), std::move(h));
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
