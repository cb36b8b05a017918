// The web app's server: the static files under one folder (read once at start, served from
// memory, so no request can reach a file outside it), /config.json telling the page where the
// matchmaker is and what the catalogue holds, and /healthz. Every response carries a strict
// Content-Security-Policy: the page may load nothing from another host and may open WebSockets
// only to the matchmaker and relays it was told about.
#pragma once

#include "common/metrics.hpp"
#include "common/net.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace warmline::web {

struct site_options {
    std::string root;                      // folder of static files; "/" is root/index.html
    std::string matchmaker_url;            // ws(s)://host:port/v1/ws, given to the page
    std::string catalogue_json;            // the catalogue as proto3 JSON
    std::vector<std::string> connect_src;  // more WebSocket origins the page may open (relays)
};

// One file as served.
struct asset {
    std::string body;
    std::string content_type;
    std::string etag;
};

// Content type for a file name, or "" for a kind of file the site does not serve.
std::string content_type_for(const std::string& name);
// The CSP for a matchmaker URL and extra origins; throws std::invalid_argument for a URL that
// is not ws:// or wss://.
std::string content_security_policy(const std::string& matchmaker_url, const std::vector<std::string>& connect_src);

class site final : public net::handler {
public:
    // Reads every servable file under opts.root; throws std::runtime_error with a sentence when
    // the folder is missing or has no index.html.
    explicit site(site_options opts);

    boost::asio::awaitable<net::http_response> on_http(net::http_request req) override;
    boost::asio::awaitable<std::optional<net::http_response>> on_upgrade(const net::http_request& req) override;
    void on_open(std::shared_ptr<net::connection>) override {}
    boost::asio::awaitable<void> on_message(std::shared_ptr<net::connection>, std::string, bool) override;
    void on_close(std::shared_ptr<net::connection>) override {}

    // What a GET of `path` returns, given the request's If-None-Match (for tests and on_http).
    net::http_response get(const std::string& path, const std::string& if_none_match) const;
    std::size_t file_count() const { return assets_.size(); }

private:
    net::http_response with_headers(net::http_response r) const;

    // Count a response by its class (2xx ... 5xx) for /metrics.
    void count(unsigned status);

    std::map<std::string, asset> assets_;  // URL path ("/js/app.js") -> file
    std::string csp_;
    metrics::registry metrics_;
};

}  // namespace warmline::web
