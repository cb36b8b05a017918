// The recovery after a Redis outage, for common/recovery.hpp.
#include "common/recovery.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <utility>

namespace warmline {

namespace asio = boost::asio;
using namespace std::chrono_literals;

recovery::recovery(asio::io_context& ioc, std::shared_ptr<redis::client> redis,
                   std::shared_ptr<redis::subscriber> events, step_fn step, std::function<void(bool)> tell)
    : recovery(ioc, std::move(redis), redis::any_subscriber::of(std::move(events)), std::move(step), std::move(tell)) {}

recovery::recovery(asio::io_context& ioc, std::shared_ptr<redis::client> redis,
                   std::shared_ptr<redis::any_subscriber> events, step_fn step, std::function<void(bool)> tell)
    : ioc_(ioc),
      redis_(std::move(redis)),
      events_(std::move(events)),
      step_(std::move(step)),
      tell_(std::move(tell)) {}

void recovery::watch() {
    // weak: the connections belong to the service, and so do we
    std::weak_ptr<recovery> weak = shared_from_this();
    redis_->on_state_change([weak](bool up) {
        if (auto self = weak.lock())
            asio::post(self->ioc_, [self, up] {
                self->connection_state(up, up && !std::exchange(self->client_seen_up_, true));
            });
    });
    events_->on_state_change([weak](bool up) {
        if (auto self = weak.lock())
            asio::post(self->ioc_, [self, up] {
                self->connection_state(up, up && !std::exchange(self->events_seen_up_, true));
            });
    });
    for (std::size_t i = 0; i < extra_.size(); ++i)
        extra_[i].client->on_state_change([weak, i](bool up) {
            if (auto self = weak.lock())
                asio::post(self->ioc_, [self, up, i] {
                    self->connection_state(up, up && !std::exchange(self->extra_[i].seen_up, true));
                });
        });
}

void recovery::connection_state(bool up, bool first_up) {
    if (!up) {
        settled_ = false;
        tell(true);
        return;
    }
    // A process that has never been connected has nothing to recover; every later connection
    // (of either kind) is a new session that may have missed something.
    if (first_up && settled_) return;
    begin();
}

void recovery::begin() {
    settled_ = false;
    pending_ = true;
    if (running_) return;  // the running recovery goes round again
    running_ = true;
    asio::co_spawn(ioc_, [self = shared_from_this()] { return self->run(); }, asio::detached);
}

asio::awaitable<void> recovery::run() {
    asio::steady_timer backoff(ioc_);
    auto delay = 100ms;
    bool warned = false;
    while (pending_) {
        pending_ = false;
        std::string failure;
        try {
            // both connections, or nothing: a recovery over a dead command connection, or one
            // that would miss the events published while it runs, would be lost for good
            co_await redis_->wait_connected(5s);
            co_await events_->wait_subscribed(5s);
            for (auto& e : extra_) co_await e.client->wait_connected(5s);
            co_await step_();
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (failure.empty()) {
            if (pending_) continue;  // a connection dropped and came back meanwhile: again
            settled_ = true;
            tell(false);
            if (warned) spdlog::info("recovered after the Redis outage");
            continue;
        }
        // e.g. the subscriber came back before the command connection: wait for both
        if (!std::exchange(warned, true)) spdlog::warn("recovery after a Redis outage waits: {}", failure);
        else spdlog::debug("recovery after a Redis outage waits: {}", failure);
        pending_ = true;
        boost::system::error_code ec;
        backoff.expires_after(delay);
        co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        delay = std::min<std::chrono::milliseconds>(delay * 2, 2s);
    }
    running_ = false;
}

void recovery::tell(bool degraded) {
    if (degraded == told_degraded_) return;
    told_degraded_ = degraded;
    if (tell_) tell_(degraded);
}

}  // namespace warmline
