// The connection life cycle behind every client and subscriber: one hiredis async context at a
// time, attached to the connection's strand through common/redis_asio_adapter.hpp. This file owns
// resolve, connect (with timeout), the AUTH/SELECT/SETNAME/PING handshake, loss, backoff and
// reconnect, the waiters of wait_connected(), and freeing every context when the io_context dies
// first. Where a connection goes through Sentinel, sentinel.cpp decides where to connect.
// It is longer than most files because the life cycle is one state machine whose steps share
// their invariants (one link at a time, attempt ids that make late handlers drop, freeing only
// outside hiredis); split further, those would be spread over files.
#include "common/redis/detail.hpp"

#include "common/redis_asio_adapter.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

namespace warmline::redis::detail {

namespace {

// Breaks the one reference cycle Asio cannot: a pending command's coroutine frame holds the
// client, which holds the hiredis context, which holds the command's callback. stop() breaks it
// normally; if the io_context is destroyed first, its shutdown calls this service, which stops
// every live connection so hiredis fails the callbacks and the frames can be destroyed.
class shutdown_service : public asio::execution_context::service {
public:
    inline static asio::execution_context::id id;

    explicit shutdown_service(asio::execution_context& ctx) : service(ctx) {}

    void add(std::weak_ptr<connection> c) {
        std::lock_guard lock(mutex_);
        std::erase_if(live_, [](const auto& w) { return w.expired(); });
        live_.push_back(std::move(c));
    }

private:
    void shutdown() override {
        std::vector<std::weak_ptr<connection>> live;
        {
            std::lock_guard lock(mutex_);
            live.swap(live_);
        }
        for (auto& w : live)
            if (auto c = w.lock()) c->abandon();
    }

    std::mutex mutex_;
    std::vector<std::weak_ptr<connection>> live_;
};

// Seconds, not TCP's minutes: keepalive probes after 2 s idle, every second, 3 of them; and
// data Redis has not acknowledged within the command timeout ends the connection.
void tune_socket(int fd, std::chrono::milliseconds timeout) {
    int idle = 2, interval = 1, count = 3;
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    if (timeout.count() > 0) {
        unsigned user_timeout = static_cast<unsigned>(timeout.count());
        ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
    }
}

link* link_of(const redisAsyncContext* ac) { return static_cast<link*>(ac->data); }

}  // namespace

std::string describe(const endpoint::address& a) {
    const bool v6 = a.host.find(':') != std::string::npos;
    return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
}

connection::connection(asio::any_io_executor ex, client_options opts, const char* role,
                       std::optional<target_kind> kind)
    : strand_(asio::make_strand(std::move(ex))),
      opts_(std::move(opts)),
      role_(role),
      kind_(kind.value_or(opts_.where.via_sentinel() ? target_kind::via_sentinels : target_kind::direct)),
      connect_timer_(strand_),
      retry_timer_(strand_),
      resolver_(strand_),
      backoff_(opts_.backoff_initial),
      sentinels_(opts_.where.sentinels) {}

connection::~connection() {
    // shutdown_service normally frees the context first; this is the last resort should a
    // connection die with its context alive some other way. Free it without calling back
    // into this half-destroyed object.
    if (link_ && link_->ac) {
        redisAsyncContext* ac = link_->ac;
        link_->ac = nullptr;
        ac->data = nullptr;
        ac->onConnect = nullptr;
        ac->onDisconnect = nullptr;
        redisAsyncFree(ac);
    }
}

// ------------------------------------------------------------------------------------------------
// any thread

void connection::watch_context_shutdown() {
    auto& ctx = asio::query(strand_.get_inner_executor(), asio::execution::context);
    asio::use_service<shutdown_service>(ctx).add(weak_from_this());
}

void connection::abandon() { do_stop(); }

void connection::start() {
    asio::post(strand_, [self = shared_from_this()] {
        if (self->running_) return;
        self->running_ = true;
        self->backoff_ = self->opts_.backoff_initial;
        if (self->kind_ == target_kind::via_sentinels && !self->watch_) {
            std::weak_ptr<connection> weak = self;
            self->watch_ = make_switch_watch(self->strand_.get_inner_executor(), self->opts_,
                                             [weak](std::string_view payload) {
                                                 if (auto owner = weak.lock()) owner->master_switched(payload);
                                             });
        }
        self->connect();
    });
}

void connection::stop() {
    asio::post(strand_, [self = shared_from_this()] { self->do_stop(); });
}

std::string connection::last_error() const {
    std::lock_guard lock(error_mutex_);
    return last_error_;
}

asio::awaitable<void> connection::wait_until_satisfied(std::chrono::milliseconds timeout, bool fail_fast) {
    // A named initiation, not a lambda temporary inside co_await: GCC 12 destroys such a
    // temporary twice, which here would drop a reference to `self` that was never taken.
    auto initiate = [self = shared_from_this(), timeout, fail_fast](auto handler) {
        auto w = std::make_shared<waiter>(self->strand_);
        w->done = make_completion<std::exception_ptr>(std::move(handler));
        w->fail_fast = fail_fast;
        asio::post(self->strand_, [self, w, timeout] { self->add_waiter(w, timeout); });
    };
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
        std::move(initiate), asio::use_awaitable);
}

