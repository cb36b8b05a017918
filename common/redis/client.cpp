// The command client: commands and pipelines sent as batches on the connection's current link,
// each completed on its caller's executor, a deadline for the oldest batch still unanswered, and
// EVALSHA with NOSCRIPT recovery. A lost link fails its batches with `unavailable`; through
// Sentinel a READONLY reply does too, and ends the link (the server was demoted).
#include "common/redis/detail.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <utility>

namespace warmline::redis {

namespace asio = boost::asio;

namespace detail {
namespace {

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
    bool readonly = false;  // through Sentinel: a READONLY reply, so the server is a replica now

    void finish() {
        if (readonly) {
            done->complete(std::make_exception_ptr(unavailable(
                               "Redis answered READONLY (the server is a replica now); reconnecting to the master")),
                           {});
        } else if (lost) {
            done->complete(std::make_exception_ptr(unavailable(
                               "the connection to Redis was lost before the reply arrived")),
                           {});
        } else {
            done->complete(nullptr, std::move(replies));
        }
    }
};

void on_batch_reply(redisAsyncContext* ac, void* reply, void* privdata) noexcept {
    auto* b = static_cast<batch*>(privdata);
    auto* l = static_cast<link*>(ac->data);
    if (reply == nullptr) {
        b->lost = true;
    } else if (!b->lost) {
        try {
            b->replies.push_back(copy_reply(static_cast<redisReply*>(reply)));
            const value& v = b->replies.back();
            if (v.is_error() && v.str.starts_with("READONLY") && l != nullptr && l->readonly_ends_link &&
                l->ac != nullptr) {
                b->readonly = true;
                if (auto owner = l->owner.lock())
                    owner->close_link_later(l, "READONLY: " + describe(l->peer) + " is a replica now");
            }
        } catch (...) {
            b->lost = true;  // out of memory copying a huge reply: report it as lost
        }
    }
    if (++b->received == b->expected) {
        std::unique_ptr<batch> owned(b);
        if (l != nullptr) l->answered = owned->seq;
        owned->finish();
    }
}

}  // namespace
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
    if (opts.where.is_cluster())
        throw std::invalid_argument("a redis-cluster:// endpoint needs redis::cluster_client, not redis::client");
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
std::uint64_t client::link_id() const { return impl_->link_id(); }
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

}  // namespace

void detail::check_commands(const std::vector<std::vector<std::string>>& cmds) {
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

asio::awaitable<void> detail::client_access::wait_attempt(client& c, std::chrono::milliseconds timeout) {
    auto p = c.impl_;
    co_await p->wait_until_satisfied(timeout, true);
}

asio::awaitable<value> client::command(std::vector<std::string> args) {
    auto p = impl_;
    std::vector<std::vector<std::string>> cmds;
    cmds.push_back(std::move(args));
    detail::check_commands(cmds);
    auto replies = co_await p->run(std::move(cmds));
    if (replies.at(0).is_error()) detail::throw_error_reply(replies[0].str);
    co_return std::move(replies[0]);
}

asio::awaitable<std::vector<value>> client::pipeline(std::vector<std::vector<std::string>> cmds) {
    auto p = impl_;
    detail::check_commands(cmds);
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
        if (retry.at(0).is_error()) detail::throw_error_reply(retry[0].str);
        if (retry[0].str != sha) {
            // Our sha1 disagrees with Redis's: every later call would take this path again.
            spdlog::error("redis client: SCRIPT LOAD returned a different SHA1 than computed locally");
        }
        result = std::move(retry.at(1));
    }
    if (result.is_error()) detail::throw_error_reply(result.str);
    co_return result;
}


}  // namespace warmline::redis
