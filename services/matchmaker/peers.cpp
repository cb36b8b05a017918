// The connection registry and send helpers of services/matchmaker/peers.hpp.
#include "services/matchmaker/peers.hpp"

#include "common/codec.hpp"

namespace warmline::matchmaker {

peer_ptr peer_registry::opened(const std::shared_ptr<net::connection>& c) {
    auto p = std::make_shared<peer>();
    p->conn = c;
    std::lock_guard lock(mutex_);
    peers_[c->id()] = p;
    return p;
}

std::optional<departure> peer_registry::closed(std::uint64_t conn_id) {
    std::lock_guard lock(mutex_);
    auto it = peers_.find(conn_id);
    if (it == peers_.end()) return std::nullopt;
    peer_ptr p = it->second;
    peers_.erase(it);
    departure d{p->state.who, p->state.id, 0};
    switch (p->state.who) {
    case client_state::role::seeker:
        if (auto s = seekers_.find(p->state.id); s != seekers_.end() && s->second == conn_id) {
            seekers_.erase(s);
            return d;
        }
        return std::nullopt;  // replaced by a newer connection of the same seeker
    case client_state::role::listener: {
        auto l = listeners_.find(p->state.id);
        if (l == listeners_.end()) return d;
        l->second.erase(conn_id);
        d.remaining = l->second.size();
        if (l->second.empty()) listeners_.erase(l);
        return d;
    }
    case client_state::role::supervisor:
        supervisors_.erase(conn_id);
        return std::nullopt;
    case client_state::role::none:
        return std::nullopt;
    }
    return std::nullopt;
}

peer_ptr peer_registry::find(std::uint64_t conn_id) const {
    std::lock_guard lock(mutex_);
    auto it = peers_.find(conn_id);
    return it == peers_.end() ? nullptr : it->second;
}

std::shared_ptr<net::connection> peer_registry::bind_seeker(const peer_ptr& p, const std::string& sid) {
    auto c = p->conn.lock();
    std::lock_guard lock(mutex_);
    std::shared_ptr<net::connection> old;
    if (auto it = seekers_.find(sid); it != seekers_.end())
        if (auto q = peers_.find(it->second); q != peers_.end() && q->second != p) old = q->second->conn.lock();
    seekers_[sid] = c ? c->id() : 0;
    p->state.who = client_state::role::seeker;
    p->state.id = sid;
    return old;
}

std::size_t peer_registry::bind_listener(const peer_ptr& p, const std::string& lid) {
    auto c = p->conn.lock();
    std::lock_guard lock(mutex_);
    p->state.who = client_state::role::listener;
    p->state.id = lid;
    auto& set = listeners_[lid];
    if (c) set.insert(c->id());
    return set.size();
}

void peer_registry::bind_supervisor(const peer_ptr& p, const std::string& id) {
    auto c = p->conn.lock();
    std::lock_guard lock(mutex_);
    p->state.who = client_state::role::supervisor;
    p->state.id = id;
    if (c) supervisors_.insert(c->id());
}

peer_ptr peer_registry::seeker(const std::string& sid) const {
    std::lock_guard lock(mutex_);
    auto it = seekers_.find(sid);
    if (it == seekers_.end()) return nullptr;
    auto p = peers_.find(it->second);
    return p == peers_.end() ? nullptr : p->second;
}

std::vector<peer_ptr> peer_registry::listener(const std::string& lid) const {
    std::vector<peer_ptr> out;
    std::lock_guard lock(mutex_);
    auto it = listeners_.find(lid);
    if (it == listeners_.end()) return out;
    for (auto cid : it->second)
        if (auto p = peers_.find(cid); p != peers_.end()) out.push_back(p->second);
    return out;
}

std::vector<peer_ptr> peer_registry::supervisors() const {
    std::vector<peer_ptr> out;
    std::lock_guard lock(mutex_);
    for (auto cid : supervisors_)
        if (auto it = peers_.find(cid); it != peers_.end()) out.push_back(it->second);
    return out;
}

std::vector<std::pair<std::string, peer_ptr>> peer_registry::seekers() const {
    std::vector<std::pair<std::string, peer_ptr>> out;
    std::lock_guard lock(mutex_);
    out.reserve(seekers_.size());
    for (const auto& [sid, cid] : seekers_)
        if (auto it = peers_.find(cid); it != peers_.end()) out.emplace_back(sid, it->second);
    return out;
}

std::vector<std::pair<std::string, std::size_t>> peer_registry::listeners() const {
    std::vector<std::pair<std::string, std::size_t>> out;
    std::lock_guard lock(mutex_);
    out.reserve(listeners_.size());
    for (const auto& [lid, conns] : listeners_) out.emplace_back(lid, conns.size());
    return out;
}

std::size_t peer_registry::size() const {
    std::lock_guard lock(mutex_);
    return peers_.size();
}

void peer_registry::send(const peer_ptr& p, const v1::ServerMessage& m) const {
    if (auto c = p->conn.lock()) c->send(codec::encode(m, p->state.format), p->state.format == codec::format::binary);
}

void peer_registry::to_seeker(const std::string& sid, const v1::ServerMessage& m) const {
    if (auto p = seeker(sid)) send(p, m);
}

void peer_registry::to_listener(const std::string& lid, const v1::ServerMessage& m) const {
    for (auto& p : listener(lid)) send(p, m);
}

void peer_registry::to_all(const v1::ServerMessage& m) const {
    std::vector<peer_ptr> all;
    {
        std::lock_guard lock(mutex_);
        all.reserve(peers_.size());
        for (const auto& [_, p] : peers_)
            if (p->state.who != client_state::role::none) all.push_back(p);
    }
    for (const auto& p : all) send(p, m);
}

}  // namespace warmline::matchmaker
