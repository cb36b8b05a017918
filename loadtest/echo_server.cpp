// warmline-echo-server: a raw Beast WebSocket echo server, the baseline of `scripts/bench relay`.
// It is built the way common/net builds a connection (one io_context thread, a strand per
// connection, no_delay, Beast's own timeouts with pings, read_message_max, a reader and a single
// writer draining a bounded queue) and does nothing else: every message goes straight back. What
// the relay does per message beyond this (parsing, Redis, a second socket) is what the benchmark
// compares. Not a service: it binds to 127.0.0.0/8 only and has no HTTP.
#include "common/config.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <deque>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct settings {
    tcp::endpoint listen{asio::ip::make_address("127.0.0.1"), 0};
    std::size_t write_queue_max = 256;
    std::size_t read_message_max = 32768;
    std::chrono::milliseconds handshake_timeout{10000};
    std::chrono::milliseconds idle_timeout{60000};
};

const char* usage = R"(warmline-echo-server: a raw Beast WebSocket echo server (baseline for `scripts/bench relay`)
  --listen 127.0.0.1:0        address:port (port 0: any free port; printed as READY ws://...)
  --write-queue-max N (256)   messages queued to a slow client before it is closed with 1013
  --read-message-max N (32768)
  --idle-timeout-ms MS (60000)
)";

// One connection: the reader queues what it read, the writer sends it back.
class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket socket, const settings& s) : ws_(std::move(socket)), settings_(s) {}

    static asio::awaitable<void> run(std::shared_ptr<session> self) {
        auto& ws = self->ws_;
        ws.read_message_max(self->settings_.read_message_max);
        ws.set_option(websocket::stream_base::timeout{self->settings_.handshake_timeout, self->settings_.idle_timeout,
                                                      true});
        auto [aec] = co_await ws.async_accept(use_tuple);
        if (aec) co_return;
        beast::flat_buffer buffer;
        for (;;) {
            auto [ec, n] = co_await ws.async_read(buffer, use_tuple);
            if (ec) break;
            if (self->queue_.size() >= self->settings_.write_queue_max) {
                websocket::close_reason why(websocket::close_code::try_again_later);
                co_await ws.async_close(why, use_tuple);
                break;
            }
            self->queue_.push_back({beast::buffers_to_string(buffer.data()), ws.got_binary()});
            buffer.consume(buffer.size());
            if (!self->writing_) {
                self->writing_ = true;
                asio::co_spawn(ws.get_executor(), write_loop(self), asio::detached);
            }
        }
        self->queue_.clear();
    }

private:
    struct frame {
        std::string data;
        bool binary = true;
    };

    static asio::awaitable<void> write_loop(std::shared_ptr<session> self) {
        while (!self->queue_.empty()) {
            frame f = std::move(self->queue_.front());  // out of the queue: a clear() cannot free it
            self->queue_.pop_front();
            self->ws_.binary(f.binary);
            auto [ec, n] = co_await self->ws_.async_write(asio::buffer(f.data), use_tuple);
            if (ec) {
                self->queue_.clear();
                break;
            }
        }
        self->writing_ = false;
    }

    websocket::stream<beast::tcp_stream> ws_;
    const settings& settings_;
    std::deque<frame> queue_;
    bool writing_ = false;
};

asio::awaitable<void> accept_loop(asio::io_context& ioc, tcp::acceptor& acceptor, const settings& s) {
    for (;;) {
        tcp::socket socket(asio::make_strand(ioc));
        auto [ec] = co_await acceptor.async_accept(socket, use_tuple);
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) {  // typically EMFILE: pause instead of spinning
            asio::steady_timer pause(ioc, std::chrono::milliseconds(50));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto ex = socket.get_executor();
        asio::co_spawn(ex, session::run(std::make_shared<session>(std::move(socket), s)), asio::detached);
    }
}

settings parse(int argc, char** argv, bool& help) {
    settings s;
    auto flags = warmline::config::split_flags(argc, argv);
    help = !flags;
    if (!flags) return s;
    for (auto& [name, value] : *flags) {
        if (name == "listen") {
            auto colon = value.rfind(':');
            if (colon == std::string::npos) throw std::invalid_argument("--listen takes address:port");
            auto address = asio::ip::make_address(value.substr(0, colon));
            if (!address.is_loopback()) throw std::invalid_argument("--listen must be a loopback address");
            s.listen = tcp::endpoint(address, static_cast<unsigned short>(std::stoi(value.substr(colon + 1))));
        } else if (name == "write-queue-max") {
            s.write_queue_max = std::stoul(value);
        } else if (name == "read-message-max") {
            s.read_message_max = std::stoul(value);
        } else if (name == "idle-timeout-ms") {
            s.idle_timeout = std::chrono::milliseconds(std::stol(value));
        } else {
            throw std::invalid_argument("unknown option --" + name + " (see --help)");
        }
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        bool help = false;
        settings s = parse(argc, argv, help);
        if (help) {
            std::cout << usage;
            return 0;
        }
        asio::io_context ioc(1);  // one thread, as every Warmline service
        tcp::acceptor acceptor(asio::make_strand(ioc));
        acceptor.open(s.listen.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        acceptor.bind(s.listen);
        acceptor.listen(asio::socket_base::max_listen_connections);
        asio::co_spawn(ioc, accept_loop(ioc, acceptor, s), asio::detached);
        asio::signal_set signals(ioc, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) { ioc.stop(); });
        auto at = acceptor.local_endpoint();
        std::cout << "READY ws://" << at.address().to_string() << ":" << at.port() << "/" << std::endl;
        ioc.run();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "echo-server: " << e.what() << "\n";
        return 1;
    }
}
