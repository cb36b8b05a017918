// The clock, /proc readers, JSON line builder and CPU meter of loadtest/lib/bench_common.hpp.
#include "loadtest/lib/bench_common.hpp"

#include "common/config.hpp"
#include "common/log.hpp"

#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace warmline::bench {

namespace {
const auto t_base = std::chrono::steady_clock::now();
}  // namespace

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_base).count();
}

std::chrono::steady_clock::time_point at_ms(double ms) {
    return t_base + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double, std::milli>(ms));
}

std::int64_t unix_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

asio::awaitable<void> sleep_until_ms(double ms) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_at(at_ms(ms));
    co_await t.async_wait(use_tuple);
}

asio::awaitable<void> sleep_for_ms(double ms) { co_await sleep_until_ms(now_ms() + ms); }

double cpu_seconds(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(f, s)) return -1;
    auto p = s.rfind(')');  // the command name may hold spaces and parentheses
    if (p == std::string::npos) return -1;
    std::istringstream in(s.substr(p + 1));
    std::vector<std::string> fields;  // from field 3 (state) on
    for (std::string x; fields.size() < 13 && in >> x;) fields.push_back(x);
    if (fields.size() < 13) return -1;
    return static_cast<double>(std::stoll(fields[11]) + std::stoll(fields[12])) /
           static_cast<double>(sysconf(_SC_CLK_TCK));
}

double machine_busy_seconds() {
    std::ifstream f("/proc/stat");
    std::string cpu;
    f >> cpu;
    std::vector<long long> v;
    for (long long x; v.size() < 8 && f >> x;) v.push_back(x);
    if (v.size() < 8) return -1;
    long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // user nice system irq softirq steal
    return static_cast<double>(busy) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long long rss_kib(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    return -1;
}

long long open_file_limit(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/limits");
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("Max open files", 0) != 0) continue;
        std::istringstream in(line.substr(14));
        std::string soft;
        in >> soft;
        return soft == "unlimited" ? -1 : std::stoll(soft);
    }
    return -1;
}

long long open_fds(int pid) {
    std::error_code ec;
    std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
    if (ec) return -1;
    long long n = 0;
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
        if (ec) return -1;
        ++n;
    }
    return n;
}

json_line& json_line::str(const std::string& k, const std::string& v) {
    return raw(k, "\"" + log::json_escape(v) + "\"");
}

json_line& json_line::num(const std::string& k, double v, int decimals) {
    if (!std::isfinite(v)) return raw(k, "null");
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    return raw(k, b);
}

json_line& json_line::integer(const std::string& k, long long v) { return raw(k, std::to_string(v)); }

json_line& json_line::raw(const std::string& k, const std::string& json) {
    body_ += (body_.empty() ? "" : ",") + ("\"" + k + "\":" + json);
    return *this;
}

void json_line::print() const { std::cout << text() << std::endl; }

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

double kib_per(long long rss_before, long long rss_after, long long connections) {
    if (rss_before <= 0 || rss_after <= 0 || connections <= 0) return NAN;
    return static_cast<double>(rss_after - rss_before) / static_cast<double>(connections);
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string x; std::getline(ss, x, sep);)
        if (!x.empty()) out.push_back(x);
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("cannot read " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<std::pair<std::string, int>> parse_pids(const std::string& s) {
    std::vector<std::pair<std::string, int>> out;
    for (auto& kv : split(s, ',')) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) throw std::invalid_argument("--pids takes name=pid,...");
        out.emplace_back(kv.substr(0, eq), std::stoi(kv.substr(eq + 1)));
    }
    return out;
}

cpu_snapshot cpu_meter::now() const {
    cpu_snapshot s;
    s.wall_ms = now_ms();
    s.machine = machine_busy_seconds();
    for (auto& [_, pid] : pids_) s.procs.push_back(cpu_seconds(pid));
    s.procs.push_back(cpu_seconds(static_cast<int>(getpid())));
    return s;
}

json_line cpu_meter::json(const cpu_snapshot& a, const cpu_snapshot& b) const {
    json_line j;
    double wall = (b.wall_ms - a.wall_ms) / 1000.0;
    if (wall <= 0) return j;
    double ours = 0;
    for (std::size_t i = 0; i < a.procs.size() && i < b.procs.size(); ++i) {
        if (a.procs[i] < 0 || b.procs[i] < 0) continue;
        double d = b.procs[i] - a.procs[i];
        ours += d;
        j.num(i < pids_.size() ? pids_[i].first : "bench", 100.0 * d / wall, 0);
    }
    if (a.machine >= 0 && b.machine >= 0)
        j.num("other", std::max(0.0, 100.0 * (b.machine - a.machine - ours) / wall), 0);
    return j;
}

double cpu_meter::servers_seconds(const cpu_snapshot& a, const cpu_snapshot& b) const {
    double sum = 0;
    for (std::size_t i = 0; i < pids_.size() && i < a.procs.size() && i < b.procs.size(); ++i)
        if (a.procs[i] >= 0 && b.procs[i] >= 0) sum += b.procs[i] - a.procs[i];
    return sum;
}

int cpu_meter::pid_of(const std::string& name) const {
    for (auto& [n, pid] : pids_)
        if (n == name) return pid;
    return 0;
}

bool apply_flags(int argc, char** argv, const flag_setters& set, const char* usage) {
    auto flags = config::split_flags(argc, argv);
    if (!flags) {
        std::cout << usage;
        return false;
    }
    for (auto& [name, value] : *flags) {
        auto it = set.find(name);
        if (it == set.end()) throw std::invalid_argument("unknown option --" + name + " (see --help)");
        it->second(value);
    }
    return true;
}

int run_main(const std::string& name, double max_s, std::function<asio::awaitable<int>(asio::io_context&)> body) {
    log::init(name, "plain", "warn");
    asio::io_context ioc(1);
    int rc = 1;
    bool finished = false;
    asio::co_spawn(ioc, body(ioc), [&](std::exception_ptr e, int r) {
        finished = true;
        rc = r;
        if (e) {
            rc = 1;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                std::cerr << name << ": " << ex.what() << "\n";
            }
        }
        ioc.stop();
    });
    // the whole run is bounded even if a step hangs
    asio::steady_timer watchdog(ioc, std::chrono::milliseconds(static_cast<long long>(max_s * 1000)));
    watchdog.async_wait([&](boost::system::error_code ec) {
        if (ec) return;
        std::cerr << name << ": gave up after " << max_s << " s (--max-s)\n";
        ioc.stop();
    });
    ioc.run();
    return finished ? rc : 3;
}

}  // namespace warmline::bench
