// Reading chat reports from Redis for services/admin/reports.hpp.
#include "services/admin/reports.hpp"

#include "common/argv.hpp"
#include "common/codec.hpp"
#include "common/keys.hpp"

#include <cstdio>
#include <ctime>
#include <sstream>

namespace warmline::admin {
namespace asio = boost::asio;

namespace {

std::int64_t to_int(const std::string& s) {
    try {
        return s.empty() ? 0 : std::stoll(s);
    } catch (...) {
        return 0;
    }
}

}  // namespace

asio::awaitable<std::vector<report_summary>> reports::recent(int limit) {
    // the index's score is the report's time
    auto index = co_await redis_.command(argv("ZREVRANGE", keys::reports(), "0", std::to_string(limit - 1), "WITHSCORES"));
    std::vector<std::vector<std::string>> reads;
    for (std::size_t i = 0; i + 1 < index.elements.size(); i += 2)
        reads.push_back(argv("HMGET", keys::report(index.elements[i].as_string()), "listener", "count", "by", "blocked"));
    std::vector<report_summary> out;
    if (reads.empty()) co_return out;
    auto replies = co_await redis_.pipeline(std::move(reads));
    for (std::size_t i = 0; i < replies.size(); ++i) {
        const auto& f = replies[i].elements;
        if (f.size() < 4 || f[0].is_nil()) continue;  // expired since the index was trimmed
        // reports written before listeners could report have no `by`: a seeker's
        out.push_back(report_summary{index.elements[2 * i].as_string(), index.elements[2 * i + 1].as_int(),
                                     f[0].as_string(), static_cast<int>(to_int(f[1].as_string())),
                                     f[2].is_nil() ? "seeker" : f[2].as_string(), !f[3].is_nil() && f[3].as_string() == "1"});
    }
    co_return out;
}

asio::awaitable<std::optional<report>> reports::find(std::string session) {
    auto v = co_await redis_.command(argv("HGETALL", keys::report(session)));
    if (v.elements.empty()) co_return std::nullopt;
    report r;
    r.session = std::move(session);
    for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2)
        r.fields[v.elements[i].as_string()] = v.elements[i + 1].as_string();
    std::string why;
    if (!r.fields["messages"].empty() && !codec::from_json(r.fields["messages"], r.messages, why))
        throw std::runtime_error("the stored messages of this report could not be read: " + why);
    co_return r;
}

std::string utc_time(std::int64_t unix_ms) {
    std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

namespace {

// Code points a terminal acts on or that disguise text: C1 controls (U+0080-U+009F, e.g. the
// 8-bit CSI) and the bidirectional embeddings, overrides and isolates.
bool disguising(std::uint32_t cp) {
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

// The length of the UTF-8 sequence at text[i] and its code point; 0 if it is not valid UTF-8.
std::size_t utf8_at(const std::string& text, std::size_t i, std::uint32_t& cp) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
    const unsigned char c = b(0);
    const std::size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    if (n == 0 || i + n > text.size()) return 0;
    cp = c & (0x7f >> n);
    for (std::size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b(k) & 0x3f);
    }
    static constexpr std::uint32_t shortest[] = {0, 0, 0x80, 0x800, 0x10000};  // overlong forms are not UTF-8
    return cp >= shortest[n] && cp <= 0x10ffff ? n : 0;
}

}  // namespace

std::string printable(const std::string& text) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            std::uint32_t cp = 0;
            const std::size_t n = utf8_at(text, i, cp);
            if (n == 0) {
                out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
                ++i;
            } else {
                if (disguising(cp)) {
                    char buf[16];
                    std::snprintf(buf, sizeof buf, "\\u{%04x}", static_cast<unsigned>(cp));
                    out += buf;
                } else {
                    out.append(text, i, n);
                }
                i += n;
            }
            continue;
        }
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\\') out += "\\\\";
        else if (c < 0x20 || c == 0x7f) out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
        else out += static_cast<char>(c);
        ++i;
    }
    return out;
}

std::string render(const report& r) {
    auto field = [&](const char* name) {
        auto it = r.fields.find(name);
        return it == r.fields.end() ? std::string() : it->second;
    };
    std::ostringstream os;
    const bool by_listener = field("by") == "listener";
    os << "report:    " << r.session << "\n"
       << "by:        " << (by_listener ? "the listener" : "the seeker")
       << (by_listener && field("blocked") == "1" ? ", who blocked the seeker (the chat ended then if it was open)" : "")
       << "\n"
       << "reported:  " << utc_time(to_int(field("at"))) << "\n"
       << "listener:  " << field("listener") << "\n"
       << "topic:     " << field("topic") << " (" << field("lang") << ")\n";
    if (!field("started").empty()) os << "started:   " << utc_time(to_int(field("started"))) << "\n";
    os << "ended:     " << (field("ended").empty() ? "not yet when reported" : utc_time(to_int(field("ended")))) << "\n"
       << "reason:    " << printable(field("reason")) << "\n"
       << "messages:  " << r.messages.messages_size() << "\n";
    if (r.messages.messages_size() > 0) os << unverified_note << "\n";
    for (const auto& m : r.messages.messages()) {
        os << "  #" << m.seq() << " " << (m.from() == v1::SEEKER ? "seeker  " : "listener") << " "
           << (m.sent_unix_ms() > 0 ? utc_time(m.sent_unix_ms()) : std::string("(time not given)")) << ": "
           << printable(m.text()) << "\n";
    }
    return os.str();
}

}  // namespace warmline::admin
