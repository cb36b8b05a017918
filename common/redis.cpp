// The asynchronous Redis client: one hiredis async context at a time per client or subscriber,
// attached to the object's strand through redis_asio_adapter.hpp. This file owns the connection
// life cycle (resolve, connect, AUTH/SELECT/PING handshake, connect timeout, loss, backoff,
// reconnect), command batches and their completion on the caller's executor, EVALSHA with
// NOSCRIPT recovery, and the pub/sub subscriber with resubscription.
#include "common/redis.hpp"

#include "common/crypto.hpp"
#include "common/redis_asio_adapter.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <utility>

namespace warmline::redis {

namespace asio = boost::asio;

// ------------------------------------------------------------------------------------------------
// endpoint, value, script

namespace {

template <typename T>
bool parse_whole_number(std::string_view text, T& out) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Passwords with reserved characters arrive %-encoded, as in any URL.
std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        const int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
        const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            throw std::invalid_argument(
                "the password in the Redis URL has a '%' that is not followed by two hex digits");
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

}  // namespace

endpoint endpoint::parse(std::string_view url) {
    // Messages never quote the URL: it may carry the password.
    constexpr std::string_view scheme = "redis://";
    if (url.starts_with("rediss://"))
        throw std::invalid_argument("TLS Redis URLs (rediss://) are not supported; use redis://");
    if (!url.starts_with(scheme))
        throw std::invalid_argument("a Redis URL must start with redis://");
    std::string_view rest = url.substr(scheme.size());
    endpoint ep;

    // The password may contain '/', '?', '#' or '@' unencoded; the last '@' ends it.
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        if (!userinfo.empty()) {
            if (userinfo.front() != ':')
                throw std::invalid_argument(
                    "Redis URL user names are not supported; write redis://:password@host");
            ep.password = percent_decode(userinfo.substr(1));
        }
    }
    if (rest.find_first_of("?#@") != std::string_view::npos)
        throw std::invalid_argument("a Redis URL may not have a query string or fragment");

    const auto slash = rest.find('/');
    std::string_view hostport = rest.substr(0, slash);
    const std::string_view db = slash == std::string_view::npos ? "" : rest.substr(slash + 1);

    std::string_view host = hostport;
    std::string_view port;
    if (hostport.starts_with('[')) {
        const auto close = hostport.find(']');
        if (close == std::string_view::npos)
            throw std::invalid_argument("the IPv6 host in the Redis URL is missing its ']'");
        host = hostport.substr(1, close - 1);
        const std::string_view after = hostport.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                throw std::invalid_argument("the Redis URL has text after the IPv6 host's ']'");
            port = after.substr(1);
            if (port.empty()) throw std::invalid_argument("the Redis URL has a ':' but no port");
        }
        if (host.empty()) throw std::invalid_argument("the IPv6 host in the Redis URL is empty");
    } else {
        const auto colon = hostport.find(':');
        if (colon != std::string_view::npos) {
            if (hostport.find(':', colon + 1) != std::string_view::npos)
                throw std::invalid_argument(
                    "the Redis URL has more than one ':' after the host; put IPv6 hosts in []");
            host = hostport.substr(0, colon);
            port = hostport.substr(colon + 1);
            if (port.empty()) throw std::invalid_argument("the Redis URL has a ':' but no port");
        }
    }
    if (!host.empty()) ep.host = std::string(host);
    if (!port.empty()) {
        unsigned value = 0;
        if (!parse_whole_number(port, value) || value == 0 || value > 65535)
            throw std::invalid_argument("the port in the Redis URL is not a number from 1 to 65535");
        ep.port = static_cast<std::uint16_t>(value);
    }
    if (!db.empty()) {
        int value = 0;
        if (!parse_whole_number(db, value) || value < 0)
            throw std::invalid_argument(
                "the database in the Redis URL (after the '/') is not a number 0 or above");
        ep.db = value;
    }
    return ep;
}

std::string endpoint::to_string() const {
    const bool v6 = host.find(':') != std::string::npos;
    return "redis://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" +
           std::to_string(db);
}

namespace {

const char* kind_name(value::kind k) {
    switch (k) {
    case value::kind::nil: return "nil";
    case value::kind::integer: return "integer";
    case value::kind::string: return "string";
    case value::kind::status: return "status";
    case value::kind::error: return "error";
    case value::kind::array: return "array";
    }
    return "unknown";
}

}  // namespace

// Messages name the reply's kind but never its text: replies can hold tokens.
long long value::as_int() const {
    if (type == kind::integer) return integer;
    if (type == kind::string || type == kind::status) {
        long long parsed = 0;
        if (parse_whole_number(std::string_view(str), parsed)) return parsed;
        throw std::runtime_error("Redis string reply is not an integer");
    }
    throw std::runtime_error(std::string("Redis reply of kind ") + kind_name(type) +
                             " is not an integer");
}