void connection::set_state_handler(std::function<void(bool)> f) {
    asio::post(strand_, [self = shared_from_this(), f = std::move(f)]() mutable {
        self->state_handler_ = std::move(f);
    });
}

void connection::close_link_later(const link* l, std::string reason) {
    asio::post(strand_, [self = shared_from_this(), id = l->id, reason = std::move(reason)] {
        if (self->link_ && self->link_->id == id) self->close_link(reason);
    });
}

// ------------------------------------------------------------------------------------------------
// strand: for the derived classes

void connection::report_state(bool up) {
    if (up == reported_up_) return;
    reported_up_ = up;
    if (!state_handler_) return;
    try {
        state_handler_(up);
    } catch (const std::exception& e) {
        spdlog::error("redis {}: state handler threw: {}", role_, e.what());
    }
}

redisAsyncContext* connection::ready_context() const { return ready_ && link_ ? link_->ac : nullptr; }

std::string connection::not_connected_message() const {
    std::string msg = "not connected to Redis at " + opts_.where.to_string();
    if (auto e = last_error(); !e.empty()) msg += ": " + e;
    return msg;
}

void connection::notify_waiters() {
    if (!satisfied()) return;
    auto waiting = std::move(waiters_);
    waiters_.clear();
    for (auto& w : waiting) finish_waiter(*w, nullptr);
}

void connection::close_link(const std::string& reason) {
    auto l = link_;
    if (!l) return;
    if (redisAsyncContext* ac = std::exchange(l->ac, nullptr)) redisAsyncFree(ac);
    link_lost(l.get(), reason);
}

// ------------------------------------------------------------------------------------------------
// strand: waiters

void connection::add_waiter(const std::shared_ptr<waiter>& w, std::chrono::milliseconds timeout) {
    if (satisfied()) {
        finish_waiter(*w, nullptr);
        return;
    }
    waiters_.push_back(w);
    w->timer.expires_after(timeout);
    w->timer.async_wait([self = shared_from_this(), w, timeout](boost::system::error_code) {
        auto it = std::find(self->waiters_.begin(), self->waiters_.end(), w);
        if (it == self->waiters_.end()) return;  // already satisfied or failed
        self->waiters_.erase(it);
        finish_waiter(*w, std::make_exception_ptr(unavailable(self->not_connected_message() + " (waited " +
                                                              std::to_string(timeout.count()) + " ms)")));
    });
}

void connection::finish_waiter(waiter& w, std::exception_ptr e) {
    w.timer.cancel();
    if (w.done) std::exchange(w.done, nullptr)->complete(std::move(e));
}

void connection::set_last_error(std::string e) {
    std::lock_guard lock(error_mutex_);
    last_error_ = std::move(e);
}

// ------------------------------------------------------------------------------------------------
// strand: the life cycle

