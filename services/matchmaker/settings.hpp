// A matchmaker process's settings (from main.cpp's flags; tests set them directly).
#pragma once

#include "services/matchmaker/limits.hpp"
#include "services/matchmaker/store.hpp"

#include <chrono>
#include <cstddef>
#include <string>

namespace warmline::matchmaker {

struct service_settings {
    store_settings store;
    std::string ticket_secret;
    std::string relay_url = "ws://127.0.0.1:8091/v1/relay";
    std::chrono::milliseconds ticket_ttl{5 * 60 * 1000};
    std::chrono::milliseconds sweep_interval{250};
    std::chrono::milliseconds position_interval{1000};
    std::chrono::milliseconds stats_interval{1000};
    // how often signed-in listeners' and supervisors' tokens are checked against Redis, so that a
    // revoke or a rotation this process did not hear of still ends their sessions (sessions.hpp)
    std::chrono::milliseconds session_check_interval{5000};
    // The supervisors' stats history: one sample per step (taken by one process of all those
    // running, whether or not anyone watches; every process checks once per stats_interval),
    // kept for the window.
    std::chrono::milliseconds stats_history_step{20000};
    std::chrono::milliseconds stats_history_window{3600 * 1000};
    std::size_t max_request_ids = 4096;  // remembered per signed-in connection to refuse reuse
    // a connection that has not signed in (SeekerHello, ListenerSignIn, SupervisorSignIn) this
    // long after opening is closed with 1008 (0: never)
    std::chrono::milliseconds sign_in_timeout{10000};
    int max_bad_frames = 20;             // then the connection is closed with 1008
    // Requests of one signed-in connection answered at once (replies carry the request id and
    // may come back out of order); beyond it the connection's frames wait. Sign-in is serial.
    std::size_t requests_in_flight = 32;
    // a waiting seeker's position is recomputed when its queue changes, and at least this often
    std::chrono::milliseconds position_refresh{30000};
    // per client address over every process (limits.hpp); the address is hashed with ticket_secret
    address_limits limits;
    double rate_burst = 20;              // requests a connection may send at once
    double rate_per_second = 10;         // and sustained
    // a reply that changed something waits until this many replicas have the change (WAIT), at
    // most ack_timeout, or becomes UNAVAILABLE; 0: it follows the write on the primary
    int ack_replicas = 0;
    std::chrono::milliseconds ack_timeout{1000};
    // replicas silent this long are presumed gone and replies go on without them (0: never): a
    // seeker is better served by a primary alone than not at all
    std::chrono::milliseconds ack_degrade_after{5000};
};

}  // namespace warmline::matchmaker
