// warmline-match-bench: the load generator behind `scripts/bench match`. It plays many seekers
// and listeners over real WebSockets (protobuf binary frames) against matchmakers that the
// script started, and prints one JSON line per step; the last line is the summary. It owns the
// measurement only: processes, ports and Redis belong to scripts/bench.
//
// One thread and one io_context: every agent's state is touched from that thread only, so there
// are no locks, and every timestamp (request sent, offer seen) comes from the same steady clock.
// It connects only to 127.0.0.0/8, and every wait and every loop has a bound.
#include "common/argv.hpp"
#include "common/catalogue.hpp"
#include "common/crypto.hpp"
#include "common/keys.hpp"
#include "common/log.hpp"
#include "common/redis.hpp"
#include "loadtest/lib/bench_common.hpp"
#include "loadtest/lib/ws_peer.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace warmline::bench {
using namespace std::chrono_literals;

// A seeker's or listener's socket: protobuf binary frames of the matchmaker's protocol.
using ws_peer = proto_peer<v1::ClientMessage, v1::ServerMessage>;

// ---- options ---------------------------------------------------------------------------------

struct options {
    std::vector<std::string> urls;  // matchmakers for the match, latency and depth steps
    std::string conn_url;           // the matchmaker for the waiting-seekers step
    int conn_pid = 0;
    std::string redis_url = "redis://127.0.0.1:6379";
    std::string lua_dir = "services/matchmaker/lua";
    std::string catalogue = "deploy/catalogue.json";
    std::string topic = "general", language = "en";
    std::string conn_topic = "grief", conn_language = "de";
    std::string steps = "matches,latency,depth,connections";
    int listeners = 100;
    int max_chats = 20;
    int match_seekers = 300;
    double warmup_s = 2, match_s = 10;
    double latency_rate = 1000, latency_s = 10;
    int latency_pool = 1000;
    int depth_seekers = 3000, depth_small = 1000, depth_large = 100000;
    double depth_s = 8;
    double depth_end_jitter_ms = 1000;
    int connections = 50000, connect_parallel = 256;
    double connect_deadline_s = 180;
    double evalsha_per_s = NAN;
    std::vector<std::pair<std::string, int>> pids;  // name=pid: CPU shares per step
    double max_s = 900;                               // the whole run, then it gives up
};

const char* usage = R"(warmline-match-bench: matchmaker load generator (normally run by `scripts/bench match`)
  --url ws://127.0.0.1:P/v1/ws[,ws://...]   matchmakers for the match/latency/depth steps
  --conn-url ws://127.0.0.1:P/v1/ws         matchmaker for the waiting-seekers step
  --conn-pid PID                            that matchmaker's pid (its VmRSS is measured)
  --redis-url redis://127.0.0.1:P           the same Redis (listener accounts, queue prefill)
  --lua-dir DIR --catalogue FILE            services/matchmaker/lua, deploy/catalogue.json
  --steps matches,latency,depth,connections
  --listeners N (100) --max-chats N (20) --match-seekers N (300) --warmup-s S (2) --match-s S (10)
  --latency-rate R (1000) --latency-s S (10) --latency-pool N (1000)
  --depth-seekers N (3000) --depth-small N (1000) --depth-large N (100000) --depth-s S (8) --depth-end-jitter-ms MS (1000)
  --connections N (50000) --connect-parallel N (256) --connect-deadline-s S (180)
  --evalsha-per-s X      redis-benchmark's EVALSHA rate, copied into the summary
  --pids name=pid,...    processes whose CPU use is reported per step
  --max-s S (900)        give up after this long
)";

// Returns nullopt after printing usage for --help.
std::optional<options> parse_options(int argc, char** argv) {
    options o;
    flag_setters set = {
        {"url", [&](auto& v) { o.urls = split(v, ','); }},
        {"conn-url", into(o.conn_url)},
        {"conn-pid", into(o.conn_pid)},
        {"redis-url", into(o.redis_url)},
        {"lua-dir", into(o.lua_dir)},
        {"catalogue", into(o.catalogue)},
        {"topic", into(o.topic)},
        {"language", into(o.language)},
        {"conn-topic", into(o.conn_topic)},
        {"conn-language", into(o.conn_language)},
        {"steps", into(o.steps)},
        {"listeners", into(o.listeners)},
        {"max-chats", into(o.max_chats)},
        {"match-seekers", into(o.match_seekers)},
        {"warmup-s", into(o.warmup_s)},
        {"match-s", into(o.match_s)},
        {"latency-rate", into(o.latency_rate)},
        {"latency-s", into(o.latency_s)},
        {"latency-pool", into(o.latency_pool)},
        {"depth-seekers", into(o.depth_seekers)},
        {"depth-small", into(o.depth_small)},
        {"depth-large", into(o.depth_large)},
        {"depth-s", into(o.depth_s)},
        {"depth-end-jitter-ms", into(o.depth_end_jitter_ms)},
        {"connections", into(o.connections)},
        {"connect-parallel", into(o.connect_parallel)},
        {"connect-deadline-s", into(o.connect_deadline_s)},
        {"evalsha-per-s", [&](auto& v) { o.evalsha_per_s = v.empty() ? NAN : std::stod(v); }},
        {"max-s", into(o.max_s)},
        {"pids", [&](auto& v) { o.pids = parse_pids(v); }},
    };
    if (!apply_flags(argc, argv, set, usage)) return std::nullopt;
    // Bounds that keep every loop finite and the run within minutes.
    auto check = [](bool ok, const char* what) {
        if (!ok) throw std::invalid_argument(what);
    };
    check(o.listeners >= 1 && o.listeners <= 10000, "--listeners goes from 1 to 10000");
    check(o.max_chats >= 1 && o.max_chats <= 20, "--max-chats goes from 1 to 20 (the admin cap)");
    check(o.match_seekers >= 1 && o.match_seekers <= 15000, "--match-seekers goes from 1 to 15000");
    check(o.depth_seekers >= 1 && o.depth_seekers <= 15000, "--depth-seekers goes from 1 to 15000");
    check(o.latency_pool >= 1 && o.latency_pool <= 15000, "--latency-pool goes from 1 to 15000");
    check(o.latency_rate > 0 && o.latency_rate <= 100000, "--latency-rate goes up to 100000");
    check(o.depth_small >= 64 && o.depth_large > o.depth_small && o.depth_large <= 1000000,
          "--depth-small must be at least 64 and below --depth-large (at most 1000000)");
    check(o.connections >= 0 && o.connections <= 1000000, "--connections goes up to 1000000");
    check(o.connect_parallel >= 1 && o.connect_parallel <= 4096, "--connect-parallel goes from 1 to 4096");
    for (double s : {o.warmup_s, o.match_s, o.latency_s, o.depth_s, o.connect_deadline_s})
        check(s >= 0 && s <= 600, "durations go from 0 to 600 seconds");
    check(o.max_s > 0 && o.max_s <= 3600, "--max-s goes up to 3600");
    check(o.depth_end_jitter_ms >= 0 && o.depth_end_jitter_ms <= 10000, "--depth-end-jitter-ms goes up to 10000");
    return o;
}

