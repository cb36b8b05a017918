// The net::handler glue of services/matchmaker/service.hpp: HTTP endpoints, frames in, requests
// answered (concurrently after sign-in), connections closed.
#include "services/matchmaker/service.hpp"

#include "common/codec.hpp"
#include "common/crypto.hpp"
#include "common/keys.hpp"
#include "common/log.hpp"
#include "common/replies.hpp"
#include "services/matchmaker/messages.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace warmline::matchmaker {

namespace asio = boost::asio;
using v1::ClientMessage;
using v1::ServerMessage;
using reply = ServerMessage;

namespace {

std::string bearer(const net::http_request& req) {
    auto it = req.headers.find("authorization");
    if (it == req.headers.end() || it->second.rfind("Bearer ", 0) != 0) return {};
    return it->second.substr(7);
}

}  // namespace

service::service(asio::io_context& ioc, service_settings s, catalogue cat, std::shared_ptr<redis::client> redis,
                 std::shared_ptr<redis::subscriber> events, clock_fn now, std::shared_ptr<redis::client> promises)
    : ioc_(ioc),
      settings_(std::move(s)),
      catalogue_(std::move(cat)),
      redis_(std::move(redis)),
      events_(std::move(events)),
      promises_(std::move(promises)),
      node_("n" + crypto::random_id().substr(0, 12)),
      store_(redis_, settings_.store, std::move(now)),
      handlers_(settings_, catalogue_, store_, peers_, metrics_, node_),
      fanout_(ioc_, settings_, store_, peers_, metrics_, node_),
      recovery_(std::make_shared<recovery>(
          ioc_, redis_, events_, [this] { return recover(); },
          [this](bool degraded) {
              ServerMessage m;
              m.mutable_service()->set_degraded(degraded);
              peers_.to_all(m);
          })),
      tickers_(ioc_, settings_, catalogue_, store_, peers_, node_, [r = recovery_.get()] { return r->settled(); }) {
    metrics_.gauge("warmline_matchmaker_connections", "Open WebSocket connections on this process",
                   [this] { return static_cast<double>(peers_.size()); });
    metrics_.gauge("warmline_redis_used_memory_bytes", "Redis's used_memory, read every 10 s",
                   [this] { return static_cast<double>(tickers_.redis_used_memory()); });
    metrics_.gauge("warmline_redis_maxmemory_bytes",
                   "Redis's maxmemory (0: none set); writes fail with UNAVAILABLE beyond it (noeviction)",
                   [this] { return static_cast<double>(tickers_.redis_maxmemory()); });
    metrics_.gauge("warmline_matchmaker_redis_up", "1 while the Redis connection is up",
                   [this] { return redis_->connected() ? 1.0 : 0.0; });
    metrics_.gauge("warmline_matchmaker_settled",
                   "1 unless recovering from a Redis outage (the sweep waits until this process confirmed its clients)",
                   [this] { return recovery_->settled() ? 1.0 : 0.0; });
    if (settings_.ack_replicas > 0)
        store_.keep_on_replicas(ioc_.get_executor(), promises_ ? promises_ : redis_, settings_.ack_replicas,
                                settings_.ack_timeout, settings_.ack_degrade_after);
    metrics_.gauge("warmline_matchmaker_ack_rounds",
                   "WAITs sent so that replies which changed something survive a failover (--ack-replicas; one per round)",
                   [this] { return static_cast<double>(store_.acks() ? store_.acks()->rounds() : 0); });
    metrics_.gauge("warmline_matchmaker_acks_degraded_total",
                   "Replies that changed something confirmed without their replicas, which had been silent for "
                   "--ack-degrade-after-ms",
                   [this] { return static_cast<double>(store_.acks() ? store_.acks()->degraded() : 0); });
    // every counter from the start, at 0: a dashboard or an alert sees the series before it moves
    metrics_.counter("warmline_offers_delivered_total", "Offers delivered to listeners on this process");
    metrics_.counter("warmline_bad_frames_total", "Frames that could not be parsed");
    metrics_.counter("warmline_reports_total", "Chats reported by seekers");
    for (const char* tier : {"tier=\"crisis\"", "tier=\"normal\""}) metrics_.counter("warmline_requests_total", "Chat requests", tier);
    for (const char* limit : {"limit=\"seekers\"", "limit=\"requests\"", "limit=\"crisis\""})
        metrics_.counter("warmline_address_limited_total", "Uses refused or downgraded by a per-address limit", limit);
    count_every_error_code(metrics_, "warmline_errors_total", "Errors returned to clients");
}

