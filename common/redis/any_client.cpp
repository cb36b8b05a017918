// redis::any_client (common/redis.hpp): one server or a cluster behind one type; every member
// forwards to the one it holds.
#include "common/redis.hpp"

namespace warmline::redis {

namespace asio = boost::asio;

std::shared_ptr<any_client> any_client::create(asio::any_io_executor ex, client_options opts) {
    auto a = std::make_shared<any_client>();
    if (opts.where.is_cluster()) a->cluster_ = cluster_client::create(std::move(ex), std::move(opts));
    else a->single_ = client::create(std::move(ex), std::move(opts));
    return a;
}

std::shared_ptr<any_client> any_client::of(std::shared_ptr<client> c) {
    auto a = std::make_shared<any_client>();
    a->single_ = std::move(c);
    return a;
}

std::string any_client::node_of(std::string_view key) const {
    if (!cluster_) return {};
    auto a = cluster_->slot_owner(key_slot(key));
    return a ? a->host + ":" + std::to_string(a->port) : std::string();
}

void any_client::start() { cluster_ ? cluster_->start() : single_->start(); }
void any_client::stop() { cluster_ ? cluster_->stop() : single_->stop(); }
std::uint64_t any_client::link_id_near(std::string_view key) const {
    return cluster_ ? cluster_->link_id_near(key) : single_->link_id();
}
bool any_client::connected() const { return cluster_ ? cluster_->connected() : single_->connected(); }

void any_client::on_state_change(std::function<void(bool up)> f) {
    cluster_ ? cluster_->on_state_change(std::move(f)) : single_->on_state_change(std::move(f));
}

asio::awaitable<void> any_client::wait_connected(std::chrono::milliseconds timeout) {
    if (cluster_) co_await cluster_->wait_connected(timeout);
    else co_await single_->wait_connected(timeout);
}

// (if/else, not ?: around co_await: GCC 12 miscompiles a co_await in a conditional operator)
asio::awaitable<value> any_client::command(std::vector<std::string> args) {
    if (cluster_) co_return co_await cluster_->command(std::move(args));
    co_return co_await single_->command(std::move(args));
}

asio::awaitable<value> any_client::command_near(std::string key, std::vector<std::string> args) {
    if (cluster_) co_return co_await cluster_->command_near(std::move(key), std::move(args));
    co_return co_await single_->command(std::move(args));
}

asio::awaitable<std::vector<value>> any_client::pipeline(std::vector<std::vector<std::string>> cmds) {
    if (cluster_) co_return co_await cluster_->pipeline(std::move(cmds));
    co_return co_await single_->pipeline(std::move(cmds));
}

asio::awaitable<value> any_client::eval(const script& s, std::vector<std::string> keys, std::vector<std::string> args) {
    if (cluster_) co_return co_await cluster_->eval(s, std::move(keys), std::move(args));
    co_return co_await single_->eval(s, std::move(keys), std::move(args));
}

}  // namespace warmline::redis

namespace warmline::redis {

std::shared_ptr<any_subscriber> any_subscriber::create(boost::asio::any_io_executor ex, client_options opts) {
    auto a = std::make_shared<any_subscriber>();
    if (opts.where.is_cluster()) a->cluster_ = cluster_subscriber::create(std::move(ex), std::move(opts));
    else a->single_ = subscriber::create(std::move(ex), std::move(opts));
    return a;
}

std::shared_ptr<any_subscriber> any_subscriber::of(std::shared_ptr<subscriber> s) {
    auto a = std::make_shared<any_subscriber>();
    a->single_ = std::move(s);
    return a;
}

void any_subscriber::ssubscribe(std::string channel, handler h) {
    cluster_ ? cluster_->ssubscribe(std::move(channel), std::move(h)) : single_->ssubscribe(std::move(channel), std::move(h));
}
void any_subscriber::on_resubscribed(std::function<void()> f) {
    cluster_ ? cluster_->on_resubscribed(std::move(f)) : single_->on_resubscribed(std::move(f));
}
void any_subscriber::on_state_change(std::function<void(bool up)> f) {
    cluster_ ? cluster_->on_state_change(std::move(f)) : single_->on_state_change(std::move(f));
}
void any_subscriber::start() { cluster_ ? cluster_->start() : single_->start(); }
void any_subscriber::stop() { cluster_ ? cluster_->stop() : single_->stop(); }
bool any_subscriber::connected() const { return cluster_ ? cluster_->connected() : single_->connected(); }

boost::asio::awaitable<void> any_subscriber::wait_subscribed(std::chrono::milliseconds timeout) {
    if (cluster_) co_await cluster_->wait_subscribed(timeout);
    else co_await single_->wait_subscribed(timeout);
}

}  // namespace warmline::redis
