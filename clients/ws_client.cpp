// The blocking client behind clients/ws_client.hpp, and http_request_blocking(). Each call
// starts Beast's asynchronous operation and runs a private io_context until it completes or its
// deadline passes. A read that times out stays pending and is picked up by the next read(), so
// a timeout never breaks the stream.
#include "clients/ws_client.hpp"

#include <algorithm>
#include <cctype>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>

#include <openssl/ssl.h>

#include <exception>
#include <stdexcept>
#include <type_traits>
#include <variant>

namespace warmline::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

using plain_ws = websocket::stream<beast::tcp_stream>;
using tls_ws = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

std::string to_string(beast::string_view s) { return std::string(s.data(), s.size()); }

// The message of whatever a coroutine threw, for our own exception's text.
std::string describe(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown error";
    }
}

template <class Ws>
asio::awaitable<void> connect_and_upgrade(Ws& ws, tcp::resolver& resolver, std::string host,
                                          std::uint16_t port, std::string target,
                                          std::map<std::string, std::string> headers,
                                          websocket::response_type& res) {
    const auto endpoints = co_await resolver.async_resolve(host, std::to_string(port), asio::use_awaitable);
    co_await beast::get_lowest_layer(ws).async_connect(endpoints, asio::use_awaitable);
    beast::get_lowest_layer(ws).socket().set_option(tcp::no_delay(true));
    if constexpr (std::is_same_v<Ws, tls_ws>) {
        // SNI is for names only; an IP literal must not be sent as one.
        beast::error_code ec;
        asio::ip::make_address(host, ec);
        if (ec) SSL_set_tlsext_host_name(ws.next_layer().native_handle(), host.c_str());
        co_await ws.next_layer().async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    }
    ws.set_option(
        websocket::stream_base::decorator([headers = std::move(headers)](websocket::request_type& req) {
            req.set(http::field::user_agent, "warmline-ws-client");
            for (const auto& [name, value] : headers) req.set(name, value);
        }));
    co_await ws.async_handshake(res, host + ":" + std::to_string(port), target, asio::use_awaitable);
}

}  // namespace

struct ws_client::impl {
    // Declared first so that it is destroyed last: every stream below is bound to it.
    asio::io_context ioc_;
    std::optional<asio::ssl::context> tls_ctx_;
    std::optional<tcp::resolver> resolver_;
    std::variant<std::monostate, std::unique_ptr<plain_ws>, std::unique_ptr<tls_ws>> ws_;

    // The one outstanding read, kept across read() calls.
    beast::flat_buffer read_buffer_;
    bool read_pending_ = false;
    bool read_done_ = false;
    bool read_binary_ = false;
    beast::error_code read_ec_;

    std::string failure_;  // why the connection is over; empty while it is usable
    std::uint16_t close_code_ = 0;
    unsigned refused_status_ = 0;

    ~impl() { drop(); }

    template <class F>
    void with_ws(F&& f) {
        if (auto* p = std::get_if<std::unique_ptr<plain_ws>>(&ws_)) return f(**p);
        if (auto* p = std::get_if<std::unique_ptr<tls_ws>>(&ws_)) return f(**p);
        throw std::runtime_error("ws_client: not connected");
    }

    // Run handlers until done() or the deadline; true if done.
    template <class Done>
    bool run_until(Done done, clock_type::time_point deadline) {
        ioc_.restart();
        while (!done()) {
            // 0: the deadline passed, or there is nothing left to run.
            if (ioc_.run_one_until(deadline) == 0) return done();
        }
        return true;
    }

    // Close the TCP socket under whatever is in flight and let every handler run, so that no
    // completion is left referring to a caller's stack.
    void drop() {
        if (resolver_) resolver_->cancel();
        if (std::holds_alternative<std::monostate>(ws_)) return;
        with_ws([](auto& ws) {
            beast::error_code ec;
            beast::get_lowest_layer(ws).socket().close(ec);
        });
        ioc_.restart();
        ioc_.run();
    }

    // Wait for an operation the caller started; on timeout, abort the connection (a half-done
    // write or handshake leaves the stream unusable anyway) and throw.
    void wait(const bool& done, std::chrono::milliseconds timeout, const char* what) {
        if (run_until([&] { return done; }, clock_type::now() + timeout)) return;
        drop();
        failure_ = std::string(what) + " timed out";
        throw std::runtime_error("ws_client: " + failure_);
    }