void service::start() {
    // weak: the subscriber is ours, so a strong capture would be a cycle that never frees
    std::weak_ptr<service> weak = shared_from_this();
    events_->subscribe(keys::events(), [weak](std::string_view, std::string_view payload) {
        if (auto self = weak.lock()) self->fanout_.on_event(payload);
    });
    if (promises_) promises_->start();
    recovery_->watch();
    tickers_.start();
}

asio::awaitable<void> service::recover() {
    // its lease and exactly the connections it holds, before its sweep acts again
    std::vector<std::string> seekers;
    for (auto& [sid, _] : peers_.seekers()) seekers.push_back(sid);
    co_await store_.node_sync(node_, std::move(seekers), peers_.listeners());
    co_await fanout_.resync();
}

void service::stop() {
    stopping_ = true;
    tickers_.stop();
    if (promises_) promises_->stop();
}

// ---- HTTP -----------------------------------------------------------------------------------

asio::awaitable<net::http_response> service::on_http(net::http_request req) {
    net::http_response res;
    if (req.method != "GET") {
        res.status = 405;
        res.headers["Allow"] = "GET";
        res.body = R"({"error":"INVALID_ARGUMENT","message":"Only GET is served here."})";
        co_return res;
    }
    if (req.path == "/healthz") {
        res.body = R"({"status":"ok"})";
    } else if (req.path == "/readyz") {
        // not ready while Redis is unreachable, nor until the recovery after it has finished
        bool ready = redis_->connected() && events_->connected() && recovery_->settled() &&
                     (!promises_ || promises_->connected());
        res.status = ready ? 200 : 503;
        res.body = ready ? R"({"status":"ready"})"
                         : R"({"status":"not ready","redis":")" + std::string(redis_->connected() ? "up" : "down") +
                               R"(","events":")" + (events_->connected() ? "up" : "down") +
                               (promises_ ? R"(","promises":")" + std::string(promises_->connected() ? "up" : "down")
                                          : std::string()) +
                               R"(","recovered":)" +
                               (recovery_->settled() ? "true" : "false") + R"(,"error":")" +
                               log::json_escape(redis_->last_error()) + "\"}";
    } else if (req.path == "/metrics") {
        res.content_type = "text/plain; version=0.0.4";
        res.body = metrics_.render();
    } else if (req.path == "/v1/stats") {
        try {
            std::string owner = co_await store_.token_owner(crypto::sha256_hex(bearer(req)));
            if (owner.rfind("supervisor:", 0) != 0) {
                res.status = 401;
                res.body = R"({"error":"UNAUTHENTICATED","message":"Send a supervisor token as 'Authorization: Bearer <token>'."})";
                co_return res;
            }
            co_await store_.audit("supervisor_stats_http", owner);
            res.body = codec::to_json(co_await read_snapshot(store_, catalogue_));
        } catch (const std::exception& e) {
            spdlog::warn("stats over HTTP failed: {}", e.what());
            res.status = 503;
            res.body = R"({"error":"UNAVAILABLE","message":"The database is unreachable; try again shortly."})";
        }
    } else if (req.path == "/v1/catalogue") {
        res.body = codec::to_json(catalogue_.proto());
    } else {
        res.status = 404;
        res.body = R"({"error":"NOT_FOUND","message":"No such page."})";
    }
    co_return res;
}

asio::awaitable<std::optional<net::http_response>> service::on_upgrade(const net::http_request& req) {
    if (req.path != "/v1/ws") {
        net::http_response res;
        res.status = 404;
        res.body = R"({"error":"NOT_FOUND","message":"The matchmaker's WebSocket is at /v1/ws."})";
        co_return res;
    }
    co_return std::nullopt;
}

// ---- WebSocket ------------------------------------------------------------------------------

void service::on_open(std::shared_ptr<net::connection> c) {
    peers_.opened(c);
    if (settings_.sign_in_timeout.count() == 0) return;
    // a connection that has not said who it is in time is closed; nothing about it is kept
    // meanwhile (no request ids)
    net::close_unless_in_time(
        ioc_, c, settings_.sign_in_timeout,
        [weak_self = weak_from_this()](const net::connection& conn) {
            auto self = weak_self.lock();
            auto p = self ? self->peers_.find(conn.id()) : nullptr;
            return p && p->state.who == client_state::role::none;
        },
        "no sign-in within " + std::to_string(settings_.sign_in_timeout.count()) + " ms");
}

