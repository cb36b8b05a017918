// What the matchmaker's integration tests share: a real redis-server, an io_context that runs
// coroutines to completion with a deadline, a store on a clock the test moves by hand, and
// accounts made through the admin code.
#pragma once

#include "common/catalogue.hpp"
#include "common/redis.hpp"
#include "services/admin/accounts.hpp"
#include "services/matchmaker/store.hpp"
#include "tests/support/redis_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace warmline::test {

// Run a coroutine on ioc until it finishes; throw if it takes longer than `limit`.
template <class T>
T run_sync(boost::asio::io_context& ioc, boost::asio::awaitable<T> a,
           std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto f = boost::asio::co_spawn(ioc, std::move(a), boost::asio::use_future);
    auto deadline = std::chrono::steady_clock::now() + limit;
    ioc.restart();
    while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("coroutine did not finish in time");
        ioc.run_one_for(std::chrono::milliseconds(10));
    }
    return f.get();
}

struct matchmaker_fixture {
    redis_server server;
    boost::asio::io_context ioc;
    std::shared_ptr<redis::client> redis;
    std::int64_t now = 1'800'000'000'000;  // the store's clock, moved by tests
    matchmaker::store_settings settings;
    std::unique_ptr<matchmaker::store> store;
    catalogue cat = catalogue::load_file(WARMLINE_SOURCE_DIR "/deploy/catalogue.json");
    std::unique_ptr<admin::accounts> accounts;
    int counter = 0;

    // A lease of an hour unless a test says otherwise: leases run on Redis's clock, which the
    // test's hand-moved clock does not move, and a sweep that saw a long gap would shift deadlines.
    static matchmaker::store_settings defaults() {
        matchmaker::store_settings s;
        s.node_lease_ms = 3600 * 1000;
        return s;
    }

    explicit matchmaker_fixture(matchmaker::store_settings s = defaults()) : matchmaker_fixture({}, s) {}
    // redis_args: extra redis-server arguments (e.g. {"--appendonly", "no"} for a test that
    // makes Redis lose its last writes)
    explicit matchmaker_fixture(std::vector<std::string> redis_args, matchmaker::store_settings s = defaults())
        : server(std::move(redis_args)), settings(s) {
        redis::client_options o;
        o.where = redis::endpoint::parse(server.url());
        redis = redis::client::create(ioc.get_executor(), o);
        redis->start();
        run(redis->wait_connected(std::chrono::seconds(3)));
        store = std::make_unique<matchmaker::store>(redis, settings, [this] { return now; });
        accounts = std::make_unique<admin::accounts>(*store, cat);
    }
    ~matchmaker_fixture() { redis->stop(); }

    template <class T>
    T run(boost::asio::awaitable<T> a) {
        return run_sync(ioc, std::move(a));
    }

    // A listener account, signed in and set available; returns {id, token}.
    admin::created listener(std::vector<std::string> topics, std::vector<std::string> langs, int max_chats = 1,
                            bool available = true) {
        admin::listener_spec spec{"Listener " + std::to_string(++counter), "", topics, langs, max_chats, {}};
        auto c = run(accounts->create_listener(spec));
        if (available) {
            auto r = run(store->set_availability(c.id, true));
            if (!r) throw std::runtime_error(r.error.message);
        }
        return c;
    }

    std::string seeker(const std::string& node = "n1") {
        std::string sid = "s" + std::to_string(++counter);
        auto r = run(store->seeker_new(sid, "hash-" + sid, node));
        if (!r) throw std::runtime_error(r.error.message);
        return sid;
    }

    matchmaker::queued_result request(const std::string& sid, const std::string& topic, const std::string& lang,
                                      bool crisis = false, const std::string& pref = "", std::int64_t widen_ms = 0) {
        auto r = run(store->request_chat(sid, topic, lang, crisis ? 0 : 1, pref, widen_ms));
        if (!r) throw std::runtime_error(r.error.code + ": " + r.error.message);
        return *r.value;
    }

    std::string field(const std::string& key, const std::string& f) { return server.cmd({"HGET", key, f}); }
    std::string seeker_state(const std::string& sid) { return field("wl:seeker:" + sid, "state"); }
    std::string offer_of(const std::string& sid) { return field("wl:seeker:" + sid, "offer"); }
    std::string offered_listener(const std::string& sid) {
        return field("wl:offer:" + offer_of(sid), "listener");
    }
};

}  // namespace warmline::test