void connection::connect() {
    switch (kind_) {
    case target_kind::direct:
        connect_to({opts_.where.host, opts_.where.port}, link_purpose::redis, opts_.connect_timeout);
        return;
    case target_kind::via_sentinels:
        // Every (re)connect asks again: the master may have moved while we were away.
        asking_ = 0;
        sentinel_errors_.clear();
        ask_next_sentinel();
        return;
    case target_kind::sentinel_watch:
        connect_to(sentinels_.front(), link_purpose::redis, opts_.sentinel_timeout);
        return;
    }
}

void connection::connect_to(const endpoint::address& where, link_purpose purpose,
                            std::chrono::milliseconds timeout) {
    const std::uint64_t attempt = ++attempt_;
    connect_timer_.expires_after(timeout);
    connect_timer_.async_wait([self = shared_from_this(), attempt, timeout](boost::system::error_code ec) {
        if (ec || attempt != self->attempt_ || self->ready_) return;
        const std::string reason = "no connection within " + std::to_string(timeout.count()) + " ms";
        if (self->link_) {
            self->close_link(reason);
        } else if (self->resolving_) {
            self->resolving_ = false;
            ++self->attempt_;  // the resolve handler must ignore its late result
            self->resolver_.cancel();
            self->step_failed(self->resolving_for_, reason, false);
        }
    });

    boost::system::error_code ec;
    const auto address = asio::ip::make_address(where.host, ec);
    if (!ec) {
        open_link(address.to_string(), where, purpose);
        return;
    }
    // hiredis would resolve with a blocking getaddrinfo on our strand; resolve here instead.
    resolving_ = true;
    resolving_for_ = purpose;
    resolver_.async_resolve(
        where.host, std::to_string(where.port),
        [self = shared_from_this(), attempt, where, purpose](boost::system::error_code rec,
                                                             asio::ip::tcp::resolver::results_type results) {
            if (attempt != self->attempt_ || !self->running_) return;
            self->resolving_ = false;
            if (rec || results.empty()) {
                self->step_failed(purpose,
                                  "cannot resolve " + where.host + ": " +
                                      (rec ? rec.message() : std::string("no addresses")),
                                  false);
                return;
            }
            self->open_link(results.begin()->endpoint().address().to_string(), where, purpose);
        });
}

std::vector<std::vector<std::string>> connection::handshake(link_purpose purpose) const {
    std::vector<std::vector<std::string>> cmds;
    if (purpose == link_purpose::sentinel_query) {
        cmds.push_back({"SENTINEL", "get-master-addr-by-name", opts_.where.master_name});
        return cmds;
    }
    // A sentinel has no databases, and is asked without the master's password.
    if (kind_ != target_kind::sentinel_watch) {
        if (!opts_.where.password.empty()) cmds.push_back({"AUTH", opts_.where.password});
        if (opts_.where.db != 0) cmds.push_back({"SELECT", std::to_string(opts_.where.db)});
    }
    if (!opts_.name.empty()) {
        const char* suffix = kind_ == target_kind::sentinel_watch         ? ":sentinel"
                             : std::string_view(role_) == "client" ? ":cmd"
                                                                   : ":events";
        cmds.push_back({"CLIENT", "SETNAME", opts_.name + suffix});
    }
    // Whatever the sentinel said, only the server itself knows whether it is the master now.
    if (kind_ == target_kind::via_sentinels) cmds.push_back({"ROLE"});
    // PING last, so the link is ready only once Redis has answered (and is not, say, still
    // loading its AOF).
    cmds.push_back({"PING"});
    return cmds;
}

