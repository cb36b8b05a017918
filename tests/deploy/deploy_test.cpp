// deploy/: the systemd units, the Containerfile and the Kubernetes manifests pass their offline
// checks (tests/deploy/check_*), and each check fails on a copy broken in a way it must catch.
// The checks need the tools scripts/lib.sh's ensure_deploy_test_tools installs (systemd-analyze,
// node, and tests/deploy/node_modules from its lock file); nothing is downloaded here.
#include "tests/support/process.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using warmline::test::child_process;

namespace {

const fs::path source = WARMLINE_SOURCE_DIR;
const fs::path binary = WARMLINE_BINARY_DIR;
const fs::path checks = source / "tests/deploy";

struct result {
    int status = -1;
    std::string output;  // stdout and stderr
};

// Runs a check to its end (a few seconds at most) and collects what it printed.
result run(std::vector<std::string> argv) {
    fs::path err = fs::temp_directory_path() / ("wl-deploy-err-" + std::to_string(::getpid()));
    result r;
    {
        child_process child(std::move(argv), err.string());
        while (auto line = child.read_line(std::chrono::seconds(60))) r.output += *line + "\n";
        int status = child.wait(std::chrono::seconds(60));
        r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::ifstream in(err);
    r.output += std::string(std::istreambuf_iterator<char>(in), {});
    fs::remove(err);
    return r;
}

std::string node() {
    for (const char* p : {"/usr/bin/node", "/usr/local/bin/node"})
        if (fs::exists(p)) return p;
    FAIL("node is not installed (scripts/test installs it)");
    return {};
}

result check_systemd(const fs::path& dir) {
    return run({"/bin/bash", (checks / "check_systemd.sh").string(), dir.string(), binary.string()});
}
result check_container(const fs::path& containerfile) {
    return run({node(), (checks / "check_container.mjs").string(), source.string(), binary.string(),
                containerfile.string()});
}
result check_kubernetes(const fs::path& dir) {
    return run({node(), (checks / "check_kubernetes.mjs").string(), dir.string(), binary.string()});
}

// A copy of a folder of deploy/ in a temp dir, to break.
struct scratch {
    fs::path dir = fs::temp_directory_path() / ("wl-deploy-" + std::to_string(::getpid()));
    explicit scratch(const fs::path& from) {
        fs::remove_all(dir);
        fs::copy(from, dir, fs::copy_options::recursive);
    }
    ~scratch() { fs::remove_all(dir); }
    // Replaces the first `what` in `file` with `with`; the test fails if there is none.
    void replace(const std::string& file, const std::string& what, const std::string& with) {
        std::ifstream in(dir / file);
        std::stringstream ss;
        ss << in.rdbuf();
        std::string text = ss.str();
        auto at = text.find(what);
        REQUIRE_MESSAGE(at != std::string::npos, file << " has no '" << what << "'");
        text.replace(at, what.size(), with);
        std::ofstream(dir / file, std::ios::trunc) << text;
    }
};

void fails_with(const result& r, const std::string& message) {
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find(message) != std::string::npos);
}

}  // namespace

TEST_CASE("deploy: the systemd units pass systemd-analyze and carry the hardening") {
    auto r = check_systemd(source / "deploy/systemd");
    INFO(r.output);
    CHECK(r.status == 0);
}

TEST_CASE("deploy: a systemd unit broken in any of these ways fails the check") {
    scratch s(source / "deploy/systemd");
    SUBCASE("a unit without ProtectSystem=strict fails") {
        s.replace("warmline-relay@.service", "ProtectSystem=strict\n", "");
        fails_with(check_systemd(s.dir), "no 'ProtectSystem=strict'");
    }
    SUBCASE("a misspelt key fails systemd-analyze verify") {
        s.replace("warmline-web.service", "PrivateTmp=yes", "PrivateTemp=yes");
        fails_with(check_systemd(s.dir), "Unknown key 'PrivateTemp'");
    }
    SUBCASE("a unit with its hardening gone fails the exposure score") {
        for (auto key : {"SystemCallFilter=@system-service\n", "SystemCallFilter=~@privileged\n",
                         "RestrictNamespaces=yes\n", "ProtectKernelTunables=yes\n", "PrivateDevices=yes\n",
                         "PrivateUsers=yes\n", "CapabilityBoundingSet=\n"})
            s.replace("warmline-web.service", key, "");
        fails_with(check_systemd(s.dir), "exposure above");
    }
    SUBCASE("a stop timeout shorter than the drain fails") {
        s.replace("warmline-matchmaker@.service", "TimeoutStopSec=60s", "TimeoutStopSec=12s");
        fails_with(check_systemd(s.dir), "is not above the drain delay");
    }
    SUBCASE("an env file setting a flag the program does not have fails") {
        s.replace("env/relay.env", "WARMLINE_ACK_REPLICAS=", "WARMLINE_ACK_REPLICA=");
        fails_with(check_systemd(s.dir), "WARMLINE_ACK_REPLICA, which is not a flag of relay");
    }
}