const std::string& value::as_string() const {
    static const std::string empty;
    if (type == kind::string || type == kind::status) return str;
    if (type == kind::nil) return empty;
    // Integers throw too: silently returning the empty `str` would hide a wrong reply type.
    throw std::runtime_error(std::string("Redis reply of kind ") + kind_name(type) +
                             " is not a string");
}

script::script(std::string source) : source_(std::move(source)), sha1_(crypto::sha1_hex(source_)) {}

// ------------------------------------------------------------------------------------------------
// Shared machinery: completions, batches, and one connection's life cycle.

namespace detail {

value copy_reply(const redisReply* r) {
    value v;
    switch (r->type) {
    case REDIS_REPLY_STRING:
        v.type = value::kind::string;
        v.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_STATUS:
        v.type = value::kind::status;
        v.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_ERROR:
        v.type = value::kind::error;
        v.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        v.type = value::kind::integer;
        v.integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        v.type = value::kind::array;
        v.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i) v.elements.push_back(copy_reply(r->element[i]));
        break;
    default:
        v.type = value::kind::nil;
        break;
    }
    return v;
}

// A type-erased completion handler. complete() posts the handler to its associated executor (for
// an awaitable: the awaiting coroutine's), never runs it inline, so a coroutine never resumes
// inside a hiredis callback; the tracked work keeps that executor's run() from returning early.
template <typename... Args>
class completion {
public:
    virtual ~completion() = default;
    virtual void complete(Args... args) = 0;
};

template <typename Handler, typename... Args>
class completion_for final : public completion<Args...> {
public:
    explicit completion_for(Handler h)
        : handler_(std::move(h)),
          work_(asio::prefer(asio::get_associated_executor(handler_),
                             asio::execution::outstanding_work.tracked)) {}

    void complete(Args... args) override {
        auto ex = asio::get_associated_executor(handler_);
        asio::post(ex, [h = std::move(handler_), ... a = std::move(args)]() mutable {
            std::move(h)(std::move(a)...);
        });
    }

private:
    Handler handler_;
    std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler>>(),
                                       asio::execution::outstanding_work.tracked))>
        work_;
};

template <typename... Args, typename Handler>
std::unique_ptr<completion<Args...>> make_completion(Handler&& h) {
    return std::make_unique<completion_for<std::decay_t<Handler>, Args...>>(std::forward<Handler>(h));
}

using batch_completion = completion<std::exception_ptr, std::vector<value>>;

// The privdata of every command in one command()/pipeline() call. hiredis calls each command's
// callback exactly once, with the reply or, when the connection goes, with null; the batch
// completes and deletes itself on the last one.
struct batch {
    std::unique_ptr<batch_completion> done;
    std::vector<value> replies;
    std::size_t expected = 0;
    std::size_t received = 0;
    std::uint64_t seq = 0;  // the order it was sent in on its link (see link::answered)
    bool lost = false;

    void finish() {
        if (lost) {
            done->complete(std::make_exception_ptr(unavailable(
                               "the connection to Redis was lost before the reply arrived")),
                           {});
        } else {
            done->complete(nullptr, std::move(replies));
        }
    }
};

struct link;
void batch_answered(redisAsyncContext* ac, std::uint64_t seq) noexcept;

void on_batch_reply(redisAsyncContext* ac, void* reply, void* privdata) noexcept {
    auto* b = static_cast<batch*>(privdata);
    if (reply == nullptr) {
        b->lost = true;
    } else if (!b->lost) {
        try {
            b->replies.push_back(copy_reply(static_cast<redisReply*>(reply)));
        } catch (...) {
            b->lost = true;  // out of memory copying a huge reply: report it as lost
        }
    }
    if (++b->received == b->expected) {
        std::unique_ptr<batch> owned(b);
        batch_answered(ac, owned->seq);
        owned->finish();
    }
}

// One hiredis context's worth of state. hiredis's `data` points here; the connection drops its
// reference only via a posted handler, so the struct (and its events) outlives every hiredis
// call that might still touch it.
struct connection;

struct link {
    redisAsyncContext* ac = nullptr;  // null once freed by hiredis or handed to redisAsyncFree
    std::uint64_t id = 0;             // tells a posted handler whether its link is still current
    std::shared_ptr<asio_events> events;
    std::weak_ptr<connection> owner;
    int handshake_left = 0;
    bool ready = false;
    // Redis answers in order, so "every batch up to `answered` has its replies" is all the
    // command deadlines need to know.
    std::uint64_t sent = 0;
    std::uint64_t answered = 0;
};

void batch_answered(redisAsyncContext* ac, std::uint64_t seq) noexcept {
    if (auto* l = static_cast<link*>(ac->data)) l->answered = seq;
}

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
    void shutdown() override;

    std::mutex mutex_;
    std::vector<std::weak_ptr<connection>> live_;
};

// The life cycle shared by client and subscriber: connect (with timeout), handshake, ready,
// lost, backoff, reconnect. All members below the public section run on strand_ only.
struct connection : std::enable_shared_from_this<connection> {
    connection(asio::any_io_executor ex, client_options opts, const char* role)
        : strand_(asio::make_strand(std::move(ex))),
          opts_(std::move(opts)),
          role_(role),
          connect_timer_(strand_),
          retry_timer_(strand_),
          resolver_(strand_),
          backoff_(opts_.backoff_initial) {}

