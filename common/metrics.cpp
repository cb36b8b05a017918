// Registration and Prometheus text rendering for common/metrics.hpp.
#include "common/metrics.hpp"

#include <sstream>

namespace warmline::metrics {

std::atomic<std::uint64_t>& registry::counter(const std::string& name, const std::string& help,
                                              const std::string& labels) {
    std::lock_guard lock(mutex_);
    family& f = families_[name];
    f.help = help;
    f.type = "counter";
    auto& slot = f.counters[labels];
    if (!slot) slot = std::make_unique<std::atomic<std::uint64_t>>(0);
    return *slot;
}

void registry::gauge(const std::string& name, const std::string& help, std::function<double()> read) {
    std::lock_guard lock(mutex_);
    family& f = families_[name];
    f.help = help;
    f.type = "gauge";
    f.gauge = std::move(read);
}

std::string registry::render() const {
    std::lock_guard lock(mutex_);
    std::ostringstream out;
    for (const auto& [name, f] : families_) {
        out << "# HELP " << name << " " << f.help << "\n# TYPE " << name << " " << f.type << "\n";
        if (f.gauge) {
            out << name << " " << f.gauge() << "\n";
            continue;
        }
        for (const auto& [labels, value] : f.counters)
            out << name << (labels.empty() ? "" : "{" + labels + "}") << " " << value->load() << "\n";
    }
    return out.str();
}

}  // namespace warmline::metrics
