// The matchmaker's requests: one member per ClientMessage body, each a store call (one atomic
// script) and its reply. Sign-ins also record who the connection is in the peer registry.
//
// Threading: called on the connection's strand; see service.hpp for what runs concurrently.
#pragma once

#include "common/catalogue.hpp"
#include "common/metrics.hpp"
#include "services/matchmaker/peers.hpp"
#include "services/matchmaker/settings.hpp"
#include "services/matchmaker/store.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <boost/asio/awaitable.hpp>

#include <string>

namespace warmline::matchmaker {

class request_handlers {
public:
    request_handlers(const service_settings& s, const catalogue& cat, store& st, peer_registry& peers,
                     metrics::registry& metrics, std::string node);

    // The reply to one request of a connection allowed to make it (client_state::allowed).
    // Throws redis::unavailable when Redis cannot be reached.
    boost::asio::awaitable<v1::ServerMessage> handle(peer_ptr p, const v1::ClientMessage& m);

private:
    boost::asio::awaitable<v1::ServerMessage> seeker_hello(peer_ptr p, const v1::SeekerHello& m);
    boost::asio::awaitable<v1::ServerMessage> request_chat(peer_ptr p, const v1::RequestChat& m);
    boost::asio::awaitable<v1::ServerMessage> rate_chat(peer_ptr p, const v1::RateChat& m);
    boost::asio::awaitable<v1::ServerMessage> report_chat(peer_ptr p, const v1::ReportChat& m);
    boost::asio::awaitable<v1::ServerMessage> listener_sign_in(peer_ptr p, const v1::ListenerSignIn& m);
    boost::asio::awaitable<v1::ServerMessage> set_preferences(peer_ptr p, const v1::SetPreferences& m);
    boost::asio::awaitable<v1::ServerMessage> supervisor_sign_in(peer_ptr p, const v1::SupervisorSignIn& m);
    boost::asio::awaitable<v1::ServerMessage> status_reply(std::string lid);
    boost::asio::awaitable<v1::ServerMessage> review_report(peer_ptr p, const v1::ReviewReport& rr);
    // AskForSupport, AnswerSupport, SupportSay and EndSupport (support.lua).
    boost::asio::awaitable<v1::ServerMessage> support(peer_ptr p, const v1::ClientMessage& m);
    // Whether this connection's address may use one more of a per-address quota (limits.hpp):
    // always with limit 0; a refusal is counted in warmline_address_limited_total.
    boost::asio::awaitable<bool> within_quota(const peer_ptr& p, const char* what, std::int64_t window_ms, int limit);
    // The connection's address bucket as counted in Redis (limits.hpp, address_hash), computed once
    // per connection; '' when it is gone before the first ask.
    std::string address_of(const peer_ptr& p) const;

    const service_settings& settings_;
    const catalogue& catalogue_;
    store& store_;
    peer_registry& peers_;
    metrics::registry& metrics_;
    std::string node_;
};

}  // namespace warmline::matchmaker