    virtual ~connection() {
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

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // ---- any thread
    // Called once, right after construction (weak_from_this needs the owning shared_ptr).
    void watch_context_shutdown() {
        auto& ctx = asio::query(strand_.get_inner_executor(), asio::execution::context);
        asio::use_service<shutdown_service>(ctx).add(weak_from_this());
    }

    // The io_context is being destroyed and no thread runs it: act as the posted stop() would.
    void abandon() { do_stop(); }

    void start() {
        asio::post(strand_, [self = shared_from_this()] {
            if (self->running_) return;
            self->running_ = true;
            self->backoff_ = self->opts_.backoff_initial;
            self->connect();
        });
    }

    void stop() {
        asio::post(strand_, [self = shared_from_this()] { self->do_stop(); });
    }

    bool connected() const { return connected_.load(); }

    std::string last_error() const {
        std::lock_guard lock(error_mutex_);
        return last_error_;
    }

    // Completes once satisfied() holds; throws unavailable after `timeout`.
    asio::awaitable<void> wait_until_satisfied(std::chrono::milliseconds timeout) {
        // A named initiation, not a lambda temporary inside co_await: GCC 12 destroys such a
        // temporary twice, which here would drop a reference to `self` that was never taken.
        auto initiate = [self = shared_from_this(), timeout](auto handler) {
            auto w = std::make_shared<waiter>(self->strand_);
            w->done = make_completion<std::exception_ptr>(std::move(handler));
            asio::post(self->strand_, [self, w, timeout] { self->add_waiter(w, timeout); });
        };
        co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
            std::move(initiate), asio::use_awaitable);
    }

    const asio::strand<asio::any_io_executor>& strand() const { return strand_; }

    void set_state_handler(std::function<void(bool)> f) {
        asio::post(strand_, [self = shared_from_this(), f = std::move(f)]() mutable {
            self->state_handler_ = std::move(f);
        });
    }

protected:
    // ---- strand only, for the derived classes
    virtual void on_ready() {}
    virtual void on_lost() {}
    virtual bool satisfied() const { return ready_; }

    // Tell the owner the connection came up or went down (once per change).
    void report_state(bool up) {
        if (up == reported_up_) return;
        reported_up_ = up;
        if (!state_handler_) return;
        try {
            state_handler_(up);
        } catch (const std::exception& e) {
            spdlog::error("redis {}: state handler threw: {}", role_, e.what());
        }
    }

    redisAsyncContext* ready_context() const { return ready_ && link_ ? link_->ac : nullptr; }

    std::string not_connected_message() const {
        std::string msg = "not connected to Redis at " + opts_.where.to_string();
        if (auto e = last_error(); !e.empty()) msg += ": " + e;
        return msg;
    }

    // Something went wrong inside a hiredis callback: tear the link down from a fresh handler,
    // because the context must never be freed while hiredis is still on the stack.
    void close_link_later(const link* l, std::string reason) {
        asio::post(strand_, [self = shared_from_this(), id = l->id, reason = std::move(reason)] {
            if (self->link_ && self->link_->id == id) self->close_link(reason);
        });
    }

    void notify_waiters() {
        if (!satisfied()) return;
        auto waiting = std::move(waiters_);
        waiters_.clear();
        for (auto& w : waiting) finish_waiter(*w, nullptr);
    }

    // Free our context (from a handler of our own, never from inside hiredis). hiredis runs
    // every pending callback with a null reply, which fails those commands with `unavailable`.
    void close_link(const std::string& reason) {
        auto l = link_;
        if (!l) return;
        if (redisAsyncContext* ac = std::exchange(l->ac, nullptr)) redisAsyncFree(ac);
        link_lost(l.get(), reason);
    }

    asio::strand<asio::any_io_executor> strand_;
    client_options opts_;
    const char* role_;
    std::shared_ptr<link> link_;
    bool ready_ = false;

private:
    struct waiter {
        explicit waiter(const asio::strand<asio::any_io_executor>& s) : timer(s) {}
        asio::steady_timer timer;
        std::unique_ptr<completion<std::exception_ptr>> done;
    };

