// Service configuration from command-line flags and WARMLINE_* environment variables, with
// --help. Every value is validated when the service starts; a bad one stops it with a sentence
// naming the option, where it came from, and what is expected.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <stdexcept>
#include <string>
#include <vector>

namespace warmline::config {

struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class options {
public:
    options(std::string program, std::string summary);

    // Declare --name (environment WARMLINE_NAME, dashes as underscores) with a default and help.
    void add(const std::string& name, std::string default_value, std::string help);

    // Read flags (--name=value or --name value) and then the environment for what flags did not
    // set. Returns false when --help was asked for (help() holds the text). Throws config_error
    // for an unknown flag or a flag without a value.
    bool parse(int argc, const char* const* argv,
               const std::map<std::string, std::string>& env = environment());

    std::string str(const std::string& name) const;
    std::int64_t integer(const std::string& name, std::int64_t min, std::int64_t max) const;
    std::chrono::milliseconds millis(const std::string& name, std::int64_t min, std::int64_t max) const;
    bool boolean(const std::string& name) const;
    std::vector<std::string> list(const std::string& name) const;  // comma-separated, trimmed
    std::string help() const;

    // The process environment as a map (WARMLINE_* entries only).
    static std::map<std::string, std::string> environment();

private:
    struct option {
        std::string value;
        std::string help;
        std::string source = "default";
    };
    const option& find(const std::string& name) const;
    [[noreturn]] void fail(const std::string& name, const option& o, const std::string& expected) const;

    std::string program_;
    std::string summary_;
    std::vector<std::string> order_;
    std::map<std::string, option> options_;
};

std::string env_name(const std::string& flag);

// Split argv into (name, value) pairs from --name=value or --name value. Returns nullopt when
// --help or -h is present. Throws config_error for a bare word or a flag without a value. Shared
// by options::parse and tools with their own option tables.
std::optional<std::vector<std::pair<std::string, std::string>>> split_flags(int argc, const char* const* argv);

}  // namespace warmline::config
