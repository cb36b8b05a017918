// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command line into
// `dir` (a test's temp dir). Returns {certificate path, key path}; fails the test if openssl does.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <utility>

namespace warmline::test {

inline std::pair<std::string, std::string> make_test_certificate(const std::string& dir) {
    const std::string cert = dir + "/cert.pem";
    const std::string key = dir + "/key.pem";
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        " -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -days 1"
        " -keyout " +
        key + " -out " + cert + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    return {cert, key};
}

}  // namespace warmline::test