    void add_waiter(const std::shared_ptr<waiter>& w, std::chrono::milliseconds timeout) {
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
            finish_waiter(*w, std::make_exception_ptr(unavailable(
                                  self->not_connected_message() + " (waited " +
                                  std::to_string(timeout.count()) + " ms)")));
        });
    }

    static void finish_waiter(waiter& w, std::exception_ptr e) {
        w.timer.cancel();
        if (w.done) std::exchange(w.done, nullptr)->complete(std::move(e));
    }

    void set_last_error(std::string e) {
        std::lock_guard lock(error_mutex_);
        last_error_ = std::move(e);
    }

    void connect() {
        const std::uint64_t attempt = ++attempt_;
        connect_timer_.expires_after(opts_.connect_timeout);
        connect_timer_.async_wait([self = shared_from_this(), attempt](boost::system::error_code ec) {
            if (ec || attempt != self->attempt_ || self->ready_) return;
            const std::string reason =
                "no connection within " + std::to_string(self->opts_.connect_timeout.count()) + " ms";
            if (self->link_) {
                self->close_link(reason);
            } else if (self->resolving_) {
                self->resolving_ = false;
                ++self->attempt_;  // the resolve handler must ignore its late result
                self->resolver_.cancel();
                self->attempt_failed(reason, false);
            }
        });

        boost::system::error_code ec;
        const auto address = asio::ip::make_address(opts_.where.host, ec);
        if (!ec) {
            open_link(address.to_string());
            return;
        }
        // hiredis would resolve with a blocking getaddrinfo on our strand; resolve here instead.
        resolving_ = true;
        resolver_.async_resolve(
            opts_.where.host, std::to_string(opts_.where.port),
            [self = shared_from_this(), attempt](boost::system::error_code rec,
                                                 asio::ip::tcp::resolver::results_type results) {
                if (attempt != self->attempt_ || !self->running_) return;
                self->resolving_ = false;
                if (rec || results.empty()) {
                    self->attempt_failed("cannot resolve " + self->opts_.where.host + ": " +
                                             (rec ? rec.message() : std::string("no addresses")),
                                         false);
                    return;
                }
                self->open_link(results.begin()->endpoint().address().to_string());
            });
    }

    void open_link(const std::string& ip) {
        redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), opts_.where.port);
        if (ac == nullptr) {
            attempt_failed("cannot allocate a hiredis context", false);
            return;
        }
        if (ac->err) {
            std::string reason = ac->errstr ? ac->errstr : "connect failed";
            redisAsyncFree(ac);  // nothing attached yet, no callbacks: safe to free right here
            attempt_failed(std::move(reason), false);
            return;
        }
        auto l = std::make_shared<link>();
        l->ac = ac;
        l->id = ++link_ids_;
        l->owner = weak_from_this();
        try {
            l->events = asio_attach(ac, strand_);
        } catch (const std::exception& e) {
            redisAsyncFree(ac);
            attempt_failed(std::string("cannot watch the Redis socket: ") + e.what(), false);
            return;
        }
        ac->data = l.get();
        link_ = l;
        redisAsyncSetConnectCallback(ac, &connection::on_connect);
        redisAsyncSetDisconnectCallback(ac, &connection::on_disconnect);

        // hiredis buffers these until the connect completes; PING last, so the link is ready
        // only once Redis has answered (and is not, say, still loading its AOF).
        std::vector<std::vector<std::string>> handshake;
        if (!opts_.where.password.empty()) handshake.push_back({"AUTH", opts_.where.password});
        if (opts_.where.db != 0) handshake.push_back({"SELECT", std::to_string(opts_.where.db)});
        if (!opts_.name.empty())
            handshake.push_back({"CLIENT", "SETNAME", opts_.name + (std::string_view(role_) == "client" ? ":cmd" : ":events")});
        handshake.push_back({"PING"});
        for (const auto& cmd : handshake) {
            std::vector<const char*> argv;
            std::vector<std::size_t> lens;
            for (const auto& a : cmd) {
                argv.push_back(a.data());
                lens.push_back(a.size());
            }
            if (redisAsyncCommandArgv(ac, &connection::on_handshake_reply, nullptr,
                                      static_cast<int>(argv.size()), argv.data(),
                                      lens.data()) != REDIS_OK) {
                close_link("cannot queue the connection handshake");
                return;
            }
            ++l->handshake_left;
        }
    }

    void link_ready(link* l) {
        if (link_.get() != l) return;
        l->ready = true;
        ready_ = true;
        connected_ = true;
        backoff_ = opts_.backoff_initial;
        connect_timer_.cancel();
        set_last_error({});
        if (down_logged_)
            spdlog::info("redis {}: connection to {} restored", role_, opts_.where.to_string());
        else
            spdlog::info("redis {}: connected to {}", role_, opts_.where.to_string());
        down_logged_ = false;
        on_ready();
        notify_waiters();
    }

    void link_lost(link* l, const std::string& reason) {
        if (link_.get() != l) return;
        const bool was_ready = l->ready;
        // Keep the link (and the events hiredis is about to clean up) until hiredis returns.
        asio::post(strand_, [dead = std::move(link_)] {});
        attempt_failed(reason, was_ready);
    }

    void attempt_failed(std::string reason, bool was_ready) {
        ready_ = false;
        connected_ = false;
        connect_timer_.cancel();
        if (!running_) {
            spdlog::debug("redis {}: stopped", role_);
        } else if (was_ready) {
            spdlog::warn("redis {}: connection to {} lost: {}", role_, opts_.where.to_string(), reason);
            down_logged_ = true;
        } else if (!down_logged_) {
            spdlog::warn("redis {}: cannot connect to {}: {} (retrying)", role_,
                         opts_.where.to_string(), reason);
            down_logged_ = true;
        } else {
            spdlog::debug("redis {}: connect to {} failed: {}", role_, opts_.where.to_string(), reason);
        }
        set_last_error(std::move(reason));
        on_lost();
        if (running_) schedule_retry();
    }

    void schedule_retry() {
        retry_timer_.expires_after(backoff_);
        backoff_ = std::min(backoff_ * 2, opts_.backoff_max);
        retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (ec || !self->running_ || self->link_ || self->resolving_) return;
            self->connect();
        });
    }

    void do_stop() {
        const bool was_running = std::exchange(running_, false);
        ++attempt_;
        retry_timer_.cancel();
        connect_timer_.cancel();
        if (resolving_) {
            resolving_ = false;
            resolver_.cancel();
        }
        close_link("client stopped");
        if (was_running) set_last_error("client stopped");
        ready_ = false;
        connected_ = false;
        auto waiting = std::move(waiters_);
        waiters_.clear();
        for (auto& w : waiting)
            finish_waiter(*w, std::make_exception_ptr(unavailable("the Redis client was stopped")));
    }

    // ---- hiredis callbacks: run on the strand, inside hiredis. No exception may escape into C.
    static link* link_of(const redisAsyncContext* ac) { return static_cast<link*>(ac->data); }

    static void on_connect(const redisAsyncContext* ac, int status) noexcept {
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

    static void on_disconnect(const redisAsyncContext* ac, int status) noexcept {
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

    static void on_handshake_reply(redisAsyncContext* ac, void* reply, void*) noexcept {
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
            if (l->handshake_left > 0 && --l->handshake_left == 0) self->link_ready(l);
        } catch (const std::exception& e) {
            spdlog::error("redis {}: handshake callback failed: {}", self->role_, e.what());
        }
    }

    // Seconds, not TCP's minutes: keepalive probes after 2 s idle, every second, 3 of them; and
    // data Redis has not acknowledged within the command timeout ends the connection.
    static void tune_socket(int fd, std::chrono::milliseconds timeout) {
        int idle = 2, interval = 1, count = 3;
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
        if (timeout.count() > 0) {
            unsigned user_timeout = static_cast<unsigned>(timeout.count());
            ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
        }
    }

    std::function<void(bool)> state_handler_;
    bool reported_up_ = false;
    asio::steady_timer connect_timer_;
    asio::steady_timer retry_timer_;
    asio::ip::tcp::resolver resolver_;
    std::chrono::milliseconds backoff_;
    std::uint64_t attempt_ = 0;
    std::uint64_t link_ids_ = 0;  // bumps on every connect/stop so late timer/resolve results drop
    bool running_ = false;
    bool resolving_ = false;
    bool down_logged_ = false;  // one warning per outage, not one per retry
    std::vector<std::shared_ptr<waiter>> waiters_;
    std::atomic<bool> connected_{false};
    mutable std::mutex error_mutex_;
    std::string last_error_;
};