bool has_step(const options& o, const std::string& s) {
    auto v = split(o.steps, ',');
    return std::find(v.begin(), v.end(), s) != v.end();
}

// ---- the agents ------------------------------------------------------------------------------

// A request a listener is waiting on (AcceptOffer or EndChat), kept so that a RATE_LIMITED
// refusal can be sent again.
struct listener_request {
    v1::ClientMessage message;
    double offer_seen = -1;  // AcceptOffer: when its Offer arrived
    int tries = 1;
};

struct listener_agent {
    std::string id, token;
    std::shared_ptr<ws_peer> peer;
    std::unordered_map<std::string, listener_request> pending;  // by request id
};

struct seeker_agent {
    enum class phase { idle, waiting, broken };
    std::shared_ptr<ws_peer> peer;
    phase state = phase::idle;
    double t0 = 0, scheduled = 0;     // RequestChat sent, and when the pacer meant to send it
    std::string request_rid, cancel_rid;
    std::string started, ended;       // sessions seen in this cycle
    int tries = 0;                    // RequestChat sent this cycle (RATE_LIMITED ones again)
};

// Both halves of one match, joined by session id: the seeker's ChatStarted and the listener's.
struct match_halves {
    double t0 = -1, scheduled = -1, t1 = -1;
    double seeker_started = -1, listener_started = -1;  // when each ChatStarted arrived
    bool seeker = false, listener = false;
};

// Where the time of a match goes, from the seeker's RequestChat (ms, medians over the window).
struct stage_samples {
    std::vector<double> offer, listener_chat, seeker_chat, cycle;
    void clear() { offer.clear(), listener_chat.clear(), seeker_chat.clear(), cycle.clear(); }
    std::string json() const {
        return json_line()
            .num("request_to_offer", percentile(offer, 50), 3)
            .num("request_to_listener_chat", percentile(listener_chat, 50), 3)
            .num("request_to_seeker_chat", percentile(seeker_chat, 50), 3)
            .num("request_to_chat_ended", percentile(cycle, 50), 3)
            .text();
    }
};

// ---- the benchmark ---------------------------------------------------------------------------

class bench {
public:
    bench(asio::io_context& ioc, options o) : ioc_(ioc), opt_(std::move(o)), meter_(opt_.pids) {}

    asio::awaitable<int> run();

private:
    // setup
    asio::awaitable<void> setup_redis();
    asio::awaitable<void> create_listeners();
    asio::awaitable<void> connect_listeners();
    asio::awaitable<void> connect_seekers(int n);
    asio::awaitable<void> set_available(bool available);

    // the protocol loop
    void on_listener(listener_agent& l, const v1::ServerMessage& m);
    void on_seeker(seeker_agent& s, const v1::ServerMessage& m);
    void request(seeker_agent& s, double scheduled);
    void half_done(const std::string& session, bool seeker_side, double t0, double scheduled, double t1);
    void cycle_done(seeker_agent& s);
    void listener_send(listener_agent& l, listener_request r);
    // A refusal with RATE_LIMITED is retried after a pause (boundedly); true if it will be.
    bool retry_later(const v1::ServerMessage& m, int tries, std::function<void()> again);
    void count_error(const v1::ServerMessage& m) { ++errors_[v1::ErrorCode_Name(m.error().code())]; }

    // steps
    struct loop_result {
        double matches_per_s = NAN;
        long long matches = 0;
        double seconds = 0;
        json_line cpu;
        double server_cpu_ms_per_match = NAN;  // Redis + matchmakers: less sensitive to other load
    };
    void reset_counters();
    asio::awaitable<loop_result> closed_loop(int seekers, double warmup_s, double seconds);
    asio::awaitable<void> drain(double seconds);
    asio::awaitable<void> step_matches();
    asio::awaitable<void> step_latency();
    asio::awaitable<void> step_depth();
    asio::awaitable<void> step_connections();
    asio::awaitable<void> prefill(int from, int to);
    void close_match_peers();

    std::string errors_json() const;
    long long lost_connections() const {
        long long n = 0;
        for (auto& s : seekers_) n += s && s->peer && !s->peer->is_open() ? 1 : 0;
        for (auto& l : listeners_) n += l->peer && !l->peer->is_open() ? 1 : 0;
        return n;
    }

    asio::io_context& ioc_;
    options opt_;
    cpu_meter meter_;  // opt_.pids and this process
    std::vector<ws_url> urls_;
    std::shared_ptr<redis::client> redis_;
    std::string hello_sha_, request_sha_;
    std::int64_t widen_after_ms_ = 0;

    std::vector<std::unique_ptr<listener_agent>> listeners_;
    std::vector<std::unique_ptr<seeker_agent>> seekers_;

