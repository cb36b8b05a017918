// Prometheus metrics for /metrics: counters a service increments on its hot paths (atomics,
// no locks after registration) and gauges read when scraped. Labels never carry ids of people
// or chats, only bounded sets such as topic, language or outcome.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace warmline::metrics {

class registry {
public:
    // `labels` in Prometheus form without braces, e.g. R"(outcome="accepted")". The returned
    // reference stays valid for the registry's lifetime.
    std::atomic<std::uint64_t>& counter(const std::string& name, const std::string& help,
                                        const std::string& labels = {});
    void gauge(const std::string& name, const std::string& help, std::function<double()> read);
    std::string render() const;

private:
    struct family {
        std::string help;
        std::string type;
        std::map<std::string, std::unique_ptr<std::atomic<std::uint64_t>>> counters;
        std::function<double()> gauge;
    };
    mutable std::mutex mutex_;
    std::map<std::string, family> families_;
};

}  // namespace warmline::metrics