TEST_CASE("deploy: the Containerfile passes the linter and our rules") {
    auto r = check_container(source / "deploy/container/Containerfile");
    INFO(r.output);
    CHECK(r.status == 0);
}

TEST_CASE("deploy: a Containerfile broken in any of these ways fails the check") {
    scratch s(source / "deploy/container");
    SUBCASE("running as root fails") {
        s.replace("Containerfile", "USER 10001:10001", "USER root");
        fails_with(check_container(s.dir / "Containerfile"), "want a fixed numeric non-root uid");
    }
    SUBCASE("an unpinned base fails") {
        s.replace("Containerfile", "debian:12.11-slim", "debian:latest");
        fails_with(check_container(s.dir / "Containerfile"), "pin a Debian 12 point release");
    }
    SUBCASE("no HEALTHCHECK fails") {
        s.replace("Containerfile",
                  "HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \\\n"
                  "  CMD [\"/opt/warmline/bin/healthcheck.sh\"]\n",
                  "");
        fails_with(check_container(s.dir / "Containerfile"), "no HEALTHCHECK");
    }
    SUBCASE("a runtime library left out fails") {
        s.replace("Containerfile", " libhiredis0.14", "");
        fails_with(check_container(s.dir / "Containerfile"), "lacks libhiredis0.14");
    }
    SUBCASE("a secret built into the image fails") {
        s.replace("Containerfile", "ENV WARMLINE_LISTEN", "ENV WARMLINE_TICKET_SECRET=abc WARMLINE_LISTEN");
        fails_with(check_container(s.dir / "Containerfile"), "secrets are given at run time");
    }
    SUBCASE("a syntax error fails the linter") {
        s.replace("Containerfile", "EXPOSE 8080", "EXPOSE eighty");
        fails_with(check_container(s.dir / "Containerfile"), "line ");
    }
}

TEST_CASE("deploy: the Kubernetes manifests pass the API schemas and our rules") {
    auto r = check_kubernetes(source / "deploy/kubernetes/base");
    INFO(r.output);
    CHECK(r.status == 0);
}

TEST_CASE("deploy: a Kubernetes manifest broken in any of these ways fails the check") {
    scratch s(source / "deploy/kubernetes/base");
    SUBCASE("a misspelt field fails") {
        s.replace("relay.yaml", "readinessProbe:", "readinesProbe:");
        fails_with(check_kubernetes(s.dir), "readinesProbe: no such field");
    }
    SUBCASE("a value of the wrong type fails the schema") {
        s.replace("matchmaker.yaml", "replicas: 3", "replicas: three");
        fails_with(check_kubernetes(s.dir), "/spec/replicas type");
    }
    SUBCASE("a writable root filesystem fails") {
        s.replace("web.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false");
        fails_with(check_kubernetes(s.dir), "readOnlyRootFilesystem must be true");
    }
    SUBCASE("a grace period shorter than the drain fails") {
        s.replace("relay.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 12");
        fails_with(check_kubernetes(s.dir), "is not above preStop + drain + close");
    }
    SUBCASE("a ConfigMap variable that is no flag fails") {
        s.replace("config.yaml", "WARMLINE_ACK_REPLICAS", "WARMLINE_ACK_REPLICA");
        fails_with(check_kubernetes(s.dir), "WARMLINE_ACK_REPLICA (ConfigMap warmline-relay) is not a flag of relay");
    }
    SUBCASE("a broken YAML file fails") {
        s.replace("web.yaml", "  replicas: 2", "  replicas: [2");
        fails_with(check_kubernetes(s.dir), "YAML");
    }
}
