// Account records in Redis for services/admin/accounts.hpp.
#include "services/admin/accounts.hpp"

#include "warmline/v1/events.pb.h"

#include "common/argv.hpp"
#include "common/crypto.hpp"
#include "common/keys.hpp"

#include <cctype>
#include <stdexcept>

namespace warmline::admin {
namespace asio = boost::asio;

std::string join_csv(const std::vector<std::string>& xs) {
    std::string s;
    for (const auto& x : xs) s += (s.empty() ? "" : ",") + x;
    return s;
}

void accounts::check_topics(const std::vector<std::string>& topics) const {
    if (topics.empty()) throw std::invalid_argument("a listener needs at least one topic (--topics)");
    for (const auto& t : topics)
        if (!catalogue_.topic(t))
            throw std::invalid_argument("unknown topic '" + t + "'; the catalogue has: " + join_csv(catalogue_.topic_ids()));
}

void accounts::check_languages(const std::vector<std::string>& languages) const {
    if (languages.empty()) throw std::invalid_argument("a listener needs at least one language (--languages)");
    for (const auto& l : languages)
        if (!catalogue_.language(l))
            throw std::invalid_argument("unknown language '" + l + "'; the catalogue has: " +
                                        join_csv(catalogue_.language_tags()));
}

namespace {

void check_wellbeing(const matchmaker::wellbeing_limits& w) {
    auto within = [](const std::optional<int>& v, int hi, const char* flag) {
        if (v && (*v < 0 || *v > hi))
            throw std::invalid_argument(std::string(flag) + " must be from 0 (none) to " + std::to_string(hi));
    };
    within(w.chats_per_day, 200, "--chats-per-day");
    within(w.break_after_chats, 100, "--break-after-chats");
    within(w.break_after_min, 1440, "--break-after-min");
    within(w.break_min, 240, "--break-min");
}

}  // namespace

asio::awaitable<created> accounts::create_listener(listener_spec spec) {
    if (spec.name.empty()) throw std::invalid_argument("a listener needs a name (--name)");
    check_topics(spec.topics);
    check_languages(spec.languages);
    check_wellbeing(spec.wellbeing);
    if (spec.max_chats < 1 || spec.max_chats > 20)
        throw std::invalid_argument("--max-chats must be from 1 to 20");
    std::string id = crypto::random_id().substr(0, 16);
    std::string handle = spec.handle;
    if (handle.empty()) {
        for (char c : spec.name)
            if (std::isalnum(static_cast<unsigned char>(c))) handle += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        handle = handle.substr(0, 16) + "-" + id.substr(0, 4);
    }
    if (!is_topic_id(handle)) throw std::invalid_argument("a handle is 1-32 of a-z, 0-9, '_' or '-'");
    auto claimed = co_await store_.redis().command(argv("SET", keys::handle(handle), id, "NX"));
    if (claimed.is_nil()) throw std::invalid_argument("the handle '" + handle + "' is taken; choose another (--handle)");
    std::string token = "wll_" + crypto::random_token();
    std::string hash = crypto::sha256_hex(token);
    std::string max = std::to_string(spec.max_chats);
    co_await store_.redis().pipeline(commands(
        argv("HSET", keys::listener(id), "name", spec.name, "handle", handle, "topics", join_csv(spec.topics),
         "langs", join_csv(spec.languages), "cap", max, "max", max, "status", "away", "chats", "0", "offers", "0",
         "idle_since", "0", "ix", "", "token", hash, "revoked", "0", "created", std::to_string(store_.now_ms())),
        argv("SADD", keys::listeners(), id),
        argv("SET", keys::token(hash), "listener:" + id)
    ));
    if (spec.wellbeing.any()) {
        auto r = co_await store_.admin_update(id, "", "", "", 0, false, spec.wellbeing);
        if (!r) throw std::invalid_argument(r.error.message);
    }
    co_return created{id, token, handle};
}

asio::awaitable<created> accounts::create_supervisor(std::string name) {
    if (name.empty()) throw std::invalid_argument("a supervisor needs a name (--name)");
    std::string id = crypto::random_id().substr(0, 16);
    std::string token = "wls_" + crypto::random_token();
    std::string hash = crypto::sha256_hex(token);
    co_await store_.redis().pipeline(commands(
        argv("HSET", keys::supervisor(id), "name", name, "token", hash, "created", std::to_string(store_.now_ms())),
        argv("SADD", keys::supervisors(), id),
        argv("SET", keys::token(hash), "supervisor:" + id)
    ));
    co_return created{id, token, {}};
}

namespace {

// An account's kind ("listener" | "supervisor"): the set of all of them, and one's record.
std::string all_of(std::string_view kind) { return kind == "listener" ? keys::listeners() : keys::supervisors(); }
std::string record_of(std::string_view kind, std::string_view id) {
    return kind == "listener" ? keys::listener(id) : keys::supervisor(id);
}

}  // namespace

asio::awaitable<std::vector<account>> accounts::list() {
    std::vector<account> out;
    for (const char* kind : {"listener", "supervisor"}) {
        for (auto& id : co_await store_.members(all_of(kind))) {
            auto fields = co_await store_.hash(record_of(kind, id));
            fields.erase("token");
            out.push_back(account{kind, id, std::move(fields)});
        }
    }
    co_return out;
}

asio::awaitable<void> accounts::edit_listener(std::string id, listener_edit edit) {
    if (edit.topics) check_topics(*edit.topics);
    if (edit.languages) check_languages(*edit.languages);
    if (edit.max_chats && (*edit.max_chats < 1 || *edit.max_chats > 20))
        throw std::invalid_argument("--max-chats must be from 1 to 20");
    check_wellbeing(edit.wellbeing);
    // (GCC 12: no conditional expressions inside a co_await's operands)
    std::string name = edit.name.value_or("");
    std::string topics = edit.topics ? join_csv(*edit.topics) : "";
    std::string languages = edit.languages ? join_csv(*edit.languages) : "";
    const int cap = edit.max_chats.value_or(0);
    auto r = co_await store_.admin_update(id, std::move(name), std::move(topics), std::move(languages), cap, false,
                                          edit.wellbeing);
    if (!r) throw std::invalid_argument(r.error.message);
}

namespace {

// "listener" or "supervisor", or throws if the id is neither.
asio::awaitable<std::string> kind_of(matchmaker::store& st, const std::string& id) {
    for (const char* kind : {"listener", "supervisor"}) {
        auto v = co_await st.redis().command(argv("SISMEMBER", all_of(kind), id));
        if (v.as_int() == 1) co_return kind;
    }
    throw std::invalid_argument("there is no account with id '" + id + "' (see warmline-admin list)");
}

}  // namespace

asio::awaitable<void> accounts::revoke(std::string id) {
    if (co_await kind_of(store_, id) == "listener") {
        auto r = co_await store_.admin_update(id, "", "", "", 0, true);
        if (!r) throw std::invalid_argument(r.error.message);
        co_return;
    }
    auto fields = co_await store_.hash(keys::supervisor(id));
    v1::MatchEvent revoked;  // every matchmaker closes this supervisor's dashboards
    revoked.mutable_supervisor_revoked()->set_supervisor_id(id);
    co_await store_.redis().pipeline(commands(
        argv("DEL", keys::token(fields["token"])),
        argv("HSET", keys::supervisor(id), "revoked", "1", "token", ""),
        argv("PUBLISH", keys::events(), revoked.SerializeAsString())
    ));
}

asio::awaitable<std::string> accounts::rotate_token(std::string id) {
    std::string kind = co_await kind_of(store_, id);
    auto fields = co_await store_.hash(record_of(kind, id));
    if (fields["revoked"] == "1") throw std::invalid_argument("account '" + id + "' is revoked");
    std::string token = (kind == "listener" ? "wll_" : "wls_") + crypto::random_token();
    std::string hash = crypto::sha256_hex(token);
    v1::MatchEvent replaced;  // every matchmaker closes the sessions signed in with the old token
    replaced.mutable_token_replaced()->set_owner(kind + ":" + id);
    co_await store_.redis().pipeline(commands(
        argv("DEL", keys::token(fields["token"])),
        argv("SET", keys::token(hash), kind + ":" + id),
        argv("HSET", record_of(kind, id), "token", hash),
        argv("PUBLISH", keys::events(), replaced.SerializeAsString())
    ));
    co_return token;
}

}  // namespace warmline::admin
