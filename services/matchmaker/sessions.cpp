// The session check for services/matchmaker/sessions.hpp.
#include "services/matchmaker/sessions.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <utility>
#include <vector>

namespace warmline::matchmaker {
namespace asio = boost::asio;

asio::awaitable<std::size_t> close_stale_sessions(store& st, peer_registry& peers, std::string owner) {
    // every signed-in connection here by account, in one read of each account
    std::map<std::string, std::vector<peer_ptr>> by_owner;
    for (const auto& [lid, n] : peers.listeners())
        for (auto& p : peers.listener(lid)) by_owner["listener:" + lid].push_back(p);
    for (auto& p : peers.supervisors()) by_owner["supervisor:" + p->state.id].push_back(p);
    if (!owner.empty()) std::erase_if(by_owner, [&](const auto& e) { return e.first != owner; });
    if (by_owner.empty()) co_return 0;

    std::vector<std::string> owners;
    for (const auto& [o, _] : by_owner) owners.push_back(o);
    const auto tokens = co_await st.current_tokens(owners);
    std::size_t closed = 0;
    for (std::size_t i = 0; i < owners.size(); ++i)
        for (auto& p : by_owner[owners[i]]) {
            if (!tokens[i].empty() && p->state.token_hash == tokens[i]) continue;
            if (auto c = p->conn.lock()) {
                // never the token or its hash in a log line: only whose session it was
                spdlog::info("closing a session of {} whose token is no longer valid", owners[i]);
                c->close(4003, tokens[i].empty() ? "account revoked" : "signed out: the token was replaced");
                ++closed;
            }
        }
    co_return closed;
}

}  // namespace warmline::matchmaker