    void reset() {
        drop();
        ws_ = std::monostate{};
        resolver_.reset();
        read_buffer_.clear();
        read_pending_ = read_done_ = read_binary_ = false;
        read_ec_ = {};
        failure_.clear();
        close_code_ = 0;
        refused_status_ = 0;
    }

    template <class Ws>
    void connect(Ws& ws, const std::string& host, std::uint16_t port, const std::string& target,
                 const std::map<std::string, std::string>& headers, std::chrono::milliseconds timeout) {
        websocket::response_type res;
        bool done = false;
        std::exception_ptr error;
        asio::co_spawn(ioc_, connect_and_upgrade(ws, *resolver_, host, port, target, headers, res),
                       [&](std::exception_ptr e) {
                           error = e;
                           done = true;
                       });
        const std::string where = host + ":" + std::to_string(port) + target;
        wait(done, timeout, ("connect to " + where).c_str());
        if (!error) return;
        failure_ = "connect failed";
        bool declined = false;
        try {
            std::rethrow_exception(error);
        } catch (const boost::system::system_error& e) {
            declined = e.code() == websocket::error::upgrade_declined;
        } catch (...) {
        }
        drop();
        if (declined) {
            refused_status_ = res.result_int();
            throw std::runtime_error("ws_client: " + where + " refused the upgrade: HTTP " +
                                     std::to_string(refused_status_) + " " + to_string(res.reason()) + ": " +
                                     res.body());
        }
        throw std::runtime_error("ws_client: cannot connect to " + where + ": " + describe(error));
    }

    void start_read() {
        with_ws([this](auto& ws) {
            read_pending_ = true;
            ws.async_read(read_buffer_, [this, &ws](beast::error_code ec, std::size_t) {
                read_pending_ = false;
                read_done_ = true;
                read_ec_ = ec;
                read_binary_ = ws.got_binary();
                if (ec) close_code_ = ws.reason().code;
            });
        });
    }

    void write(const std::string& s, bool binary, std::chrono::milliseconds timeout) {
        if (!failure_.empty()) throw std::runtime_error("ws_client: cannot send: " + failure_);
        bool done = false;
        beast::error_code result;
        with_ws([&](auto& ws) {
            ws.binary(binary);
            ws.async_write(asio::buffer(s), [&](beast::error_code ec, std::size_t) {
                result = ec;
                done = true;
            });
        });
        wait(done, timeout, "send");
        if (result) throw std::runtime_error("ws_client: send failed: " + result.message());
    }
};

ws_client::ws_client() : impl_(std::make_unique<impl>()) {}

ws_client::~ws_client() = default;

void ws_client::connect(const std::string& host, std::uint16_t port, const std::string& target,
                        const std::map<std::string, std::string>& headers,
                        std::chrono::milliseconds timeout) {
    auto& s = *impl_;
    s.reset();
    s.resolver_.emplace(s.ioc_);
    auto& ws = *s.ws_.emplace<std::unique_ptr<plain_ws>>(std::make_unique<plain_ws>(s.ioc_));
    s.connect(ws, host, port, target, headers, timeout);
}

void ws_client::connect_tls(const std::string& host, std::uint16_t port, const std::string& target,
                            const tls_trust& trust, const std::map<std::string, std::string>& headers,
                            std::chrono::milliseconds timeout) {
    auto& s = *impl_;
    s.reset();  // also drops the old stream, which may still use the old context
    s.tls_ctx_.emplace(asio::ssl::context::tls_client);
    if (trust.insecure) {
        s.tls_ctx_->set_verify_mode(asio::ssl::verify_none);
    } else {
        if (trust.ca_file.empty()) s.tls_ctx_->set_default_verify_paths();
        else s.tls_ctx_->load_verify_file(trust.ca_file);
        s.tls_ctx_->set_verify_mode(asio::ssl::verify_peer);
        s.tls_ctx_->set_verify_callback(asio::ssl::host_name_verification(host));
    }
    s.resolver_.emplace(s.ioc_);
    auto& ws = *s.ws_.emplace<std::unique_ptr<tls_ws>>(std::make_unique<tls_ws>(s.ioc_, *s.tls_ctx_));
    s.connect(ws, host, port, target, headers, timeout);
}

