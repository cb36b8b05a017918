// The server behind common/net.hpp: the listener, the per-connection HTTP loop (written once as
// a template over the plain and the TLS stream) and the WebSocket session with its reader, its
// single writer and its bounded queue. Every Beast template the server needs is instantiated
// here, and only here, because Beast is slow to compile.
#include "common/net.hpp"

#include "common/client_address.hpp"
#include "common/http_query.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace warmline::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t http_body_limit = 64 * 1024;
// A close frame is a control frame: 125 bytes of payload, two of them the code.
constexpr std::size_t close_reason_max = 123;

// ---- errors -------------------------------------------------------------------------------

enum class failure_kind { expected, peer, unexpected };

// The one place that decides which failures are news. Peers hang up, time out and get
// cancelled all day; those are not errors. Malformed traffic is the peer's fault, worth a
// line at info; anything else is ours to look at.
failure_kind classify(const beast::error_code& ec) {
    if (ec == websocket::error::closed || ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::connection_aborted ||
        ec == asio::error::broken_pipe || ec == asio::error::not_connected ||
        ec == asio::error::bad_descriptor || ec == asio::ssl::error::stream_truncated) {
        return failure_kind::expected;
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category() ||
        ec.category() == websocket::make_error_code(websocket::error::closed).category() ||
        ec.category() == asio::error::get_ssl_category() ||
        ec.category() == asio::ssl::error::get_stream_category()) {
        return failure_kind::peer;
    }
    return failure_kind::unexpected;
}

// A client's address is personal data: it appears only at debug level, never in the info,
// warning and error lines that production keeps.
void log_failure(const beast::error_code& ec, std::string_view what, std::string_view remote) {
    switch (classify(ec)) {
    case failure_kind::expected:
        spdlog::debug("net: {} {}: {}", what, remote, ec.message());
        break;
    case failure_kind::peer:
        spdlog::info("net: {} a client: {}", what, ec.message());
        spdlog::debug("net: ... that client was {}", remote);
        break;
    case failure_kind::unexpected:
        spdlog::error("net: {} a client: {}", what, ec.message());
        spdlog::debug("net: ... that client was {}", remote);
        break;
    }
}

// The completion handler of every co_spawn: an exception that got this far is a bug of ours,
// and it is logged here instead of taking the io_context thread down with it.
auto log_escaped(std::string what) {
    return [what = std::move(what)](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            spdlog::error("net: exception escaped {}: {}", what, ex.what());
        } catch (...) {
            spdlog::error("net: unknown exception escaped {}", what);
        }
    };
}

// ---- request translation ------------------------------------------------------------------

std::string to_string(beast::string_view s) { return std::string(s.data(), s.size()); }

std::string to_string(const tcp::endpoint& ep) {
    const auto a = ep.address();
    return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(ep.port())
                     : a.to_string() + ":" + std::to_string(ep.port());
}

http_request translate(const http::request<http::string_body>& req, const std::string& remote,
                       const ip_address& peer, const trusted_proxies& trusted) {
    http_request r;
    r.method = to_string(req.method_string());
    r.target = to_string(req.target());
    const auto q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos) r.query = parse_query(std::string_view(r.target).substr(q + 1));
    for (const auto& field : req) {
        std::string name = to_string(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        auto [it, inserted] = r.headers.emplace(std::move(name), to_string(field.value()));
        // A repeated header is the same as one with the values comma-joined (RFC 9110 5.3).
        if (!inserted) it->second += ", " + to_string(field.value());
    }
    r.body = req.body();
    r.remote = remote;
    const auto forwarded = r.headers.find("x-forwarded-for");
    const auto client =
        resolve_client(peer, forwarded == r.headers.end() ? std::string_view() : forwarded->second, trusted);
    r.client = client.to_string();
    r.client_bucket = address_bucket(client);
    return r;
}

