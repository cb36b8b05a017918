// Redis Cluster's hash slots: CRC16 (the XMODEM variant Redis uses: polynomial 0x1021, initial
// value 0, no reflection), the slot of a key (its hash tag if it has a non-empty one), and which
// argument of a command is its first key. No Asio and no hiredis here.
#include "common/redis.hpp"

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

}  // namespace warmline::redis