void ws_client::send_text(const std::string& s, std::chrono::milliseconds timeout) {
    impl_->write(s, false, timeout);
}

void ws_client::send_binary(const std::string& s, std::chrono::milliseconds timeout) {
    impl_->write(s, true, timeout);
}

std::optional<ws_message> ws_client::read(std::chrono::milliseconds timeout) {
    auto& s = *impl_;
    if (!s.failure_.empty()) throw std::runtime_error("ws_client: cannot read: " + s.failure_);
    if (!s.read_done_ && !s.read_pending_) s.start_read();
    // A timeout leaves the read pending, on purpose: cancelling it would fail the stream.
    if (!s.run_until([&] { return s.read_done_; }, clock_type::now() + timeout)) return std::nullopt;
    s.read_done_ = false;
    if (s.read_ec_) {
        s.failure_ = "connection closed: " + s.read_ec_.message() + " (close code " +
                     std::to_string(s.close_code_) + ")";
        throw std::runtime_error("ws_client: " + s.failure_);
    }
    ws_message m{beast::buffers_to_string(s.read_buffer_.data()), s.read_binary_};
    s.read_buffer_.consume(s.read_buffer_.size());
    return m;
}

void ws_client::close(std::uint16_t code) {
    auto& s = *impl_;
    if (std::holds_alternative<std::monostate>(s.ws_) || !s.failure_.empty()) return;
    bool done = false;
    s.with_ws([&](auto& ws) {
        ws.async_close(websocket::close_reason(code), [&](beast::error_code) { done = true; });
    });
    // A pending read completes too, with websocket::error::closed, once the server answers.
    try {
        s.wait(done, std::chrono::seconds(5), "close");
    } catch (const std::exception&) {
        return;  // the connection is gone either way
    }
    s.failure_ = "closed by this client";
}

void ws_client::abort() {
    auto& s = *impl_;
    s.drop();
    if (s.failure_.empty()) s.failure_ = "aborted by this client";
}

bool ws_client::is_open() const {
    auto& s = *impl_;
    if (!s.failure_.empty() || std::holds_alternative<std::monostate>(s.ws_)) return false;
    bool open = false;
    s.with_ws([&](auto& ws) { open = ws.is_open(); });
    return open && !(s.read_done_ && s.read_ec_);
}

std::uint16_t ws_client::close_code() const { return impl_->close_code_; }

unsigned ws_client::refused_status() const { return impl_->refused_status_; }

http_result http_request_blocking(const std::string& host, std::uint16_t port, const std::string& method,
                                  const std::string& target, const std::string& body,
                                  const std::map<std::string, std::string>& headers,
                                  std::chrono::milliseconds timeout) {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    http_result result;

    auto exchange = [&]() -> asio::awaitable<void> {
        // One deadline for the whole exchange: tcp_stream applies it to every operation below.
        stream.expires_after(timeout);
        const auto endpoints =
            co_await resolver.async_resolve(host, std::to_string(port), asio::use_awaitable);
        co_await stream.async_connect(endpoints, asio::use_awaitable);

        http::request<http::string_body> req;
        const auto verb = http::string_to_verb(method);
        if (verb == http::verb::unknown) {
            req.method_string(method);
        } else {
            req.method(verb);
        }
        req.target(target);
        req.version(11);
        req.set(http::field::host, host + ":" + std::to_string(port));
        req.set(http::field::user_agent, "warmline-http-client");
        for (const auto& [name, value] : headers) req.set(name, value);
        req.body() = body;
        req.keep_alive(false);
        req.prepare_payload();
        co_await http::async_write(stream, req, asio::use_awaitable);

        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
        result.status = parser.get().result_int();
        for (const auto& field : parser.get()) {
            std::string name(field.name_string());
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            result.headers[name] = std::string(field.value());
        }
        result.body = std::move(parser.get().body());
        beast::error_code ec;
        stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    };

    std::exception_ptr error;
    asio::co_spawn(ioc, exchange(), [&](std::exception_ptr e) { error = e; });
    ioc.run();
    if (error) {
        throw std::runtime_error("http_request_blocking: " + method + " " + host + ":" +
                                 std::to_string(port) + target + ": " + describe(error));
    }
    return result;
}

}  // namespace warmline::net
