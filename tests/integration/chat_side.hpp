// The terminal client's chat (clients/chat_session.hpp) as the relay's integration tests drive
// it: one side and everything it reported, pumped until a condition holds.
#pragma once

#include "clients/chat_session.hpp"
#include "tests/integration/relay_fixture.hpp"

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

namespace warmline::test {

using namespace std::chrono_literals;

inline std::string relay_url(const relay_process& r, const char* scheme = "ws") {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(r.port) + "/v1/relay";
}

// A chat_session and everything it reported, kept for the assertions.
struct side {
    client::chat_session chat;
    std::vector<client::chat_event> seen;

    side(v1::Role role, const std::string& session, const std::string& url, const std::string& ticket,
         client::chat_session::options o = {})
        : chat(role, session, url, ticket, tuned(std::move(o))) {}

    static client::chat_session::options tuned(client::chat_session::options o) {
        o.first_retry = 20ms;  // resume at once: the tests wait on what happens, not on backoff
        o.max_retry = 200ms;
        return o;
    }
    void pump() {
        chat.pump(10ms);
        for (auto& e : chat.events()) seen.push_back(std::move(e));
    }
    bool saw(client::chat_event::kind k) const {
        return std::any_of(seen.begin(), seen.end(), [&](const client::chat_event& e) { return e.what == k; });
    }
    std::string text_of(client::chat_event::kind k) const {
        for (const auto& e : seen)
            if (e.what == k) return e.text;
        return {};
    }
};

// Pump every side until `done` holds; false if it still does not after `limit`.
inline bool pump_until(std::initializer_list<side*> sides, const std::function<bool()>& done,
                       std::chrono::milliseconds limit = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        for (auto* s : sides) s->pump();
    }
    return true;
}

// Both sides have each other's key and can seal and open.
inline bool both_secure(side& seeker, side& listener) {
    return pump_until({&seeker, &listener}, [&] { return seeker.chat.secure() && listener.chat.secure(); });
}

inline std::vector<std::string> lines(const std::string& who, int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i <= to; ++i) out.push_back(who + " line " + std::to_string(i) + ": ça va? 🌱");
    return out;
}

inline std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace warmline::test