bool origin_allowed(const server_options& opts, const http_request& req) {
    const auto& allowed = opts.allowed_origins;
    if (allowed.empty() || std::find(allowed.begin(), allowed.end(), "*") != allowed.end()) return true;
    const auto it = req.headers.find("origin");
    // Browsers always send Origin on a WebSocket upgrade; its absence means a non-browser
    // client, which a forged-page attack cannot be.
    if (it == req.headers.end()) return true;
    return std::find(allowed.begin(), allowed.end(), it->second) != allowed.end();
}

http_response plain_text(unsigned status, std::string body) {
    http_response r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = std::move(body) + "\n";
    return r;
}

// ---- HTTP writing and ending --------------------------------------------------------------

template <class Stream>
asio::awaitable<bool> write_response(Stream& stream, const http_response& r, unsigned version,
                                     bool keep_alive, std::chrono::milliseconds timeout,
                                     const std::string& remote) {
    http::response<http::string_body> res;
    res.version(version);
    // A status Beast cannot represent is a handler bug; the client still gets an answer.
    res.result(r.status >= 100 && r.status <= 999 ? r.status : 500u);
    res.set(http::field::server, "warmline");
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.body() = r.body;
    res.keep_alive(keep_alive);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(timeout);
    auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
    if (ec) {
        log_failure(ec, "http write to", remote);
        co_return false;
    }
    co_return true;
}

// Ending an HTTP connection politely differs by layer: TCP half-closes, TLS says close_notify.
asio::awaitable<void> end_connection(beast::tcp_stream& stream, std::chrono::milliseconds) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    co_return;
}

asio::awaitable<void> end_connection(beast::ssl_stream<beast::tcp_stream>& stream,
                                     std::chrono::milliseconds timeout) {
    beast::get_lowest_layer(stream).expires_after(timeout);
    co_await stream.async_shutdown(use_tuple);
}

// ---- sessions -----------------------------------------------------------------------------

// What the server's registry needs from a session, whatever its stream type.
class session_base : public connection {
public:
    // Close with 1001 now, dropping what is queued. Any thread.
    virtual void going_away() = 0;
};

}  // namespace

// ---- the server's shared state ------------------------------------------------------------

// Shared by the server object, the accept loop and every session, so that a session finishing
// after ~server still has somewhere to unregister. The handler and the io_context are borrowed.
struct server::impl : std::enable_shared_from_this<server::impl> {
    impl(asio::io_context& ioc, server_options opts, handler& h)
        : ioc_(ioc),
          opts_(std::move(opts)),
          trusted_(opts_.trusted_proxies),
          handler_(h),
          acceptor_(asio::make_strand(ioc)) {}

    enum class admission { admitted, full, address_full, stopping };

    // Claim a connection slot (and one of the client's bucket) before the WebSocket handshake;
    // the counts are exact because the check and the increment happen under the same lock as
    // shutdown's snapshot.
    admission admit(const std::string& bucket) {
        std::lock_guard lock(mu_);
        if (stopping_) return admission::stopping;
        if (count_.load() >= opts_.max_connections) return admission::full;
        if (opts_.max_connections_per_address > 0) {
            auto& n = per_address_[bucket];
            if (n >= opts_.max_connections_per_address) return admission::address_full;
            ++n;
        }
        ++count_;
        return admission::admitted;
    }

    // A session admitted just before shutdown took its snapshot would be missed by it; it is
    // told to go away here instead.
    void enroll(std::uint64_t id, const std::shared_ptr<session_base>& s) {
        bool stopping = false;
        {
            std::lock_guard lock(mu_);
            sessions_.emplace(id, s);
            stopping = stopping_;
        }
        if (stopping) s->going_away();
    }

    void release(std::uint64_t id, const std::string& bucket) {
        std::lock_guard lock(mu_);
        sessions_.erase(id);
        if (opts_.max_connections_per_address > 0) {
            auto it = per_address_.find(bucket);
            if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
        }
        --count_;
    }

