// Flags and environment parsing for common/config.hpp.
#include "common/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

extern char** environ;

namespace warmline::config {

std::string env_name(const std::string& flag) {
    std::string out = "WARMLINE_";
    for (char c : flag) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

options::options(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void options::add(const std::string& name, std::string default_value, std::string help) {
    if (!options_.count(name)) order_.push_back(name);
    options_[name] = option{std::move(default_value), std::move(help), "default"};
}

std::map<std::string, std::string> options::environment() {
    std::map<std::string, std::string> out;
    for (char** e = environ; e && *e; ++e) {
        std::string kv = *e;
        if (kv.rfind("WARMLINE_", 0) != 0) continue;
        auto eq = kv.find('=');
        if (eq != std::string::npos) out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> split_flags(int argc, const char* const* argv) {
    std::vector<std::pair<std::string, std::string>> out;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") return std::nullopt;
        if (arg.rfind("--", 0) != 0)
            throw config_error("unexpected argument '" + arg + "'; options look like --name=value (see --help)");
        std::string name = arg.substr(2), value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            throw config_error("option --" + name + " needs a value (see --help)");
        }
        out.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

bool options::parse(int argc, const char* const* argv, const std::map<std::string, std::string>& env) {
    std::map<std::string, bool> from_flag;
    auto flags = split_flags(argc, argv);
    if (!flags) return false;
    for (auto& [name, value] : *flags) {
        auto it = options_.find(name);
        if (it == options_.end()) throw config_error("unknown option --" + name + " (see --help)");
        it->second.value = value;
        it->second.source = "--" + name;
        from_flag[name] = true;
    }
    for (auto& [name, o] : options_) {
        if (from_flag.count(name)) continue;
        if (auto it = env.find(env_name(name)); it != env.end()) {
            o.value = it->second;
            o.source = env_name(name);
        }
    }
    return true;
}

const options::option& options::find(const std::string& name) const {
    auto it = options_.find(name);
    if (it == options_.end()) throw std::logic_error("option --" + name + " was never declared");
    return it->second;
}

void options::fail(const std::string& name, const option& o, const std::string& expected) const {
    std::string from = o.source == "default" ? "its default" : o.source;
    throw config_error("--" + name + " must be " + expected + ", but is '" + o.value + "' (from " + from + ")");
}

std::string options::str(const std::string& name) const { return find(name).value; }

std::int64_t options::integer(const std::string& name, std::int64_t min, std::int64_t max) const {
    const option& o = find(name);
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(o.value.data(), o.value.data() + o.value.size(), v);
    if (ec != std::errc{} || p != o.value.data() + o.value.size() || v < min || v > max)
        fail(name, o, "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
    return v;
}

std::chrono::milliseconds options::millis(const std::string& name, std::int64_t min, std::int64_t max) const {
    return std::chrono::milliseconds(integer(name, min, max));
}

bool options::boolean(const std::string& name) const {
    const option& o = find(name);
    std::string v = o.value;
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
    if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) return false;
    fail(name, o, "true or false");
}

std::vector<std::string> options::list(const std::string& name) const {
    std::vector<std::string> out;
    std::stringstream ss(find(name).value);
    for (std::string item; std::getline(ss, item, ',');) {
        auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
        if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    }
    return out;
}

std::string options::help() const {
    std::ostringstream out;
    out << "Usage: " << program_ << " [--option=value ...]\n" << summary_ << "\n\nOptions (or environment):\n";
    for (const auto& name : order_) {
        const option& o = options_.at(name);
        out << "  --" << name << "  (" << env_name(name) << ", default '" << o.value << "')\n      " << o.help << "\n";
    }
    return out.str();
}

}  // namespace warmline::config
