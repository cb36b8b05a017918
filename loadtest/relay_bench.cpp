// warmline-relay-bench: the load generator behind `scripts/bench relay`. It plays both sides of
// many chats over real WebSockets (protobuf binary frames) against relay processes the script
// started, with real end-to-end encryption on every client (an X25519 exchange per chat through
// the relay, every message sealed by e2e::sender and opened by e2e::receiver), and measures the
// baselines beside it: a raw Beast echo server (warmline-echo-server) and Redis PUBLISH to a
// subscriber. One JSON line per step; the last line is the summary. Processes, ports and Redis
// belong to scripts/bench; this program owns only the measurement.
//
// One thread and one io_context: every side's state is touched from that thread only, and every
// latency is measured on one steady clock, from sealing a message to opening it on the other side.
// It connects only to 127.0.0.0/8, and every wait and every loop has a bound.
#include "common/argv.hpp"
#include "common/crypto.hpp"
#include "clients/e2e.hpp"
#include "common/keys.hpp"
#include "common/redis.hpp"
#include "common/ticket.hpp"
#include "loadtest/lib/bench_common.hpp"
#include "loadtest/lib/ws_peer.hpp"
#include "warmline/v1/relay.pb.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace warmline::bench {
using namespace std::chrono_literals;

using relay_peer = proto_peer<v1::RelayClientMessage, v1::RelayServerMessage>;
// The echo server sends our own frames back.
using echo_peer = proto_peer<v1::RelayClientMessage, v1::RelayClientMessage>;

// ---- options ---------------------------------------------------------------------------------

struct options {
    std::vector<std::string> relays;  // relay A, and B for the cross-node steps
    std::string idle_url;             // a fresh relay for the idle-connections step
    int idle_pid = 0;
    std::string echo_url;
    std::string acks_url;             // a relay with --ack-replicas, on a Redis with a replica
    std::string cluster_url;          // a relay whose chats are on a Redis Cluster (--chat-redis-url)
    std::string redis_url = "redis://127.0.0.1:6379";
    std::string ticket_secret;  // WARMLINE_TICKET_SECRET, the relays' own
    std::string steps = "pubsub,echo,throughput,throughput_cross,latency,cross,acks,cluster,idle";
    int chats = 200, window = 16;
    double warmup_s = 2, throughput_s = 10;
    int latency_chats = 2000;
    double per_side_rate = 1, latency_s = 10;
    double pubsub_rate = 1000, pubsub_s = 5;
    int echo_idle = 2000;  // idle connections whose memory the echo server is measured with
    int connections = 50000, connect_parallel = 256;
    int idle_hello = 1;  // 0: idle participants only upgrade (what the hello and its state cost)
    double connect_deadline_s = 120, hold_s = 3;
    int plaintext_bytes = 100, received_every = 32;
    std::vector<std::pair<std::string, int>> pids;
    double max_s = 600;
};

const char* usage = R"(warmline-relay-bench: relay load generator (normally run by `scripts/bench relay`)
  --relays ws://127.0.0.1:A/v1/relay[,ws://127.0.0.1:B/v1/relay]   relay A (and B: cross-node steps)
  --idle-url ws://127.0.0.1:C/v1/relay --idle-pid PID   a fresh relay for the idle step, and its pid
  --echo-url ws://127.0.0.1:E/          warmline-echo-server
  --acks-url ws://127.0.0.1:K/v1/relay  a relay run with --ack-replicas (acks step: throughput and
                                        latency again, each Ack after WAIT)
  --cluster-url ws://127.0.0.1:L/v1/relay  a relay whose chats are on a Redis Cluster (cluster step:
                                        throughput and latency again)
  --redis-url redis://127.0.0.1:P       the relays' Redis (sessions are written into it)
  --steps pubsub,echo,throughput,throughput_cross,latency,cross,acks,cluster,idle
  --chats N (200) --window N (16)       throughput and echo: chats (2 connections each), sends in flight
  --warmup-s S (2) --throughput-s S (10)
  --latency-chats N (2000) --per-side-rate R (1) --latency-s S (10)
  --pubsub-rate R (1000) --pubsub-s S (5) --echo-idle N (2000)
  --connections N (50000) --connect-parallel N (256) --connect-deadline-s S (120) --hold-s S (3)
  --idle-hello 1|0 (1)                  0: idle participants upgrade but never say hello
  --plaintext-bytes N (100) --received-every N (32)
  --pids name=pid,...                   processes whose CPU use is reported per step
  --max-s S (600)                       give up after this long
The ticket secret comes from WARMLINE_TICKET_SECRET, as for the relay.
)";

