// Redis Sentinel, as its client spec asks (redis.io, "Sentinel client spec"): on every
// (re)connect the sentinels are asked in order, each with a short timeout, for the master's
// address; the first to answer moves to the front of the list; the server it names must say
// ROLE master, else the round starts again after the usual backoff, with the sentinel that named
// it asked last. A watch subscribed to +switch-master on a sentinel closes the connection when
// the master moves, and a READONLY reply does the same (client.cpp), so a demoted master is left
// however we learn of it. This file owns the connection's Sentinel steps; the connection itself
// is connection.cpp's.
#include "common/redis/detail.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace warmline::redis::detail {

const char connection::role_tag = 'r';
const char connection::query_tag = 'q';

namespace {

std::string_view text_of(const redisReply& r) { return {r.str, r.len}; }

bool is_text(const redisReply* r) {
    return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

}  // namespace

// strand, inside hiredis
std::optional<std::string> connection::check_sentinel_reply(link& l, const redisReply& r, const void* tag,
                                                           const std::string& master_name) {
    if (tag == &role_tag) {
        // ["master", offset, replicas] on a master; ["slave", host, port, state, offset] on a replica.
        if (r.type == REDIS_REPLY_ARRAY && r.elements > 0 && is_text(r.element[0])) {
            const std::string_view role = text_of(*r.element[0]);
            if (role == "master") return std::nullopt;
            l.not_master = true;
            return describe(l.peer) + " says ROLE " + std::string(role) + ", not master (asking the sentinels again)";
        }
        return describe(l.peer) + " gave no usable answer to ROLE";
    }
    // The sentinel's answer: [ip, port], or nil if it does not monitor that name.
    if (r.type == REDIS_REPLY_ARRAY && r.elements == 2 && is_text(r.element[0]) && is_text(r.element[1])) {
        if (auto port = parse_port(text_of(*r.element[1]))) {
            l.found = endpoint::address{std::string(text_of(*r.element[0])), *port};
            return "answered";  // this link's work is done
        }
    }
    if (r.type == REDIS_REPLY_NIL) return "does not know a master named '" + master_name + "'";
    return "gave no usable answer to SENTINEL get-master-addr-by-name";
}

void connection::ask_next_sentinel() {
    connect_to(sentinels_[asking_], link_purpose::sentinel_query, opts_.sentinel_timeout);
}

void connection::sentinel_failed(std::string reason) {
    if (!sentinel_errors_.empty()) sentinel_errors_ += "; ";
    sentinel_errors_ += describe(sentinels_[asking_]) + ": " + reason;
    if (++asking_ >= sentinels_.size()) {
        asking_ = 0;
        attempt_failed("no sentinel told where master '" + opts_.where.master_name + "' is (" +
                           sentinel_errors_ + ")",
                       false);
        return;
    }
    // Posted: this may run inside a hiredis callback of the link that just failed.
    asio::post(strand_, [self = shared_from_this(), attempt = attempt_] {
        if (attempt == self->attempt_ && self->running_ && !self->link_) self->ask_next_sentinel();
    });
}

void connection::sentinel_answered(const endpoint::address& master) {
    // The first sentinel to answer is asked first next time (it was reachable last).
    found_by_ = sentinels_[asking_];
    std::rotate(sentinels_.begin(), sentinels_.begin() + static_cast<std::ptrdiff_t>(asking_),
                sentinels_.begin() + static_cast<std::ptrdiff_t>(asking_) + 1);
    asking_ = 0;
    if (master_known_ && master_ != master)
        spdlog::info("redis {}: sentinel {} names {} as master '{}' (was {})", role_, describe(found_by_),
                     describe(master), opts_.where.master_name, describe(master_));
    asio::post(strand_, [self = shared_from_this(), attempt = attempt_, master] {
        if (attempt == self->attempt_ && self->running_ && !self->link_)
            self->connect_to(master, link_purpose::redis, self->opts_.connect_timeout);
    });
}

// Beyond the spec, which only says to start again: a sentinel that named a server that is not the
// master goes to the back of the list, so that one sentinel stuck on an old view (partitioned
// from the others, or misconfigured) cannot keep every reconnect on a replica.
void connection::distrust_sentinel(const endpoint::address& sentinel) {
    const auto it = std::find(sentinels_.begin(), sentinels_.end(), sentinel);
    if (it != sentinels_.end()) std::rotate(it, it + 1, sentinels_.end());
}

// any thread: the watch's strand calls this
void connection::master_switched(std::string_view payload) {
    // "<name> <old ip> <old port> <new ip> <new port>"
    std::vector<std::string_view> words;
    std::size_t start = 0;
    while (start < payload.size()) {
        const auto space = payload.find(' ', start);
        const auto end = space == std::string_view::npos ? payload.size() : space;
        if (end > start) words.push_back(payload.substr(start, end - start));
        start = end + 1;
    }
    if (words.size() != 5 || words[0] != opts_.where.master_name) return;
    const auto old_port = parse_port(words[2]);
    const auto new_port = parse_port(words[4]);
    if (!old_port || !new_port) return;
    endpoint::address from{std::string(words[1]), *old_port};
    endpoint::address to{std::string(words[3]), *new_port};
    asio::post(strand_, [self = shared_from_this(), from = std::move(from), to = std::move(to)] {
        self->follow_switch(from, to);
    });
}

void connection::follow_switch(const endpoint::address& from, const endpoint::address& to) {
    if (!running_) return;
    spdlog::info("redis {}: Sentinel switched master '{}' from {} to {}", role_, opts_.where.master_name,
                 describe(from), describe(to));
    // A link to the new master, or a question to a sentinel, may go on; a link anywhere else
    // ends, and the next connect asks the sentinels again.
    if (link_ && link_->purpose == link_purpose::redis && link_->peer != to)
        close_link("Sentinel switched master '" + opts_.where.master_name + "' to " + describe(to));
    // Between attempts (the old master died: the backoff may have grown to seconds), there is a
    // master to reach now: go at once.
    if (!link_ && !resolving_ && running_) {
        retry_timer_.cancel();
        backoff_ = opts_.backoff_initial;
        connect();
    }
}

}  // namespace warmline::redis::detail