void shutdown_service::shutdown() {
    std::vector<std::weak_ptr<connection>> live;
    {
        std::lock_guard lock(mutex_);
        live.swap(live_);
    }
    for (auto& w : live)
        if (auto c = w.lock()) c->abandon();
}

}  // namespace detail

// ------------------------------------------------------------------------------------------------
// client

struct client::impl : detail::connection {
    impl(asio::any_io_executor ex, client_options opts)
        : connection(std::move(ex), std::move(opts), "client"), deadline_timer_(strand_) {}

    void on_ready() override {
        deadlines_.clear();
        report_state(true);
    }

    void on_lost() override {
        deadlines_.clear();
        ++deadline_gen_;
        deadline_timer_.cancel();
        report_state(false);
    }

    // ---- command deadlines: one timer for the oldest batch still waiting for its replies
    // (Redis answers in order, so a batch is late only if every older one is answered).
    void watch(std::uint64_t seq) {
        deadlines_.emplace_back(seq, std::chrono::steady_clock::now() + opts_.command_timeout);
        if (deadlines_.size() == 1) arm(deadlines_.front().second);
    }

    void arm(std::chrono::steady_clock::time_point at) {
        deadline_timer_.expires_at(at);
        deadline_timer_.async_wait([self = std::static_pointer_cast<impl>(shared_from_this()),
                                    gen = ++deadline_gen_](boost::system::error_code ec) {
            if (!ec && gen == self->deadline_gen_) self->check_deadlines();
        });
    }

    void check_deadlines() {
        if (!link_) return;
        while (!deadlines_.empty() && deadlines_.front().first <= link_->answered) deadlines_.pop_front();
        if (deadlines_.empty()) return;
        if (deadlines_.front().second <= std::chrono::steady_clock::now()) {
            // Stalled or gone: fail what waits and start over on a new connection.
            close_link("no reply from Redis within " + std::to_string(opts_.command_timeout.count()) + " ms");
            return;
        }
        arm(deadlines_.front().second);
    }

