// Waiting for one server message on a blocking ws_client while keeping the others: the first
// message (already received and not yet taken, or arriving now) that satisfies `pred`; messages
// it passes over stay in `pending` for later calls. Fails the test on timeout. Shared by the
// matchmaker's and the relay's test clients.
#pragma once

#include "clients/ws_client.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <deque>
#include <functional>

namespace warmline::test {

// decode(ws_message, Msg&) parses one frame (failing the test itself if it cannot).
template <class Msg, class Decode>
Msg take_first(std::deque<Msg>& pending, net::ws_client& ws, Decode decode,
               const std::function<bool(const Msg&)>& pred, std::chrono::milliseconds limit) {
    for (auto it = pending.begin(); it != pending.end(); ++it) {
        if (pred(*it)) {
            Msg m = *it;
            pending.erase(it);
            return m;
        }
    }
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        auto frame = ws.read(std::chrono::milliseconds(50));
        if (!frame) continue;
        Msg m;
        decode(*frame, m);
        if (pred(m)) return m;
        pending.push_back(m);
    }
    FAIL("no expected message within the time limit (" << pending.size() << " others pending)");
    return {};
}

}  // namespace warmline::test
