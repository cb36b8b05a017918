// What every service's main() shares: the flags of its net::server (listen address, limits,
// timeouts, Origin allowlist, TLS, logging), declared once so each --help and check agree, and
// a clean stop on SIGINT/SIGTERM.
#pragma once

#include "common/config.hpp"
#include "common/net.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <string>

namespace warmline::net {

// Declare the shared flags; `listen` and `read_message_max` are the service's own defaults.
void add_server_flags(config::options& opts, const std::string& listen, const std::string& read_message_max);
// Parse flags and WARMLINE_* variables; on --help print the help and return false; otherwise
// start logging as `program` (--log-format, --log-level) and return true.
bool parse_and_log(config::options& opts, int argc, char** argv, const std::string& program);
// Read them back (after opts.parse); throws config::config_error with a sentence on bad values.
server_options server_options_from(const config::options& opts);

// On SIGINT or SIGTERM: close the server's connections (1001, up to `drain`), run `after`
// (stop the service and its Redis connections), then stop `ioc`. Call before ioc.run().
void stop_on_signal(boost::asio::io_context& ioc, server& srv, std::chrono::milliseconds drain,
                    std::function<void()> after);

}  // namespace warmline::net
