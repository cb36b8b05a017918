// The soak's faults and the processes they hit. scripts/soak starts every process and leaves in
// the run directory NAME.pid (and NAME.out with its READY line, NAME.port for a Redis server);
// this file kills a matchmaker or a relay and starts it again with the command line /proc had
// for it (its new pid goes back into NAME.pid, so the script's clean-up finds it), stalls the
// Redis primary with SIGSTOP/SIGCONT, and asks a sentinel for a failover. The schedule is drawn
// from the seed before the run starts.
//
// Used from the soak's fault thread only (the schedule from main before it).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace warmline::soak {

inline std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline int pid_of(const std::string& run_dir, const std::string& name) {
    try {
        return std::stoi(slurp(run_dir + "/" + name + ".pid"));
    } catch (const std::exception&) {
        return -1;
    }
}

// A command's standard output (redis-cli), trimmed; empty if it could not run.
inline std::string run_command(const std::string& cmd) {
    std::string out;
    if (FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r")) {
        std::array<char, 512> buf{};
        while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
        ::pclose(p);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
    return out;
}

// Gone, or a zombie nobody reaped yet.
inline bool is_zombie(int pid) {
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return stat.empty() || (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
}

// Whether the process NAME of the run directory is running.
inline bool alive(const std::string& run_dir, const std::string& name) {
    const int pid = pid_of(run_dir, name);
    return pid > 0 && ::kill(pid, 0) == 0 && !is_zombie(pid);
}

struct planned_fault {
    double at_ms;
    std::string kind;  // kill_matchmaker, kill_relay, redis_stall, failover
};

// For a run of `seconds`: one of each kind per started window (failover every 180 s, "a failover
// every few minutes", the others every 120 s; at least one of each), at random times between 8 s
// and 10 s before the end, at least 6 s apart (failovers 30 s), so that each fault's recovery can
// be seen on its own.
inline std::vector<planned_fault> plan_faults(double seconds, std::mt19937_64& rng) {
    std::vector<std::string> kinds;
    const auto add = [&](const std::string& k, double every_s, int at_least = 1) {
        const int n = std::max(at_least, static_cast<int>(seconds >= every_s ? std::ceil(seconds / every_s - 0.01) : 0));
        for (int i = 0; i < n; ++i) kinds.push_back(k);
    };
    add("kill_matchmaker", 120);
    add("kill_relay", 120);
    add("redis_stall", 120);
    add("failover", 180);
    const double from = 8000, to = std::max(from + 1000, seconds * 1000 - 10000);
    // one fault in each of n equal slots, at a random time that leaves the next slot's fault at
    // least `gap` (6 s, or half a slot when slots are short) later
    const double slot = (to - from) / static_cast<double>(kinds.size());
    const double gap = std::min(6000.0, slot / 2);
    std::uniform_real_distribution<double> within(0, slot - gap);
    std::vector<double> at;
    for (std::size_t i = 0; i < kinds.size(); ++i) at.push_back(from + static_cast<double>(i) * slot + within(rng));
    // two failovers at least 30 s apart where there is room: Sentinel makes the old primary a
    // replica only ~10 s after a failover, and until then there is no replica to fail over to
    for (int attempt = 0; attempt < 10000; ++attempt) {
        std::shuffle(kinds.begin(), kinds.end(), rng);
        bool ok = true;
        double last_failover = -1e9;
        for (std::size_t i = 0; i < at.size(); ++i) {
            if (kinds[i] != "failover") continue;
            ok = ok && at[i] - last_failover >= 30000;
            last_failover = at[i];
        }
        if (ok) break;
    }
    std::vector<planned_fault> out;
    for (std::size_t i = 0; i < kinds.size(); ++i) out.push_back({at[i], kinds[i]});
    return out;
}

class fault_injector {
public:
    fault_injector(std::string run_dir, std::vector<std::string> sentinels, std::string master)
        : dir_(std::move(run_dir)), sentinels_(std::move(sentinels)), master_(std::move(master)) {}

    // SIGKILL the process `name`, wait `down_ms`, start it again as it was and wait for READY.
    // False (with why) if it could not be started again.
    bool kill_and_restart(const std::string& name, int down_ms, std::string& why) {
        const int pid = pid_of(dir_, name);
        if (pid <= 0) return (why = "no pid for " + name), false;
        const std::vector<std::string> argv = command_line(pid);
        if (argv.empty()) return (why = "no command line for " + name), false;
        ::kill(pid, SIGKILL);
        for (int i = 0; i < 200 && ::kill(pid, 0) == 0; ++i) {
            ::waitpid(pid, nullptr, WNOHANG);  // ours if an earlier fault started it
            if (is_zombie(pid)) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
        const std::string out = dir_ + "/" + name + ".out";
        const pid_t child = ::fork();
        if (child == 0) {
            const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            const int e = ::open((dir_ + "/" + name + ".log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (o >= 0) ::dup2(o, 1);
            if (e >= 0) ::dup2(e, 2);
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        if (child < 0) return (why = "fork failed"), false;
        std::ofstream(dir_ + "/" + name + ".pid") << child << "\n";
        for (int i = 0; i < 1000; ++i) {  // 10 s
            if (slurp(out).find("READY") != std::string::npos) return true;
            if (::waitpid(child, nullptr, WNOHANG) == child) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        why = name + " did not start again (see " + dir_ + "/" + name + ".log)";
        return false;
    }

    // SIGSTOP the Redis primary for `ms`, then SIGCONT.
    bool stall_primary(int ms, std::string& why) {
        const std::string name = primary_name();
        const int pid = name.empty() ? -1 : pid_of(dir_, name);
        if (pid <= 0) return (why = "no primary found"), false;
        ::kill(pid, SIGSTOP);
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        ::kill(pid, SIGCONT);
        return true;
    }

    // SENTINEL FAILOVER, asked of the first sentinel that says OK (a replica still catching up
    // after a stall is refused for a moment: tried again for up to 10 s).
    bool failover(std::string& why) {
        for (int attempt = 0; attempt < 20; ++attempt) {
            for (const auto& s : sentinels_) {
                const auto reply = run_command("redis-cli -h 127.0.0.1 -p " + s + " SENTINEL FAILOVER " + master_);
                if (reply == "OK") return true;
                why = "SENTINEL FAILOVER: " + reply;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
        return false;
    }

    // The run-directory name (redis_a, redis_b) of the server the sentinels call the primary.
    std::string primary_name() {
        for (const auto& s : sentinels_) {
            const auto reply =
                run_command("redis-cli -h 127.0.0.1 -p " + s + " SENTINEL get-master-addr-by-name " + master_);
            const auto nl = reply.find('\n');
            if (nl == std::string::npos) continue;
            const std::string port = reply.substr(nl + 1);
            for (const char* n : {"redis_a", "redis_b"}) {
                auto p = slurp(dir_ + "/" + n + ".port");
                while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.pop_back();
                if (p == port) return n;
            }
        }
        return {};
    }

private:
    static std::vector<std::string> command_line(int pid) {
        const std::string raw = slurp("/proc/" + std::to_string(pid) + "/cmdline");
        std::vector<std::string> out;
        std::string cur;
        for (char c : raw) {
            if (c == '\0') {
                out.push_back(cur);
                cur.clear();
            } else {
                cur += c;
            }
        }
        if (!out.empty() && out[0].find('/') == std::string::npos) out.clear();  // execv needs a path
        return out;
    }

    std::string dir_;
    std::vector<std::string> sentinels_;
    std::string master_;
};

}  // namespace warmline::soak