std::optional<options> parse_options(int argc, char** argv) {
    options o;
    if (const char* s = std::getenv("WARMLINE_TICKET_SECRET")) o.ticket_secret = s;
    flag_setters set = {
        {"relays", [&](auto& v) { o.relays = split(v, ','); }},
        {"idle-url", into(o.idle_url)},
        {"idle-pid", into(o.idle_pid)},
        {"echo-url", into(o.echo_url)},
        {"acks-url", into(o.acks_url)},
        {"cluster-url", into(o.cluster_url)},
        {"redis-url", into(o.redis_url)},
        {"steps", into(o.steps)},
        {"chats", into(o.chats)},
        {"window", into(o.window)},
        {"warmup-s", into(o.warmup_s)},
        {"throughput-s", into(o.throughput_s)},
        {"latency-chats", into(o.latency_chats)},
        {"per-side-rate", into(o.per_side_rate)},
        {"latency-s", into(o.latency_s)},
        {"pubsub-rate", into(o.pubsub_rate)},
        {"pubsub-s", into(o.pubsub_s)},
        {"echo-idle", into(o.echo_idle)},
        {"idle-hello", into(o.idle_hello)},
        {"connections", into(o.connections)},
        {"connect-parallel", into(o.connect_parallel)},
        {"connect-deadline-s", into(o.connect_deadline_s)},
        {"hold-s", into(o.hold_s)},
        {"plaintext-bytes", into(o.plaintext_bytes)},
        {"received-every", into(o.received_every)},
        {"pids", [&](auto& v) { o.pids = parse_pids(v); }},
        {"max-s", into(o.max_s)},
    };
    if (!apply_flags(argc, argv, set, usage)) return std::nullopt;
    auto check = [](bool ok, const char* what) {
        if (!ok) throw std::invalid_argument(what);
    };
    check(o.ticket_secret.size() >= 32, "WARMLINE_TICKET_SECRET must hold the relays' ticket secret (32+ characters)");
    check(o.chats >= 1 && o.chats <= 5000, "--chats goes from 1 to 5000");
    check(o.window >= 1 && o.window <= 256, "--window goes from 1 to 256");
    check(o.latency_chats >= 1 && o.latency_chats <= 5000, "--latency-chats goes from 1 to 5000");
    check(o.per_side_rate > 0 && o.per_side_rate <= 100, "--per-side-rate goes up to 100");
    check(o.pubsub_rate > 0 && o.pubsub_rate <= 50000, "--pubsub-rate goes up to 50000");
    check(o.connections >= 0 && o.connections <= 1000000, "--connections goes up to 1000000");
    check(o.echo_idle >= 0 && o.echo_idle <= 10000, "--echo-idle goes up to 10000");
    check(o.connect_parallel >= 1 && o.connect_parallel <= 4096, "--connect-parallel goes from 1 to 4096");
    check(o.plaintext_bytes >= 24 && o.plaintext_bytes <= 8192, "--plaintext-bytes goes from 24 to 8192");
    check(o.received_every >= 1 && o.received_every <= 500, "--received-every goes from 1 to 500");
    for (double s : {o.warmup_s, o.throughput_s, o.latency_s, o.pubsub_s, o.connect_deadline_s, o.hold_s})
        check(s >= 0 && s <= 600, "durations go from 0 to 600 seconds");
    check(o.max_s > 0 && o.max_s <= 3600, "--max-s goes up to 3600");
    return o;
}

std::pair<double, double> p50_p99(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {percentile(v, 50), percentile(v, 99)};
}

bool has_step(const options& o, const std::string& s) {
    auto v = split(o.steps, ',');
    return std::find(v.begin(), v.end(), s) != v.end();
}

// ---- chats -----------------------------------------------------------------------------------

struct chat;

// One participant: its socket, its keypair for this chat, and once the other side's public key
// has arrived through the relay, its sealing and opening halves.
struct side {
    chat* owner = nullptr;
    char role = 's';
    std::shared_ptr<relay_peer> peer;
    e2e::keypair keys = e2e::generate_keypair();
    std::optional<e2e::sender> tx;
    std::optional<e2e::receiver> rx;
    int in_flight = 0;          // Sends not yet acknowledged
    std::deque<double> sent_at;  // when each of them was queued (Acks come back in order)
    std::uint64_t receipt = 0;  // the last Received{through} sent
    bool failed = false;        // an error reply or the chat ended: sends no more
};

struct chat {
    std::string session;
    side seeker, listener;
    chat() {
        seeker.owner = listener.owner = this;
        listener.role = 'l';
    }
    side& other(const side& s) { return &s == &seeker ? listener : seeker; }
};
using chat_list = std::vector<std::unique_ptr<chat>>;

// The plaintext of a message: when it was sealed (ms on this process's steady clock, which is
// what the receiving side measures latency from), then filler. Nothing in it is about anyone.
std::string plaintext(double sealed_ms, int bytes) {
    static const std::string filler =
        "This is a benchmark message with nothing personal in it; it only has to be about this long. ";
    char head[40];
    int n = std::snprintf(head, sizeof head, "t=%.4f;", sealed_ms);
    std::string s(head, static_cast<std::size_t>(std::max(0, n)));
    while (s.size() < static_cast<std::size_t>(bytes)) s += filler.substr(0, static_cast<std::size_t>(bytes) - s.size());
    return s;
}

double sealed_at(const std::string& plain) {
    return plain.rfind("t=", 0) == 0 ? std::strtod(plain.c_str() + 2, nullptr) : NAN;
}

// CPU microseconds per message, or NaN without messages.
double us_per(double cpu_seconds, long long messages) {
    return messages > 0 ? 1e6 * cpu_seconds / static_cast<double>(messages) : NAN;
}

e2e::bytes to_bytes(const std::string& s) { return e2e::bytes(s.begin(), s.end()); }
std::string to_string(const e2e::bytes& b) { return std::string(b.begin(), b.end()); }

// A Send of a fresh message sealed now (its plaintext says when).
v1::RelayClientMessage sealed_send(e2e::sender& tx, int plaintext_bytes) {
    auto sealed = tx.seal(plaintext(now_ms(), plaintext_bytes));
    v1::RelayClientMessage m;
    m.mutable_send()->set_seq(sealed.seq);
    m.mutable_send()->set_ciphertext(to_string(sealed.ciphertext));
    return m;
}

// Latency samples of a window, in ms, as the fields of a step line.
json_line latency_json(const std::string& prefix, const std::vector<double>& v) {
    std::vector<double> s = v;
    std::sort(s.begin(), s.end());
    return json_line()
        .integer(prefix + "samples", static_cast<long long>(s.size()))
        .num(prefix + "p50_ms", percentile(s, 50), 3)
        .num(prefix + "p90_ms", percentile(s, 90), 3)
        .num(prefix + "p99_ms", percentile(s, 99), 3)
        .num(prefix + "p999_ms", percentile(s, 99.9), 3)
        .num(prefix + "max_ms", percentile(s, 100), 3);
}

// Redis's INFO commandstats: calls and microseconds per command (commands a script runs are
// counted under their own names as well as in EVALSHA).
struct command_stat {
    long long calls = 0;
    double usec = 0;
};
using command_stats = std::map<std::string, command_stat>;

