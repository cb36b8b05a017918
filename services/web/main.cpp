// The web app's binary: serve the static app and /config.json, stop cleanly on SIGINT/SIGTERM.
// It holds no state and needs no Redis; everything else lives in web_core (site.cpp).
#include "common/catalogue.hpp"
#include "common/codec.hpp"
#include "common/config.hpp"
#include "common/net.hpp"
#include "common/service_main.hpp"
#include "services/web/site.hpp"

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

#ifndef WARMLINE_WEB_ROOT
#define WARMLINE_WEB_ROOT "services/web/static"
#endif

using namespace warmline;

int main(int argc, char** argv) {
    config::options opts("warmline-web", "Serves the Warmline web app for seekers, listeners and supervisors.");
    net::add_server_flags(opts, "127.0.0.1:8080", "4096");
    opts.add("root", WARMLINE_WEB_ROOT, "folder of the app's static files");
    opts.add("matchmaker-url", "ws://127.0.0.1:8090/v1/ws", "the matchmaker's WebSocket, as the browser reaches it");
    opts.add("catalogue", "deploy/catalogue.json", "topics, languages and crisis resources shown to seekers");
    opts.add("connect-src", "ws://127.0.0.1:8091",
             "more WebSocket origins the page may open: the relays (comma-separated ws:// or wss:// URLs)");
    try {
        if (!net::parse_and_log(opts, argc, argv, "warmline-web")) return 0;
        web::site_options so;
        so.root = opts.str("root");
        so.matchmaker_url = opts.str("matchmaker-url");
        so.connect_src = opts.list("connect-src");
        so.catalogue_json = codec::to_json(catalogue::load_file(opts.str("catalogue")).proto());
        web::site site(std::move(so));
        // no WebSockets here (every upgrade is refused), so no Origin allowlist is needed
        const net::server_options sopts = net::server_options_from(opts, false);

        boost::asio::io_context ioc(1);
        net::server srv(ioc, sopts, site);
        srv.start();
        auto inside = net::start_internal(ioc, net::internal_options_from(opts, sopts), site);
        spdlog::info("warmline-web serving {} files on {}:{}", site.file_count(), sopts.address, srv.port());
        std::cout << "READY " << (sopts.tls_cert_file.empty() ? "http" : "https") << "://" << sopts.address << ":"
                  << srv.port() << "/" << std::endl;
        net::stop_on_signal(ioc, srv, sopts.drain_delay, std::chrono::seconds(1), [] {});
        ioc.run();
        return 0;
    } catch (const config::config_error& e) {
        std::cerr << "warmline-web: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "warmline-web: " << e.what() << "\n";
        return 1;
    }
}
