// The matchmaker binary: read configuration, connect to Redis, serve /v1/ws and the HTTP
// endpoints, stop cleanly on SIGINT/SIGTERM. Everything else lives in matchmaker_core.
#include "common/catalogue.hpp"
#include "common/config.hpp"
#include "common/net.hpp"
#include "common/redis.hpp"
#include "common/service_main.hpp"
#include "services/matchmaker/service.hpp"

#include <boost/asio/io_context.hpp>

#include <iostream>

namespace asio = boost::asio;
using namespace warmline;

int main(int argc, char** argv) {
    config::options opts("matchmaker", "Queues seekers and pairs them with listeners by topic and language.");
    net::add_server_flags(opts, "127.0.0.1:8090", "65536");
    net::add_redis_flags(opts);
    opts.add("catalogue", "deploy/catalogue.json", "the topics and languages file");
    opts.add("ticket-secret", "", "shared secret (32+ characters) for signing relay tickets");
    opts.add("relay-url", "ws://127.0.0.1:8091/v1/relay", "the relay address handed to both sides of a chat");
    opts.add("ticket-ttl-ms", "300000", "how long a relay ticket stays valid after a chat starts");
    opts.add("offer-timeout-ms", "30000", "how long a listener has to accept an offer");
    opts.add("grace-ms", "60000", "how long a disconnected seeker keeps its place");
    opts.add("decline-cooldown-ms", "120000",
             "a listener who declined or missed a seeker is not offered them again for this long");
    opts.add("crisis-widen-ms", "60000",
             "a crisis request nobody took this long goes to every listener of its language, and supervisors are "
             "alerted (0: off)");
    opts.add("preferred-window-ms", "120000", "how long a request waits for the listener it named");
    opts.add("state-ttl-s", "86400", "expiry of seeker, offer and chat records in Redis");
    opts.add("node-lease-ms", "5000", "a process that has not renewed its lease this long is presumed dead");
    opts.add("sweep-interval-ms", "250", "how often timeouts, widening and dead processes are handled");
    opts.add("position-interval-ms", "1000", "how often waiting seekers get their queue position");
    opts.add("stats-interval-ms", "1000", "how often supervisors get a snapshot");
    opts.add("sign-in-timeout-ms", "10000",
             "a connection that has not signed in this long after opening is closed with 1008 (0: never)");
    opts.add("session-check-ms", "5000",
             "how often signed-in listeners' and supervisors' tokens are checked, so that a revoke or a token "
             "rotation this process did not hear of still ends their sessions");
    opts.add("stats-history-step-s", "20",
             "seconds between two samples of the supervisors' one-hour stats history (one process takes each)");
    opts.add("rate-burst", "20", "requests one connection may send at once");
    opts.add("rate-per-second", "10", "requests per second one connection may sustain");
    opts.add("requests-in-flight", "32", "requests of one signed-in connection answered at once");
    opts.add("new-seekers-per-address-per-min", "20",
             "new seekers (a SeekerHello without a resume token) one client address may start per minute, over every "
             "process (an IPv4 address, an IPv6 /64; see --trusted-proxies); beyond it RATE_LIMITED. 0: no limit");
    opts.add("requests-per-address-per-min", "30",
             "chat requests one client address may make per minute, over every process; beyond it RATE_LIMITED. "
             "0: no limit");
    opts.add("crisis-per-address-per-hour", "6",
             "crisis requests one client address may make per hour, over every process; beyond it a crisis request "
             "is queued as a normal one (still shown the crisis lines). 0: no limit");
    opts.add("crisis-alert-per-5min", "10",
             "supervisors are alerted when at least this many crisis requests came in the last 5 minutes and at "
             "least --crisis-alert-factor times the usual 5 minutes of the hour before (0: no alert)");
    opts.add("crisis-alert-factor", "3", "see --crisis-alert-per-5min");
    opts.add("hold-after-reports", "2",
             "a seeker reported by this many different listeners within --reports-window-h has their requests held "
             "for --hold-min after the latest report (told so, and shown the crisis lines). 0: never");
    opts.add("hold-after-address-reports", "3",
             "the same for every seeker of one client address (an IPv4 address, an IPv6 /64): this many different "
             "listeners reporting seekers from there. 0: never");
    opts.add("reports-window-h", "24", "how long listeners' reports of seekers count towards a hold");
    opts.add("hold-min", "30", "how long a hold lasts after the latest report");
    opts.add("suspend-after-reports", "3",
             "a listener reported by seekers in this many chats within --suspend-window-h is suspended pending review "
             "(off the line, chats handed on, supervisors see it in the review queue). 0: never");
    opts.add("suspend-window-h", "72", "see --suspend-after-reports");
    opts.add("audit-keep-days", "365", "how long the audit stream (wl:audit) keeps an entry");
    net::add_ack_flags(opts, "a reply that changed something (a queued request, an accepted offer, ...)",
                       "a request", "5000");
    try {
        if (!net::parse_and_log(opts, argc, argv, "matchmaker")) return 0;

        matchmaker::service_settings s;
        s.store.offer_timeout_ms = opts.integer("offer-timeout-ms", 10, 3600000);
        s.store.grace_ms = opts.integer("grace-ms", 0, 86400000);
        s.store.decline_cooldown_ms = opts.integer("decline-cooldown-ms", 0, 86400000);
        s.store.crisis_widen_ms = opts.integer("crisis-widen-ms", 0, 86400000);
        s.store.preferred_window_ms = opts.integer("preferred-window-ms", 0, 86400000);
        s.store.state_ttl_s = opts.integer("state-ttl-s", 60, 30 * 86400);
        s.store.node_lease_ms = opts.integer("node-lease-ms", 100, 600000);
        s.sweep_interval = opts.millis("sweep-interval-ms", 5, 60000);
        s.position_interval = opts.millis("position-interval-ms", 10, 60000);
        s.stats_interval = opts.millis("stats-interval-ms", 10, 60000);
        s.session_check_interval = opts.millis("session-check-ms", 10, 600000);
        s.sign_in_timeout = opts.millis("sign-in-timeout-ms", 0, 600000);
        s.stats_history_step = std::chrono::seconds(opts.integer("stats-history-step-s", 1, 3600));
        s.ticket_secret = opts.str("ticket-secret");
        if (s.ticket_secret.size() < 32)
            throw config::config_error("--ticket-secret must be at least 32 characters (WARMLINE_TICKET_SECRET); "
                                       "scripts/up generates one");
        s.relay_url = opts.str("relay-url");
        s.ticket_ttl = opts.millis("ticket-ttl-ms", 1000, 86400000);
        s.rate_burst = static_cast<double>(opts.integer("rate-burst", 1, 100000));
        s.rate_per_second = static_cast<double>(opts.integer("rate-per-second", 1, 100000));
        s.requests_in_flight = static_cast<std::size_t>(opts.integer("requests-in-flight", 1, 4096));
        s.limits.new_seekers_per_min = static_cast<int>(opts.integer("new-seekers-per-address-per-min", 0, 1000000));
        s.limits.requests_per_min = static_cast<int>(opts.integer("requests-per-address-per-min", 0, 1000000));
        s.limits.crisis_per_hour = static_cast<int>(opts.integer("crisis-per-address-per-hour", 0, 1000000));
        s.store.crisis_alert_min = static_cast<int>(opts.integer("crisis-alert-per-5min", 0, 1000000));
        s.store.crisis_alert_factor = static_cast<double>(opts.integer("crisis-alert-factor", 1, 1000));
        s.store.hold_after_reports = static_cast<int>(opts.integer("hold-after-reports", 0, 1000));
        s.store.hold_after_address_reports = static_cast<int>(opts.integer("hold-after-address-reports", 0, 1000));
        s.store.reported_window_ms = opts.integer("reports-window-h", 1, 24 * 90) * 3600 * 1000;
        s.store.hold_ms = opts.integer("hold-min", 0, 24 * 60) * 60 * 1000;
        s.store.suspend_after_reports = static_cast<int>(opts.integer("suspend-after-reports", 0, 1000));
        s.store.suspend_window_ms = opts.integer("suspend-window-h", 1, 24 * 90) * 3600 * 1000;
        s.store.audit_keep_ms = opts.integer("audit-keep-days", 1, 3650) * 24 * 3600 * 1000;

        net::server_options so = net::server_options_from(opts);

        redis::client_options ro = net::redis_options_from(opts, "matchmaker");
        const net::ack_settings acks = net::ack_settings_from(opts, ro);
        s.ack_replicas = acks.replicas;
        s.ack_timeout = acks.timeout;
        s.ack_degrade_after = acks.degrade_after;
        auto cat = catalogue::load_file(opts.str("catalogue"));

        net::serve("matchmaker", so, net::internal_options_from(opts, so), ro, "/v1/ws", [&](asio::io_context& ioc, auto redis, auto events) {
            // a WAIT holds its connection: with acks on, the writes it covers go over one of their own
            std::shared_ptr<redis::client> promises;
            if (s.ack_replicas > 0) {
                auto po = ro;
                po.name += "-promises";
                promises = redis::client::create(ioc.get_executor(), po);
            }
            return std::make_shared<matchmaker::service>(ioc, s, std::move(cat), redis, events, system_now_ms,
                                                         promises);
        });
        return 0;
    } catch (const config::config_error& e) {
        std::cerr << "matchmaker: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "matchmaker: " << e.what() << "\n";
        return 1;
    }
}
