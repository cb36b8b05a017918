#include "services/web/site.hpp"

#include "common/crypto.hpp"
#include "common/log.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace warmline::web {

namespace {

// Files larger than this are not an app asset; refusing them keeps a mistake (a video, a core
// dump) out of memory.
constexpr std::uintmax_t max_asset_bytes = 4 * 1024 * 1024;

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + p.string());
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// "ws://host:port/path" -> "ws://host:port"
std::string origin_of(const std::string& url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) throw std::invalid_argument("'" + url + "' is not a URL");
    const std::string scheme = url.substr(0, scheme_end);
    if (scheme != "ws" && scheme != "wss")
        throw std::invalid_argument("'" + url + "' is not a ws:// or wss:// URL");
    const auto path = url.find('/', scheme_end + 3);
    std::string origin = url.substr(0, path);
    if (origin.size() == scheme_end + 3) throw std::invalid_argument("'" + url + "' has no host");
    for (char c : origin)
        if (c == ' ' || c == ';' || c == ',' || c == '\'' || c == '"')
            throw std::invalid_argument("'" + url + "' has a character a URL cannot have");
    return origin;
}

}  // namespace

std::string content_type_for(const std::string& name) {
    static const std::map<std::string, std::string> types = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".webmanifest", "application/manifest+json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const auto it = types.find(fs::path(name).extension().string());
    return it == types.end() ? std::string() : it->second;
}

std::string content_security_policy(const std::string& matchmaker_url, const std::vector<std::string>& connect_src) {
    // each origin once: behind one front door the matchmaker and the relays share one
    std::vector<std::string> origins{origin_of(matchmaker_url)};
    for (const auto& url : connect_src)
        if (std::find(origins.begin(), origins.end(), origin_of(url)) == origins.end()) origins.push_back(origin_of(url));
    std::string connect = "'self'";
    for (const auto& o : origins) connect += " " + o;
    return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "media-src 'self' data: blob:; connect-src " +
           connect + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";
}

site::site(site_options opts) : csp_(content_security_policy(opts.matchmaker_url, opts.connect_src)) {
    const fs::path root(opts.root);
    if (!fs::is_directory(root)) throw std::runtime_error("the web root '" + opts.root + "' is not a folder");
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
        const auto name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {  // dotfiles and dot-folders are never served
            if (it->is_directory()) it.disable_recursion_pending();
            continue;
        }
        if (!it->is_regular_file()) continue;
        const std::string type = content_type_for(name);
        if (type.empty() || it->file_size() > max_asset_bytes) continue;
        asset a;
        a.body = read_file(it->path());
        a.content_type = type;
        a.etag = "\"" + crypto::sha256_hex(a.body).substr(0, 20) + "\"";
        assets_["/" + fs::relative(it->path(), root).generic_string()] = std::move(a);
    }
    if (!assets_.count("/index.html")) throw std::runtime_error("the web root '" + opts.root + "' has no index.html");
    asset config;
    config.body = R"({"matchmakerUrl":")" + log::json_escape(opts.matchmaker_url) + R"(","catalogue":)" +
                  (opts.catalogue_json.empty() ? std::string("{}") : opts.catalogue_json) + "}";
    config.content_type = "application/json";
    config.etag = "\"" + crypto::sha256_hex(config.body).substr(0, 20) + "\"";
    assets_["/config.json"] = std::move(config);
    // every series from the start, at 0
    for (const char* c : {"code=\"2xx\"", "code=\"3xx\"", "code=\"4xx\"", "code=\"5xx\""})
        metrics_.counter("warmline_web_requests_total", "HTTP requests answered, by status class", c);
}

net::http_response site::with_headers(net::http_response r) const {
    r.headers["Content-Security-Policy"] = csp_;
    r.headers["X-Content-Type-Options"] = "nosniff";
    r.headers["Referrer-Policy"] = "no-referrer";
    r.headers["X-Frame-Options"] = "DENY";
    r.headers["Cross-Origin-Opener-Policy"] = "same-origin";
    r.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()";
    // once a browser has reached us over HTTPS, never over plain HTTP again (for two years);
    // browsers ignore it on a plain-HTTP answer, so local development is not affected
    r.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains";
    return r;
}

net::http_response site::get(const std::string& path, const std::string& if_none_match) const {
    net::http_response r;
    if (path == "/healthz") {
        r.body = R"({"status":"ok"})";
        return with_headers(std::move(r));
    }
    // Nothing to wait for (no Redis), so ready while it runs; while draining, net::server answers
    // 503 instead. A load balancer checks /readyz on every Warmline service alike.
    if (path == "/readyz") {
        r.body = R"({"status":"ready"})";
        return with_headers(std::move(r));
    }
    // Only exact names of files read at start: "..", "%2e" or a symlink never reach the disk.
    const auto it = assets_.find(path == "/" ? std::string("/index.html") : path);
    if (it == assets_.end()) {
        r.status = 404;
        r.content_type = "text/plain; charset=utf-8";
        r.body = "There is no page here.\n";
        return with_headers(std::move(r));
    }
    const asset& a = it->second;
    // Revalidate every time (cheap: a 304), so a new build is never half-cached.
    r.headers["Cache-Control"] = "no-cache";
    r.headers["ETag"] = a.etag;
    if (if_none_match == a.etag) {
        r.status = 304;
        r.content_type = a.content_type;
        return with_headers(std::move(r));
    }
    r.content_type = a.content_type;
    r.body = a.body;
    return with_headers(std::move(r));
}

void site::count(unsigned status) {
    static const char* classes[] = {"code=\"1xx\"", "code=\"2xx\"", "code=\"3xx\"", "code=\"4xx\"", "code=\"5xx\""};
    const unsigned c = status / 100;
    metrics_.counter("warmline_web_requests_total", "HTTP requests answered, by status class",
                     classes[c >= 1 && c <= 5 ? c - 1 : 4])
        .fetch_add(1);
}

asio::awaitable<net::http_response> site::on_http(net::http_request req) {
    net::http_response r;
    if (req.method != "GET") {
        r.status = 405;
        r.content_type = "text/plain; charset=utf-8";
        r.headers["Allow"] = "GET";
        r.body = "Only GET is served here.\n";
        r = with_headers(std::move(r));
    } else if (req.path == "/metrics") {
        // net::server keeps this off a public port (--internal-listen)
        r.content_type = "text/plain; version=0.0.4";
        r.body = metrics_.render();
    } else {
        const auto inm = req.headers.find("if-none-match");
        r = get(req.path, inm == req.headers.end() ? std::string() : inm->second);
    }
    count(r.status);
    co_return r;
}

asio::awaitable<std::optional<net::http_response>> site::on_upgrade(const net::http_request&) {
    net::http_response r;
    r.status = 404;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "The web app has no WebSocket; the matchmaker and the relay do.\n";
    co_return with_headers(std::move(r));
}

asio::awaitable<void> site::on_message(std::shared_ptr<net::connection>, std::string, bool) {
    co_return;  // never reached: every upgrade is refused
}

}  // namespace warmline::web