    asio::io_context& ioc_;
    const server_options opts_;
    const trusted_proxies trusted_;
    handler& handler_;
    tcp::acceptor acceptor_;  // on its own strand: closed from shutdown() on another thread
    std::optional<asio::ssl::context> tls_;
    std::atomic<std::uint16_t> port_{0};
    std::atomic<std::size_t> count_{0};
    std::atomic<std::uint64_t> next_id_{1};
    std::atomic<bool> draining_{false};

    std::mutex mu_;
    bool stopping_ = false;  // guarded by mu_
    std::unordered_map<std::uint64_t, std::weak_ptr<session_base>> sessions_;  // guarded by mu_
    std::unordered_map<std::string, std::size_t> per_address_;  // open WebSockets per bucket; mu_
};

namespace {

// One WebSocket. Everything below runs on the connection's strand; the public methods only
// post to it. The reader is the coroutine that called run(); the writer is started on demand
// and drains queue_, so at most one async_write and one async_close are ever in flight.
template <class Stream>
class ws_session final : public session_base, public std::enable_shared_from_this<ws_session<Stream>> {
public:
    ws_session(Stream&& stream, std::shared_ptr<server::impl> srv, http_request req, std::uint64_t id)
        : ws_(std::move(stream)),
          strand_(ws_.get_executor()),
          srv_(std::move(srv)),
          req_(std::move(req)),
          id_(id) {}

    void send(std::string data, bool binary) override {
        posted_.fetch_add(1);
        asio::post(strand_, [self = this->shared_from_this(), data = std::move(data), binary]() mutable {
            self->posted_.fetch_sub(1);
            self->enqueue(std::move(data), binary);
        });
    }

    void close(std::uint16_t code, std::string reason) override {
        if (reason.size() > close_reason_max) reason.resize(close_reason_max);
        asio::post(strand_, [self = this->shared_from_this(), code, reason = std::move(reason)]() mutable {
            self->request_close(code, std::move(reason), true);
        });
    }

    void going_away() override {
        asio::post(strand_, [self = this->shared_from_this()] {
            self->request_close(websocket::close_code::going_away, "server shutting down", false);
        });
    }

    std::uint64_t id() const override { return id_; }
    const std::string& remote() const override { return req_.remote; }