command_stats parse_commandstats(const std::string& info) {
    command_stats out;
    for (auto& line : split(info, '\n')) {
        if (line.rfind("cmdstat_", 0) != 0) continue;
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        command_stat st;
        for (auto& kv : split(line.substr(colon + 1), ',')) {
            auto eq = kv.find('=');
            if (eq == std::string::npos) continue;
            if (kv.compare(0, eq, "calls") == 0) st.calls = std::stoll(kv.substr(eq + 1));
            else if (kv.compare(0, eq, "usec") == 0) st.usec = std::stod(kv.substr(eq + 1));
        }
        out[line.substr(8, colon - 8)] = st;
    }
    return out;
}

// What Redis did per relayed message between two snapshots: calls of each command per message
// and its microseconds per call, busiest first.
json_line commandstats_json(const command_stats& a, const command_stats& b, long long messages) {
    std::vector<std::pair<std::string, command_stat>> d;
    for (auto& [name, st] : b) {
        command_stat before = a.count(name) ? a.at(name) : command_stat{};
        if (st.calls > before.calls) d.push_back({name, {st.calls - before.calls, st.usec - before.usec}});
    }
    std::sort(d.begin(), d.end(), [](auto& x, auto& y) { return x.second.usec > y.second.usec; });
    json_line j;
    for (auto& [name, st] : d)
        j.raw(name, json_line()
                        .num("per_msg", messages > 0 ? static_cast<double>(st.calls) / static_cast<double>(messages) : NAN, 3)
                        .num("usec_per_call", st.usec / static_cast<double>(st.calls), 2)
                        .text());
    return j;
}

// ---- the benchmark ---------------------------------------------------------------------------

class bench {
public:
    bench(asio::io_context& ioc, options o) : ioc_(ioc), opt_(std::move(o)), meter_(opt_.pids) {}
    asio::awaitable<int> run();

private:
    // setup
    asio::awaitable<void> create_sessions(const std::vector<std::string>& ids);
    std::string ticket_for(const std::string& session, char role) const;
    asio::awaitable<chat_list> open_chats(int n, const ws_url& seeker_relay, const ws_url& listener_relay);
    asio::awaitable<void> join(side& s, const ws_url& relay, unsigned source);

    // the protocol
    void on_message(side& s, const v1::RelayServerMessage& m);
    void derive(side& s, const std::string& peer_public);
    bool send_one(side& s);
    void fill(side& s);
    void on_deliver(side& s, const v1::Deliver& d);

    // steps
    void reset();
    asio::awaitable<void> drain(const chat_list& chats);
    json_line counters_json(const chat_list& chats) const;
    asio::awaitable<void> step_pubsub();
    asio::awaitable<double> step_echo(const std::string& name, bool probe_memory);
    asio::awaitable<double> step_throughput(const std::string& name, const ws_url& a, const ws_url& b);
    asio::awaitable<std::pair<double, double>> step_latency(const std::string& name, const ws_url& a,
                                                            const ws_url& b);
    asio::awaitable<void> step_idle();
    asio::awaitable<command_stats> redis_commandstats();

    asio::io_context& ioc_;
    options opt_;
    cpu_meter meter_;
    std::vector<ws_url> relays_;
    std::shared_ptr<redis::client> redis_;
    unsigned next_source_ = 0;  // spreads every connection over 127.1.0.0/16

    // the current step
    enum class mode { idle, flood, paced } mode_ = mode::idle;
    double window_start_ = 0, window_end_ = 0;
    long long sent_ = 0, acked_ = 0, delivered_ = 0, delivered_in_window_ = 0;
    std::vector<double> latency_, ack_latency_;  // sealed -> opened by the other side; -> Ack
    std::vector<std::vector<double>> latency_by_second_;  // paced steps: by second of sending
    std::map<std::string, long long> errors_, receive_problems_;

    // the summary
    double msgs_per_s_ = NAN, p50_ = NAN, p99_ = NAN, cross_p50_ = NAN, cross_p99_ = NAN, echo_per_s_ = NAN,
           pubsub_p50_ = NAN, kib_per_conn_ = NAN, two_relays_per_s_ = NAN;
    // Acks after WAIT (--ack-replicas), and send -> Ack without and with it
    double acks_per_s_ = NAN, acks_p50_ = NAN, acks_p99_ = NAN, ack_p50_ = NAN, ack_p99_ = NAN,
           acks_ack_p50_ = NAN, acks_ack_p99_ = NAN;
    // chats on a Redis Cluster
    double cluster_per_s_ = NAN, cluster_p50_ = NAN, cluster_p99_ = NAN;
    long long max_conns_ = -1;
};

// ---- setup -----------------------------------------------------------------------------------

asio::awaitable<command_stats> bench::redis_commandstats() {
    auto v = co_await redis_->command(argv("INFO", "commandstats"));
    co_return parse_commandstats(v.as_string());
}

// Chats the way the matchmaker's session hash records them, written directly (the relay only
// checks state == active); an hour, like a real chat's keys before they are renewed.
asio::awaitable<void> bench::create_sessions(const std::vector<std::string>& ids) {
    constexpr std::size_t batch = 1000;
    std::string started = std::to_string(unix_ms());
    for (std::size_t i = 0; i < ids.size(); i += batch) {
        std::vector<std::vector<std::string>> cmds;
        for (std::size_t j = i; j < std::min(ids.size(), i + batch); ++j) {
            std::string key = keys::session(ids[j]);
            cmds.push_back(argv("HSET", key, "seeker", "bs-" + ids[j], "listener", "bl-" + ids[j], "topic", "general",
                                "lang", "en", "started", started, "state", "active"));
            cmds.push_back(argv("EXPIRE", key, "3600"));
        }
        for (auto& r : co_await redis_->pipeline(std::move(cmds)))
            if (r.is_error()) throw std::runtime_error("writing sessions: " + r.str);
    }
}

// A ticket for one side, for its first hello (tickets no longer ride in the URL).
std::string bench::ticket_for(const std::string& session, char role) const {
    ticket::claims c{session, role == 's' ? ticket::role::seeker : ticket::role::listener, unix_ms() + 3600 * 1000};
    return ticket::sign(opt_.ticket_secret, c);
}

