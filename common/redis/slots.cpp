// Redis Cluster's hash slots: CRC16 (the XMODEM variant Redis uses: polynomial 0x1021, initial
// value 0, no reflection), the slot of a key (its hash tag if it has a non-empty one), which
// argument of a command is its first key, and the slot map read from CLUSTER SLOTS that the
// cluster client and the cluster subscriber share. No I/O and no hiredis here.
#include "common/redis/detail.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace warmline::redis {

std::uint16_t crc16(std::string_view data) {
    std::uint16_t crc = 0;
    for (unsigned char byte : data) {
        crc ^= static_cast<std::uint16_t>(byte << 8);
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021) : static_cast<std::uint16_t>(crc << 1);
    }
    return crc;
}

// As keyHashSlot() in Redis's cluster.c: the first '{', the first '}' after it, and only a
// non-empty tag between them counts.
std::uint16_t key_slot(std::string_view key) {
    const auto open = key.find('{');
    if (open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16(key) & (cluster_slot_count - 1));
}

namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

bool one_of(const std::string& name, std::initializer_list<std::string_view> names) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

// A small table, not COMMAND's key specs: what Warmline sends, plus the common shapes. A command
// it places wrongly still works (the node that gets it answers MOVED with the right slot); only
// its first try is wasted.
std::optional<std::uint16_t> command_slot(const std::vector<std::string>& args) {
    if (args.size() < 2) return std::nullopt;
    const std::string name = upper(args[0]);
    if (one_of(name, {"PING", "ECHO", "INFO", "TIME", "DBSIZE", "CLUSTER", "SCRIPT", "FUNCTION", "CONFIG",
                      "CLIENT", "COMMAND", "FLUSHALL", "FLUSHDB", "RANDOMKEY", "SCAN", "KEYS", "WAIT",
                      "PUBLISH", "PUBSUB", "ROLE", "LASTSAVE", "SLOWLOG", "LATENCY", "MEMORY", "ACL",
                      "HELLO", "AUTH", "READONLY", "READWRITE", "ASKING"})) {
        // MEMORY USAGE <key> is the exception of its family.
        if (name == "MEMORY" && args.size() > 2 && upper(args[1]) == "USAGE") return key_slot(args[2]);
        return std::nullopt;
    }
    if (one_of(name, {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})) {
        long long numkeys = 0;
        if (args.size() < 4) return std::nullopt;
        auto [end, ec] = std::from_chars(args[2].data(), args[2].data() + args[2].size(), numkeys);
        if (ec != std::errc{} || numkeys <= 0) return std::nullopt;
        return key_slot(args[3]);
    }
    if (name == "XREAD" || name == "XREADGROUP") {
        for (std::size_t i = 1; i + 1 < args.size(); ++i)
            if (upper(args[i]) == "STREAMS") return key_slot(args[i + 1]);
        return std::nullopt;
    }
    if (one_of(name, {"BITOP", "OBJECT", "XINFO", "XGROUP"})) {
        if (args.size() < 3) return std::nullopt;
        return key_slot(args[2]);
    }
    return key_slot(args[1]);
}

namespace detail {

std::optional<endpoint::address> slot_map::owner_of(std::uint16_t slot) const {
    if (slot >= cluster_slot_count || owner[slot] < 0) return std::nullopt;
    return primaries[static_cast<std::size_t>(owner[slot])];
}

std::optional<slot_map> parse_slot_map(const value& v, const endpoint::address& from) {
    if (v.type != value::kind::array || v.elements.empty()) return std::nullopt;
    slot_map m;
    m.owner.fill(-1);
    for (const auto& range : v.elements) {
        if (range.type != value::kind::array || range.elements.size() < 3) return std::nullopt;
        const auto& master = range.elements[2];
        if (master.type != value::kind::array || master.elements.size() < 2) return std::nullopt;
        long long start = 0, end = 0, port = 0;
        try {
            start = range.elements[0].as_int();
            end = range.elements[1].as_int();
            port = master.elements[1].as_int();
        } catch (const std::runtime_error&) {
            return std::nullopt;
        }
        if (start < 0 || end < start || end >= cluster_slot_count || port <= 0 || port > 65535) return std::nullopt;
        const auto& host = master.elements[0];
        endpoint::address a{host.type == value::kind::string || host.type == value::kind::status ? host.str : "",
                            static_cast<std::uint16_t>(port)};
        // An empty or "?" endpoint means "the node you asked" (cluster-preferred-endpoint-type).
        if (a.host.empty() || a.host == "?") a.host = from.host;
        auto it = std::find(m.primaries.begin(), m.primaries.end(), a);
        if (it == m.primaries.end()) it = m.primaries.insert(m.primaries.end(), a);
        for (long long s = start; s <= end; ++s)
            m.owner[static_cast<std::size_t>(s)] = static_cast<std::int16_t>(it - m.primaries.begin());
    }
    return m;
}

client_options node_options(const client_options& cluster, const endpoint::address& node) {
    client_options o = cluster;
    o.where = endpoint{};
    o.where.host = node.host;
    o.where.port = node.port;
    o.where.password = cluster.where.password;
    return o;
}

}  // namespace detail

}  // namespace warmline::redis