    // the current loop
    enum class mode { closed, open } mode_ = mode::closed;
    bool stopping_ = true;
    bool collect_latency_ = false;
    double window_start_ = 0, window_end_ = 0;
    long long waiting_ = 0;          // seekers between RequestChat and the end of their chat
    long long completed_ = 0;        // matches completed inside the window
    long long offers_ = 0;
    std::deque<seeker_agent*> idle_;  // open loop: seekers free to send the next request
    std::unordered_map<std::string, match_halves> halves_;
    std::vector<double> latency_, latency_sched_;
    stage_samples stages_;
    std::map<std::string, long long> errors_;
    double end_jitter_ms_ = 0;  // listeners end each chat after a pause drawn from [0, this)
    std::minstd_rand rng_{12345};

    // prefill
    std::int64_t prefill_base_ms_ = 0;  // the NOW given to prefill scripts: a day ahead
    std::vector<std::string> prefilled_;

    // the summary
    double matches_per_s_ = NAN, p50_ = NAN, p99_ = NAN, ratio_ = NAN, kib_per_seeker_ = NAN;
    long long waiting_connected_ = -1;
    std::string note_;
};

std::string bench::errors_json() const {
    json_line j;
    for (auto& [code, n] : errors_) j.integer(code, n);
    return j.text();
}

// ---- setup -----------------------------------------------------------------------------------

asio::awaitable<void> bench::setup_redis() {
    redis::client_options ro;
    ro.where = redis::endpoint::parse(opt_.redis_url);
    if (ro.where.host.rfind("127.", 0) != 0) throw std::invalid_argument("--redis-url must be on 127.0.0.0/8");
    redis_ = redis::client::create(ioc_.get_executor(), ro);
    redis_->start();
    co_await redis_->wait_connected(5s);
    // the same text store.cpp loads (prelude + "\n" + script), so the same SHA1 as the matchmaker's
    std::string lib = read_file(opt_.lua_dir + "/lib.lua");
    auto load = [&](const std::string& name) -> asio::awaitable<std::string> {
        auto v = co_await redis_->command(argv("SCRIPT", "LOAD", lib + "\n" + read_file(opt_.lua_dir + "/" + name + ".lua")));
        co_return v.as_string();
    };
    hello_sha_ = co_await load("seeker_hello");
    request_sha_ = co_await load("request_chat");
}

// Listener accounts written the way services/admin/accounts.cpp writes them, with the largest
// max_chats the admin tool allows, trained for the one topic and language of the match steps.
asio::awaitable<void> bench::create_listeners() {
    std::vector<std::vector<std::string>> cmds;
    std::string max = std::to_string(opt_.max_chats);
    for (int i = 0; i < opt_.listeners; ++i) {
        auto l = std::make_unique<listener_agent>();
        l->id = crypto::random_id().substr(0, 16);
        l->token = "wll_" + crypto::random_token();
        std::string hash = crypto::sha256_hex(l->token);
        std::string handle = "bench-" + l->id.substr(0, 12);
        cmds.push_back(argv("SET", keys::handle(handle), l->id, "NX"));
        cmds.push_back(argv("HSET", keys::listener(l->id), "name", "Bench listener " + std::to_string(i), "handle",
                            handle, "topics", opt_.topic, "langs", opt_.language, "cap", max, "max", max, "status",
                            "away", "chats", "0", "offers", "0", "idle_since", "0", "ix", "", "token", hash, "revoked", "0",
                            "created", std::to_string(unix_ms())));
        cmds.push_back(argv("SADD", keys::listeners(), l->id));
        cmds.push_back(argv("SET", keys::token(hash), "listener:" + l->id));
        listeners_.push_back(std::move(l));
    }
    for (auto& r : co_await redis_->pipeline(std::move(cmds)))
        if (r.is_error()) throw std::runtime_error("creating listener accounts: " + r.str);
}

asio::awaitable<void> bench::connect_listeners() {
    long long failed = 0;
    co_await for_each_parallel(static_cast<int>(listeners_.size()), 64, [&](int i) -> asio::awaitable<void> {
        auto& l = *listeners_[static_cast<std::size_t>(i)];
        l.peer = std::make_shared<ws_peer>(ioc_);
        auto ec = co_await l.peer->open(urls_[static_cast<std::size_t>(i) % urls_.size()], std::nullopt, 10s);
        if (ec) {
            ++failed;
            co_return;
        }
        listener_agent* lp = &l;
        l.peer->start([this, lp](const v1::ServerMessage& m) { on_listener(*lp, m); });
        v1::ClientMessage in;
        in.mutable_listener_sign_in()->set_token(l.token);
        auto r = co_await l.peer->call(in, 10s);
        if (!r || !r->has_listener_welcome()) ++failed;
    });
    if (failed) throw std::runtime_error(std::to_string(failed) + " listeners could not connect and sign in");
    co_await set_available(true);
}

asio::awaitable<void> bench::set_available(bool available) {
    long long failed = 0;
    co_await for_each_parallel(static_cast<int>(listeners_.size()), 64, [&](int i) -> asio::awaitable<void> {
        v1::ClientMessage m;
        m.mutable_set_availability()->set_available(available);
        auto r = co_await listeners_[static_cast<std::size_t>(i)]->peer->call(m, 10s);
        if (!r || !r->has_status_changed()) ++failed;
    });
    if (failed) throw std::runtime_error(std::to_string(failed) + " listeners could not change availability");
}

asio::awaitable<void> bench::connect_seekers(int n) {
    long long failed = 0;
    seekers_.resize(static_cast<std::size_t>(n));
    co_await for_each_parallel(n, 128, [&](int i) -> asio::awaitable<void> {
        auto s = std::make_unique<seeker_agent>();
        s->peer = std::make_shared<ws_peer>(ioc_);
        auto ec = co_await s->peer->open(urls_[static_cast<std::size_t>(i) % urls_.size()], std::nullopt, 10s);
        seeker_agent* sp = s.get();
        seekers_[static_cast<std::size_t>(i)] = std::move(s);
        if (ec) {
            sp->state = seeker_agent::phase::broken;
            ++failed;
            co_return;
        }
        sp->peer->start([this, sp](const v1::ServerMessage& m) { on_seeker(*sp, m); });
        v1::ClientMessage hello;
        hello.mutable_seeker_hello();
        auto r = co_await sp->peer->call(hello, 10s);
        if (!r || !r->has_seeker_welcome()) {
            sp->state = seeker_agent::phase::broken;
            ++failed;
        }
    });
    if (failed) throw std::runtime_error(std::to_string(failed) + " seekers could not connect");
}