// Connect one side and say hello with its public key; s.failed if that did not work.
asio::awaitable<void> bench::join(side& s, const ws_url& relay, unsigned source) {
    s.peer = std::make_shared<relay_peer>(ioc_);
    auto ec = co_await s.peer->open(relay, source_address(source, 1000), 10s);
    if (ec) {
        ++errors_["connect: " + ec.message()];
        s.failed = true;
        co_return;
    }
    side* sp = &s;
    s.peer->start([this, sp](const v1::RelayServerMessage& m) { on_message(*sp, m); });
    v1::RelayClientMessage hello;
    hello.mutable_hello()->set_public_key(std::string(s.keys.public_key.begin(), s.keys.public_key.end()));
    hello.mutable_hello()->set_ticket(ticket_for(s.owner->session, s.role));
    auto r = co_await s.peer->call(hello, 10s);
    if (!r || !r->has_welcome()) {
        ++errors_[r && r->has_error() ? "hello: " + v1::ErrorCode_Name(r->error().code()) : "hello: no reply"];
        s.failed = true;
        co_return;
    }
    if (!r->welcome().peer_public_key().empty()) derive(s, r->welcome().peer_public_key());
}

// n chats, the seeker of each on one relay and the listener on another (or the same); returns
// once every side that joined has both keys, or after 15 s.
asio::awaitable<chat_list> bench::open_chats(int n, const ws_url& seeker_relay, const ws_url& listener_relay) {
    chat_list chats;
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
        chats.push_back(std::make_unique<chat>());
        chats.back()->session = crypto::random_id();
        ids.push_back(chats.back()->session);
    }
    co_await create_sessions(ids);
    co_await for_each_parallel(n, 64, [&](int i) -> asio::awaitable<void> {
        auto& c = *chats[static_cast<std::size_t>(i)];
        co_await join(c.seeker, seeker_relay, next_source_++);
        co_await join(c.listener, listener_relay, next_source_++);
    });
    auto ready = [&] {
        for (auto& c : chats)
            for (side* s : {&c->seeker, &c->listener})
                if (!s->failed && (!s->tx || !s->rx)) return false;
        return true;
    };
    for (double until = now_ms() + 15000; !ready() && now_ms() < until;) co_await sleep_for_ms(5);
    co_return chats;
}

// ---- the protocol ----------------------------------------------------------------------------

void bench::derive(side& s, const std::string& peer_public) {
    if (s.tx || peer_public.size() != 32) return;
    e2e::key32 peer;
    std::copy(peer_public.begin(), peer_public.end(), peer.begin());
    auto keys = e2e::derive_keys(e2e::shared_secret(s.keys.private_key, peer), s.owner->session);
    bool seeker = s.role == 's';
    auto out = seeker ? e2e::direction::seeker_to_listener : e2e::direction::listener_to_seeker;
    auto in = seeker ? e2e::direction::listener_to_seeker : e2e::direction::seeker_to_listener;
    s.tx.emplace(seeker ? keys.seeker_to_listener : keys.listener_to_seeker, s.owner->session, out);
    s.rx.emplace(seeker ? keys.listener_to_seeker : keys.seeker_to_listener, s.owner->session, in);
}

bool bench::send_one(side& s) {
    if (s.failed || !s.tx || !s.peer->is_open()) return false;
    auto m = sealed_send(*s.tx, opt_.plaintext_bytes);
    s.peer->send(m);
    s.sent_at.push_back(now_ms());
    ++s.in_flight;
    ++sent_;
    return true;
}

void bench::fill(side& s) {
    while (mode_ == mode::flood && s.in_flight < opt_.window && send_one(s)) {
    }
}

void bench::on_message(side& s, const v1::RelayServerMessage& m) {
    using B = v1::RelayServerMessage::BodyCase;
    switch (m.body_case()) {
    case B::kAck:
        --s.in_flight;
        ++acked_;
        if (!s.sent_at.empty()) {
            double t0 = s.sent_at.front();
            s.sent_at.pop_front();
            if (t0 >= window_start_ && t0 < window_end_) ack_latency_.push_back(now_ms() - t0);
        }
        fill(s);
        break;
    case B::kDeliver:
        on_deliver(s, m.deliver());
        break;
    case B::kPeerKey:
        derive(s, m.peer_key().public_key());
        break;
    case B::kError:
        ++errors_[v1::ErrorCode_Name(m.error().code())];
        s.failed = true;
        break;
    case B::kEnded:
        ++errors_["chat_ended"];
        s.failed = true;
        break;
    default:  // Ok (to Received), PeerTyping, PeerRead
        break;
    }
}

// Open the other side's message, count it, take its latency; acknowledge receipt every
// received_every messages so the sender stays inside the relay's unreceived window.
void bench::on_deliver(side& s, const v1::Deliver& d) {
    if (!s.rx) {
        ++receive_problems_["before_keys"];
        return;
    }
    auto r = s.rx->accept(d.seq(), to_bytes(d.ciphertext()));
    if (r.st != e2e::receiver::status::delivered) {
        ++receive_problems_[e2e::to_string(r.st)];
        return;
    }
    double t = now_ms();
    ++delivered_;
    if (t >= window_start_ && t < window_end_) ++delivered_in_window_;
    double t0 = sealed_at(r.plaintext);
    if (t0 >= window_start_ && t0 < window_end_) {
        latency_.push_back(t - t0);
        auto second = static_cast<std::size_t>((t0 - window_start_) / 1000);
        if (second < latency_by_second_.size()) latency_by_second_[second].push_back(t - t0);
    }
    if (s.rx->delivered() - s.receipt >= static_cast<std::uint64_t>(opt_.received_every)) {
        s.receipt = s.rx->delivered();
        v1::RelayClientMessage m;
        m.mutable_received()->set_through(s.receipt);
        s.peer->send(m);
    }
}

// ---- steps -----------------------------------------------------------------------------------