void connection::open_link(const std::string& ip, const endpoint::address& where, link_purpose purpose) {
    redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), where.port);
    if (ac == nullptr) {
        step_failed(purpose, "cannot allocate a hiredis context", false);
        return;
    }
    if (ac->err) {
        std::string reason = ac->errstr ? ac->errstr : "connect failed";
        redisAsyncFree(ac);  // nothing attached yet, no callbacks: safe to free right here
        step_failed(purpose, std::move(reason), false);
        return;
    }
    auto l = std::make_shared<link>();
    l->ac = ac;
    l->id = ++link_ids_;
    l->owner = weak_from_this();
    l->purpose = purpose;
    l->peer = where;
    l->readonly_ends_link = kind_ == target_kind::via_sentinels;
    try {
        l->events = asio_attach(ac, strand_);
    } catch (const std::exception& e) {
        redisAsyncFree(ac);
        step_failed(purpose, std::string("cannot watch the socket: ") + e.what(), false);
        return;
    }
    ac->data = l.get();
    link_ = l;
    redisAsyncSetConnectCallback(ac, &connection::on_connect);
    redisAsyncSetDisconnectCallback(ac, &connection::on_disconnect);

    // hiredis buffers these until the connect completes.
    for (const auto& cmd : handshake(purpose)) {
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        for (const auto& a : cmd) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        const void* tag = cmd.front() == "ROLE" ? &role_tag : cmd.front() == "SENTINEL" ? &query_tag : nullptr;
        if (redisAsyncCommandArgv(ac, &connection::on_handshake_reply, const_cast<void*>(tag),
                                  static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
            close_link("cannot queue the connection handshake");
            return;
        }
        ++l->handshake_left;
    }
}

void connection::link_ready(link* l) {
    if (link_.get() != l) return;
    l->ready = true;
    ready_ = true;
    static std::atomic<std::uint64_t> links_made{0};
    link_id_ = ++links_made;
    connected_ = true;
    backoff_ = opts_.backoff_initial;
    connect_timer_.cancel();
    set_last_error({});
    if (kind_ == target_kind::via_sentinels) {
        spdlog::info("redis {}: {} master '{}' at {} (named by sentinel {})", role_,
                     master_known_ ? "reconnected to" : "connected to", opts_.where.master_name,
                     describe(l->peer), describe(found_by_));
        master_ = l->peer;
        master_known_ = true;
    } else if (kind_ == target_kind::sentinel_watch) {
        spdlog::debug("redis {}: watching sentinel {} for master switches", role_, describe(l->peer));
    } else if (down_logged_) {
        spdlog::info("redis {}: connection to {} restored", role_, opts_.where.to_string());
    } else {
        spdlog::info("redis {}: connected to {}", role_, opts_.where.to_string());
    }
    down_logged_ = false;
    on_ready();
    notify_waiters();
}

void connection::link_lost(link* l, const std::string& reason) {
    if (link_.get() != l) return;
    const bool was_ready = l->ready;
    // Keep the link (and the events hiredis is about to clean up) until hiredis returns.
    asio::post(strand_, [dead = std::move(link_)] {});
    if (l->purpose == link_purpose::sentinel_query && l->found) {
        sentinel_answered(*l->found);
        return;
    }
    if (l->not_master) distrust_sentinel(found_by_);
    step_failed(l->purpose, reason, was_ready);
}

void connection::step_failed(link_purpose purpose, std::string reason, bool was_ready) {
    if (purpose == link_purpose::sentinel_query) {
        sentinel_failed(std::move(reason));
        return;
    }
    attempt_failed(std::move(reason), was_ready);
}

void connection::attempt_failed(std::string reason, bool was_ready) {
    ready_ = false;
    connected_ = false;
    link_id_ = 0;
    connect_timer_.cancel();
    const std::string where = kind_ == target_kind::sentinel_watch ? "sentinel " + describe(sentinels_.front())
                              : kind_ == target_kind::via_sentinels && was_ready
                                  ? "master '" + opts_.where.master_name + "' at " + describe(master_)
                                  : opts_.where.to_string();
    if (!running_) {
        spdlog::debug("redis {}: stopped", role_);
    } else if (was_ready) {
        spdlog::warn("redis {}: connection to {} lost: {}", role_, where, reason);
        down_logged_ = true;
    } else if (!down_logged_) {
        spdlog::warn("redis {}: cannot connect to {}: {} (retrying)", role_, where, reason);
        down_logged_ = true;
    } else {
        spdlog::debug("redis {}: connect to {} failed: {}", role_, where, reason);
    }
    set_last_error(std::move(reason));
    // The watch tries the next sentinel next time.
    if (kind_ == target_kind::sentinel_watch && sentinels_.size() > 1)
        std::rotate(sentinels_.begin(), sentinels_.begin() + 1, sentinels_.end());
    on_lost();
    // Those who asked to hear of a failed attempt (cluster.cpp, trying a node) hear it now.
    std::vector<std::shared_ptr<waiter>> failing;
    std::erase_if(waiters_, [&](const std::shared_ptr<waiter>& w) {
        if (!w->fail_fast) return false;
        failing.push_back(w);
        return true;
    });
    for (auto& w : failing)
        finish_waiter(*w, std::make_exception_ptr(unavailable(not_connected_message())));
    if (running_) schedule_retry();
}

