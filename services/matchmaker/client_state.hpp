// One connection's protocol state: who it is, which request ids it has used, its rate limit and
// what it was last told while waiting. Pure, so the state machine is unit-tested without
// sockets. Touched on the connection's strand and by the event fan-out (one I/O thread).
#pragma once

#include "common/codec.hpp"
#include "common/rate_limit.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_set>

namespace warmline::matchmaker {

class client_state {
public:
    enum class role { none, seeker, listener, supervisor };

    // False if the id is empty, longer than 64 bytes or already used on this connection; else
    // remember it. Before sign-in (who == none) nothing is remembered: an anonymous socket keeps
    // no state, and a refused sign-in may be sent again as it was.
    bool use_request_id(const std::string& id, std::size_t max_remembered);
    // A token bucket per connection: `burst` requests at once, refilled at `per_second`. False
    // when the request must be refused with RATE_LIMITED. now_ms comes from the caller's clock.
    bool take_token(std::int64_t now_ms, double burst, double per_second);
    // Which requests a connection may make in its current role (a first message must say who).
    static bool allowed(role r, v1::ClientMessage::BodyCase body);

    role who = role::none;
    std::string id;  // seeker, listener or supervisor id
    // listener, supervisor: the SHA-256 of the token they signed in with; a session whose token is
    // no longer the account's (revoked, rotated) is closed (sessions.hpp)
    std::string token_hash;
    codec::format format = codec::format::json;
    int bad_frames = 0;
    bool waiting = false;                // seeker: queued or offered
    v1::QueueUpdate last_update;         // last position sent
    // seeker: the queue ("topic:lang") it waits in and the version of that queue its last
    // position was computed at (-1: compute next tick); a named listener's queue is not versioned
    std::string queue;
    std::string region;                  // seeker: where they said they are (crisis lines), or ""
    std::string address;                 // the client address bucket's keyed hash, once asked for
    bool named_listener = false;
    std::int64_t queue_version = -1;
    std::int64_t position_at_ms = 0;
    std::string announced_session;       // seeker: last ChatStarted pushed

private:
    token_bucket bucket_;
    std::unordered_set<std::string> used_;
    std::deque<std::string> order_;
};

}  // namespace warmline::matchmaker