void bench::reset() {
    mode_ = mode::idle;
    sent_ = acked_ = delivered_ = delivered_in_window_ = 0;
    latency_.clear();
    ack_latency_.clear();
    latency_by_second_.clear();
    errors_.clear();
    receive_problems_.clear();
}

// Stop sending and wait (bounded) until every send is acknowledged and delivered.
asio::awaitable<void> bench::drain(const chat_list& chats) {
    mode_ = mode::idle;
    auto busy = [&] {
        for (auto& c : chats)
            for (const side* s : {&c->seeker, &c->listener})
                if (s->in_flight > 0 && s->peer && s->peer->is_open()) return true;
        return acked_ > delivered_;
    };
    for (double until = now_ms() + 10000; busy() && now_ms() < until;) co_await sleep_for_ms(5);
}

json_line bench::counters_json(const chat_list& chats) const {
    long long failed = 0, lost = 0;
    for (auto& c : chats)
        for (const side* s : {&c->seeker, &c->listener}) {
            failed += s->failed ? 1 : 0;
            lost += s->peer && !s->peer->is_open() ? 1 : 0;
        }
    json_line errors, problems;
    for (auto& [k, n] : errors_) errors.integer(k, n);
    for (auto& [k, n] : receive_problems_) problems.integer(k, n);
    return json_line()
        .integer("sent", sent_)
        .integer("acked", acked_)
        .integer("delivered", delivered_)
        .raw("errors", errors.text())
        .raw("receive_problems", problems.text())
        .integer("sides_failed", failed)
        .integer("connections_lost", lost);
}

// Redis PUBLISH -> SUBSCRIBE on the same server, paced: the floor under any cross-process hop.
// The payload is about the size of a relayed message's event (200 bytes) and carries its send
// time; publisher and subscriber are separate connections of this process.
asio::awaitable<void> bench::step_pubsub() {
    const std::string channel = keys::bench_pubsub();
    redis::client_options ro;
    ro.where = redis::endpoint::parse(opt_.redis_url);
    auto sub = redis::subscriber::create(ioc_.get_executor(), ro);
    // shared with the handler, which may outlive this step by a message or two
    struct tally {
        std::vector<double> samples;
        long long received = 0;
        double w0 = 0, w1 = 0;
    };
    auto st = std::make_shared<tally>();
    double start = now_ms() + 10, warmup = std::min(1.0, opt_.warmup_s);
    double w0 = start + warmup * 1000, w1 = w0 + opt_.pubsub_s * 1000;
    st->w0 = w0;
    st->w1 = w1;
    sub->subscribe(channel, [st](std::string_view, std::string_view payload) {
        double t0 = std::strtod(std::string(payload.substr(0, 24)).c_str(), nullptr);
        ++st->received;
        if (t0 >= st->w0 && t0 < st->w1) st->samples.push_back(now_ms() - t0);
    });
    sub->start();
    co_await sub->wait_subscribed(5s);
    auto publishes = std::make_shared<long long>(0);
    double interval = 1000.0 / opt_.pubsub_rate;
    auto total = static_cast<long long>((warmup + opt_.pubsub_s) * opt_.pubsub_rate);
    cpu_snapshot a, b;
    bool in_window = false;
    for (long long k = 0; k < total; ++k) {
        double due = start + static_cast<double>(k) * interval;
        if (now_ms() < due) co_await sleep_until_ms(due);
        if (!in_window && now_ms() >= w0) {
            in_window = true;
            a = meter_.now();
        }
        char head[32];
        std::snprintf(head, sizeof head, "%.4f;", now_ms());
        std::string payload = head + std::string(200 - std::string(head).size(), 'x');
        // not awaited here: a slow reply must not hold back the next publish
        asio::co_spawn(ioc_, [this, channel, payload, publishes]() -> asio::awaitable<void> {
            co_await redis_->command(argv("PUBLISH", channel, payload));
            ++*publishes;
        }, asio::detached);
    }
    co_await sleep_until_ms(w1 + 200);
    b = meter_.now();
    sub->stop();
    pubsub_p50_ = percentile(st->samples, 50);
    json_line()
        .str("step", "redis_pubsub")
        .num("rate_per_s", opt_.pubsub_rate, 0)
        .num("seconds", opt_.pubsub_s, 1)
        .integer("published", *publishes)
        .integer("received", st->received)
        .integer("payload_bytes", 200)
        .raw("latency", latency_json("", st->samples).text())
        .raw("cpu_pct", meter_.json(a, b).text())
        .print();
}