    asio::awaitable<void> queue_below(std::size_t n) override {
        auto self = this->shared_from_this();
        auto waiting = [this] { return queued_.load() + posted_.load(); };
        while (waiting() >= n && !ended_.load()) {
            auto t = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
            t->expires_at(asio::steady_timer::time_point::max());
            {
                std::lock_guard lock(waiters_mu_);
                waiters_.push_back(t);
                has_waiters_.store(true);
            }
            if (waiting() < n || ended_.load()) break;  // it moved while we registered
            co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
    const http_request& upgrade_request() const override { return req_; }

    // Accept the upgrade, then read until the connection ends. Never throws; on_close and the
    // server's bookkeeping happen exactly once, at the end, whatever ended it.
    asio::awaitable<void> run(http::request<http::string_body> upgrade) {
        auto self = this->shared_from_this();
        try {
            const auto& o = srv_->opts_;
            ws_.read_message_max(o.read_message_max);
            ws_.set_option(websocket::stream_base::timeout{o.handshake_timeout, o.idle_timeout, true});
            ws_.set_option(websocket::stream_base::decorator(
                [](websocket::response_type& res) { res.set(http::field::server, "warmline"); }));
            // The WebSocket keeps its own timers; the HTTP read deadline must not fire under it.
            beast::get_lowest_layer(ws_).expires_never();

            auto [ec] = co_await ws_.async_accept(upgrade, use_tuple);
            upgrade = {};  // its headers are in req_; this copy would live as long as the socket
            if (ec) {
                log_failure(ec, "websocket accept from", req_.remote);
            } else {
                opened_ = true;
                try {
                    srv_->handler_.on_open(self);
                } catch (const std::exception& e) {
                    spdlog::error("net: on_open threw for connection {}: {}", id_, e.what());
                    request_close(websocket::close_code::internal_error, "internal error", false);
                }
                // going_away() may have arrived during the handshake, before the writer could run.
                if (close_requested_) start_writer();
                co_await read_loop(self);
            }
        } catch (const std::exception& e) {
            spdlog::error("net: websocket session {} failed: {}", id_, e.what());
        }
        finish(self);
    }

private:
    struct outgoing {
        std::string data;
        bool binary = false;
    };

    asio::awaitable<void> read_loop(std::shared_ptr<ws_session> self) {
        beast::flat_buffer buffer;
        for (;;) {
            // An oversized frame fails this read, and Beast has already sent close 1009 and
            // torn the connection down by the time it completes.
            auto [ec, n] = co_await ws_.async_read(buffer, use_tuple);
            if (ec) {
                log_failure(ec, "websocket read from", req_.remote);
                co_return;
            }
            std::string data = beast::buffers_to_string(buffer.data());
            buffer.consume(buffer.size());
            // After close() the handler has said its last word; the reader only keeps going to
            // see the close handshake through.
            if (close_requested_) continue;
            bool failed = false;
            try {
                co_await srv_->handler_.on_message(self, std::move(data), ws_.got_binary());
            } catch (const std::exception& e) {
                spdlog::error("net: on_message threw for connection {}: {}", id_, e.what());
                failed = true;
            }
            if (failed) request_close(websocket::close_code::internal_error, "internal error", false);
        }
    }

    void enqueue(std::string data, bool binary) {
        if (finished_ || close_requested_) return;
        if (queue_.size() + (in_flight_ ? 1 : 0) >= srv_->opts_.write_queue_max) {
            // A consumer this slow would make us buffer without limit. 1013 tells it to come
            // back (resume) rather than that something is wrong with it.
            spdlog::info("net: write queue of connection {} full ({} messages), closing with 1013", id_,
                         srv_->opts_.write_queue_max);
            request_close(websocket::close_code::try_again_later, "write queue full", false);
            return;
        }
        queue_.push_back(outgoing{std::move(data), binary});
        queued_.store(queue_.size() + (in_flight_ ? 1 : 0));
        start_writer();
    }

    // flush: write what is already queued before the close frame (a handler's last words, e.g.
    // an error message); otherwise drop it (overflow, shutdown).
    void request_close(std::uint16_t code, std::string reason, bool flush) {
        if (finished_) return;
        if (!flush) {
            queue_.clear();
            note_queue_length();
        }
        if (close_requested_) return;
        close_requested_ = true;
        close_code_ = code;
        close_reason_ = std::move(reason);
        start_writer();
    }

    void start_writer() {
        if (!opened_ || writing_ || finished_) return;
        writing_ = true;
        asio::co_spawn(strand_, write_loop(this->shared_from_this()), log_escaped("websocket writer"));
    }

    static asio::awaitable<void> write_loop(std::shared_ptr<ws_session> self) { co_await self->drain(); }

    asio::awaitable<void> drain() {
        while (!finished_) {
            if (!queue_.empty()) {
                // Moved out of the queue so that clearing the queue (overflow, shutdown) can
                // never free the buffer an async_write is still sending from.
                outgoing m = std::move(queue_.front());
                queue_.pop_front();
                in_flight_ = true;
                ws_.binary(m.binary);
                auto [ec, n] = co_await ws_.async_write(asio::buffer(m.data), use_tuple);
                in_flight_ = false;
                note_queue_length();
                if (ec) {
                    log_failure(ec, "websocket write to", req_.remote);
                    queue_.clear();
                    // Make sure the reader notices too, so the session ends.
                    beast::get_lowest_layer(ws_).close();
                    break;
                }
                continue;
            }
            if (close_requested_ && !close_sent_) {
                close_sent_ = true;
                websocket::close_reason cr;
                cr.code = close_code_;
                cr.reason.assign(close_reason_.data(), close_reason_.size());
                auto [ec] = co_await ws_.async_close(cr, use_tuple);
                if (ec) log_failure(ec, "websocket close to", req_.remote);
            }
            break;
        }
        writing_ = false;
    }

    // Publish the queue's length to queue_below() waiters (any thread) and wake them.
    void note_queue_length() {
        queued_.store(queue_.size() + (in_flight_ ? 1 : 0));
        // Almost every write has nobody waiting (only a relay catch-up waits): no lock then. A
        // waiter that registers after this load reads queued_ again before it sleeps (seq_cst on
        // both sides), so it never misses the new length.
        if (!has_waiters_.load()) return;
        std::vector<std::shared_ptr<asio::steady_timer>> wake;
        {
            std::lock_guard lock(waiters_mu_);
            wake.swap(waiters_);
            has_waiters_.store(false);
        }
        for (auto& t : wake) asio::post(t->get_executor(), [t] { t->cancel(); });
    }

    void finish(const std::shared_ptr<ws_session>& self) {
        if (finished_) return;
        finished_ = true;
        ended_.store(true);
        queue_.clear();
        note_queue_length();
        // After a clean close Beast has closed the socket already; after a failure it may not
        // have, and a handler still holding this connection must not keep the socket alive.
        beast::get_lowest_layer(ws_).close();
        if (opened_) {
            try {
                srv_->handler_.on_close(self);
            } catch (const std::exception& e) {
                spdlog::error("net: on_close threw for connection {}: {}", id_, e.what());
            }
        }
        // Last, so that once shutdown() sees the count reach zero every on_close has returned.
        srv_->release(id_, req_.client_bucket);
    }

    websocket::stream<Stream> ws_;
    // A copy of the stream's strand, so that other threads never touch the stream itself.
    const asio::any_io_executor strand_;
    std::shared_ptr<server::impl> srv_;
    const http_request req_;
    const std::uint64_t id_;

    std::deque<outgoing> queue_;
    bool in_flight_ = false;
    bool writing_ = false;
    bool opened_ = false;
    bool close_requested_ = false;
    bool close_sent_ = false;
    bool finished_ = false;
    std::uint16_t close_code_ = 0;
    std::string close_reason_;
    // for queue_below(), which may run on another executor
    std::atomic<std::size_t> queued_{0};
    std::atomic<std::size_t> posted_{0};  // sent but not yet on the strand's queue
    std::atomic<bool> ended_{false};
    std::mutex waiters_mu_;
    std::vector<std::shared_ptr<asio::steady_timer>> waiters_;
    std::atomic<bool> has_waiters_{false};  // waiters_ is not empty (read without the lock)
};

// Owns the session while it runs (a free function: GCC 12 mishandles lambda coroutines whose
// captures have destructors).
template <class Session>
asio::awaitable<void> run_session(std::shared_ptr<Session> session, http::request<http::string_body> upgrade) {
    co_await session->run(std::move(upgrade));
}

// The HTTP side of one connection, plain or TLS: a keep-alive loop of requests that ends when
// the peer does, when a response says so, or when the connection becomes a WebSocket.
template <class Stream>
asio::awaitable<void> serve_http(std::shared_ptr<server::impl> srv, Stream stream, std::string remote,
                                 ip_address peer) {
    const auto& o = srv->opts_;
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(http_body_limit);
        beast::get_lowest_layer(stream).expires_after(o.handshake_timeout);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec) {
            log_failure(ec, "http read from", remote);
            if (ec == http::error::body_limit) {
                co_await write_response(stream, plain_text(413, "request body too large"), 11, false,
                                        o.handshake_timeout, remote);
                break;
            }
            co_return;
        }
        auto req = parser.release();
        http_request r = translate(req, remote, peer, srv->trusted_);

        if (websocket::is_upgrade(req)) {
            // Refusals are cheapest first; the handler (which may go to Redis) comes last.
            std::optional<http_response> refusal;
            if (!o.websockets) {
                refusal = plain_text(404, "no WebSocket on this port");
            } else if (srv->count_.load() >= o.max_connections) {
                refusal = plain_text(503, "server full, try again later");
            } else if (!origin_allowed(o, r)) {
                spdlog::info("net: refused an upgrade: origin '{}' not allowed",
                             r.headers["origin"]);
                refusal = plain_text(403, "origin not allowed");
            } else {
                try {
                    refusal = co_await srv->handler_.on_upgrade(r);
                } catch (const std::exception& e) {
                    spdlog::error("net: on_upgrade threw: {}", e.what());
                    refusal = plain_text(500, "internal error");
                }
            }
            if (!refusal) {
                switch (srv->admit(r.client_bucket)) {
                case server::impl::admission::admitted:
                    break;
                case server::impl::admission::full:
                    refusal = plain_text(503, "server full, try again later");
                    break;
                case server::impl::admission::address_full:
                    spdlog::debug("net: refused upgrade from {}: too many connections from its address", remote);
                    refusal = plain_text(429, "too many connections from your address, try again later");
                    break;
                case server::impl::admission::stopping:
                    refusal = plain_text(503, "server shutting down");
                    break;
                }
            }
            if (refusal) {
                co_await write_response(stream, *refusal, req.version(), false, o.handshake_timeout, remote);
                break;
            }
            const auto id = srv->next_id_++;
            auto session = std::make_shared<ws_session<Stream>>(std::move(stream), srv, std::move(r), id);
            srv->enroll(id, session);
            // The session runs in a coroutine of its own so that this one, with the HTTP read
            // buffer and parser, is freed now rather than held for the WebSocket's lifetime.
            asio::co_spawn(co_await asio::this_coro::executor, run_session(session, std::move(req)),
                           log_escaped("websocket session"));
            co_return;
        }

        std::optional<http_response> res;
        const bool readyz = r.path == "/readyz";
        const bool draining = readyz && srv->draining_.load();
        if (draining) {
            // the service may still be ready in every other sense; what matters to a load
            // balancer is that this process is about to close its connections
            res = http_response{503, "application/json", R"({"status":"draining"})", {}};
        } else if (!o.internal_endpoints && r.path == "/metrics") {
            res = plain_text(404, "not on this port");
        }
        try {
            if (!res) res = co_await srv->handler_.on_http(std::move(r));
        } catch (const std::exception& e) {
            // the path only: a query may carry a credential (the relay's ticket)
            auto target = to_string(req.target());
            spdlog::error("net: on_http threw for {} {}: {}", to_string(req.method_string()),
                          target.substr(0, target.find('?')), e.what());
        }
        if (!res) res = plain_text(500, "internal error");
        // a public port says ready or not, never which part is down (that is the internal port's)
        if (readyz && !draining && !o.internal_endpoints)
            res->body = res->status == 200 ? R"({"status":"ready"})" : R"({"status":"not ready"})";
        bool keep_alive = req.keep_alive();
        if (keep_alive) {
            std::lock_guard lock(srv->mu_);
            keep_alive = !srv->stopping_;
        }
        if (!co_await write_response(stream, *res, req.version(), keep_alive, o.handshake_timeout, remote))
            co_return;
        if (!keep_alive) break;
    }
    co_await end_connection(stream, o.handshake_timeout);
}

// The client a PROXY header names (the peer itself for a header without one), or nothing when
// the peer may not send one or sent none: the connection is then closed. The header is read
// exactly, byte by byte where its length is not yet known, so the bytes after it (a TLS
// handshake, an HTTP request) are left for the stream.
asio::awaitable<std::optional<ip_address>> read_proxy_header(server::impl& srv, beast::tcp_stream& stream,
                                                             const ip_address& peer, const std::string& remote) {
    if (!srv.trusted_.trusts(peer)) {
        spdlog::debug("net: closed a connection from {}: not a trusted proxy (--proxy-protocol)", remote);
        co_return std::nullopt;
    }
    std::string head;
    for (;;) {
        const auto h = parse_proxy_header(head);
        switch (h.state) {
        case proxy_header::status::proxied: co_return h.source;
        case proxy_header::status::local: co_return peer;
        case proxy_header::status::invalid:
            spdlog::info("net: closed a connection: no valid PROXY protocol header");
            spdlog::debug("net: ... it came from {}", remote);
            co_return std::nullopt;
        case proxy_header::status::incomplete: break;
        }
        const auto have = head.size();
        head.resize(h.length);
        stream.expires_after(srv.opts_.handshake_timeout);
        auto [ec, n] = co_await asio::async_read(stream, asio::buffer(head.data() + have, h.length - have), use_tuple);
        if (ec) {
            log_failure(ec, "PROXY header read from", remote);
            co_return std::nullopt;
        }
    }
}

asio::awaitable<void> run_connection(std::shared_ptr<server::impl> srv, tcp::socket socket) {
    beast::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    if (ec) co_return;  // gone before we looked
    std::string remote = to_string(ep);
    ip_address peer = ep.address();
    socket.set_option(tcp::no_delay(true), ec);
    beast::tcp_stream tcp_stream(std::move(socket));
    if (srv->opts_.proxy_protocol) {
        auto client = co_await read_proxy_header(*srv, tcp_stream, peer, remote);
        if (!client) co_return;
        peer = *client;
    }
    if (!srv->tls_) {
        co_await serve_http(srv, std::move(tcp_stream), std::move(remote), peer);
        co_return;
    }
    beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp_stream), *srv->tls_);
    beast::get_lowest_layer(tls).expires_after(srv->opts_.handshake_timeout);
    auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (hec) {
        log_failure(hec, "tls handshake with", remote);
        co_return;
    }
    co_await serve_http(srv, std::move(tls), std::move(remote), peer);
}

