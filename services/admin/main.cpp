// warmline-admin: create, list, edit and revoke listener and supervisor accounts.
//   warmline-admin listener create --name N --topics a,b --languages en,es --max-chats 3 [--handle h]
//   warmline-admin listener edit ID [--name N] [--topics ...] [--languages ...] [--max-chats N]
//   warmline-admin supervisor create --name N
//   warmline-admin list | revoke ID | token ID
//   warmline-admin reports list [--limit N] | reports show SESSION   (for the safety team)
// Redis and the catalogue come from --redis-url/--catalogue or WARMLINE_REDIS_URL/WARMLINE_CATALOGUE.
#include "common/catalogue.hpp"
#include "common/config.hpp"
#include "common/log.hpp"
#include "common/redis.hpp"
#include "common/service_main.hpp"
#include "services/admin/accounts.hpp"
#include "services/admin/reports.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdlib>
#include <iostream>

namespace asio = boost::asio;
using namespace warmline;

namespace {

constexpr const char* usage = R"(Usage:
  warmline-admin listener create --name NAME --topics T1,T2 --languages L1,L2 [--max-chats N] [--handle H]
                                 [--chats-per-day N] [--break-after-chats N] [--break-after-min M]
                                 [--break-min B]   (wellbeing limits; 0: none)
  warmline-admin listener edit ID [--name NAME] [--topics ...] [--languages ...] [--max-chats N]
                                 [--chats-per-day N] [--break-after-chats N] [--break-after-min M]
                                 [--break-min B]
  warmline-admin supervisor create --name NAME
  warmline-admin list
  warmline-admin revoke ID
  warmline-admin token ID        (issue a new token; the old one stops working)
  warmline-admin reports list [--limit N]   (reports of chats by either side, newest first; default 50)
  warmline-admin reports show REPORT        (one report by its id from the list, with the messages the
                                             reporter included)
  warmline-admin audit [--limit N]          (the audit stream, newest first: every supervisor's and
                                             admin's step; default 50)
Common options: --redis-url URL (WARMLINE_REDIS_URL), --redis-timeout-ms MS, --catalogue FILE (WARMLINE_CATALOGUE)
)";

// Who runs warmline-admin, for the audit stream: "admin:" and the login name.
std::string admin_actor() {
    for (const char* var : {"USER", "LOGNAME"})
        if (const char* v = std::getenv(var); v && *v) return std::string("admin:") + v;
    return "admin:unknown";
}

// The wellbeing flags given (an absent one leaves that limit as it is).
matchmaker::wellbeing_limits wellbeing_from(const config::options& opts) {
    matchmaker::wellbeing_limits w;
    auto take = [&](const char* flag, int hi) -> std::optional<int> {
        if (opts.str(flag).empty()) return std::nullopt;
        return static_cast<int>(opts.integer(flag, 0, hi));
    };
    w.chats_per_day = take("chats-per-day", 200);
    w.break_after_chats = take("break-after-chats", 100);
    w.break_after_min = take("break-after-min", 1440);
    w.break_min = take("break-min", 240);
    return w;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> words;
    std::vector<const char*> flags{argv[0]};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("--", 0) == 0) {
            flags.push_back(argv[i]);
            if (a.find('=') == std::string::npos && a != "--help" && i + 1 < argc) flags.push_back(argv[++i]);
        } else {
            words.push_back(a);
        }
    }
    config::options opts("warmline-admin", "Manage listener and supervisor accounts.");
    net::add_redis_flags(opts);
    opts.add("catalogue", "deploy/catalogue.json", "the topics and languages file");
    opts.add("name", "", "display name");
    opts.add("handle", "", "public handle seekers can ask for (listeners)");
    opts.add("topics", "", "comma-separated topic ids");
    opts.add("languages", "", "comma-separated BCP 47 tags");
    opts.add("max-chats", "", "most chats at once (1-20)");
    opts.add("limit", "50", "how many reports `reports list`, or entries `audit`, shows (1-10000)");
    opts.add("chats-per-day", "", "listeners: most chats a day (their own midnight to midnight; 0: no cap)");
    opts.add("break-after-chats", "", "listeners: a break after this many chats (0: none)");
    opts.add("break-after-min", "", "listeners: a break after this many minutes on duty (0: none)");
    opts.add("break-min", "", "listeners: how long a break lasts, in minutes (0: the default 15)");
    try {
        if (!opts.parse(static_cast<int>(flags.size()), flags.data()) || words.empty()) {
            std::cout << usage;
            return words.empty() ? 2 : 0;
        }
        log::init("admin", "plain", "warn");
        auto cat = catalogue::load_file(opts.str("catalogue"));
        redis::client_options ro = net::redis_options_from(opts, "warmline-admin");
        asio::io_context ioc;
        auto redis = redis::client::create(ioc.get_executor(), ro);
        redis->start();
        matchmaker::store st(redis, {});
        admin::accounts acc(st, cat);

        auto run = [&]() -> asio::awaitable<int> {
            co_await redis->wait_connected(std::chrono::seconds(3));
            const std::string& verb = words[0];
            // every step an admin takes goes to the audit stream (wl:audit) once it succeeded
            std::string event, subject;
            auto arg = [&](std::size_t i) -> std::string {
                if (i >= words.size()) throw std::invalid_argument("missing an account id (see warmline-admin list)");
                return words[i];
            };
            if ((verb == "listener" || verb == "supervisor") && words.size() >= 2 && words[1] == "create") {
                admin::created c;
                if (verb == "listener") {
                    admin::listener_spec spec;
                    spec.name = opts.str("name");
                    spec.handle = opts.str("handle");
                    spec.topics = opts.list("topics");
                    spec.languages = opts.list("languages");
                    spec.max_chats = opts.str("max-chats").empty() ? 3 : static_cast<int>(opts.integer("max-chats", 1, 20));
                    spec.wellbeing = wellbeing_from(opts);
                    c = co_await acc.create_listener(spec);
                } else {
                    c = co_await acc.create_supervisor(opts.str("name"));
                }
                std::cout << verb << " " << c.id << (c.handle.empty() ? "" : " (handle " + c.handle + ")")
                          << " created.\ntoken: " << c.token << "\nKeep the token safe: it is shown only now.\n";
                event = verb + "_create";
                subject = c.id;
            } else if (verb == "listener" && words.size() >= 2 && words[1] == "edit") {
                admin::listener_edit e;
                if (!opts.str("name").empty()) e.name = opts.str("name");
                if (!opts.str("topics").empty()) e.topics = opts.list("topics");
                if (!opts.str("languages").empty()) e.languages = opts.list("languages");
                if (!opts.str("max-chats").empty()) e.max_chats = static_cast<int>(opts.integer("max-chats", 1, 20));
                e.wellbeing = wellbeing_from(opts);
                co_await acc.edit_listener(arg(2), e);
                std::cout << "listener " << words[2] << " updated.\n";
                event = "listener_edit";
                subject = words[2];
            } else if (verb == "list") {
                for (const auto& a : co_await acc.list()) {
                    std::cout << a.kind << " " << a.id;
                    for (const char* f : {"name", "handle", "topics", "langs", "cap", "day_cap", "break_chats",
                                          "break_after_min", "break_min", "status", "revoked"})
                        if (a.fields.count(f)) std::cout << " " << f << "=" << a.fields.at(f);
                    std::cout << "\n";
                }
            } else if (verb == "revoke") {
                co_await acc.revoke(arg(1));
                std::cout << "account " << words[1] << " revoked.\n";
                event = "account_revoke";
                subject = words[1];
            } else if (verb == "reports" && words.size() >= 2 && words[1] == "list") {
                admin::reports rep(*redis);
                auto found = co_await rep.recent(static_cast<int>(opts.integer("limit", 1, 10000)));
                if (found.empty()) std::cout << "No reports in the last 90 days.\n";
                for (const auto& r : found)
                    std::cout << r.session << "  " << admin::utc_time(r.at_ms) << "  by " << r.by
                              << (r.blocked ? " (blocked the seeker)" : "") << "  listener " << r.listener << "  "
                              << r.messages << (r.messages == 1 ? " message" : " messages")
                              << (r.messages > 0 ? " (unverified)" : "") << "\n";
                event = "reports_list";
            } else if (verb == "reports" && words.size() >= 2 && words[1] == "show") {
                if (words.size() < 3) throw std::invalid_argument("missing a report's id (see warmline-admin reports list)");
                admin::reports rep(*redis);
                auto found = co_await rep.find(words[2]);
                if (!found) {
                    std::cerr << "warmline-admin: there is no report " << admin::printable(words[2])
                              << " (reports are kept 90 days)\n";
                    co_return 1;
                }
                std::cout << admin::render(*found);
                event = "report_read";
                subject = words[2];
            } else if (verb == "audit") {
                for (const auto& entry : co_await st.audit_log(static_cast<int>(opts.integer("limit", 1, 10000)))) {
                    std::string at, rest;
                    for (const auto& [k, v] : entry) {
                        if (k == "at") at = admin::utc_time(std::stoll(v));
                        else if (!v.empty()) rest += "  " + k + "=" + admin::printable(v);
                    }
                    std::cout << at << rest << "\n";
                }
                event = "audit_read";
            } else if (verb == "token") {
                std::cout << "token: " << co_await acc.rotate_token(arg(1))
                          << "\nThe old token no longer works. Keep this one safe: it is shown only now.\n";
                event = "token_rotate";
                subject = words[1];
            } else {
                std::cerr << usage;
                co_return 2;
            }
            if (!event.empty()) co_await st.audit(event, admin_actor(), subject);
            co_return 0;
        };
        auto result = asio::co_spawn(ioc, run(), asio::use_future);
        while (result.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
            ioc.run_one_for(std::chrono::milliseconds(100));
        int rc = 0;
        try {
            rc = result.get();
        } catch (...) {
            redis->stop();
            throw;
        }
        redis->stop();
        return rc;
    } catch (const std::exception& e) {
        std::cerr << "warmline-admin: " << e.what() << "\n";
        return 2;
    }
}
