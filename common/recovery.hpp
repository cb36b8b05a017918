// What a service process does when its Redis connections come back after an outage (a stall, a
// restart, a failover, or only this process cut off). Pub/sub dropped whatever was published
// meanwhile, and what the process keeps in Redis on behalf of its connections (a lease, a
// registry, where each chat side is) may have lapsed. So, once BOTH connections are up, it runs
// the service's recovery step (the matchmaker confirms its clients and resynchronises them; the
// relay catches every chat up from its log), retrying with backoff until the step succeeds.
// Until then the process is not settled: a service's sweeps must not act on evidence it has
// not seen, /readyz says not ready, and clients are told Warmline is reconnecting.
//
// Threading: every member runs on the io_context given (one I/O thread per process).
#pragma once

#include "common/redis.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace warmline {

class recovery : public std::enable_shared_from_this<recovery> {
public:
    // step: the service's recovery; it throws (e.g. redis::unavailable) when it must be retried.
    // tell: tell every client the service is degraded (true) or back (false); called on change.
    using step_fn = std::function<boost::asio::awaitable<void>()>;
    recovery(boost::asio::io_context& ioc, std::shared_ptr<redis::client> redis,
             std::shared_ptr<redis::subscriber> events, step_fn step, std::function<void(bool)> tell);
    recovery(boost::asio::io_context& ioc, std::shared_ptr<redis::client> redis,
             std::shared_ptr<redis::any_subscriber> events, step_fn step, std::function<void(bool)> tell);

    // A further connection the recovery needs (e.g. the relay's chat Redis), watched and waited
    // for as the other two. Call before watch().
    void also_watch(std::shared_ptr<redis::any_client> c) { extra_.push_back({std::move(c), false}); }
    // Watch the connections' state (call once, before they start).
    void watch();
    // False from the moment a connection drops until the recovery after it has succeeded.
    bool settled() const { return settled_; }

private:
    void connection_state(bool up, bool first_up);
    void begin();
    boost::asio::awaitable<void> run();
    void tell(bool degraded);

    boost::asio::io_context& ioc_;
    std::shared_ptr<redis::client> redis_;
    std::shared_ptr<redis::any_subscriber> events_;
    step_fn step_;
    std::function<void(bool)> tell_;
    bool settled_ = true;
    bool told_degraded_ = false;
    bool pending_ = false;
    bool running_ = false;
    bool client_seen_up_ = false;
    bool events_seen_up_ = false;
    struct extra {
        std::shared_ptr<redis::any_client> client;
        bool seen_up;
    };
    std::vector<extra> extra_;
};

}  // namespace warmline
