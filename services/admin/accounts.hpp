// Listener and supervisor accounts: created, listed, edited and revoked by warmline-admin. A
// bearer token is shown once at creation (or rotation); Redis keeps only its SHA-256. Topics
// and languages must come from the catalogue.
#pragma once

#include "common/catalogue.hpp"
#include "services/matchmaker/store.hpp"

#include <boost/asio/awaitable.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace warmline::admin {

struct listener_spec {
    std::string name;
    std::string handle;  // public, unique; derived from the name when empty
    std::vector<std::string> topics;
    std::vector<std::string> languages;
    int max_chats = 3;
    matchmaker::wellbeing_limits wellbeing;  // unset: none
};

struct listener_edit {
    std::optional<std::string> name;
    std::optional<std::vector<std::string>> topics;
    std::optional<std::vector<std::string>> languages;
    std::optional<int> max_chats;
    matchmaker::wellbeing_limits wellbeing;
};

struct created {
    std::string id;
    std::string token;  // secret: print once, never log
    std::string handle;
};

// What `list` shows: no token material.
struct account {
    std::string kind;  // listener | supervisor
    std::string id;
    std::map<std::string, std::string> fields;
};

// Throws std::invalid_argument with a sentence a person can act on.
class accounts {
public:
    accounts(matchmaker::store& st, const catalogue& cat) : store_(st), catalogue_(cat) {}

    boost::asio::awaitable<created> create_listener(listener_spec spec);
    boost::asio::awaitable<created> create_supervisor(std::string name);
    boost::asio::awaitable<std::vector<account>> list();
    boost::asio::awaitable<void> edit_listener(std::string id, listener_edit edit);
    boost::asio::awaitable<void> revoke(std::string id);
    // A new token for an account; the old one stops working at once.
    boost::asio::awaitable<std::string> rotate_token(std::string id);

private:
    void check_topics(const std::vector<std::string>& topics) const;
    void check_languages(const std::vector<std::string>& languages) const;

    matchmaker::store& store_;
    const catalogue& catalogue_;
};

std::string join_csv(const std::vector<std::string>& xs);

}  // namespace warmline::admin