    // Run the commands back to back (hiredis appends them to one output buffer, so they leave
    // in as few writes as the socket allows) and return every reply in order.
    asio::awaitable<std::vector<value>> run(std::vector<std::vector<std::string>> cmds) {
        // Named for the same GCC 12 reason as in wait_until_satisfied().
        auto initiate = [self = std::static_pointer_cast<impl>(shared_from_this())](
                            auto handler, std::vector<std::vector<std::string>> cmds) {
            auto done =
                detail::make_completion<std::exception_ptr, std::vector<value>>(std::move(handler));
            asio::post(self->strand_, [self, cmds = std::move(cmds), done = std::move(done)]() mutable {
                self->submit(cmds, std::move(done));
            });
        };
        co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                                void(std::exception_ptr, std::vector<value>)>(
            std::move(initiate), asio::use_awaitable, std::move(cmds));
    }

    void submit(const std::vector<std::vector<std::string>>& cmds,
                std::unique_ptr<detail::batch_completion> done) {
        redisAsyncContext* ac = ready_context();
        if (ac == nullptr) {
            // Fail fast: callers decide whether and when to retry.
            done->complete(std::make_exception_ptr(unavailable(not_connected_message())), {});
            return;
        }
        auto b = std::make_unique<detail::batch>();
        b->done = std::move(done);
        b->replies.reserve(cmds.size());
        std::vector<const char*> argv;
        std::vector<std::size_t> lens;
        std::size_t queued = 0;
        for (const auto& cmd : cmds) {
            argv.clear();
            lens.clear();
            for (const auto& a : cmd) {
                argv.push_back(a.data());
                lens.push_back(a.size());
            }
            if (redisAsyncCommandArgv(ac, &detail::on_batch_reply, b.get(),
                                      static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK)
                break;
            ++queued;
        }
        // No callback can run before we return to the event loop, so `expected` is set in time.
        b->expected = queued;
        if (queued < cmds.size()) b->lost = true;
        if (queued == 0) {
            b->finish();
            return;
        }
        b->seq = ++link_->sent;
        if (opts_.command_timeout.count() > 0) watch(b->seq);
        b.release();  // owned by hiredis's callbacks now; the last one deletes it
    }

    asio::steady_timer deadline_timer_;
    std::uint64_t deadline_gen_ = 0;  // a timer handler of an older arming does nothing
    std::deque<std::pair<std::uint64_t, std::chrono::steady_clock::time_point>> deadlines_;
};

std::shared_ptr<client> client::create(asio::any_io_executor ex, client_options opts) {
    auto p = std::make_shared<impl>(std::move(ex), std::move(opts));
    p->watch_context_shutdown();
    return std::shared_ptr<client>(new client(std::move(p)));
}

client::client(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

// stop() posts a handler holding the impl, so the impl outlives this and any hiredis callback
// running right now, and is freed only by a handler of its own strand.
client::~client() { impl_->stop(); }

void client::start() { impl_->start(); }
void client::on_state_change(std::function<void(bool up)> f) { impl_->set_state_handler(std::move(f)); }
void client::stop() { impl_->stop(); }
bool client::connected() const { return impl_->connected(); }
std::string client::last_error() const { return impl_->last_error(); }

asio::awaitable<void> client::wait_connected(std::chrono::milliseconds timeout) {
    auto p = impl_;
    co_await p->wait_until_satisfied(timeout);
}

namespace {

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
    });
}