// ---- the protocol loop -----------------------------------------------------------------------

// Listeners accept every offer at once and end each chat as soon as it starts, so that their
// capacity recycles and the matchmaker, not the listeners, sets the pace.
bool bench::retry_later(const v1::ServerMessage& m, int tries, std::function<void()> again) {
    if (m.error().code() != v1::RATE_LIMITED || tries >= 50) return false;
    asio::co_spawn(ioc_, [again = std::move(again)]() -> asio::awaitable<void> {
        co_await sleep_for_ms(100);
        again();
    }, asio::detached);
    return true;
}

void bench::listener_send(listener_agent& l, listener_request r) {
    std::string rid = l.peer->send(r.message);
    l.pending.emplace(std::move(rid), std::move(r));
}

void bench::on_listener(listener_agent& l, const v1::ServerMessage& m) {
    auto it = l.pending.find(m.request_id());
    std::optional<listener_request> answered;
    if (!m.request_id().empty() && it != l.pending.end()) {
        answered = std::move(it->second);
        l.pending.erase(it);
    }
    switch (m.body_case()) {
    case v1::ServerMessage::kOffer: {
        ++offers_;
        listener_request r;
        r.message.mutable_accept_offer()->set_offer_id(m.offer().offer_id());
        r.offer_seen = now_ms();
        listener_send(l, std::move(r));
        break;
    }
    case v1::ServerMessage::kChatStarted: {  // the reply to AcceptOffer
        half_done(m.chat_started().session_id(), false, -1, -1, answered ? answered->offer_seen : -1);
        listener_request r;
        r.message.mutable_end_chat()->set_session_id(m.chat_started().session_id());
        if (end_jitter_ms_ <= 0) {
            listener_send(l, std::move(r));
            break;
        }
        // a random pause before ending, so that listeners do not move in lockstep (see step_depth)
        double pause = std::uniform_real_distribution<double>(0, end_jitter_ms_)(rng_);
        listener_agent* lp = &l;
        asio::co_spawn(ioc_, [this, lp, r = std::move(r), pause]() -> asio::awaitable<void> {
            co_await sleep_for_ms(pause);
            listener_send(*lp, r);
        }, asio::detached);
        break;
    }
    case v1::ServerMessage::kError:
        count_error(m);
        if (answered) {
            listener_agent* lp = &l;
            auto r = std::move(*answered);
            ++r.tries;
            retry_later(m, r.tries, [this, lp, r]() { listener_send(*lp, r); });
        }
        break;
    default:  // Ok for EndChat, OfferClosed, ChatEnded, StatusChanged: nothing to do
        break;
    }
}

void bench::request(seeker_agent& s, double scheduled) {
    v1::ClientMessage c;
    c.mutable_request_chat()->set_topic(opt_.topic);
    c.mutable_request_chat()->set_language(opt_.language);
    s.state = seeker_agent::phase::waiting;
    s.started.clear();
    s.ended.clear();
    s.cancel_rid.clear();
    s.scheduled = scheduled;
    s.t0 = now_ms();
    s.tries = 1;
    s.request_rid = s.peer->send(c);
    ++waiting_;
}

// A seeker's cycle ends when it has both the ChatStarted and the ChatEnded of one session (they
// can arrive in either order: the start is pushed after a Redis read, the end right away).
void bench::on_seeker(seeker_agent& s, const v1::ServerMessage& m) {
    switch (m.body_case()) {
    case v1::ServerMessage::kChatStarted:
        s.started = m.chat_started().session_id();
        half_done(s.started, true, s.t0, s.scheduled, -1);
        if (s.started == s.ended) cycle_done(s);
        break;
    case v1::ServerMessage::kChatEnded:
        s.ended = m.chat_ended().session_id();
        if (s.started == s.ended) cycle_done(s);
        break;
    case v1::ServerMessage::kOk:
        if (!s.cancel_rid.empty() && m.request_id() == s.cancel_rid && s.state == seeker_agent::phase::waiting) {
            s.state = seeker_agent::phase::idle;
            --waiting_;
        }
        break;
    case v1::ServerMessage::kError:
        if (m.request_id() != s.cancel_rid) count_error(m);
        if (m.request_id() == s.request_rid && s.state == seeker_agent::phase::waiting) {
            // the same request again after a pause (t0 stays: the wait counts), or give it up
            seeker_agent* sp = &s;
            bool again = retry_later(m, ++s.tries, [this, sp] {
                if (sp->state != seeker_agent::phase::waiting) return;
                v1::ClientMessage c;
                c.mutable_request_chat()->set_topic(opt_.topic);
                c.mutable_request_chat()->set_language(opt_.language);
                sp->request_rid = sp->peer->send(c);
            });
            if (!again) {
                s.state = seeker_agent::phase::broken;  // never reused: an error loop must not spin
                --waiting_;
            }
        }
        break;
    default:  // RequestQueued, QueueUpdate
        break;
    }
}

void bench::cycle_done(seeker_agent& s) {
    if (s.state != seeker_agent::phase::waiting) return;
    s.state = seeker_agent::phase::idle;
    --waiting_;
    if (s.t0 >= window_start_ && s.t0 < window_end_) stages_.cycle.push_back(now_ms() - s.t0);
    if (stopping_) return;
    if (mode_ == mode::closed) request(s, now_ms());
    else idle_.push_back(&s);
}

