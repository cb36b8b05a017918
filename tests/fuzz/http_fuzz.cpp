// libFuzzer: what a client sends before it is anyone: the HTTP request (Beast's parser, with the
// server's body limit), its target's query string (common/http_query.hpp), the PROXY protocol
// header and an X-Forwarded-For value (common/client_address.hpp).
#include "common/client_address.hpp"
#include "common/http_query.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    // an upgrade or a plain request, as net.cpp reads it
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(in.data(), in.size()), ec);
    if (!ec && parser.is_header_done()) {
        const auto target = parser.get().target();
        const auto q = target.find('?');
        if (q != std::string_view::npos) (void)warmline::net::parse_query(std::string_view(target.data() + q + 1, target.size() - q - 1));
        for (const auto& field : parser.get()) (void)field.value();
    }
    (void)warmline::net::parse_query(in);

    // the PROXY header: a claimed length is never beyond what was read, never 0 once complete
    const auto h = warmline::net::parse_proxy_header(in);
    using status = warmline::net::proxy_header::status;
    if ((h.state == status::proxied || h.state == status::local) && (h.length == 0 || h.length > in.size())) std::abort();
    if (h.state == status::incomplete && h.length <= in.size()) std::abort();

    // X-Forwarded-For behind a trusted proxy, and the limit bucket of whatever comes out
    static const warmline::net::trusted_proxies trusted({"127.0.0.0/8", "10.0.0.0/8", "fd00::/8"});
    const auto client = warmline::net::resolve_client(boost::asio::ip::make_address("127.0.0.1"), in, trusted);
    (void)warmline::net::address_bucket(client);
    (void)warmline::net::cidr::parse(in);
    return 0;
}