asio::awaitable<void> accept_loop(std::shared_ptr<server::impl> srv) {
    for (;;) {
        // Each connection lives on its own strand, so the io_context may be run by any number
        // of threads.
        tcp::socket socket(asio::make_strand(srv->ioc_));
        auto [ec] = co_await srv->acceptor_.async_accept(socket, use_tuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !srv->acceptor_.is_open()) co_return;
            // Typically EMFILE: back off briefly instead of spinning on a failing accept.
            spdlog::error("net: accept on port {} failed: {}", srv->port_.load(), ec.message());
            asio::steady_timer pause(srv->acceptor_.get_executor(), std::chrono::milliseconds(50));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        auto ex = socket.get_executor();
        asio::co_spawn(ex, run_connection(srv, std::move(socket)), log_escaped("connection"));
    }
}

void close_acceptor(const std::shared_ptr<server::impl>& srv) {
    asio::post(srv->acceptor_.get_executor(), [srv] {
        beast::error_code ec;
        srv->acceptor_.close(ec);
    });
}

}  // namespace

// ---- deadlines ----------------------------------------------------------------------------

namespace {

asio::awaitable<void> deadline(std::weak_ptr<connection> weak, std::chrono::milliseconds timeout,
                               std::function<bool(const connection&)> still_waiting, std::string reason) {
    asio::steady_timer t(co_await asio::this_coro::executor, timeout);
    co_await t.async_wait(use_tuple);
    auto c = weak.lock();
    if (c && still_waiting(*c)) c->close(1008, std::move(reason));
}

}  // namespace

