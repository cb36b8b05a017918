// Client WebSockets for the load generators: a frame_peer (one Beast stream: connect from a chosen
// 127.x source address, a read loop handing every frame to a callback, a writer keeping at most
// one async_write in flight) and proto_peer<Out, In> on top of it, which speaks protobuf binary
// frames and matches replies to requests by request_id. Beast is compiled only in ws_peer.cpp.
//
// One thread: a peer and its callbacks belong to the thread running its io_context.
#pragma once

#include "loadtest/lib/bench_common.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace warmline::bench {

struct ws_url {
    asio::ip::address_v4 address;
    std::uint16_t port = 0;
    std::string host_port;
    std::string target;  // path and query
};

// Only ws://127.x.y.z:port/path: a load generator must never load anything but this machine.
// Throws std::invalid_argument otherwise.
ws_url parse_url(const std::string& url, const std::string& default_target = "/");

// The i-th of `count` source addresses in 127.1.0.0/16 (count at most 62,500). With
// IP_BIND_ADDRESS_NO_PORT the kernel picks the port per 4-tuple at connect time, so the ~28k
// ephemeral ports of one source address stop being the limit on connections to one port.
asio::ip::address_v4 source_address(unsigned i, unsigned count);

// Whether an open() failed because the server refused the upgrade (an HTTP status, e.g. 503).
bool upgrade_refused(const boost::system::error_code& ec);
// Whether it failed because this process ran out of descriptors (EMFILE).
bool out_of_descriptors(const boost::system::error_code& ec);

// The bookkeeping of a step that opens as many connections as it can: attempts, failures by
// kind, and why it stopped. A limit (this process's descriptors, the server refusing upgrades)
// stops it at once; other failures only after 50 in a row; so does the deadline.
class connect_tally {
public:
    explicit connect_tally(double deadline_ms) : deadline_ms_(deadline_ms) {}
    // Whether to make another attempt (and count it).
    bool next();
    // Classify an open() result; false (and counted) if it failed. `server` names the process
    // in the reasons ("matchmaker", "relay").
    bool opened(const boost::system::error_code& ec, const std::string& server);
    void fail(const std::string& kind, const std::string& why);
    void limit(const std::string& kind, const std::string& why);
    void succeeded() { consecutive_ = 0; }

    long long attempts() const { return attempts_; }
    long long failures() const { return failures_; }
    const std::string& stopped_by() const { return stopped_by_; }
    std::string failures_json() const;

private:
    double deadline_ms_;
    long long attempts_ = 0, failures_ = 0, consecutive_ = 0;
    std::map<std::string, long long> by_kind_;
    std::string stopped_by_ = "all requested connections were made";
    bool stop_ = false;
};

// How many of these peers are still open.
template <class Peer>
long long count_open(const std::vector<std::shared_ptr<Peer>>& peers) {
    long long n = 0;
    for (auto& p : peers) n += p->is_open() ? 1 : 0;
    return n;
}

class frame_peer {
public:
    using frame_handler = std::function<void(std::string_view)>;

    explicit frame_peer(asio::io_context& ioc);
    ~frame_peer();  // closes the socket
    frame_peer(const frame_peer&) = delete;
    frame_peer& operator=(const frame_peer&) = delete;

    // Connect (from `source` when given) and upgrade; binary frames, no idle timeout of our own
    // (the server's pings are answered while reading). Returns the first error, if any.
    asio::awaitable<boost::system::error_code> open(const ws_url& u, std::optional<asio::ip::address_v4> source,
                                                    std::chrono::milliseconds timeout);
    // Start reading: every frame goes to on_frame; on_closed runs once when reading stops.
    void start(frame_handler on_frame, std::function<void()> on_closed);
    // Queue one binary frame; dropped once the connection is closed.
    void send(std::string frame);
    void close();
    bool is_open() const;
    // Frames queued and not yet written.
    std::size_t queued() const;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

// A WebSocket speaking protobuf binary: sends Out, receives In. Replies whose request_id has a
// call() waiting go to that call; everything else goes to the handler given to start().
template <class Out, class In>
class proto_peer : public std::enable_shared_from_this<proto_peer<Out, In>> {
public:
    using handler = std::function<void(const In&)>;

    explicit proto_peer(asio::io_context& ioc) : link_(ioc) {}

    asio::awaitable<boost::system::error_code> open(const ws_url& u, std::optional<asio::ip::address_v4> source,
                                                    std::chrono::milliseconds timeout) {
        co_return co_await link_.open(u, source, timeout);
    }

    void start(handler h) {
        on_message_ = std::move(h);
        std::weak_ptr<proto_peer> weak = this->shared_from_this();
        link_.start([weak](std::string_view frame) {
            if (auto self = weak.lock()) self->on_frame(frame);
        }, [weak] {
            if (auto self = weak.lock())
                for (auto& [_, w] : self->waiters_) w->timer.cancel();
        });
    }

    // Queue a message under a fresh request id and return the id.
    std::string send(Out& m) {
        std::string id = "b" + std::to_string(++next_id_);
        m.set_request_id(id);
        if (link_.is_open()) link_.send(m.SerializeAsString());
        return id;
    }

    // Send and wait for the reply to this request id; nullopt on timeout or a closed connection.
    asio::awaitable<std::optional<In>> call(Out m, std::chrono::milliseconds timeout) {
        auto w = std::make_shared<waiter>(co_await asio::this_coro::executor);
        w->timer.expires_after(timeout);
        std::string id = send(m);
        if (!link_.is_open()) co_return std::nullopt;
        waiters_[id] = w;
        co_await w->timer.async_wait(use_tuple);
        waiters_.erase(id);
        co_return std::move(w->reply);
    }

    void close() { link_.close(); }
    bool is_open() const { return link_.is_open(); }
    std::size_t queued() const { return link_.queued(); }

private:
    struct waiter {
        explicit waiter(asio::any_io_executor ex) : timer(ex) {}
        asio::steady_timer timer;
        std::optional<In> reply;
    };

    void on_frame(std::string_view frame) {
        In m;
        if (!m.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) return;
        if (!waiters_.empty() && !m.request_id().empty()) {
            if (auto it = waiters_.find(m.request_id()); it != waiters_.end()) {
                it->second->reply = std::move(m);
                it->second->timer.cancel();
                return;
            }
        }
        if (on_message_) on_message_(m);
    }

    frame_peer link_;
    std::uint64_t next_id_ = 0;
    handler on_message_;
    std::unordered_map<std::string, std::shared_ptr<waiter>> waiters_;
};

}  // namespace warmline::bench
