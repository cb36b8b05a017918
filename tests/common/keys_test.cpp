// One definition of every key name (common/keys.list): the generated C++ functions spell them
// as the list says, docs/redis-keys.md names exactly the keys of the list, and no C++ source of
// a service, common/ or loadtest/ spells a key itself.
#include "common/keys.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

using namespace warmline;

namespace {

std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// "wl:log:<cid>:<s|l>" -> "wl:log:<>:<>": the docs and the list may name a placeholder differently.
std::string shape(std::string pattern) { return std::regex_replace(pattern, std::regex("<[^>]*>"), "<>"); }

std::set<std::string> listed() {
    std::set<std::string> out;
    std::istringstream in(read(WARMLINE_SOURCE_DIR "/common/keys.list"));
    std::string line;
    std::regex entry(R"(^([a-z_]+)\s+(\S+)\s*$)");
    std::smatch m;
    while (std::getline(in, line))
        if (std::regex_match(line, m, entry)) out.insert(shape(m[2]));
    return out;
}

// Every `wl:...` in the first column of a table row of docs/redis-keys.md.
std::set<std::string> documented() {
    std::set<std::string> out;
    std::istringstream in(read(WARMLINE_SOURCE_DIR "/docs/redis-keys.md"));
    std::string line;
    std::regex name("`(wl:[^`]*)`");
    while (std::getline(in, line)) {
        if (line.rfind("| `wl:", 0) != 0) continue;
        const std::string first = line.substr(0, line.find(" | ", 2));
        for (std::sregex_iterator it(first.begin(), first.end(), name), end; it != end; ++it) {
            std::string key = (*it)[1];
            key = std::regex_replace(key, std::regex(R"(\\\|)"), "|");  // `<s\|l>` in a table cell
            out.insert(shape(key));
        }
    }
    return out;
}

}  // namespace

TEST_CASE("keys: the generated functions spell the list's patterns") {
    CHECK(keys::seeker("s1") == "wl:seeker:s1");
    CHECK(keys::cooldown("s1") == "wl:seeker:s1:cooldown");
    CHECK(keys::log("b3f", "c9", "l") == "wl:log:{b3f}:c9:l");
    CHECK(keys::queue("grief", "de") == "wl:q:grief:de");
    CHECK(keys::relay_channel("b00", "r1") == "wl:relaynode:{b00}:r1");
    CHECK(keys::events() == "wl:events");
}

TEST_CASE("keys: docs/redis-keys.md names exactly the keys of common/keys.list") {
    const auto in_list = listed(), in_docs = documented();
    REQUIRE(in_list.size() > 50);
    for (const auto& k : in_list) {
        INFO("listed but not documented: ", k);
        CHECK(in_docs.count(k) == 1);
    }
    for (const auto& k : in_docs) {
        INFO("documented but not in common/keys.list: ", k);
        CHECK(in_list.count(k) == 1);
    }
}

TEST_CASE("keys: no C++ source spells a key name itself") {
    for (const char* dir : {"services", "common", "loadtest"}) {
        for (const auto& e : std::filesystem::recursive_directory_iterator(std::filesystem::path(WARMLINE_SOURCE_DIR) / dir)) {
            const auto ext = e.path().extension();
            if (!e.is_regular_file() || (ext != ".cpp" && ext != ".hpp")) continue;
            INFO(e.path().string(), " spells a key: use warmline::keys (common/keys.list)");
            CHECK(read(e.path()).find("\"wl:") == std::string::npos);
        }
    }
}