// The raw Beast echo server driven like the throughput step: as many connections as that step
// has sides, the same window of frames in flight on each, the same frames (a Send with a freshly
// sealed ciphertext), each echo parsed and opened. Echoed frames per second is the most our
// stack could carry with no relay work at all. It runs before and after the throughput step: on
// this shared VM one run can differ from the next by half, and the baseline is their mean.
asio::awaitable<double> bench::step_echo(const std::string& name, bool probe_memory) {
    auto u = parse_url(opt_.echo_url);
    // First, on the fresh process, what an idle connection costs the raw server in memory: the
    // floor under the relay's kib_per_idle_conn.
    int echo_pid = meter_.pid_of("echo");
    long long rss_before = echo_pid ? rss_kib(echo_pid) : -1;
    std::vector<std::shared_ptr<echo_peer>> probe;
    co_await for_each_parallel(probe_memory ? opt_.echo_idle : 0, 64, [&](int) -> asio::awaitable<void> {
        auto p = std::make_shared<echo_peer>(ioc_);
        if (co_await p->open(u, source_address(next_source_++, 1000), 10s)) co_return;
        p->start({});
        probe.push_back(std::move(p));
    });
    if (probe_memory) co_await sleep_for_ms(500);
    long long rss_after = echo_pid ? rss_kib(echo_pid) : -1;
    long long probed = count_open(probe);
    double idle_kib = kib_per(rss_before, rss_after, probed);
    probe.clear();  // closes them
    struct conn {
        std::shared_ptr<echo_peer> peer;
        std::optional<e2e::sender> tx;
        std::optional<e2e::receiver> rx;
        int in_flight = 0;
    };
    int n = 2 * opt_.chats;
    std::vector<conn> conns(static_cast<std::size_t>(n));
    bool running = false;
    long long echoed = 0, echoed_in_window = 0, failed = 0, bad = 0;
    std::vector<double> samples;
    double w0 = 0, w1 = 0;
    auto send = [&](conn& c) {
        auto m = sealed_send(*c.tx, opt_.plaintext_bytes);
        c.peer->send(m);
        ++c.in_flight;
    };
    co_await for_each_parallel(n, 64, [&](int i) -> asio::awaitable<void> {
        auto& c = conns[static_cast<std::size_t>(i)];
        c.peer = std::make_shared<echo_peer>(ioc_);
        if (co_await c.peer->open(u, source_address(next_source_++, 1000), 10s)) {
            ++failed;
            co_return;
        }
        auto key = e2e::generate_keypair().private_key;  // 32 random bytes
        std::string session = "echo-" + std::to_string(i);
        c.tx.emplace(key, session, e2e::direction::seeker_to_listener);
        c.rx.emplace(key, session, e2e::direction::seeker_to_listener);
        conn* cp = &c;
        c.peer->start([&, cp](const v1::RelayClientMessage& m) {
            --cp->in_flight;
            auto r = cp->rx->accept(m.send().seq(), to_bytes(m.send().ciphertext()));
            if (r.st != e2e::receiver::status::delivered) {
                ++bad;
                return;
            }
            double t = now_ms(), t0 = sealed_at(r.plaintext);
            ++echoed;
            if (t >= w0 && t < w1) ++echoed_in_window;
            if (t0 >= w0 && t0 < w1) samples.push_back(t - t0);
            while (running && cp->in_flight < opt_.window) send(*cp);
        });
    });
    running = true;
    w0 = now_ms() + opt_.warmup_s * 1000;
    w1 = w0 + opt_.throughput_s * 1000;
    for (auto& c : conns)
        while (c.tx && c.peer->is_open() && c.in_flight < opt_.window) send(c);
    co_await sleep_until_ms(w0);
    auto a = meter_.now();
    co_await sleep_until_ms(w1);
    auto b = meter_.now();
    running = false;
    auto busy = [&] {
        for (auto& c : conns)
            if (c.in_flight > 0 && c.peer->is_open()) return true;
        return false;
    };
    for (double until = now_ms() + 10000; busy() && now_ms() < until;) co_await sleep_for_ms(5);
    long long lost = 0;
    for (auto& c : conns) lost += c.peer && c.tx && !c.peer->is_open() ? 1 : 0;
    double per_s = static_cast<double>(echoed_in_window) / opt_.throughput_s;
    json_line()
        .str("step", name)
        .integer("connections", n)
        .integer("window", opt_.window)
        .num("seconds", opt_.throughput_s, 1)
        .integer("echoed", echoed_in_window)
        .num("echoed_msgs_per_s", per_s, 0)
        .num("server_cpu_us_per_msg", us_per(meter_.servers_seconds(a, b), echoed_in_window), 1)
        .raw("latency", latency_json("", samples).text())
        .integer("connect_failures", failed)
        .integer("bad_echoes", bad)
        .integer("connections_lost", lost)
        .raw("cpu_pct", meter_.json(a, b).text())
        .integer("idle_probe_connections", probed)
        .num("idle_kib_per_conn", idle_kib, 2)
        .print();
    for (auto& c : conns)
        if (c.peer) c.peer->close();
    co_return per_s;
}

// Every side sends as fast as its window allows (a new Send for each Ack); relayed messages
// per second are the Delivers received and opened inside the window.
asio::awaitable<double> bench::step_throughput(const std::string& name, const ws_url& a_url, const ws_url& b_url) {
    reset();
    auto chats = co_await open_chats(opt_.chats, a_url, b_url);
    mode_ = mode::flood;
    window_start_ = now_ms() + opt_.warmup_s * 1000;
    window_end_ = window_start_ + opt_.throughput_s * 1000;
    for (auto& c : chats) {
        fill(c->seeker);
        fill(c->listener);
    }
    co_await sleep_until_ms(window_start_);
    auto a = meter_.now();
    auto stats_a = co_await redis_commandstats();
    co_await sleep_until_ms(window_end_);
    auto b = meter_.now();
    auto stats_b = co_await redis_commandstats();
    co_await drain(chats);
    double per_s = static_cast<double>(delivered_in_window_) / opt_.throughput_s;
    double servers = meter_.servers_seconds(a, b);
    json_line()
        .str("step", name)
        .integer("chats", opt_.chats)
        .integer("connections", 2 * opt_.chats)
        .integer("window", opt_.window)
        .str("seekers_on", a_url.host_port)
        .str("listeners_on", b_url.host_port)
        .num("seconds", opt_.throughput_s, 1)
        .integer("delivered_in_window", delivered_in_window_)
        .num("msgs_per_s", per_s, 0)
        .num("server_cpu_us_per_msg", us_per(servers, delivered_in_window_), 1)
        .raw("latency_under_load", latency_json("", latency_).text())
        .raw("counters", counters_json(chats).text())
        .raw("cpu_pct", meter_.json(a, b).text())
        .raw("redis_per_msg", commandstats_json(stats_a, stats_b, delivered_in_window_).text())
        .print();
    co_return per_s;
}