void connection::schedule_retry() {
    retry_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, opts_.backoff_max);
    retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec || !self->running_ || self->link_ || self->resolving_) return;
        self->connect();
    });
}

void connection::do_stop() {
    const bool was_running = std::exchange(running_, false);
    ++attempt_;
    retry_timer_.cancel();
    connect_timer_.cancel();
    if (resolving_) {
        resolving_ = false;
        resolver_.cancel();
    }
    if (auto w = std::exchange(watch_, nullptr)) w->stop();
    close_link("client stopped");
    if (was_running) set_last_error("client stopped");
    ready_ = false;
    connected_ = false;
    link_id_ = 0;
    auto waiting = std::move(waiters_);
    waiters_.clear();
    for (auto& w : waiting)
        finish_waiter(*w, std::make_exception_ptr(unavailable("the Redis client was stopped")));
}

// ------------------------------------------------------------------------------------------------
// hiredis callbacks: run on the strand, inside hiredis. No exception may escape into C.

void connection::on_connect(const redisAsyncContext* ac, int status) noexcept {
    link* l = link_of(ac);
    if (l == nullptr) return;
    auto self = l->owner.lock();
    if (!self) return;
    try {
        if (status == REDIS_OK) {
            // Notice a silently dead peer (cable pulled, VM frozen) without a command in flight.
            redisEnableKeepAlive(const_cast<redisContext*>(&ac->c));
            tune_socket(ac->c.fd, self->opts_.command_timeout);
            return;
        }
        // hiredis frees the context as soon as this returns.
        l->ac = nullptr;
        self->link_lost(l, ac->errstr ? ac->errstr : "connect failed");
    } catch (const std::exception& e) {
        spdlog::error("redis {}: connect callback failed: {}", self->role_, e.what());
    }
}

void connection::on_disconnect(const redisAsyncContext* ac, int status) noexcept {
    link* l = link_of(ac);
    if (l == nullptr || l->ac == nullptr) return;  // we freed it ourselves and already know
    auto self = l->owner.lock();
    if (!self) return;
    try {
        l->ac = nullptr;
        std::string reason = status == REDIS_OK ? "connection closed"
                             : ac->errstr && *ac->errstr ? ac->errstr
                                                         : "connection error";
        self->link_lost(l, reason);
    } catch (const std::exception& e) {
        spdlog::error("redis {}: disconnect callback failed: {}", self->role_, e.what());
    }
}

void connection::on_handshake_reply(redisAsyncContext* ac, void* reply, void* privdata) noexcept {
    link* l = link_of(ac);
    if (l == nullptr || l->ac == nullptr || reply == nullptr) return;
    auto self = l->owner.lock();
    if (!self) return;
    try {
        auto* r = static_cast<redisReply*>(reply);
        if (r->type == REDIS_REPLY_ERROR) {
            // Redis's AUTH/SELECT errors name the problem, never the password.
            self->close_link_later(l, "handshake refused: " + std::string(r->str, r->len));
            l->handshake_left = -1;
            return;
        }
        if (privdata != nullptr) {
            if (auto why = check_sentinel_reply(*l, *r, privdata, self->opts_.where.master_name)) {
                self->close_link_later(l, std::move(*why));
                l->handshake_left = -1;
                return;
            }
        }
        if (l->handshake_left > 0 && --l->handshake_left == 0) self->link_ready(l);
    } catch (const std::exception& e) {
        spdlog::error("redis {}: handshake callback failed: {}", self->role_, e.what());
    }
}

}  // namespace warmline::redis::detail
