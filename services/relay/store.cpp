// Script calls and reply parsing for services/relay/store.hpp.
#include "services/relay/store.hpp"

#include "common/argv.hpp"
#include "common/keys.hpp"
#include "services/relay/lua_sources.hpp"

#include <stdexcept>

namespace warmline::relay {
namespace asio = boost::asio;

store::store(std::shared_ptr<redis::client> redis, store_settings s, clock_fn now)
    : redis_(std::move(redis)), settings_(s), now_(std::move(now)), scripts_(lua_sources()) {}

asio::awaitable<redis::value> store::run(std::string name, std::string session, char role,
                                         std::vector<std::string> args) {
    auto full = warmline::argv(std::to_string(now_()), std::to_string(settings_.state_ttl_s), std::move(session),
                               std::string(1, role));
    for (auto& a : args) full.push_back(std::move(a));
    std::vector<std::string> no_keys;
    co_return co_await redis_->eval(scripts_.at(name), std::move(no_keys), std::move(full));
}

asio::awaitable<outcome<hello_result>> store::hello(std::string session, char role, std::string node,
                                                    std::string conn_id, std::string public_key, std::int64_t lease_ms) {
    auto v = co_await run("hello", std::move(session), role,
                          argv(std::move(node), std::move(conn_id), std::move(public_key), std::to_string(lease_ms)));
    outcome<hello_result> out;
    if (!refused(v, out.error))
        out.value = hello_result{static_cast<std::uint64_t>(int_at(v, 1)), str_at(v, 2), int_at(v, 3),
                                 static_cast<std::uint64_t>(int_at(v, 4))};
    co_return out;
}

asio::awaitable<outcome<bool>> store::send(std::string session, char role, std::uint64_t seq,
                                           std::string ciphertext, bool touch) {
    auto v = co_await run("send", std::move(session), role,
                          argv(std::to_string(seq), std::move(ciphertext), std::to_string(settings_.max_log),
                               std::to_string(settings_.window), touch ? "1" : "0"));
    outcome<bool> out;
    if (!refused(v, out.error)) out.value = str_at(v, 1) == "stored";
    co_return out;
}

asio::awaitable<outcome<std::uint64_t>> store::skip(std::string session, char role, std::uint64_t through) {
    auto v = co_await run("skip", std::move(session), role,
                          argv(std::to_string(through), std::to_string(settings_.max_log),
                               std::to_string(settings_.window)));
    outcome<std::uint64_t> out;
    if (!refused(v, out.error)) out.value = static_cast<std::uint64_t>(int_at(v, 1));
    co_return out;
}

asio::awaitable<outcome<bool>> store::received(std::string session, char role, std::uint64_t through) {
    auto v = co_await run("received", std::move(session), role, argv(std::to_string(through)));
    outcome<bool> out;
    if (!refused(v, out.error)) out.value = true;
    co_return out;
}

asio::awaitable<outcome<bool>> store::signal(std::string session, char role, std::string kind, std::string value) {
    auto v = co_await run("signal", std::move(session), role, argv(std::move(kind), std::move(value)));
    outcome<bool> out;
    if (!refused(v, out.error)) out.value = true;
    co_return out;
}

asio::awaitable<void> store::gone(std::string session, char role, std::string conn_id) {
    co_await run("gone", std::move(session), role, argv(std::move(conn_id)));
}

asio::awaitable<outcome<bool>> store::end(std::string session, char role) {
    auto v = co_await run("end", std::move(session), role, argv());
    outcome<bool> out;
    if (!refused(v, out.error)) out.value = true;
    co_return out;
}

asio::awaitable<int> store::end_idle(std::int64_t since_unix_ms, int limit) {
    auto v = co_await run("end_idle", "", 's', argv(std::to_string(since_unix_ms), std::to_string(limit)));
    co_return static_cast<int>(int_at(v, 1));
}

asio::awaitable<int> store::presence(const presence_settings& p) {
    auto v = co_await run("presence", "", 's',
                          argv(p.node, std::to_string(p.lease_ms), std::to_string(p.away_ms), std::to_string(p.grace_ms),
                               std::to_string(p.limit)));
    co_return static_cast<int>(int_at(v, 1));
}

asio::awaitable<void> store::node_sync(const presence_settings& p, std::vector<std::string> sides) {
    auto args = argv(p.node, std::to_string(p.lease_ms));
    for (auto& s : sides) args.push_back(std::move(s));
    co_await run("node_sync", "", 's', std::move(args));
}

asio::awaitable<std::vector<log_entry>> store::log_after(std::string session, char from, std::uint64_t after,
                                                         std::size_t count) {
    // entry ids are 0-<seq>: "(0-<after>" is the first id after it
    auto v = co_await redis_->command(argv("XRANGE", keys::log(session, std::string(1, from)),
                                           "(0-" + std::to_string(after), "+", "COUNT", std::to_string(count)));
    std::vector<log_entry> out;
    for (const auto& e : v.elements) {
        if (e.elements.size() < 2) continue;
        log_entry le;
        const std::string& id = e.elements[0].str;
        le.seq = std::stoull(id.substr(id.find('-') + 1));
        const auto& fields = e.elements[1].elements;
        for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
            if (fields[i].str == "c") le.ciphertext = fields[i + 1].str;
            else if (fields[i].str == "t") le.stored_ms = std::stoll(fields[i + 1].str);
            else if (fields[i].str == "g") le.lost_from = std::stoull(fields[i + 1].str);
        }
        out.push_back(std::move(le));
    }
    co_return out;
}

asio::awaitable<bool> store::chat_open(std::string session) {
    auto v = co_await redis_->command(argv("HGET", keys::session(session), "state"));
    co_return !v.is_nil() && v.str == "active";
}

asio::awaitable<std::string> store::peer_key(std::string session, char role) {
    auto v = co_await redis_->command(argv("HGET", keys::relay(session),
                                           std::string("pub_") + (role == 's' ? 'l' : 's')));
    co_return v.is_nil() ? std::string() : v.str;
}

}  // namespace warmline::relay