// Open loop: a pacer has every side send per_side_rate messages a second, in a shuffled order,
// whatever the replies do. Latency is from sealing (just before the frame is queued) to opening
// on the other side, both on this process's clock.
asio::awaitable<std::pair<double, double>> bench::step_latency(const std::string& name, const ws_url& a_url,
                                                               const ws_url& b_url) {
    reset();
    auto chats = co_await open_chats(opt_.latency_chats, a_url, b_url);
    std::vector<side*> order;
    for (auto& c : chats) {
        order.push_back(&c->seeker);
        order.push_back(&c->listener);
    }
    std::shuffle(order.begin(), order.end(), std::minstd_rand(7));
    mode_ = mode::paced;
    latency_by_second_.resize(static_cast<std::size_t>(std::ceil(opt_.latency_s)));
    double rate = opt_.per_side_rate * static_cast<double>(order.size());
    double interval = 1000.0 / rate;
    double start = now_ms() + 10, warmup = std::max(1.0, opt_.warmup_s);
    window_start_ = start + warmup * 1000;
    window_end_ = window_start_ + opt_.latency_s * 1000;
    auto total = static_cast<long long>((warmup + opt_.latency_s) * rate);
    long long skipped = 0;
    double max_lag = 0;
    cpu_snapshot a, b;
    bool in_window = false;
    for (long long k = 0; k < total;) {
        double due = start + static_cast<double>(k) * interval;
        if (now_ms() < due) co_await sleep_until_ms(due);
        if (!in_window && now_ms() >= window_start_) {
            in_window = true;
            a = meter_.now();
        }
        double now = now_ms();
        for (; k < total && start + static_cast<double>(k) * interval <= now; ++k) {
            if (start + static_cast<double>(k) * interval >= window_start_)
                max_lag = std::max(max_lag, now - (start + static_cast<double>(k) * interval));
            if (!send_one(*order[static_cast<std::size_t>(k) % order.size()])) ++skipped;
        }
    }
    co_await sleep_until_ms(window_end_);
    b = meter_.now();
    co_await drain(chats);
    std::vector<double> sorted = latency_;
    std::sort(sorted.begin(), sorted.end());
    auto result = std::make_pair(percentile(sorted, 50), percentile(sorted, 99));
    json_line()
        .str("step", name)
        .integer("chats", opt_.latency_chats)
        .integer("connections", static_cast<long long>(order.size()))
        .str("seekers_on", a_url.host_port)
        .str("listeners_on", b_url.host_port)
        .num("target_msgs_per_s", rate, 0)
        .num("achieved_msgs_per_s", static_cast<double>(delivered_in_window_) / opt_.latency_s, 0)
        .num("server_cpu_us_per_msg", us_per(meter_.servers_seconds(a, b), delivered_in_window_), 1)
        .num("seconds", opt_.latency_s, 1)
        .raw("latency", latency_json("", latency_).text())
        .raw("send_to_ack", latency_json("", ack_latency_).text())
        .raw("p99_ms_by_second", [&] {
            std::string a;
            for (auto& v : latency_by_second_) {
                char b[32];
                std::snprintf(b, sizeof b, "%.3f", v.empty() ? 0.0 : percentile(v, 99));
                a += (a.empty() ? "" : ",") + std::string(b);
            }
            return "[" + a + "]";
        }())
        .integer("skipped_sends", skipped)
        .num("pacer_max_lag_ms", max_lag, 3)
        .raw("counters", counters_json(chats).text())
        .raw("cpu_pct", meter_.json(a, b).text())
        .print();
    co_return result;
}

// Participants that connect to a fresh relay, say hello and stay: how many one process holds,
// and what each costs it in resident memory. Both sides of each chat connect (so a hello also
// sends a PeerKey to the other side, as in real use); nothing is sent after that.
asio::awaitable<void> bench::step_idle() {
    auto u = parse_url(opt_.idle_url, "/v1/relay");
    int n = opt_.connections;
    std::vector<std::string> ids;
    for (int i = 0; i < (n + 1) / 2; ++i) ids.push_back(crypto::random_id());
    co_await create_sessions(ids);
    long long rss_before = opt_.idle_pid > 0 ? rss_kib(opt_.idle_pid) : -1;
    long long fds_before = opt_.idle_pid > 0 ? open_fds(opt_.idle_pid) : -1;
    std::vector<std::shared_ptr<relay_peer>> held;
    held.reserve(static_cast<std::size_t>(n));
    connect_tally tally(now_ms() + opt_.connect_deadline_s * 1000);
    double t = now_ms();
    co_await for_each_parallel(n, opt_.connect_parallel, [&](int i) -> asio::awaitable<void> {
        if (!tally.next()) co_return;
        char role = i % 2 == 0 ? 's' : 'l';
        auto p = std::make_shared<relay_peer>(ioc_);
        auto ec = co_await p->open(u, source_address(static_cast<unsigned>(i), 1000), 10s);
        if (!tally.opened(ec, "relay")) co_return;
        p->start({});
        if (!opt_.idle_hello) {
            tally.succeeded();
            held.push_back(std::move(p));
            co_return;
        }
        auto keys = e2e::generate_keypair();
        v1::RelayClientMessage hello;
        hello.mutable_hello()->set_public_key(std::string(keys.public_key.begin(), keys.public_key.end()));
        hello.mutable_hello()->set_ticket(ticket_for(ids[static_cast<std::size_t>(i / 2)], role));
        auto w = co_await p->call(hello, 10s);
        if (!w || !w->has_welcome()) {
            p->close();
            tally.fail("hello_failed", "hello failed or timed out");
            co_return;
        }
        tally.succeeded();
        held.push_back(std::move(p));
    });
    double connect_s = (now_ms() - t) / 1000;
    // Hold them: what idle participants cost in CPU (pings, the relay's timers) shows here.
    auto a = meter_.now();
    co_await sleep_for_ms(opt_.hold_s * 1000);
    auto b = meter_.now();
    long long open_now = count_open(held);
    long long rss_after = opt_.idle_pid > 0 ? rss_kib(opt_.idle_pid) : -1;
    max_conns_ = open_now;
    kib_per_conn_ = kib_per(rss_before, rss_after, open_now);
    json_line()
        .str("step", "idle_connections")
        .integer("requested", n)
        .integer("attempts", tally.attempts())
        .integer(opt_.idle_hello ? "connected_with_hello" : "connected_without_hello", open_now)
        .integer("failures", tally.failures())
        .raw("failures_by_kind", tally.failures_json())
        .str("stopped_by", tally.stopped_by())
        .integer("relay_nofile", opt_.idle_pid > 0 ? open_file_limit(opt_.idle_pid) : -1)
        .integer("relay_fds_before", fds_before)
        .integer("relay_fds_after", opt_.idle_pid > 0 ? open_fds(opt_.idle_pid) : -1)
        .integer("bench_nofile", open_file_limit(static_cast<int>(getpid())))
        .num("connect_s", connect_s, 2)
        .integer("source_addresses", std::min(n, 1000))
        .integer("rss_before_kib", rss_before)
        .integer("rss_after_kib", rss_after)
        .num("kib_per_idle_conn", kib_per_conn_, 2)
        .raw("holding_cpu_pct", meter_.json(a, b).text())
        .print();
    for (auto& p : held) p->close();
}

