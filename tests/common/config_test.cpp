// Flags, environment and validation sentences of common/config.
#include "common/config.hpp"

#include <doctest/doctest.h>

using warmline::config::config_error;
using warmline::config::options;

namespace {
options make() {
    options o("svc", "test");
    o.add("offer-timeout-ms", "30000", "ms");
    o.add("origins", "", "list");
    o.add("tls", "false", "bool");
    return o;
}
}  // namespace

TEST_CASE("config: a flag beats the environment, which beats the default") {
    auto o = make();
    const char* args[] = {"svc", "--offer-timeout-ms=500"};
    REQUIRE(o.parse(2, args, {{"WARMLINE_OFFER_TIMEOUT_MS", "900"}, {"WARMLINE_ORIGINS", "a, b ,c"}}));
    CHECK(o.integer("offer-timeout-ms", 1, 1000) == 500);
    CHECK(o.list("origins") == std::vector<std::string>{"a", "b", "c"});
    CHECK_FALSE(o.boolean("tls"));

    auto e = make();
    const char* none[] = {"svc"};
    REQUIRE(e.parse(1, none, {{"WARMLINE_OFFER_TIMEOUT_MS", "900"}}));
    CHECK(e.integer("offer-timeout-ms", 1, 1000) == 900);
}

TEST_CASE("config: a bad value is refused with a sentence naming the option and its source") {
    auto o = make();
    const char* none[] = {"svc"};
    REQUIRE(o.parse(1, none, {{"WARMLINE_OFFER_TIMEOUT_MS", "soon"}}));
    try {
        o.integer("offer-timeout-ms", 1, 1000);
        FAIL("expected a config_error");
    } catch (const config_error& e) {
        std::string what = e.what();
        CHECK(what.find("--offer-timeout-ms") != std::string::npos);
        CHECK(what.find("WARMLINE_OFFER_TIMEOUT_MS") != std::string::npos);
        CHECK(what.find("from 1 to 1000") != std::string::npos);
    }
    auto r = make();
    const char* big[] = {"svc", "--offer-timeout-ms", "5000"};
    REQUIRE(r.parse(3, big, {}));
    CHECK_THROWS_AS(r.integer("offer-timeout-ms", 1, 1000), config_error);
}

TEST_CASE("config: unknown flags and --help") {
    auto o = make();
    const char* unknown[] = {"svc", "--nope=1"};
    CHECK_THROWS_AS(o.parse(2, unknown, {}), config_error);
    const char* dangling[] = {"svc", "--tls"};
    CHECK_THROWS_AS(o.parse(2, dangling, {}), config_error);
    const char* help[] = {"svc", "--help"};
    CHECK_FALSE(o.parse(2, help, {}));
    CHECK(o.help().find("WARMLINE_OFFER_TIMEOUT_MS") != std::string::npos);
}