void check_commands(const std::vector<std::vector<std::string>>& cmds) {
    for (const auto& c : cmds) {
        // An empty argv would be sent as "*0\r\n", which Redis never answers.
        if (c.empty()) throw std::invalid_argument("a Redis command needs at least its name");
        // These switch the connection into a mode where replies no longer pair with commands,
        // which would strand every later command on this client.
        for (const char* modal : {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR"})
            if (equals_ignoring_case(c.front(), modal))
                throw std::invalid_argument(std::string(modal) +
                                            " is not allowed on a redis::client; use redis::subscriber");
    }
}

}  // namespace

asio::awaitable<value> client::command(std::vector<std::string> args) {
    auto p = impl_;
    std::vector<std::vector<std::string>> cmds;
    cmds.push_back(std::move(args));
    check_commands(cmds);
    auto replies = co_await p->run(std::move(cmds));
    if (replies.at(0).is_error()) throw reply_error(replies[0].str);
    co_return std::move(replies[0]);
}

asio::awaitable<std::vector<value>> client::pipeline(std::vector<std::vector<std::string>> cmds) {
    auto p = impl_;
    check_commands(cmds);
    if (cmds.empty()) co_return std::vector<value>{};
    co_return co_await p->run(std::move(cmds));
}

asio::awaitable<value> client::eval(const script& s, std::vector<std::string> keys,
                                    std::vector<std::string> args) {
    auto p = impl_;
    const std::string sha = s.sha1();
    const std::string source = s.source();
    std::vector<std::string> evalsha{"EVALSHA", sha, std::to_string(keys.size())};
    evalsha.insert(evalsha.end(), std::make_move_iterator(keys.begin()),
                   std::make_move_iterator(keys.end()));
    evalsha.insert(evalsha.end(), std::make_move_iterator(args.begin()),
                   std::make_move_iterator(args.end()));

    // Named vectors, not braced lists: GCC 12 rejects a braced list in a statement that co_awaits.
    std::vector<std::vector<std::string>> first;
    first.push_back(evalsha);
    auto replies = co_await p->run(std::move(first));
    value result = std::move(replies.at(0));
    if (result.is_error() && result.str.starts_with("NOSCRIPT")) {
        // Redis restarted or SCRIPT FLUSH ran: load and retry in one round trip, once.
        std::vector<std::vector<std::string>> load_and_retry;
        load_and_retry.push_back({"SCRIPT", "LOAD", source});
        load_and_retry.push_back(std::move(evalsha));
        auto retry = co_await p->run(std::move(load_and_retry));
        if (retry.at(0).is_error()) throw reply_error(retry[0].str);
        if (retry[0].str != sha) {
            // Our sha1 disagrees with Redis's: every later call would take this path again.
            spdlog::error("redis client: SCRIPT LOAD returned a different SHA1 than computed locally");
        }
        result = std::move(retry.at(1));
    }
    if (result.is_error()) throw reply_error(result.str);
    co_return result;
}

// ------------------------------------------------------------------------------------------------
// subscriber

struct subscriber::impl : detail::connection {
    impl(asio::any_io_executor ex, client_options opts)
        : connection(std::move(ex), std::move(opts), "subscriber"), probe_timer_(strand_) {}

    struct channel_state {
        handler on_message;
        bool confirmed = false;  // SUBSCRIBE acknowledged on the current connection
    };

    void subscribe(std::string channel, handler h) {
        asio::post(strand_, [self = std::static_pointer_cast<impl>(shared_from_this()),
                             channel = std::move(channel), h = std::move(h)]() mutable {
            auto [it, added] = self->channels_.try_emplace(channel);
            it->second.on_message = std::move(h);
            if (added && self->ready_) self->send_subscribe(it->first);
        });
    }

    void set_on_resubscribed(std::function<void()> f) {
        asio::post(strand_, [self = std::static_pointer_cast<impl>(shared_from_this()),
                             f = std::move(f)]() mutable { self->on_resubscribed_ = std::move(f); });
    }

    bool satisfied() const override {
        return ready_ && std::all_of(channels_.begin(), channels_.end(),
                                     [](const auto& c) { return c.second.confirmed; });
    }

    void on_ready() override {
        resubscribe_pending_ = was_ready_before_;
        was_ready_before_ = true;
        for (const auto& [name, state] : channels_) send_subscribe(name);
        if (opts_.command_timeout.count() > 0) {
            redisAsyncContext* ac = ready_context();
            const char* argv[] = {"PSUBSCRIBE", probe_.data()};
            const std::size_t lens[] = {10, probe_.size()};
            if (redisAsyncCommandArgv(ac, &impl::on_pubsub_reply, nullptr, 2, argv, lens) != REDIS_OK)
                close_link_later(link_.get(), "cannot queue PSUBSCRIBE");
        }
        check_all_confirmed();
    }

    void on_lost() override {
        for (auto& [name, state] : channels_) state.confirmed = false;
        ++probe_gen_;
        probe_timer_.cancel();
        awaiting_pong_ = false;
        report_state(false);
    }

    // ---- liveness: a subscribed connection has nothing in flight, so a stalled Redis would go
    // unnoticed. Every half command timeout it sends PING <probe>; in subscribed mode Redis
    // answers ["pong", <probe>]. hiredis 0.14 routes that reply by its first letter: a 'p'
    // reads as a pattern message, so it looks <probe> up among the pattern subscriptions. The
    // connection therefore PSUBSCRIBEs the probe's name (a pattern no channel of ours matches),
    // and the pong reaches on_pubsub_reply. The PING is appended to the output buffer directly
    // (redisAppendFormattedCommand) rather than through redisAsyncCommand: in subscribed mode
    // hiredis would park the command's callback in a list that array replies never drain, one
    // entry per PING until the connection closes.
    void probe_later() {
        if (opts_.command_timeout.count() <= 0) return;
        probe_timer_.expires_after(std::max(std::chrono::milliseconds(50), opts_.command_timeout / 2));
        probe_timer_.async_wait([self = std::static_pointer_cast<impl>(shared_from_this()),
                                 gen = ++probe_gen_](boost::system::error_code ec) {
            if (!ec && gen == self->probe_gen_) self->probe();
        });
    }

    void probe() {
        redisAsyncContext* ac = ready_context();
        if (ac == nullptr || channels_.empty()) return;
        const auto now = std::chrono::steady_clock::now();
        if (awaiting_pong_) {
            if (now - ping_sent_ >= opts_.command_timeout) {
                close_link("no answer to PING within " + std::to_string(opts_.command_timeout.count()) + " ms");
                return;
            }
        } else {
            const std::string cmd =
                "*2\r\n$4\r\nPING\r\n$" + std::to_string(probe_.size()) + "\r\n" + probe_ + "\r\n";
            if (redisAppendFormattedCommand(&ac->c, cmd.data(), cmd.size()) != REDIS_OK) {
                close_link("cannot queue PING");
                return;
            }
            if (ac->ev.addWrite) ac->ev.addWrite(ac->ev.data);
            awaiting_pong_ = true;
            ping_sent_ = now;
        }
        probe_later();
    }

    void send_subscribe(const std::string& channel) {
        redisAsyncContext* ac = ready_context();
        if (ac == nullptr) return;  // on_ready() subscribes everything once connected
        const char* argv[] = {"SUBSCRIBE", channel.data()};
        const std::size_t lens[] = {9, channel.size()};
        if (redisAsyncCommandArgv(ac, &impl::on_pubsub_reply, nullptr, 2, argv, lens) != REDIS_OK)
            close_link_later(link_.get(), "cannot queue SUBSCRIBE");
    }

    void check_all_confirmed() {
        if (!satisfied()) return;
        notify_waiters();
        report_state(true);
        if (!awaiting_pong_) probe_later();
        if (std::exchange(resubscribe_pending_, false) && on_resubscribed_) {
            try {
                on_resubscribed_();
            } catch (const std::exception& e) {
                spdlog::error("redis subscriber: on_resubscribed threw: {}", e.what());
            }
        }
    }

    // Subscription confirmations and messages for every channel arrive here (hiredis keeps one
    // callback per channel; ours is the same for all and dispatches by name).
    static void on_pubsub_reply(redisAsyncContext* ac, void* reply, void*) noexcept {
        auto* l = static_cast<detail::link*>(ac->data);
        if (l == nullptr || l->ac == nullptr || reply == nullptr) return;
        auto owner = l->owner.lock();
        if (!owner) return;
        auto* self = static_cast<impl*>(owner.get());
        auto* r = static_cast<redisReply*>(reply);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_STRING)
            return;
        const std::string_view kind(r->element[0]->str, r->element[0]->len);
        const std::string_view channel(r->element[1]->str, r->element[1]->len);
        if (channel == self->probe_) {
            if (kind == "pong") self->awaiting_pong_ = false;
            return;
        }
        const auto it = self->channels_.find(channel);
        if (it == self->channels_.end()) return;
        try {
            if (kind == "message" && r->elements >= 3 && r->element[2]->type == REDIS_REPLY_STRING) {
                // Called in place: subscribe() and stop() only post, and ~subscriber hands the
                // impl to the strand, so nothing the handler does can change channels_ under us.
                if (const auto& h = it->second.on_message)
                    h(channel, std::string_view(r->element[2]->str, r->element[2]->len));
            } else if (kind == "subscribe") {
                it->second.confirmed = true;
                self->check_all_confirmed();
            }
        } catch (const std::exception& e) {
            // The channel name is ours; the payload is never logged.
            spdlog::error("redis subscriber: handler for channel {} threw: {}", it->first, e.what());
        } catch (...) {
            spdlog::error("redis subscriber: handler for channel {} threw", it->first);
        }
    }

    std::map<std::string, channel_state, std::less<>> channels_;
    std::function<void()> on_resubscribed_;
    bool was_ready_before_ = false;
    bool resubscribe_pending_ = false;
    // the probe's name: a pattern that matches no channel anyone publishes to
    const std::string probe_ = "__warmline_probe:" + crypto::random_id().substr(0, 16);
    asio::steady_timer probe_timer_;
    std::uint64_t probe_gen_ = 0;
    bool awaiting_pong_ = false;
    std::chrono::steady_clock::time_point ping_sent_;
};

std::shared_ptr<subscriber> subscriber::create(asio::any_io_executor ex, client_options opts) {
    auto p = std::make_shared<impl>(std::move(ex), std::move(opts));
    p->watch_context_shutdown();
    return std::shared_ptr<subscriber>(new subscriber(std::move(p)));
}

subscriber::subscriber(std::shared_ptr<impl> p) : impl_(std::move(p)) {}
subscriber::~subscriber() { impl_->stop(); }

void subscriber::subscribe(std::string channel, handler h) {
    impl_->subscribe(std::move(channel), std::move(h));
}
void subscriber::on_resubscribed(std::function<void()> f) { impl_->set_on_resubscribed(std::move(f)); }
void subscriber::on_state_change(std::function<void(bool up)> f) { impl_->set_state_handler(std::move(f)); }
void subscriber::start() { impl_->start(); }
void subscriber::stop() { impl_->stop(); }
bool subscriber::connected() const { return impl_->connected(); }

asio::awaitable<void> subscriber::wait_subscribed(std::chrono::milliseconds timeout) {
    auto p = impl_;
    co_await p->wait_until_satisfied(timeout);
}

}  // namespace warmline::redis
