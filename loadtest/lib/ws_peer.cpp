// The Beast side of loadtest/lib/ws_peer.hpp: connect, upgrade, the read loop and the writer.
#include "loadtest/lib/ws_peer.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <deque>
#include <stdexcept>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace warmline::bench {
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

ws_url parse_url(const std::string& url, const std::string& default_target) {
    if (url.rfind("ws://", 0) != 0) throw std::invalid_argument("'" + url + "' is not a ws:// URL");
    std::string rest = url.substr(5);
    auto slash = rest.find('/');
    ws_url u;
    u.host_port = rest.substr(0, slash);
    u.target = slash == std::string::npos ? default_target : rest.substr(slash);
    auto colon = u.host_port.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("'" + url + "' has no port");
    boost::system::error_code ec;
    u.address = asio::ip::make_address_v4(u.host_port.substr(0, colon), ec);
    if (ec || (u.address.to_uint() >> 24) != 127)
        throw std::invalid_argument("'" + url + "' is not on 127.0.0.0/8; the bench only loads the local machine");
    u.port = static_cast<std::uint16_t>(std::stoi(u.host_port.substr(colon + 1)));
    return u;
}

asio::ip::address_v4 source_address(unsigned i, unsigned count) {
    unsigned k = i % std::max(1u, std::min(count, 62500u));
    return asio::ip::address_v4(asio::ip::address_v4::bytes_type{
        127, 1, static_cast<unsigned char>(k / 250), static_cast<unsigned char>(k % 250 + 1)});
}

bool upgrade_refused(const boost::system::error_code& ec) { return ec == websocket::error::upgrade_declined; }
bool out_of_descriptors(const boost::system::error_code& ec) { return ec == asio::error::no_descriptors; }

bool connect_tally::next() {
    if (stop_) return false;
    if (now_ms() > deadline_ms_) {
        stop_ = true;
        stopped_by_ = "the step's deadline";
        return false;
    }
    ++attempts_;
    return true;
}

bool connect_tally::opened(const boost::system::error_code& ec, const std::string& server) {
    if (!ec) return true;
    if (out_of_descriptors(ec)) limit("bench_emfile", "the bench's own open-file limit (EMFILE)");
    else if (upgrade_refused(ec))
        limit("refused_by_" + server, "the " + server + " refused the upgrade (HTTP 503: its --max-connections)");
    else fail("connect_error", "connect/upgrade errors: " + ec.message());
    return false;
}

void connect_tally::fail(const std::string& kind, const std::string& why) {
    ++failures_;
    ++by_kind_[kind];
    if (++consecutive_ >= 50 && !stop_) {
        stop_ = true;
        stopped_by_ = why;
    }
}

// a limit reached is final: stop handing out new connections, name the first one hit
void connect_tally::limit(const std::string& kind, const std::string& why) {
    ++failures_;
    ++by_kind_[kind];
    if (!stop_) stopped_by_ = why;
    stop_ = true;
}

std::string connect_tally::failures_json() const {
    json_line j;
    for (auto& [k, n] : by_kind_) j.integer(k, n);
    return j.text();
}

struct frame_peer::impl : std::enable_shared_from_this<impl> {
    explicit impl(asio::io_context& ioc) : ws(ioc) {}

    static asio::awaitable<boost::system::error_code> open(std::shared_ptr<impl> self, ws_url u,
                                                           std::optional<asio::ip::address_v4> source,
                                                           std::chrono::milliseconds timeout) {
        auto& stream = beast::get_lowest_layer(self->ws);
        beast::error_code ec;
        stream.socket().open(tcp::v4(), ec);
        if (ec) co_return ec;
        if (source) {
            int one = 1;
            ::setsockopt(stream.socket().native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            stream.socket().bind(tcp::endpoint(*source, 0), ec);
            if (ec) co_return ec;
        }
        stream.expires_after(timeout);
        auto [cec] = co_await stream.async_connect(tcp::endpoint(u.address, u.port), use_tuple);
        if (cec) co_return cec;
        // Beast: the WebSocket's own timeouts replace the TCP stream's once it is upgraded
        stream.expires_never();
        stream.socket().set_option(tcp::no_delay(true), ec);
        websocket::stream_base::timeout t{};
        t.handshake_timeout = timeout;
        t.idle_timeout = websocket::stream_base::none();
        t.keep_alive_pings = false;
        self->ws.set_option(t);
        self->ws.binary(true);
        self->ws.read_message_max(1 << 20);
        auto [hec] = co_await self->ws.async_handshake(u.host_port, u.target, use_tuple);
        if (hec) co_return hec;
        self->open_ = !self->closed_;
        co_return beast::error_code{};
    }

    static asio::awaitable<void> read_loop(std::shared_ptr<impl> self) {
        for (;;) {
            auto [ec, n] = co_await self->ws.async_read(self->buffer, use_tuple);
            if (ec) break;
            auto data = self->buffer.cdata();
            if (self->on_frame) self->on_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
            self->buffer.consume(self->buffer.size());
        }
        self->open_ = false;
        // the handlers may hold their owner: let go of them, after telling it
        auto closed = std::move(self->on_closed);
        self->on_frame = nullptr;
        if (closed) closed();
    }

    static asio::awaitable<void> write_loop(std::shared_ptr<impl> self) {
        while (!self->out.empty()) {
            auto [ec, n] = co_await self->ws.async_write(asio::buffer(self->out.front()), use_tuple);
            if (ec) {
                self->out.clear();
                break;
            }
            self->out.pop_front();
        }
        self->writing = false;
    }

    void close() {
        closed_ = true;
        open_ = false;
        beast::error_code ec;
        beast::get_lowest_layer(ws).socket().close(ec);
    }

    websocket::stream<beast::tcp_stream> ws;
    beast::flat_buffer buffer;
    std::deque<std::string> out;
    bool writing = false;
    bool open_ = false;
    bool closed_ = false;
    frame_handler on_frame;
    std::function<void()> on_closed;
};

frame_peer::frame_peer(asio::io_context& ioc) : impl_(std::make_shared<impl>(ioc)) {}

frame_peer::~frame_peer() { impl_->close(); }

asio::awaitable<boost::system::error_code> frame_peer::open(const ws_url& u, std::optional<asio::ip::address_v4> source,
                                                            std::chrono::milliseconds timeout) {
    co_return co_await impl::open(impl_, u, source, timeout);
}

void frame_peer::start(frame_handler on_frame, std::function<void()> on_closed) {
    impl_->on_frame = std::move(on_frame);
    impl_->on_closed = std::move(on_closed);
    asio::co_spawn(impl_->ws.get_executor(), impl::read_loop(impl_), asio::detached);
}

void frame_peer::send(std::string frame) {
    if (!impl_->open_) return;
    impl_->out.push_back(std::move(frame));
    if (!impl_->writing) {
        impl_->writing = true;
        asio::co_spawn(impl_->ws.get_executor(), impl::write_loop(impl_), asio::detached);
    }
}

void frame_peer::close() { impl_->close(); }
bool frame_peer::is_open() const { return impl_->open_; }
std::size_t frame_peer::queued() const { return impl_->out.size(); }

}  // namespace warmline::bench
