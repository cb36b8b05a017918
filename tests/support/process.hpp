// A child process for integration tests: started with fork/exec, its stdout readable line by
// line with a deadline, stopped with any signal (SIGKILL included) and always reaped.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace warmline::test {

class child_process {
public:
    // argv[0] is the program path. stderr goes to `stderr_file` (or is inherited when empty).
    explicit child_process(std::vector<std::string> argv, std::string stderr_file = {});
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    // The next stdout line, or nullopt when `limit` passes or the child closed stdout.
    std::optional<std::string> read_line(std::chrono::milliseconds limit);
    // Read lines until one starts with `prefix`; returns the rest of it. Throws on timeout.
    std::string wait_for(const std::string& prefix, std::chrono::milliseconds limit);
    void signal(int sig);
    // Wait for the child to exit; returns its status as waitpid reports it, or -1 if still
    // running after `limit`.
    int wait(std::chrono::milliseconds limit);
    int pid() const { return pid_; }
    // For a Warmline service: the port in its "READY <scheme>://<host>:<port>/..." line.
    std::uint16_t ready_port(std::chrono::milliseconds limit = std::chrono::seconds(10));

private:
    int pid_ = -1;
    int out_ = -1;
    std::string buffer_;
    bool reaped_ = false;
};

}  // namespace warmline::test