void bench::half_done(const std::string& session, bool seeker_side, double t0, double scheduled, double t1) {
    auto& h = halves_[session];
    double t = now_ms();
    if (seeker_side) {
        h.seeker = true;
        h.t0 = t0;
        h.scheduled = scheduled;
        h.seeker_started = t;
    } else {
        h.listener = true;
        h.t1 = t1;
        h.listener_started = t;
    }
    if (!h.seeker || !h.listener) return;
    if (t >= window_start_ && t < window_end_) ++completed_;
    if (h.t0 >= window_start_ && h.t0 < window_end_ && h.t1 >= 0) {
        stages_.offer.push_back(h.t1 - h.t0);
        stages_.listener_chat.push_back(h.listener_started - h.t0);
        stages_.seeker_chat.push_back(h.seeker_started - h.t0);
    }
    if (collect_latency_ && h.t0 >= window_start_ && h.t0 < window_end_ && h.t1 >= 0) {
        latency_.push_back(h.t1 - h.t0);
        latency_sched_.push_back(h.t1 - h.scheduled);
    }
    halves_.erase(session);
}

// ---- steps -----------------------------------------------------------------------------------

void bench::reset_counters() {
    completed_ = 0;
    offers_ = 0;
    errors_.clear();
    halves_.clear();
    latency_.clear();
    latency_sched_.clear();
    stages_.clear();
    idle_.clear();
}

// Wait until no seeker is between request and chat end; then cancel what is left. Bounded.
asio::awaitable<void> bench::drain(double seconds) {
    stopping_ = true;
    double until = now_ms() + seconds * 1000;
    while (waiting_ > 0 && now_ms() < until) co_await sleep_for_ms(5);
    if (waiting_ == 0) co_return;
    for (auto& s : seekers_) {
        if (!s || s->state != seeker_agent::phase::waiting) continue;
        v1::ClientMessage c;
        c.mutable_cancel_request();
        s->cancel_rid = s->peer->send(c);
    }
    until = now_ms() + 3000;
    while (waiting_ > 0 && now_ms() < until) co_await sleep_for_ms(5);
    for (auto& s : seekers_)
        if (s && s->state == seeker_agent::phase::waiting) {
            s->state = seeker_agent::phase::broken;
            --waiting_;
        }
}

// `seekers` seekers request, and request again as soon as their chat ends; completed matches are
// counted over `seconds` after `warmup_s`.
asio::awaitable<bench::loop_result> bench::closed_loop(int seekers, double warmup_s, double seconds) {
    reset_counters();
    mode_ = mode::closed;
    collect_latency_ = false;
    stopping_ = false;
    double start = now_ms();
    window_start_ = start + warmup_s * 1000;
    window_end_ = window_start_ + seconds * 1000;
    for (int i = 0; i < seekers && i < static_cast<int>(seekers_.size()); ++i)
        if (seekers_[static_cast<std::size_t>(i)]->state == seeker_agent::phase::idle)
            request(*seekers_[static_cast<std::size_t>(i)], now_ms());
    co_await sleep_until_ms(window_start_);
    auto a = meter_.now();
    co_await sleep_until_ms(window_end_);
    auto b = meter_.now();
    loop_result r;
    r.matches = completed_;
    r.seconds = (b.wall_ms - a.wall_ms) / 1000.0;
    r.matches_per_s = static_cast<double>(completed_) / seconds;
    r.cpu = meter_.json(a, b);
    if (completed_ > 0 && !opt_.pids.empty())
        r.server_cpu_ms_per_match = 1000.0 * meter_.servers_seconds(a, b) / static_cast<double>(completed_);
    co_await drain(15);
    co_return r;
}

asio::awaitable<void> bench::step_matches() {
    auto r = co_await closed_loop(opt_.match_seekers, opt_.warmup_s, opt_.match_s);
    matches_per_s_ = r.matches_per_s;
    json_line()
        .str("step", "matches")
        .integer("seekers", opt_.match_seekers)
        .integer("listeners", opt_.listeners)
        .integer("max_chats", opt_.max_chats)
        .integer("matchmakers", static_cast<long long>(urls_.size()))
        .num("seconds", r.seconds, 2)
        .integer("matches", r.matches)
        .num("matches_per_s", r.matches_per_s)
        .num("server_cpu_ms_per_match", r.server_cpu_ms_per_match, 3)
        .raw("stages_p50_ms", stages_.json())
        .raw("cpu_pct", r.cpu.text())
        .raw("errors", errors_json())
        .integer("unjoined_halves", static_cast<long long>(halves_.size()))
        .integer("connections_lost", lost_connections())
        .print();
}