void service::on_close(std::shared_ptr<net::connection> c) {
    auto gone = peers_.closed(c->id());
    if (!gone || stopping_) return;
    std::string role = gone->who == client_state::role::seeker ? "seeker" : "listener";
    asio::co_spawn(ioc_, [self = shared_from_this(), role, gone = *gone]() -> asio::awaitable<void> {
        try {
            co_await self->store_.connection_lost(role, gone.id, self->node_, gone.remaining);
        } catch (const std::exception& e) {
            // the recovery after the outage (node_sync) or the lease settles it
            spdlog::warn("could not record a closed {} connection: {}", role, e.what());
        }
    }, asio::detached);
}

asio::awaitable<void> service::on_message(std::shared_ptr<net::connection> c, std::string data, bool binary) {
    peer_ptr p = peers_.find(c->id());
    if (!p) co_return;
    auto fmt = binary ? codec::format::binary : codec::format::json;
    ClientMessage m;
    std::string why;
    ServerMessage r;
    if (!codec::decode(data, fmt, m, why)) {
        metrics_.counter("warmline_bad_frames_total", "Frames that could not be parsed").fetch_add(1);
        // answered in the format of the bad frame; the connection keeps its own format
        c->send(codec::encode(error_reply<reply>(v1::MALFORMED_FRAME, why), fmt), binary);
        if (++p->state.bad_frames >= settings_.max_bad_frames) c->close(1008, "too many malformed frames");
        co_return;
    }
    if (p->state.who == client_state::role::none) p->state.format = fmt;
    if (!p->state.take_token(store_.now_ms(), settings_.rate_burst, settings_.rate_per_second)) {
        r = error_reply<reply>(v1::RATE_LIMITED,
                               "Too many requests at once; please slow down and try again in a moment.");
    } else if (!p->state.use_request_id(m.request_id(), settings_.max_request_ids)) {
        r = m.request_id().empty() || m.request_id().size() > 64
                ? error_reply<reply>(v1::INVALID_ARGUMENT, "Every request needs a request_id of 1 to 64 characters.")
                : error_reply<reply>(v1::DUPLICATE_REQUEST_ID,
                                     "That request_id was already used on this connection; choose a new one.");
    } else if (!client_state::allowed(p->state.who, m.body_case())) {
        r = p->state.who == client_state::role::none
                ? error_reply<reply>(v1::UNAUTHENTICATED,
                                     "Start with seeker_hello, listener_sign_in or supervisor_sign_in.")
                : error_reply<reply>(v1::PERMISSION_DENIED, "That request is not available in this role.");
    } else if (p->state.who != client_state::role::none && p->in_flight < settings_.requests_in_flight) {
        // Signed in: the next frame need not wait for this one's Redis round trip. Requests in
        // flight together may take effect in any order (docs/protocol.md): a client that needs
        // an order waits for the reply, as the protocol's flows do anyway.
        ++p->in_flight;
        asio::co_spawn(co_await asio::this_coro::executor, answer(p, std::move(m), true), asio::detached);
        co_return;
    } else {
        const bool anonymous = p->state.who == client_state::role::none;
        std::string id = m.request_id();
        co_await answer(p, std::move(m), false);
        // a sign-in that succeeded: its id is the first this connection remembers
        if (anonymous) p->state.use_request_id(id, settings_.max_request_ids);
        co_return;
    }
    reply_to(p, m.request_id(), std::move(r));
}

asio::awaitable<void> service::answer(peer_ptr p, ClientMessage m, bool concurrent) {
    ServerMessage r;
    try {
        r = co_await handlers_.handle(p, m);
    } catch (const redis::out_of_memory&) {
        // Redis at its maxmemory (noeviction) refuses writes: nothing was changed, try later
        spdlog::error("Redis is full (maxmemory): a request was refused");
        r = error_reply<reply>(v1::UNAVAILABLE, "Warmline is out of room for a moment. Please try again shortly.");
    } catch (const redis::unavailable&) {
        r = error_reply<reply>(v1::UNAVAILABLE,
                               "Warmline can't reach its database for a moment. Please try again shortly.");
    } catch (const std::exception& e) {
        spdlog::error("request failed: {}", e.what());
        r = error_reply<reply>(v1::INTERNAL, "Something went wrong on our side. Please try again.");
    }
    if (concurrent) --p->in_flight;
    reply_to(p, m.request_id(), std::move(r));
}

void service::reply_to(const peer_ptr& p, const std::string& request_id, ServerMessage r) {
    r.set_request_id(request_id);
    if (r.has_error())
        metrics_.counter("warmline_errors_total", "Errors returned to clients",
                         "code=\"" + v1::ErrorCode_Name(r.error().code()) + "\"").fetch_add(1);
    peers_.send(p, r);
}

}  // namespace warmline::matchmaker