void close_unless_in_time(asio::io_context& ioc, const std::shared_ptr<connection>& c, std::chrono::milliseconds timeout,
                          std::function<bool(const connection&)> still_waiting, std::string reason) {
    asio::co_spawn(ioc, deadline(c, timeout, std::move(still_waiting), std::move(reason)), asio::detached);
}

// ---- server -------------------------------------------------------------------------------

server::server(asio::io_context& ioc, server_options opts, handler& h)
    : impl_(std::make_shared<impl>(ioc, std::move(opts), h)) {}

// Sessions still open keep the shared state alive and keep calling the handler, so the
// handler must outlive them: call shutdown() first, or stop the io_context.
server::~server() {
    {
        std::lock_guard lock(impl_->mu_);
        impl_->stopping_ = true;
    }
    close_acceptor(impl_);
}

void server::start() {
    auto& s = *impl_;
    const auto& o = s.opts_;
    if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
        // Half a TLS configuration would otherwise silently serve plain text.
        throw std::invalid_argument("net: tls_cert_file and tls_key_file must be set together");
    }
    if (!o.tls_cert_file.empty()) {
        s.tls_.emplace(asio::ssl::context::tls_server);
        s.tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
        beast::error_code ec;
        s.tls_->use_certificate_chain_file(o.tls_cert_file, ec);
        if (ec) throw std::system_error(ec, "net: cannot load TLS certificate " + o.tls_cert_file);
        s.tls_->use_private_key_file(o.tls_key_file, asio::ssl::context::pem, ec);
        if (ec) throw std::system_error(ec, "net: cannot load TLS key " + o.tls_key_file);
    }

    if (o.proxy_protocol && s.trusted_.empty()) {
        // every connection would be refused
        throw std::invalid_argument("net: proxy_protocol needs the proxies' addresses in trusted_proxies");
    }
    const std::string where = o.address + ":" + std::to_string(o.port);
    beast::error_code ec;
    const auto address = asio::ip::make_address(o.address, ec);
    if (ec) throw std::system_error(ec, "net: bad listen address " + where);
    const tcp::endpoint ep(address, o.port);
    s.acceptor_.open(ep.protocol(), ec);
    if (!ec) s.acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) s.acceptor_.bind(ep, ec);
    if (!ec) s.acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        beast::error_code ignored;
        s.acceptor_.close(ignored);
        throw std::system_error(ec, "net: cannot listen on " + where);
    }
    s.port_ = s.acceptor_.local_endpoint().port();
    spdlog::info("net: listening on {}:{}{}", o.address, s.port_.load(), s.tls_ ? " (TLS)" : "");
    asio::co_spawn(s.acceptor_.get_executor(), accept_loop(impl_), log_escaped("accept loop"));
}

