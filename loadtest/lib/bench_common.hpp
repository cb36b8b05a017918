// What every load generator behind scripts/bench shares, apart from sockets (lib/ws_peer.hpp):
// one steady clock, what /proc says about a process (CPU, RSS, descriptors), the CPU meter that
// every step line carries, percentiles, and the one-line JSON builder. Compiled once into the
// wl_loadtest library that every loadtest executable links.
//
// Single-threaded by design, like the generators: nothing here takes a lock.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace warmline::bench {
namespace asio = boost::asio;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// ---- one clock -------------------------------------------------------------------------------

// Milliseconds since this process started, on the steady clock: every timestamp a generator
// compares (sent, received) comes from here.
double now_ms();
std::chrono::steady_clock::time_point at_ms(double ms);
std::int64_t unix_ms();
asio::awaitable<void> sleep_until_ms(double ms);
asio::awaitable<void> sleep_for_ms(double ms);

// ---- /proc -----------------------------------------------------------------------------------

// CPU seconds (user + system) a process has used; -1 if it is gone.
double cpu_seconds(int pid);
// Busy CPU seconds of the whole machine, all cores together.
double machine_busy_seconds();
// VmRSS in KiB, or -1.
long long rss_kib(int pid);
// The soft "Max open files" of a process, or -1 (also for unlimited).
long long open_file_limit(int pid);
// Descriptors a process has open right now (entries of /proc/PID/fd), or -1.
long long open_fds(int pid);

// ---- JSON lines and statistics ---------------------------------------------------------------

// One JSON object on one line, built field by field in order.
class json_line {
public:
    json_line& str(const std::string& k, const std::string& v);
    // Not finite (NaN: not measured) is written as null.
    json_line& num(const std::string& k, double v, int decimals = 1);
    json_line& integer(const std::string& k, long long v);
    json_line& raw(const std::string& k, const std::string& json);
    std::string text() const { return "{" + body_ + "}"; }
    void print() const;

private:
    std::string body_;
};

// The p-th percentile (nearest rank) of v; NaN for an empty v.
double percentile(std::vector<double> v, double p);

// Memory a server grew by per connection held (RSS in KiB before and after); NaN if unknown.
double kib_per(long long rss_before, long long rss_after, long long connections);

std::vector<std::string> split(const std::string& s, char sep);
std::string read_file(const std::string& path);

// ---- CPU per process over a step -------------------------------------------------------------

struct cpu_snapshot {
    double wall_ms = 0;
    double machine = 0;
    std::vector<double> procs;  // the meter's processes, then this one
};

// "name=pid,..." as given to --pids.
std::vector<std::pair<std::string, int>> parse_pids(const std::string& s);

// CPU use of named processes and of this one ("bench") over a window, in percent of one core,
// plus "other": the rest of the machine. Other engineers' builds share these cores; "other" is
// how a slow run is told from a busy machine.
class cpu_meter {
public:
    explicit cpu_meter(std::vector<std::pair<std::string, int>> pids = {}) : pids_(std::move(pids)) {}
    cpu_snapshot now() const;
    json_line json(const cpu_snapshot& a, const cpu_snapshot& b) const;
    // CPU seconds the named processes (not this one) used between a and b.
    double servers_seconds(const cpu_snapshot& a, const cpu_snapshot& b) const;
    const std::vector<std::pair<std::string, int>>& pids() const { return pids_; }
    int pid_of(const std::string& name) const;

private:
    std::vector<std::pair<std::string, int>> pids_;
};

// ---- command line and main -------------------------------------------------------------------

using flag_setters = std::map<std::string, std::function<void(const std::string&)>>;

// Setters for a flag_setters table: the flag's value parsed into x (std::stoi / std::stod throw
// std::invalid_argument on a bad number).
inline std::function<void(const std::string&)> into(std::string& x) {
    return [&x](const std::string& v) { x = v; };
}
inline std::function<void(const std::string&)> into(int& x) {
    return [&x](const std::string& v) { x = std::stoi(v); };
}
inline std::function<void(const std::string&)> into(double& x) {
    return [&x](const std::string& v) { x = std::stod(v); };
}

// Apply --name value flags (config::split_flags) through `set`; throws std::invalid_argument
// for an unknown one. False after printing `usage` for --help.
bool apply_flags(int argc, char** argv, const flag_setters& set, const char* usage);

// The main of a generator: stdout carries only JSON lines (logging goes to stderr at warn), one
// thread runs `body`, and the whole run is bounded by max_s. Returns body's exit code, 1 if it
// threw, 3 if it ran out of time.
int run_main(const std::string& name, double max_s, std::function<asio::awaitable<int>(asio::io_context&)> body);

// main() of a generator: parse(argc, argv) gives its options (nullopt once --help is printed;
// they have a max_s), then a Bench(ioc, options) runs on one thread. Bad options exit with 2.
template <class Bench, class Parse>
int generator_main(const std::string& name, int argc, char** argv, Parse parse) {
    try {
        auto opt = parse(argc, argv);
        if (!opt) return 0;
        return run_main(name, opt->max_s, [&](asio::io_context& ioc) -> asio::awaitable<int> {
            Bench b(ioc, std::move(*opt));
            co_return co_await b.run();
        });
    } catch (const std::exception& e) {
        std::cerr << name << ": " << e.what() << "\n";
        return 2;
    }
}

// ---- bounded concurrency ---------------------------------------------------------------------

// Run fn(i) for i in [0, n) with at most `parallel` running at once; returns when all are done.
// An exception escaping fn(i) is reported on stderr and ends only that call.
template <class Fn>
asio::awaitable<void> for_each_parallel(int n, int parallel, Fn fn) {
    auto ex = co_await asio::this_coro::executor;
    auto next = std::make_shared<int>(0);
    const int workers = std::min(parallel, n);
    auto live = std::make_shared<int>(workers);
    for (int w = 0; w < workers; ++w) {
        asio::co_spawn(ex, [next, live, n, fn]() -> asio::awaitable<void> {
            while (*next < n) {
                int i = (*next)++;
                try {
                    co_await fn(i);
                } catch (const std::exception& e) {
                    std::cerr << "bench: worker " << i << ": " << e.what() << "\n";
                }
            }
            --*live;
        }, asio::detached);
    }
    while (*live > 0) co_await sleep_for_ms(5);
}

}  // namespace warmline::bench
