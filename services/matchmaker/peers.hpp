// Who is on which of this process's WebSockets, and sending to them: the only state a
// matchmaker process keeps of its own (every fact about a queue, an offer or a chat is in
// Redis). A seeker has at most one connection here (a newer one replaces it); a listener may
// have several (tabs); supervisors are watched for the live stats.
//
// Threading: every member may be called from any thread (one mutex guards the maps).
#pragma once

#include "common/net.hpp"
#include "services/matchmaker/client_state.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace warmline::matchmaker {

struct peer {
    std::weak_ptr<net::connection> conn;
    client_state state;
    std::size_t in_flight = 0;  // requests being answered concurrently (on the connection's strand)
};
using peer_ptr = std::shared_ptr<peer>;

// What a closed connection means for the person behind it.
struct departure {
    client_state::role who = client_state::role::none;
    std::string id;
    std::size_t remaining = 0;  // their connections still open on this process (listeners)
};

class peer_registry {
public:
    peer_ptr opened(const std::shared_ptr<net::connection>& c);
    // Forget a connection. A seeker's or listener's departure is returned unless a newer
    // connection of that seeker replaced this one (then nothing changed for them).
    std::optional<departure> closed(std::uint64_t conn_id);
    peer_ptr find(std::uint64_t conn_id) const;

    // Sign-ins. bind_seeker returns an older connection of the same seeker on this process, for
    // the caller to close (the newest connection stands for the seeker).
    std::shared_ptr<net::connection> bind_seeker(const peer_ptr& p, const std::string& sid);
    // The number of this listener's connections here, this one included.
    std::size_t bind_listener(const peer_ptr& p, const std::string& lid);
    void bind_supervisor(const peer_ptr& p, const std::string& id);

    peer_ptr seeker(const std::string& sid) const;
    std::vector<peer_ptr> listener(const std::string& lid) const;
    std::vector<peer_ptr> supervisors() const;
    std::vector<std::pair<std::string, peer_ptr>> seekers() const;
    // Every listener with a connection here, and how many.
    std::vector<std::pair<std::string, std::size_t>> listeners() const;
    std::size_t size() const;

    // Encode in the peer's format and queue it on its connection (if still open).
    void send(const peer_ptr& p, const v1::ServerMessage& m) const;
    void to_seeker(const std::string& sid, const v1::ServerMessage& m) const;
    void to_listener(const std::string& lid, const v1::ServerMessage& m) const;
    void to_all(const v1::ServerMessage& m) const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, peer_ptr> peers_;
    std::unordered_map<std::string, std::uint64_t> seekers_;
    std::unordered_map<std::string, std::set<std::uint64_t>> listeners_;
    std::set<std::uint64_t> supervisors_;
};

}  // namespace warmline::matchmaker