std::uint16_t server::port() const { return impl_->port_.load(); }

std::size_t server::connection_count() const { return impl_->count_.load(); }

void server::start_draining() { impl_->draining_.store(true); }

bool server::draining() const { return impl_->draining_.load(); }

asio::awaitable<void> server::shutdown(std::chrono::milliseconds drain) {
    auto s = impl_;
    std::vector<std::shared_ptr<session_base>> live;
    s->draining_.store(true);  // a stopping server is not ready either
    {
        std::lock_guard lock(s->mu_);
        s->stopping_ = true;
        for (const auto& [id, weak] : s->sessions_) {
            if (auto session = weak.lock()) live.push_back(std::move(session));
        }
    }
    close_acceptor(s);
    spdlog::info("net: shutting down port {}: closing {} connections", s->port_.load(), live.size());
    for (const auto& session : live) session->going_away();
    live.clear();

    // Sessions end on their own strands; a short poll is simpler than having every one of them
    // signal a timer on ours, and shutdown is not a hot path.
    const auto deadline = std::chrono::steady_clock::now() + drain;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (s->count_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(std::min<std::chrono::steady_clock::duration>(
            std::chrono::milliseconds(5), deadline - std::chrono::steady_clock::now()));
        co_await timer.async_wait(use_tuple);
    }
    if (const auto left = s->count_.load(); left > 0) {
        spdlog::warn("net: {} connections still open on port {} after a drain of {} ms", left,
                     s->port_.load(), drain.count());
    }
}

}  // namespace warmline::net
