// Where Redis is: redis://, redis-sentinel:// and redis-cluster:// URLs parsed into an endpoint, and back into a
// URL without the password. No Asio and no hiredis here; nothing is resolved or connected.
// Error messages name what is wrong but never quote the URL, which may carry the password.
#include "common/redis.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace warmline::redis {

namespace {

constexpr std::string_view plain_scheme = "redis://";
constexpr std::string_view sentinel_scheme = "redis-sentinel://";
constexpr std::string_view cluster_scheme = "redis-cluster://";
constexpr std::uint16_t sentinel_default_port = 26379;
constexpr std::uint16_t cluster_default_port = 6379;

template <typename T>
bool parse_whole_number(std::string_view text, T& out) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Passwords with reserved characters arrive %-encoded, as in any URL.
std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        const int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
        const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            throw std::invalid_argument(
                "the password in the Redis URL has a '%' that is not followed by two hex digits");
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

// Splits "[:password@]rest" and returns rest. The password may contain '/', '?', '#' or '@'
// unencoded; the last '@' ends it.
std::string_view take_password(std::string_view rest, std::string& password, std::string_view scheme) {
    const auto at = rest.rfind('@');
    if (at == std::string_view::npos) return rest;
    const std::string_view userinfo = rest.substr(0, at);
    if (!userinfo.empty()) {
        if (userinfo.front() != ':')
            throw std::invalid_argument("Redis URL user names are not supported; write " +
                                        std::string(scheme) + ":password@host");
        password = percent_decode(userinfo.substr(1));
    }
    return rest.substr(at + 1);
}

// host[:port] or [v6]:port. `what` names it in messages ("the Redis URL", "a sentinel address").
endpoint::address parse_host_port(std::string_view hostport, std::string_view what) {
    const std::string w(what);
    std::string_view host = hostport;
    std::string_view port;
    if (hostport.starts_with('[')) {
        const auto close = hostport.find(']');
        if (close == std::string_view::npos)
            throw std::invalid_argument("the IPv6 host in " + w + " is missing its ']'");
        host = hostport.substr(1, close - 1);
        const std::string_view after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                throw std::invalid_argument(w + " has text after the IPv6 host's ']'");
            port = after.substr(1);
            if (port.empty()) throw std::invalid_argument(w + " has a ':' but no port");
        }
        if (host.empty()) throw std::invalid_argument("the IPv6 host in " + w + " is empty");
    } else {
        const auto colon = hostport.find(':');
        if (colon != std::string_view::npos) {
            if (hostport.find(':', colon + 1) != std::string_view::npos)
                throw std::invalid_argument(w + " has more than one ':' after the host; put IPv6 hosts in []");
            host = hostport.substr(0, colon);
            port = hostport.substr(colon + 1);
            if (port.empty()) throw std::invalid_argument(w + " has a ':' but no port");
        }
    }
    endpoint::address a;
    a.host = std::string(host);
    if (!port.empty()) {
        unsigned value = 0;
        if (!parse_whole_number(port, value) || value == 0 || value > 65535)
            throw std::invalid_argument("the port in " + w + " is not a number from 1 to 65535");
        a.port = static_cast<std::uint16_t>(value);
    }
    return a;
}

int parse_db(std::string_view db) {
    int value = 0;
    if (!parse_whole_number(db, value) || value < 0)
        throw std::invalid_argument("the database in the Redis URL (after the '/') is not a number 0 or above");
    return value;
}

// Sentinel sends master names in space-separated event messages (+switch-master), so a name
// with spaces could never be followed; keep to what every deployment uses.
bool valid_master_name(std::string_view name) {
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '-' || c == '_' || c == '.';
        if (!ok) return false;
    }
    return !name.empty();
}