// Open loop: a pacer sends RequestChat at a fixed rate whatever the replies do, each from an idle
// seeker. Latency is from the moment the seeker queues its frame (t0; its writer sends it on the
// next turn of the loop) to the moment the listener's Offer is parsed (t1), both in this process
// on one clock. from_schedule_* measure from when the pacer meant to send instead, so that a
// late pacer (coordinated omission) would show.
asio::awaitable<void> bench::step_latency() {
    reset_counters();
    mode_ = mode::open;
    collect_latency_ = true;
    stopping_ = false;
    int pool = std::min<int>(opt_.latency_pool, static_cast<int>(seekers_.size()));
    for (int i = 0; i < pool; ++i)
        if (seekers_[static_cast<std::size_t>(i)]->state == seeker_agent::phase::idle)
            idle_.push_back(seekers_[static_cast<std::size_t>(i)].get());
    double start = now_ms() + 10;
    double warmup = std::min(1.0, opt_.warmup_s);
    window_start_ = start + warmup * 1000;
    window_end_ = window_start_ + opt_.latency_s * 1000;
    double interval = 1000.0 / opt_.latency_rate;
    auto total = static_cast<long long>((warmup + opt_.latency_s) * opt_.latency_rate);
    long long sent = 0, skipped = 0, k = 0;
    double max_lag = 0;
    cpu_snapshot a, b;
    bool in_window = false;
    asio::steady_timer timer(ioc_);
    while (k < total) {
        double due = start + static_cast<double>(k) * interval;
        if (now_ms() < due) {
            timer.expires_at(at_ms(due));
            co_await timer.async_wait(use_tuple);
        }
        if (!in_window && now_ms() >= window_start_) {
            in_window = true;
            a = meter_.now();
        }
        double now = now_ms();
        while (k < total && start + static_cast<double>(k) * interval <= now) {
            double sched = start + static_cast<double>(k) * interval;
            ++k;
            if (idle_.empty()) {
                ++skipped;  // every seeker of the pool is busy: the system is not keeping up
                continue;
            }
            seeker_agent* s = idle_.front();
            idle_.pop_front();
            if (sched >= window_start_) max_lag = std::max(max_lag, now - sched);
            request(*s, sched);
            ++sent;
        }
    }
    co_await sleep_until_ms(window_end_);
    b = meter_.now();
    co_await drain(15);
    double achieved = static_cast<double>(latency_.size()) / opt_.latency_s;
    p50_ = percentile(latency_, 50);
    p99_ = percentile(latency_, 99);
    json_line()
        .str("step", "offer_latency")
        .num("target_rate_per_s", opt_.latency_rate, 0)
        .num("achieved_rate_per_s", achieved)
        .num("seconds", opt_.latency_s, 1)
        .integer("sent", sent)
        .integer("samples", static_cast<long long>(latency_.size()))
        .integer("skipped_no_idle_seeker", skipped)
        .num("offer_p50_ms", p50_, 3)
        .num("offer_p90_ms", percentile(latency_, 90), 3)
        .num("offer_p99_ms", p99_, 3)
        .num("offer_p999_ms", percentile(latency_, 99.9), 3)
        .num("offer_max_ms", percentile(latency_, 100), 3)
        .num("from_schedule_p50_ms", percentile(latency_sched_, 50), 3)
        .num("from_schedule_p99_ms", percentile(latency_sched_, 99), 3)
        .num("pacer_max_lag_ms", max_lag, 3)
        .raw("cpu_pct", meter_.json(a, b).text())
        .raw("errors", errors_json())
        .integer("connections_lost", lost_connections())
        .print();
    mode_ = mode::closed;
    collect_latency_ = false;
}

// Waiting seekers written straight into Redis by the matchmaker's own scripts (seeker_hello and
// request_chat, with the ARGV store.cpp builds), in the same topic x language queue the matches
// go through. Their NOW is a day ahead, so every real request is served before them and none of
// them widens or times out during the run; the first 64 block every bench listener, so a
// listener that finds no real seeker scans the head of the queue and makes no offer (it looks
// at 32). They are not connected: node "nbenchprefill" holds no lease and is never swept.
asio::awaitable<void> bench::prefill(int from, int to) {
    constexpr int batch = 500;
    auto call = [](const std::string& sha, std::int64_t now, std::vector<std::string> args) {
        std::vector<std::string> v = {"EVALSHA", sha, "0", std::to_string(now), "30000", "86400", "60000", "bp-"};
        for (auto& a : args) v.push_back(std::move(a));
        return v;
    };
    std::vector<std::string> listener_ids;
    for (auto& l : listeners_) listener_ids.push_back(l->id);
    for (int i = from; i < to; i += batch) {
        std::vector<std::vector<std::string>> cmds;
        for (int j = i; j < std::min(to, i + batch); ++j) {
            std::string sid = crypto::random_id();
            prefilled_.push_back(sid);
            std::int64_t now = prefill_base_ms_ + j;  // one millisecond apart: a strict order
            cmds.push_back(call(hello_sha_, now, argv("new", sid, crypto::sha256_hex("bench-prefill-" + sid), "nbenchprefill")));
            cmds.push_back(call(request_sha_, now, argv(sid, opt_.topic, opt_.language, "1", "", "120000",
                                                        std::to_string(widen_after_ms_))));
            if (j < 64) {
                auto block = argv("SADD", keys::blocked(sid));
                block.insert(block.end(), listener_ids.begin(), listener_ids.end());
                cmds.push_back(std::move(block));
            }
        }
        auto replies = co_await redis_->pipeline(std::move(cmds));
        for (auto& r : replies) {
            if (r.is_error()) throw std::runtime_error("prefill: " + r.str);
            if (r.type == redis::value::kind::array && !r.elements.empty() && r.elements[0].as_string() != "ok")
                throw std::runtime_error("prefill: a script refused: " +
                                         (r.elements.size() > 2 ? r.elements[2].as_string() : std::string("?")));
            if (r.type == redis::value::kind::array && r.elements.size() == 4 && r.elements[1].as_string() != "queued")
                throw std::runtime_error("prefill: a prefilled seeker was offered to a listener");
        }
    }
}

