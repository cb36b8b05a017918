// Client addresses behind trusted proxies, limit buckets and the PROXY protocol header.
#include "common/client_address.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace warmline::net;

namespace {

ip_address addr(const char* text) { return boost::asio::ip::make_address(text); }

std::string v2_header(unsigned char command, unsigned char family, const std::string& addresses) {
    std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
    h += static_cast<char>(0x20 | command);
    h += static_cast<char>(family);
    h += static_cast<char>(addresses.size() >> 8);
    h += static_cast<char>(addresses.size() & 0xFF);
    return h + addresses;
}

}  // namespace

TEST_CASE("client address: a block contains the addresses of its prefix and no others") {
    auto c = cidr::parse("10.1.0.0/16");
    REQUIRE(c);
    CHECK(c->contains(addr("10.1.255.7")));
    CHECK_FALSE(c->contains(addr("10.2.0.1")));
    CHECK(c->contains(addr("::ffff:10.1.2.3")));  // an IPv4-mapped peer of a dual-stack socket
    CHECK_FALSE(c->contains(addr("2001:db8::1")));
    auto one = cidr::parse("127.0.0.1");
    REQUIRE(one);
    CHECK(one->contains(addr("127.0.0.1")));
    CHECK_FALSE(one->contains(addr("127.0.0.2")));
    auto v6 = cidr::parse("fd00::/8");
    REQUIRE(v6);
    CHECK(v6->contains(addr("fd12:3456::1")));
    CHECK_FALSE(v6->contains(addr("fe80::1")));
    auto odd = cidr::parse("192.168.1.0/23");  // a prefix that ends inside a byte
    REQUIRE(odd);
    CHECK(odd->contains(addr("192.168.0.200")));
    CHECK_FALSE(odd->contains(addr("192.168.2.1")));
    for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8x", "proxy.example", "::/129"})
        CHECK_MESSAGE(!cidr::parse(bad), bad);
    CHECK_THROWS_AS(trusted_proxies({"10.0.0.0/8", "nonsense"}), std::invalid_argument);
}

TEST_CASE("client address: IPv4 counts whole, IPv6 by its /64, an IPv4-mapped address as IPv4") {
    CHECK(address_bucket(addr("203.0.113.9")) == "203.0.113.9");
    CHECK(address_bucket(addr("2001:db8:1:2:aaaa:bbbb:cccc:dddd")) == "2001:db8:1:2::/64");
    CHECK(address_bucket(addr("2001:db8:1:2::1")) == address_bucket(addr("2001:db8:1:2:ffff::9")));
    CHECK(address_bucket(addr("2001:db8:1:3::1")) != address_bucket(addr("2001:db8:1:2::1")));
    CHECK(address_bucket(addr("::ffff:198.51.100.4")) == "198.51.100.4");
}

TEST_CASE("client address: only a trusted proxy's X-Forwarded-For is believed, read from the right") {
    const trusted_proxies trusted({"10.0.0.0/8", "127.0.0.1"});
    SUBCASE("a peer that is not a proxy is the client, whatever it forwards") {
        CHECK(resolve_client(addr("198.51.100.7"), "1.2.3.4", trusted) == addr("198.51.100.7"));
    }
    SUBCASE("behind one proxy the last entry is the client") {
        CHECK(resolve_client(addr("10.0.0.5"), "203.0.113.9", trusted) == addr("203.0.113.9"));
    }
    SUBCASE("an entry the client wrote itself, left of the proxies' entries, is ignored") {
        CHECK(resolve_client(addr("127.0.0.1"), "6.6.6.6, 203.0.113.9, 10.0.0.5", trusted) == addr("203.0.113.9"));
    }
    SUBCASE("ports and brackets are allowed") {
        CHECK(resolve_client(addr("10.0.0.5"), "203.0.113.9:4711", trusted) == addr("203.0.113.9"));
        CHECK(resolve_client(addr("10.0.0.5"), " [2001:db8::7]:443 ", trusted) == addr("2001:db8::7"));
    }
    SUBCASE("garbage ends the walk at the last trusted hop") {
        CHECK(resolve_client(addr("10.0.0.5"), "203.0.113.9, not-an-address", trusted) == addr("10.0.0.5"));
    }
    SUBCASE("no header, or no proxies trusted: the peer") {
        CHECK(resolve_client(addr("10.0.0.5"), "", trusted) == addr("10.0.0.5"));
        CHECK(resolve_client(addr("10.0.0.5"), "203.0.113.9", trusted_proxies()) == addr("10.0.0.5"));
    }
}

