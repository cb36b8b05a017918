// Who a connection is from, for per-address limits: the peer's address, or, when the peer is a
// trusted proxy, the address it forwards (X-Forwarded-For, or the PROXY protocol v1/v2 header
// HAProxy writes before any byte of the client's); and the bucket a limit counts it in (an IPv4
// address whole, an IPv6 address by its /64, which one subscriber usually holds entirely). Pure
// functions, unit-tested without sockets; common/net.cpp calls them once per connection.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace warmline::net {

using ip_address = boost::asio::ip::address;

// An address block, "10.0.0.0/8", "2001:db8::/32", or one address ("127.0.0.1": /32 or /128).
struct cidr {
    ip_address network;
    unsigned bits = 0;

    static std::optional<cidr> parse(std::string_view text);
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is compared as the IPv4 address.
    bool contains(const ip_address& a) const;
};

class trusted_proxies {
public:
    trusted_proxies() = default;
    // Throws std::invalid_argument naming the first entry that is not an address or a block.
    explicit trusted_proxies(const std::vector<std::string>& blocks);
    bool trusts(const ip_address& a) const;
    bool empty() const { return blocks_.empty(); }

private:
    std::vector<cidr> blocks_;
};

// The limit bucket of an address: "a.b.c.d" for IPv4 (and IPv4-mapped IPv6), the /64 as
// "x:x:x:x::/64" for IPv6.
std::string address_bucket(const ip_address& a);

// The client behind `peer`. A peer that is not a trusted proxy is the client, whatever it claims.
// A trusted proxy's X-Forwarded-For ("client, proxy1, proxy2", each proxy appending the address it
// got the request from) is read from the right: the first entry that is not itself a trusted proxy
// is the client. An entry that is not an address ends the walk: the last trusted hop is kept, as
// nothing left of a forged entry can be believed.
ip_address resolve_client(const ip_address& peer, std::string_view forwarded_for, const trusted_proxies& trusted);

// The PROXY protocol header (haproxy.org's proxy-protocol.txt), version 1 (text) or 2 (binary),
// at the start of `bytes`.
struct proxy_header {
    enum class status {
        incomplete,  // read up to `length` bytes in all and parse again
        invalid,     // not a PROXY header, or a malformed one: close the connection
        local,       // a header without a client (a health check, or LOCAL/UNKNOWN): use the peer
        proxied,     // `source` is the client
    };
    status state = status::incomplete;
    std::size_t length = 0;  // bytes the header takes (incomplete: at least this many are needed)
    ip_address source;
};
proxy_header parse_proxy_header(std::string_view bytes);

}  // namespace warmline::net
