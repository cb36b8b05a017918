// The matchmaker's invariants, read straight out of Redis: a seeker is in at most one of
// queued / offered / in a chat; no seeker is offered to two listeners; a listener never holds
// more chats plus open offers than their max. Returns a description of each violation.
#pragma once

#include "tests/support/redis_server.hpp"

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace warmline::test {

inline std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string l; std::getline(ss, l);)
        if (!l.empty()) out.push_back(l);
    return out;
}

inline std::vector<std::string> check_invariants(const redis_server& r) {
    std::vector<std::string> bad;
    std::map<std::string, std::string> offer_seeker;
    for (auto& key : lines(r.cmd({"KEYS", "wl:offer:*"}))) {
        std::string oid = key.substr(9);
        offer_seeker[oid] = r.cmd({"HGET", key, "seeker"});
    }
    std::map<std::string, int> offers_per_seeker;
    for (auto& [oid, sid] : offer_seeker) {
        if (++offers_per_seeker[sid] > 1) bad.push_back("seeker " + sid + " has two open offers");
        if (r.cmd({"HGET", "wl:seeker:" + sid, "offer"}) != oid)
            bad.push_back("offer " + oid + " is not the offer its seeker " + sid + " holds");
    }
    for (auto& key : lines(r.cmd({"KEYS", "wl:seeker:*"}))) {
        if (key.find(':', 10) != std::string::npos) continue;  // :blocked, :declined sets
        std::string sid = key.substr(10);
        std::string state = r.cmd({"HGET", key, "state"});
        std::string topic = r.cmd({"HGET", key, "topic"}), lang = r.cmd({"HGET", key, "lang"});
        std::string pref = r.cmd({"HGET", key, "pref"});
        bool in_queue = !topic.empty() && !r.cmd({"ZSCORE", "wl:q:" + topic + ":" + lang, sid}).empty();
        bool in_pref = !pref.empty() && !r.cmd({"ZSCORE", "wl:qpref:" + pref, sid}).empty();
        bool offered = offers_per_seeker.count(sid) > 0;
        if (state == "queued" && (offered || !(in_queue || in_pref)))
            bad.push_back("queued seeker " + sid + (offered ? " has an offer" : " is in no queue"));
        if (state == "queued" && in_queue && in_pref) bad.push_back("seeker " + sid + " is queued twice");
        if (state == "offered" && (!offered || in_queue || in_pref))
            bad.push_back("offered seeker " + sid + (offered ? " is still queued" : " has no offer"));
        if ((state == "chat" || state == "idle" || state == "ended") && (offered || in_queue || in_pref))
            bad.push_back(state + " seeker " + sid + " is still queued or offered");
    }
    for (auto& lid : lines(r.cmd({"SMEMBERS", "wl:listeners"}))) {
        std::string key = "wl:listener:" + lid;
        long chats = std::stol("0" + r.cmd({"HGET", key, "chats"}));
        long offers = std::stol("0" + r.cmd({"HGET", key, "offers"}));
        long max = std::stol("0" + r.cmd({"HGET", key, "max"}));
        long open_offers = std::stol("0" + r.cmd({"SCARD", key + ":offers"}));
        long open_chats = std::stol("0" + r.cmd({"SCARD", key + ":chats"}));
        if (chats + offers > max)
            bad.push_back("listener " + lid + " holds " + std::to_string(chats + offers) + " > max " + std::to_string(max));
        if (offers != open_offers) bad.push_back("listener " + lid + " offer count disagrees with its offer set");
        if (chats != open_chats) bad.push_back("listener " + lid + " chat count disagrees with its chat set");
    }
    return bad;
}

}  // namespace warmline::test