TEST_CASE("client address: PROXY protocol v1 headers are parsed exactly, and bad ones refused") {
    const std::string line = "PROXY TCP4 203.0.113.9 10.0.0.1 51234 443\r\n";
    auto h = parse_proxy_header(line + "GET / HTTP/1.1\r\n");
    CHECK(h.state == proxy_header::status::proxied);
    CHECK(h.length == line.size());
    CHECK(h.source == addr("203.0.113.9"));
    auto v6 = parse_proxy_header("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n");
    CHECK(v6.state == proxy_header::status::proxied);
    CHECK(v6.source == addr("2001:db8::1"));
    CHECK(parse_proxy_header("PROXY UNKNOWN\r\n").state == proxy_header::status::local);
    SUBCASE("a partial header asks for more, one byte at a time once its end is unknown") {
        auto p = parse_proxy_header("PRO");
        CHECK(p.state == proxy_header::status::incomplete);
        CHECK(p.length == 8);
        p = parse_proxy_header(line.substr(0, 20));
        CHECK(p.state == proxy_header::status::incomplete);
        CHECK(p.length == 21);
    }
    SUBCASE("malformed") {
        for (const char* bad : {"GET / HTTP/1.1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
                                "PROXY TCP4 1.2.3.x 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n",
                                "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"})
            CHECK_MESSAGE(parse_proxy_header(bad).state == proxy_header::status::invalid, bad);
        // no CRLF within the spec's 107 bytes
        CHECK(parse_proxy_header("PROXY TCP4 " + std::string(120, '1')).state == proxy_header::status::invalid);
    }
}

TEST_CASE("client address: PROXY protocol v2 headers give the source, LOCAL gives none") {
    const std::string v4{'\xcb', '\x00', '\x71', '\x09', '\x0a', '\x00', '\x00', '\x01', '\xc8', '\x22', '\x01', '\xbb'};
    auto h = parse_proxy_header(v2_header(1, 0x11, v4) + "\x16\x03\x01");
    CHECK(h.state == proxy_header::status::proxied);
    CHECK(h.length == 16 + 12);
    CHECK(h.source == addr("203.0.113.9"));
    std::string v6(36, '\0');
    v6[0] = '\x20'; v6[1] = '\x01'; v6[2] = '\x0d'; v6[3] = '\xb8'; v6[15] = '\x05';
    auto h6 = parse_proxy_header(v2_header(1, 0x21, v6));
    CHECK(h6.state == proxy_header::status::proxied);
    CHECK(h6.source == addr("2001:db8::5"));
    // a health check: LOCAL, with TLVs after it that are skipped
    auto local = parse_proxy_header(v2_header(0, 0x00, std::string(5, '\x01')));
    CHECK(local.state == proxy_header::status::local);
    CHECK(local.length == 21);
    SUBCASE("incomplete until the length the header announces") {
        auto whole = v2_header(1, 0x11, v4);
        auto p = parse_proxy_header(whole.substr(0, 10));
        CHECK(p.state == proxy_header::status::incomplete);
        CHECK(p.length == 16);
        p = parse_proxy_header(whole.substr(0, 20));
        CHECK(p.state == proxy_header::status::incomplete);
        CHECK(p.length == 28);
    }
    SUBCASE("malformed") {
        auto bad_version = v2_header(1, 0x11, v4);
        bad_version[12] = '\x11';
        CHECK(parse_proxy_header(bad_version).state == proxy_header::status::invalid);
        CHECK(parse_proxy_header(v2_header(1, 0x11, v4.substr(0, 8))).state == proxy_header::status::invalid);
        CHECK(parse_proxy_header(v2_header(7, 0x11, v4)).state == proxy_header::status::invalid);
    }
}