// Time per complete match with a small and with a large queue of waiting seekers behind the
// bench's own. All of them are written once; the part beyond the small queue is parked in a
// side key between runs (ZRANGESTORE + ZREMRANGEBYSCORE, put back with ZUNIONSTORE), so both
// sizes run with the same keyspace and only the queue's depth differs. Runs alternate small,
// large, small, large, small, so that drift (Redis growing, other load on the machine) averages
// out instead of being mistaken for the queue's cost.
asio::awaitable<void> bench::step_depth() {
    const std::string qkey = keys::queue(opt_.topic, opt_.language);
    const std::string parked_q = keys::bench_parked_queue(), parked_widen = keys::bench_parked_widen();
    prefill_base_ms_ = unix_ms() + 86400000;
    const std::int64_t cut = prefill_base_ms_ + opt_.depth_small;  // NOW of the first prefill beyond the small queue
    const std::string cut_score = std::to_string(4000000000000000LL + cut * 1000);  // TIER_BASE[1] + NOW * 1000
    const std::string cut_widen = std::to_string(cut + widen_after_ms_);
    auto check = [](const std::vector<redis::value>& replies) {
        for (auto& r : replies)
            if (r.is_error()) throw std::runtime_error("parking the deep queue: " + r.str);
    };
    auto park = [&]() -> asio::awaitable<void> {
        check(co_await redis_->pipeline(commands(argv("ZRANGESTORE", parked_q, qkey, cut_score, "+inf", "BYSCORE"),
                                           argv("ZREMRANGEBYSCORE", qkey, cut_score, "+inf"),
                                           argv("ZRANGESTORE", parked_widen, keys::due_widen(), cut_widen, "+inf", "BYSCORE"),
                                           argv("ZREMRANGEBYSCORE", keys::due_widen(), cut_widen, "+inf"))));
    };
    auto unpark = [&]() -> asio::awaitable<void> {
        check(co_await redis_->pipeline(commands(argv("ZUNIONSTORE", qkey, "2", qkey, parked_q),
                                           argv("ZUNIONSTORE", keys::due_widen(), "2", keys::due_widen(), parked_widen),
                                           argv("DEL", parked_q, parked_widen))));
    };
    std::map<std::string, std::vector<double>> ms_per_match, cpu_per_match;
    auto run = [&](const std::string& label) -> asio::awaitable<void> {
        auto v = co_await redis_->command(argv("ZCARD", qkey));
        auto r = co_await closed_loop(opt_.depth_seekers, opt_.warmup_s, opt_.depth_s);
        ms_per_match[label].push_back(1000.0 / r.matches_per_s);
        cpu_per_match[label].push_back(r.server_cpu_ms_per_match);
        json_line()
            .str("step", "queue_depth")
            .str("run", label)
            .integer("queue_len_at_start", v.as_int())
            .integer("seekers", opt_.depth_seekers)
            .integer("listener_slots", static_cast<long long>(opt_.listeners) * opt_.max_chats)
            .integer("matches", r.matches)
            .num("matches_per_s", r.matches_per_s)
            .num("ms_per_match", 1000.0 / r.matches_per_s, 4)
            .num("server_cpu_ms_per_match", r.server_cpu_ms_per_match, 3)
            .raw("stages_p50_ms", stages_.json())
            .raw("cpu_pct", r.cpu.text())
            .raw("errors", errors_json())
            .integer("connections_lost", lost_connections())
            .print();
    };
    // With more seekers than listener slots, listeners that end every chat at once move in
    // lockstep: every slot frees, refills and completes together, and a window catches a whole
    // number of these waves (a count of exactly 12000 twice in a row gave it away; 50 ms of
    // jitter did not break them). Chats of random length, 0-1 s, spread them out; slots still
    // outnumber what the matchmaker can fill, so seekers keep waiting in the queue.
    end_jitter_ms_ = opt_.depth_end_jitter_ms;
    // no listener may be available while the queue fills, or request_chat would offer at once
    co_await set_available(false);
    double t = now_ms();
    co_await prefill(0, opt_.depth_large);
    double fill_s = (now_ms() - t) / 1000;
    co_await park();
    co_await set_available(true);
    json_line()
        .str("step", "queue_prefill")
        .integer("seekers_written", opt_.depth_large)
        .num("seconds", fill_s, 2)
        .num("per_s", opt_.depth_large / fill_s, 0)
        .str("how", "EVALSHA seeker_hello + request_chat, pipelined 500 at a time")
        .print();
    for (int i = 0; i < 5; ++i) {
        bool large = i % 2 == 1;
        if (large) co_await unpark();
        co_await run(large ? "large" : "small");
        if (large) co_await park();
    }
    auto mean = [](const std::vector<double>& v) {
        double sum = 0;
        for (double x : v) sum += x;
        return v.empty() ? NAN : sum / static_cast<double>(v.size());
    };
    auto spread = [](const std::vector<double>& v) {
        auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        return json_line().num("min", *lo, 4).num("max", *hi, 4).text();
    };
    double per_small = mean(ms_per_match["small"]);
    double per_large = mean(ms_per_match["large"]);
    ratio_ = per_large / per_small;
    note_ = "queue depth: " + std::to_string(opt_.depth_large) + " vs " + std::to_string(opt_.depth_small) +
            " waiting seekers written through the matchmaker's own Lua scripts (EVALSHA seeker_hello + request_chat), "
            "not over sockets, into the same queue as the matches, scored behind the bench's seekers";
    json_line()
        .str("step", "cost_ratio")
        .num("ms_per_match_small", per_small, 4)
        .raw("small_runs", spread(ms_per_match["small"]))
        .num("ms_per_match_large", per_large, 4)
        .raw("large_runs", spread(ms_per_match["large"]))
        .num("cost_ratio_100k_vs_1k", ratio_, 3)
        .num("server_cpu_ratio", mean(cpu_per_match["large"]) / mean(cpu_per_match["small"]), 3)
        .num("listener_end_jitter_ms", end_jitter_ms_, 0)
        .str("note", note_)
        .print();
    end_jitter_ms_ = 0;
}

void bench::close_match_peers() {
    for (auto& s : seekers_)
        if (s && s->peer) s->peer->close();
    for (auto& l : listeners_)
        if (l->peer) l->peer->close();
}

