// Client addresses behind trusted proxies, limit buckets and the PROXY protocol header
// (common/client_address.hpp).
#include "common/client_address.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>
#include <vector>

namespace warmline::net {

namespace {

// An IPv4-mapped IPv6 address is the IPv4 address (a dual-stack socket reports IPv4 clients so).
ip_address plain(const ip_address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
    return a;
}

std::optional<ip_address> parse_address(std::string_view text) {
    boost::system::error_code ec;
    auto a = boost::asio::ip::make_address(std::string(text), ec);
    if (ec) return std::nullopt;
    return plain(a);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// An X-Forwarded-For entry may carry a port: "1.2.3.4:5678", "[2001:db8::1]:5678".
std::optional<ip_address> parse_forwarded_entry(std::string_view e) {
    e = trim(e);
    if (!e.empty() && e.front() == '[') {
        const auto close = e.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        return parse_address(e.substr(1, close - 1));
    }
    if (std::count(e.begin(), e.end(), ':') == 1) e = e.substr(0, e.find(':'));
    return parse_address(e);
}

template <std::size_t N>
bool prefix_match(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b, unsigned bits) {
    for (std::size_t i = 0; i < N && bits > 0; ++i) {
        const unsigned take = std::min(bits, 8u);
        const auto mask = static_cast<unsigned char>(0xFFu << (8 - take));
        if ((a[i] & mask) != (b[i] & mask)) return false;
        bits -= take;
    }
    return true;
}

constexpr std::string_view v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr std::string_view v1_prefix("PROXY ");
constexpr std::size_t v1_max = 107;  // the longest v1 line, CRLF included (the spec's bound)

bool starts_like(std::string_view bytes, std::string_view expected) {
    const auto n = std::min(bytes.size(), expected.size());
    return bytes.substr(0, n) == expected.substr(0, n);
}

proxy_header invalid() { return {proxy_header::status::invalid, 0, {}}; }

proxy_header parse_v2(std::string_view b) {
    if (b.size() < 16) return {proxy_header::status::incomplete, 16, {}};
    if (b.substr(0, 12) != v2_signature) return invalid();
    const auto u = [&](std::size_t i) { return static_cast<unsigned char>(b[i]); };
    if ((u(12) >> 4) != 2) return invalid();
    const unsigned command = u(12) & 0x0F;
    const std::size_t length = 16 + ((static_cast<std::size_t>(u(14)) << 8) | u(15));
    if (b.size() < length) return {proxy_header::status::incomplete, length, {}};
    if (command == 0) return {proxy_header::status::local, length, {}};
    if (command != 1) return invalid();
    const unsigned family = u(13) >> 4;
    if (family == 1) {  // IPv4: source, destination, ports
        if (length < 16 + 12) return invalid();
        boost::asio::ip::address_v4::bytes_type a;
        for (std::size_t i = 0; i < 4; ++i) a[i] = u(16 + i);
        return {proxy_header::status::proxied, length, ip_address(boost::asio::ip::address_v4(a))};
    }
    if (family == 2) {  // IPv6
        if (length < 16 + 36) return invalid();
        boost::asio::ip::address_v6::bytes_type a;
        for (std::size_t i = 0; i < 16; ++i) a[i] = u(16 + i);
        return {proxy_header::status::proxied, length, plain(ip_address(boost::asio::ip::address_v6(a)))};
    }
    return {proxy_header::status::local, length, {}};  // AF_UNSPEC or a UNIX socket: no client address
}

bool valid_port(std::string_view s) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && end == s.data() + s.size() && !s.empty() && v <= 65535;
}

proxy_header parse_v1(std::string_view b) {
    const auto crlf = b.substr(0, v1_max).find("\r\n");
    if (crlf == std::string_view::npos) {
        if (b.size() >= v1_max) return invalid();
        return {proxy_header::status::incomplete, b.size() + 1, {}};
    }
    const std::size_t length = crlf + 2;
    std::string_view line = b.substr(v1_prefix.size(), crlf - v1_prefix.size());
    std::vector<std::string_view> words;
    while (!line.empty()) {
        const auto space = line.find(' ');
        words.push_back(line.substr(0, space));
        if (space == std::string_view::npos) break;
        line.remove_prefix(space + 1);
    }
    if (words.empty()) return invalid();
    if (words[0] == "UNKNOWN") return {proxy_header::status::local, length, {}};
    if ((words[0] != "TCP4" && words[0] != "TCP6") || words.size() != 5) return invalid();
    const auto source = parse_address(words[1]);
    const auto destination = parse_address(words[2]);
    if (!source || !destination || !valid_port(words[3]) || !valid_port(words[4])) return invalid();
    return {proxy_header::status::proxied, length, *source};
}

}  // namespace

std::optional<cidr> cidr::parse(std::string_view text) {
    text = trim(text);
    const auto slash = text.find('/');
    auto address = parse_address(text.substr(0, slash));
    if (!address) return std::nullopt;
    const unsigned max_bits = address->is_v4() ? 32 : 128;
    unsigned bits = max_bits;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
        if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || bits > max_bits)
            return std::nullopt;
    }
    return cidr{*address, bits};
}

bool cidr::contains(const ip_address& a) const {
    const auto p = plain(a);
    if (p.is_v4() != network.is_v4()) return false;
    if (p.is_v4()) return prefix_match(p.to_v4().to_bytes(), network.to_v4().to_bytes(), bits);
    return prefix_match(p.to_v6().to_bytes(), network.to_v6().to_bytes(), bits);
}

trusted_proxies::trusted_proxies(const std::vector<std::string>& blocks) {
    for (const auto& b : blocks) {
        auto c = cidr::parse(b);
        if (!c) throw std::invalid_argument("'" + b + "' is not an IP address or an address block like 10.0.0.0/8");
        blocks_.push_back(*c);
    }
}

bool trusted_proxies::trusts(const ip_address& a) const {
    return std::any_of(blocks_.begin(), blocks_.end(), [&](const cidr& c) { return c.contains(a); });
}

std::string address_bucket(const ip_address& a) {
    const auto p = plain(a);
    if (p.is_v4()) return p.to_string();
    auto bytes = p.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

ip_address resolve_client(const ip_address& peer, std::string_view forwarded_for, const trusted_proxies& trusted) {
    ip_address current = plain(peer);
    while (trusted.trusts(current) && !forwarded_for.empty()) {
        const auto comma = forwarded_for.rfind(',');
        const auto entry = comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
        forwarded_for = comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
        const auto hop = parse_forwarded_entry(entry);
        if (!hop) break;
        current = *hop;
    }
    return current;
}

proxy_header parse_proxy_header(std::string_view bytes) {
    if (bytes.size() < 8) {
        if (starts_like(bytes, v1_prefix) || starts_like(bytes, v2_signature))
            return {proxy_header::status::incomplete, 8, {}};
        return invalid();
    }
    if (starts_like(bytes, v2_signature)) return parse_v2(bytes);
    if (starts_like(bytes, v1_prefix)) return parse_v1(bytes);
    return invalid();
}

}  // namespace warmline::net
