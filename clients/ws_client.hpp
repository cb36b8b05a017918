// A small blocking WebSocket client for tests, the terminal client and tools (the clients
// library): every call runs its own io_context until done or until its timeout. Not for load
// generation (see loadtest/).
// One thread at a time per client.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace warmline::net {

struct ws_message {
    std::string data;
    bool binary = false;
};

class ws_client {
public:
    ws_client();
    ~ws_client();
    ws_client(const ws_client&) = delete;
    ws_client& operator=(const ws_client&) = delete;

    // Connect and upgrade. Throws std::runtime_error on failure, including the HTTP status and
    // body when the server refused the upgrade (see refused_status()).
    void connect(const std::string& host, std::uint16_t port, const std::string& target,
                 const std::map<std::string, std::string>& headers = {},
                 std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // How a TLS server is trusted: by default its certificate must chain to the system's trust
    // store (Debian's /etc/ssl/certs) or, with ca_file, to that CA alone, and must name the host
    // (a name or an IP address). insecure accepts any certificate: only for a local server, and
    // only when a person asked for it (warmline-client --insecure).
    struct tls_trust {
        tls_trust(std::string ca = {}) : ca_file(std::move(ca)) {}  // NOLINT: a CA file converts
        std::string ca_file;
        bool insecure = false;
    };
    // The same over TLS (wss), with SNI.
    void connect_tls(const std::string& host, std::uint16_t port, const std::string& target,
                     const tls_trust& trust, const std::map<std::string, std::string>& headers = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));
    void send_text(const std::string& s, std::chrono::milliseconds timeout = std::chrono::seconds(5));
    void send_binary(const std::string& s, std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // The next message, or nullopt on timeout. Throws std::runtime_error once the connection is
    // closed; close_code() then tells the close code the peer sent (0 if none).
    std::optional<ws_message> read(std::chrono::milliseconds timeout);
    void close(std::uint16_t code = 1000);
    // Drop the TCP connection without a close frame (a client that vanishes).
    void abort();
    bool is_open() const;
    std::uint16_t close_code() const;
    unsigned refused_status() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

// A blocking plain HTTP GET/POST on loopback, for tests and tools. Returns status and body.
struct http_result {
    unsigned status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // names lower-cased
};
http_result http_request_blocking(const std::string& host, std::uint16_t port, const std::string& method,
                                  const std::string& target, const std::string& body = {},
                                  const std::map<std::string, std::string>& headers = {},
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace warmline::net