// Seekers that connect, say hello and request a chat in a queue no listener takes, and then
// stay: how many one matchmaker holds, and what each costs it in resident memory. Client
// sockets are bound to many 127.x addresses so the ~28k ephemeral ports of one source address
// are not the limit.
asio::awaitable<void> bench::step_connections() {
    auto u = parse_url(opt_.conn_url, "/v1/ws");
    long long rss_before = opt_.conn_pid > 0 ? rss_kib(opt_.conn_pid) : -1;
    std::vector<std::shared_ptr<ws_peer>> held;
    held.reserve(static_cast<std::size_t>(opt_.connections));
    long long max_position = 0;
    connect_tally tally(now_ms() + opt_.connect_deadline_s * 1000);
    double t = now_ms();
    co_await for_each_parallel(opt_.connections, opt_.connect_parallel, [&](int i) -> asio::awaitable<void> {
        if (!tally.next()) co_return;
        auto p = std::make_shared<ws_peer>(ioc_);
        auto ec = co_await p->open(u, source_address(static_cast<unsigned>(i), 1000), 10s);
        if (!tally.opened(ec, "matchmaker")) co_return;
        p->start({});
        v1::ClientMessage hello;
        hello.mutable_seeker_hello();
        auto w = co_await p->call(hello, 10s);
        if (!w || !w->has_seeker_welcome()) {
            p->close();
            tally.fail("hello_failed", "seeker_hello failed or timed out");
            co_return;
        }
        v1::ClientMessage req;
        req.mutable_request_chat()->set_topic(opt_.conn_topic);
        req.mutable_request_chat()->set_language(opt_.conn_language);
        auto q = co_await p->call(req, 10s);
        if (!q || !q->has_request_queued()) {
            p->close();
            tally.fail("request_failed", "request_chat failed or timed out");
            co_return;
        }
        tally.succeeded();
        max_position = std::max<long long>(max_position, q->request_queued().position());
        held.push_back(std::move(p));
    });
    double connect_s = (now_ms() - t) / 1000;
    // Hold them for a few seconds: the matchmaker's position timer runs over all of them, and
    // what holding them costs (its ticks, Redis's positions script) shows as CPU while idle.
    int redis_pid = 0;
    for (auto& [name, pid] : opt_.pids)
        if (name == "redis") redis_pid = pid;
    double hold_s = 3;
    double mm_a = opt_.conn_pid > 0 ? cpu_seconds(opt_.conn_pid) : -1, redis_a = redis_pid ? cpu_seconds(redis_pid) : -1;
    co_await sleep_for_ms(hold_s * 1000);
    double mm_b = opt_.conn_pid > 0 ? cpu_seconds(opt_.conn_pid) : -1, redis_b = redis_pid ? cpu_seconds(redis_pid) : -1;
    auto pct = [&](double a, double b) { return a < 0 || b < 0 ? NAN : 100.0 * (b - a) / hold_s; };
    long long open_now = count_open(held);
    long long rss_after = opt_.conn_pid > 0 ? rss_kib(opt_.conn_pid) : -1;
    waiting_connected_ = open_now;
    kib_per_seeker_ = kib_per(rss_before, rss_after, open_now);
    json_line()
        .str("step", "waiting_seekers")
        .integer("requested", opt_.connections)
        .integer("attempts", tally.attempts())
        .integer("connected_and_queued", open_now)
        .integer("failures", tally.failures())
        .raw("failures_by_kind", tally.failures_json())
        .str("stopped_by", tally.stopped_by())
        .integer("matchmaker_nofile", opt_.conn_pid > 0 ? open_file_limit(opt_.conn_pid) : -1)
        .integer("bench_nofile", open_file_limit(static_cast<int>(getpid())))
        .integer("highest_position", max_position)
        .num("connect_s", connect_s, 2)
        .integer("source_addresses", std::min(opt_.connections, 1000))
        .raw("holding_cpu_pct", json_line().num("matchmaker", pct(mm_a, mm_b), 0).num("redis", pct(redis_a, redis_b), 0).text())
        .integer("rss_before_kib", rss_before)
        .integer("rss_after_kib", rss_after)
        .num("kib_per_waiting_seeker", kib_per_seeker_, 2)
        .print();
    for (auto& p : held) p->close();
}

asio::awaitable<int> bench::run() {
    for (auto& u : opt_.urls) urls_.push_back(parse_url(u, "/v1/ws"));
    if (!opt_.conn_url.empty()) parse_url(opt_.conn_url, "/v1/ws");
    auto cat = catalogue::load_file(opt_.catalogue);
    const v1::Topic* topic = cat.topic(opt_.topic);
    if (!topic || !cat.language(opt_.language) || !cat.topic(opt_.conn_topic) || !cat.language(opt_.conn_language))
        throw std::invalid_argument("the topics and languages must come from " + opt_.catalogue);
    widen_after_ms_ = static_cast<std::int64_t>(topic->widen_after_s()) * 1000;

    bool matching = has_step(opt_, "matches") || has_step(opt_, "latency") || has_step(opt_, "depth");
    if (matching) {
        if (urls_.empty()) throw std::invalid_argument("--url is required for the match steps");
        co_await setup_redis();
        co_await create_listeners();
        co_await connect_listeners();
        int n = 0;
        if (has_step(opt_, "matches")) n = std::max(n, opt_.match_seekers);
        if (has_step(opt_, "latency")) n = std::max(n, opt_.latency_pool);
        if (has_step(opt_, "depth")) n = std::max(n, opt_.depth_seekers);
        co_await connect_seekers(n);
        json_line()
            .str("step", "setup")
            .integer("matchmakers", static_cast<long long>(urls_.size()))
            .integer("listeners", opt_.listeners)
            .integer("max_chats", opt_.max_chats)
            .integer("seekers", n)
            .str("queue", opt_.topic + ":" + opt_.language)
            .str("frames", "protobuf binary")
            .print();
    }
    if (has_step(opt_, "matches")) co_await step_matches();
    if (has_step(opt_, "latency")) co_await step_latency();
    if (has_step(opt_, "depth")) co_await step_depth();
    if (matching) {
        close_match_peers();
        co_await sleep_for_ms(500);
    }
    if (has_step(opt_, "connections")) {
        if (opt_.conn_url.empty()) throw std::invalid_argument("--conn-url is required for the connections step");
        co_await step_connections();
    }
    json_line final;
    final.str("scenario", "match")
        .num("matches_per_s", matches_per_s_, 1)
        .num("offer_p50_ms", p50_, 3)
        .num("offer_p99_ms", p99_, 3)
        .num("cost_ratio_100k_vs_1k", ratio_, 3);
    if (waiting_connected_ >= 0) final.integer("waiting_seekers_connected", waiting_connected_);
    else final.raw("waiting_seekers_connected", "null");
    final.num("kib_per_waiting_seeker", kib_per_seeker_, 2).num("redis_evalsha_per_s", opt_.evalsha_per_s, 0);
    if (!note_.empty()) final.str("note", note_);
    final.print();
    if (redis_) redis_->stop();
    co_return 0;
}

}  // namespace warmline::bench

int main(int argc, char** argv) {
    using namespace warmline::bench;
    return generator_main<bench>("match-bench", argc, argv, parse_options);
}