std::string format_address(const std::string& host, std::uint16_t port) {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

endpoint parse_plain(std::string_view rest) {
    endpoint ep;
    rest = take_password(rest, ep.password, plain_scheme);
    if (rest.find_first_of("?#@") != std::string_view::npos)
        throw std::invalid_argument("a Redis URL may not have a query string or fragment");
    const auto slash = rest.find('/');
    const auto where = parse_host_port(rest.substr(0, slash), "the Redis URL");
    if (!where.host.empty()) ep.host = where.host;
    if (where.port != 0) ep.port = where.port;
    const std::string_view db = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    if (!db.empty()) ep.db = parse_db(db);
    return ep;
}

// "h1:p1,h2:p2,..." into distinct addresses in order; `scheme` and `what` name them in messages.
std::vector<endpoint::address> parse_address_list(std::string_view hosts, std::string_view scheme,
                                                  std::string_view what, std::uint16_t default_port) {
    const std::string s(scheme), w(what);
    if (hosts.empty())
        throw std::invalid_argument("a " + s + " URL must name at least one " + w + ", as host:port");
    std::vector<endpoint::address> out;
    std::size_t start = 0;
    while (true) {
        const auto comma = hosts.find(',', start);
        const std::string_view one = hosts.substr(start, comma == std::string_view::npos ? comma : comma - start);
        if (one.empty())
            throw std::invalid_argument("the " + s + " URL has an empty " + w +
                                        " address (two commas, or a comma at either end)");
        auto a = parse_host_port(one, "a " + w + " address of the Redis URL");
        if (a.host.empty()) throw std::invalid_argument("a " + w + " address of the Redis URL has no host");
        if (a.port == 0) a.port = default_port;
        if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(std::move(a));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

endpoint parse_cluster(std::string_view rest) {
    endpoint ep;
    ep.host.clear();
    ep.port = 0;
    rest = take_password(rest, ep.password, cluster_scheme);
    if (rest.find_first_of("?#@") != std::string_view::npos)
        throw std::invalid_argument("a Redis URL may not have a query string or fragment");
    const auto slash = rest.find('/');
    ep.cluster_nodes = parse_address_list(rest.substr(0, slash), "redis-cluster://", "cluster node", cluster_default_port);
    const std::string_view db = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    // Redis Cluster has database 0 only (SELECT is refused): "/0" is accepted, anything else
    // is a mistake worth saying so rather than ignoring.
    if (!db.empty() && parse_db(db) != 0)
        throw std::invalid_argument("a redis-cluster:// URL may only name database 0; Redis Cluster has no other");
    return ep;
}

endpoint parse_sentinel(std::string_view rest) {
    endpoint ep;
    ep.host.clear();
    ep.port = 0;
    rest = take_password(rest, ep.password, sentinel_scheme);
    if (rest.find_first_of("?#@") != std::string_view::npos)
        throw std::invalid_argument("a Redis URL may not have a query string or fragment");

    const auto slash = rest.find('/');
    ep.sentinels = parse_address_list(rest.substr(0, slash), "redis-sentinel://", "sentinel", sentinel_default_port);

    if (slash == std::string_view::npos || slash + 1 == rest.size())
        throw std::invalid_argument(
            "a redis-sentinel:// URL must end with the master's name, as in redis-sentinel://host:26379/mymaster");
    const std::string_view path = rest.substr(slash + 1);
    const auto second = path.find('/');
    const std::string_view name = path.substr(0, second);
    if (!valid_master_name(name))
        throw std::invalid_argument(
            "the master name in the redis-sentinel:// URL must be letters, digits, '.', '_' or '-'");
    ep.master_name = std::string(name);
    if (second != std::string_view::npos) {
        const std::string_view db = path.substr(second + 1);
        if (!db.empty()) ep.db = parse_db(db);
    }
    return ep;
}

}  // namespace

endpoint endpoint::parse(std::string_view url) {
    if (url.starts_with("rediss://") || url.starts_with("rediss-sentinel://"))
        throw std::invalid_argument(
            "TLS Redis URLs (rediss://) are not supported; use redis://, redis-sentinel:// or redis-cluster://");
    if (url.starts_with("rediss-cluster://"))
        throw std::invalid_argument("TLS Redis URLs (rediss-cluster://) are not supported; use redis-cluster://");
    if (url.starts_with(sentinel_scheme)) return parse_sentinel(url.substr(sentinel_scheme.size()));
    if (url.starts_with(cluster_scheme)) return parse_cluster(url.substr(cluster_scheme.size()));
    if (url.starts_with(plain_scheme)) return parse_plain(url.substr(plain_scheme.size()));
    throw std::invalid_argument("a Redis URL must start with redis://, redis-sentinel:// or redis-cluster://");
}

std::string endpoint::to_string() const {
    if (is_cluster()) {
        std::string out(cluster_scheme);
        for (std::size_t i = 0; i < cluster_nodes.size(); ++i) {
            if (i > 0) out += ',';
            out += format_address(cluster_nodes[i].host, cluster_nodes[i].port);
        }
        return out + "/0";
    }
    if (!via_sentinel()) return std::string(plain_scheme) + format_address(host, port) + "/" + std::to_string(db);
    std::string out(sentinel_scheme);
    for (std::size_t i = 0; i < sentinels.size(); ++i) {
        if (i > 0) out += ',';
        out += format_address(sentinels[i].host, sentinels[i].port);
    }
    return out + "/" + master_name + "/" + std::to_string(db);
}

}  // namespace warmline::redis
