// Signed-in sessions that must end: a listener's or supervisor's connection whose token is no
// longer the account's (revoked, or rotated by warmline-admin) is closed with 4003. The events
// ('revoked', TokenReplaced) close them at once on every process that hears them; the session
// check loop (tickers.hpp) runs this every --session-check-ms as well, so a process that missed
// an event (its subscription was down) still closes them within that time.
#pragma once

#include "services/matchmaker/peers.hpp"
#include "services/matchmaker/store.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <string>

namespace warmline::matchmaker {

// Check every signed-in listener and supervisor connection here (or only those of `owner`,
// "listener:<id>" / "supervisor:<id>") against Redis and close the stale ones. Returns how many
// were closed. Throws redis::unavailable when Redis cannot be asked.
boost::asio::awaitable<std::size_t> close_stale_sessions(store& st, peer_registry& peers, std::string owner = {});

}  // namespace warmline::matchmaker
