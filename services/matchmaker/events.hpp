// The matchmaker's end of the wl:events channel: every process reads every MatchEvent
// (proto/warmline/v1/events.proto, published by the scripts inside their atomic step) and turns
// it into pushes for the connections it holds. Pub/sub is fire-and-forget, so after its Redis
// connections come back a process resynchronises its clients from Redis (resync()).
//
// Threading: on_event runs on the subscriber's strand; like the rest of the process it assumes
// one I/O thread for the client_state it touches.
#pragma once

#include "common/metrics.hpp"
#include "services/matchmaker/peers.hpp"
#include "services/matchmaker/settings.hpp"
#include "services/matchmaker/store.hpp"
#include "warmline/v1/events.pb.h"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <string>
#include <string_view>

namespace warmline::matchmaker {

class event_fanout {
public:
    event_fanout(boost::asio::io_context& ioc, const service_settings& s, store& st, peer_registry& peers,
                 metrics::registry& metrics, std::string node);

    void on_event(std::string_view payload);
    void on_event(const v1::MatchEvent& e);
    // Push to every client of this process what it may have missed while events did not reach
    // it: each seeker's state (a chat that started meanwhile), each listener's welcome (offers
    // and chats). Throws redis::unavailable when Redis cannot be read; the caller retries.
    boost::asio::awaitable<void> resync();

private:
    boost::asio::awaitable<void> push_status(std::string lid, v1::ListenerChange change);
    // A request for support changed: to every supervisor here and to that listener's tabs.
    boost::asio::awaitable<void> push_support(std::string id);
    // Close this account's sessions signed in with a token that is no longer its own.
    boost::asio::awaitable<void> check_sessions(std::string owner);
    void send_offer_closed(const std::string& lid, const std::string& oid, v1::OfferOutcome outcome);

    boost::asio::io_context& ioc_;
    const service_settings& settings_;
    store& store_;
    peer_registry& peers_;
    metrics::registry& metrics_;
    std::string node_;
};

}  // namespace warmline::matchmaker