asio::awaitable<int> bench::run() {
    for (auto& r : opt_.relays) relays_.push_back(parse_url(r, "/v1/relay"));
    redis::client_options ro;
    ro.where = redis::endpoint::parse(opt_.redis_url);
    if (ro.where.host.rfind("127.", 0) != 0) throw std::invalid_argument("--redis-url must be on 127.0.0.0/8");
    redis_ = redis::client::create(ioc_.get_executor(), ro);
    redis_->start();
    co_await redis_->wait_connected(5s);
    auto need = [&](std::size_t relays, const char* step) {
        if (relays_.size() < relays)
            throw std::invalid_argument(std::string("step ") + step + " needs " + std::to_string(relays) +
                                        " relay URLs in --relays");
    };

    if (has_step(opt_, "pubsub")) co_await step_pubsub();
    bool echo = has_step(opt_, "echo");
    if (echo && opt_.echo_url.empty()) throw std::invalid_argument("--echo-url is required for the echo step");
    if (echo) echo_per_s_ = co_await step_echo("echo_baseline", true);
    if (has_step(opt_, "throughput")) {
        need(1, "throughput");
        msgs_per_s_ = co_await step_throughput("throughput", relays_[0], relays_[0]);
        if (echo) echo_per_s_ = (echo_per_s_ + co_await step_echo("echo_baseline_again", false)) / 2;
    }
    if (has_step(opt_, "throughput_cross")) {
        need(2, "throughput_cross");
        two_relays_per_s_ = co_await step_throughput("throughput_cross", relays_[0], relays_[1]);
    }
    if (has_step(opt_, "latency")) {
        need(1, "latency");
        std::tie(p50_, p99_) = co_await step_latency("latency", relays_[0], relays_[0]);
        std::tie(ack_p50_, ack_p99_) = p50_p99(ack_latency_);
    }
    if (has_step(opt_, "cross")) {
        need(2, "cross");
        std::tie(cross_p50_, cross_p99_) = co_await step_latency("cross_node_latency", relays_[0], relays_[1]);
    }
    if (has_step(opt_, "acks")) {
        if (opt_.acks_url.empty()) throw std::invalid_argument("--acks-url is required for the acks step");
        auto acks = parse_url(opt_.acks_url, "/v1/relay");
        acks_per_s_ = co_await step_throughput("throughput_acks", acks, acks);
        std::tie(acks_p50_, acks_p99_) = co_await step_latency("latency_acks", acks, acks);
        std::tie(acks_ack_p50_, acks_ack_p99_) = p50_p99(ack_latency_);
    }
    if (has_step(opt_, "cluster")) {
        if (opt_.cluster_url.empty()) throw std::invalid_argument("--cluster-url is required for the cluster step");
        auto cluster = parse_url(opt_.cluster_url, "/v1/relay");
        cluster_per_s_ = co_await step_throughput("throughput_cluster", cluster, cluster);
        std::tie(cluster_p50_, cluster_p99_) = co_await step_latency("latency_cluster", cluster, cluster);
    }
    if (has_step(opt_, "idle")) {
        if (opt_.idle_url.empty()) throw std::invalid_argument("--idle-url is required for the idle step");
        co_await sleep_for_ms(500);  // the closed chats' sockets leave first
        co_await step_idle();
    }

    json_line final;
    final.str("scenario", "relay")
        .num("msgs_per_s", msgs_per_s_, 0)
        .num("p50_ms", p50_, 3)
        .num("p99_ms", p99_, 3)
        .num("cross_node_p50_ms", cross_p50_, 3)
        .num("cross_node_p99_ms", cross_p99_, 3)
        .num("echo_baseline_msgs_per_s", echo_per_s_, 0)
        .num("redis_pubsub_p50_ms", pubsub_p50_, 3)
        .num("kib_per_idle_conn", kib_per_conn_, 2);
    if (max_conns_ >= 0) final.integer("max_conns", max_conns_);
    else final.raw("max_conns", "null");
    final.num("relay_vs_echo", msgs_per_s_ / echo_per_s_, 3)
        .num("msgs_per_s_seekers_and_listeners_on_two_relays", two_relays_per_s_, 0)
        .num("send_to_ack_p50_ms", ack_p50_, 3)
        .num("send_to_ack_p99_ms", ack_p99_, 3)
        .num("acks_msgs_per_s", acks_per_s_, 0)
        .num("acks_vs_primary_only", acks_per_s_ / msgs_per_s_, 3)
        .num("acks_p50_ms", acks_p50_, 3)
        .num("acks_p99_ms", acks_p99_, 3)
        .num("acks_send_to_ack_p50_ms", acks_ack_p50_, 3)
        .num("acks_send_to_ack_p99_ms", acks_ack_p99_, 3)
        .num("cluster_msgs_per_s", cluster_per_s_, 0)
        .num("cluster_vs_one_redis", cluster_per_s_ / msgs_per_s_, 3)
        .num("cluster_p50_ms", cluster_p50_, 3)
        .num("cluster_p99_ms", cluster_p99_, 3)
        .str("note", "chats written directly into Redis (wl:session:<id> state active), not through the matchmaker; "
                     "relays run with --rate-burst/--rate-per-second 100000; null: step not run");
    final.print();
    redis_->stop();
    co_return 0;
}

}  // namespace warmline::bench

int main(int argc, char** argv) {
    using namespace warmline::bench;
    return generator_main<bench>("relay-bench", argc, argv, parse_options);
}
