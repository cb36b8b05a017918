// Unit tests for the parts of the Redis client that need no server: parsing redis:// URLs into
// endpoints (and refusing bad ones without echoing the password), reading integers and strings
// out of reply values, script SHA1s, and the adapter's SIGPIPE guard.
#include "common/redis.hpp"
#include "common/redis_asio_adapter.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <string>

#include <sys/socket.h>
#include <unistd.h>

using warmline::redis::endpoint;
using warmline::redis::value;

namespace {

// The message of the std::invalid_argument that parsing `url` throws, or "" if it parses.
std::string parse_error(const std::string& url) {
    try {
        endpoint::parse(url);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

value string_value(std::string s, value::kind k = value::kind::string) {
    value v;
    v.type = k;
    v.str = std::move(s);
    return v;
}

}  // namespace

TEST_CASE("redis endpoint: a bare redis:// URL means 127.0.0.1:6379 database 0") {
    const auto ep = endpoint::parse("redis://");
    CHECK(ep.host == "127.0.0.1");
    CHECK(ep.port == 6379);
    CHECK(ep.db == 0);
    CHECK(ep.password.empty());
}

TEST_CASE("redis endpoint: host, port, database and password are all read") {
    SUBCASE("every part") {
        const auto ep = endpoint::parse("redis://:s3cret@redis.internal:6380/4");
        CHECK(ep.host == "redis.internal");
        CHECK(ep.port == 6380);
        CHECK(ep.db == 4);
        CHECK(ep.password == "s3cret");
    }
    SUBCASE("host only keeps the default port and database") {
        const auto ep = endpoint::parse("redis://10.0.0.7");
        CHECK(ep.host == "10.0.0.7");
        CHECK(ep.port == 6379);
        CHECK(ep.db == 0);
    }
    SUBCASE("a trailing slash means database 0") {
        CHECK(endpoint::parse("redis://h:1/").db == 0);
    }
    SUBCASE("an IPv6 host in brackets") {
        const auto ep = endpoint::parse("redis://[::1]:7000/2");
        CHECK(ep.host == "::1");
        CHECK(ep.port == 7000);
        CHECK(ep.db == 2);
    }
    SUBCASE("a %-encoded password is decoded, and the last '@' ends it") {
        CHECK(endpoint::parse("redis://:p%40ss%2Fw0rd@h").password == "p@ss/w0rd");
        CHECK(endpoint::parse("redis://:a@b@h:1").password == "a@b");
        CHECK(endpoint::parse("redis://:a@b@h:1").host == "h");
    }
}

TEST_CASE("redis endpoint: to_string round-trips everything but the password") {
    const auto ep = endpoint::parse("redis://:topsecret@cache:6390/3");
    CHECK(ep.to_string() == "redis://cache:6390/3");
    CHECK(ep.to_string().find("topsecret") == std::string::npos);
    const auto again = endpoint::parse(ep.to_string());
    CHECK(again.host == ep.host);
    CHECK(again.port == ep.port);
    CHECK(again.db == ep.db);
    CHECK(endpoint::parse("redis://[::1]:7000/0").to_string() == "redis://[::1]:7000/0");
}

TEST_CASE("redis endpoint: malformed URLs are refused with a sentence saying why") {
    CHECK(parse_error("http://localhost:6379").find("redis://") != std::string::npos);
    CHECK(parse_error("localhost:6379").find("redis://") != std::string::npos);
    CHECK(parse_error("rediss://localhost").find("TLS") != std::string::npos);
    CHECK(parse_error("redis://h:0").find("port") != std::string::npos);
    CHECK(parse_error("redis://h:65536").find("port") != std::string::npos);
    CHECK(parse_error("redis://h:12ab").find("port") != std::string::npos);
    CHECK(parse_error("redis://h:").find("port") != std::string::npos);
    CHECK(parse_error("redis://h:1/x").find("database") != std::string::npos);
    CHECK(parse_error("redis://h:1/-1").find("database") != std::string::npos);
    CHECK(parse_error("redis://h:1/1/2").find("database") != std::string::npos);
    CHECK(parse_error("redis://::1:6379").find("IPv6") != std::string::npos);
    CHECK(parse_error("redis://[::1:6379").find("]") != std::string::npos);
    CHECK(parse_error("redis://h:1?db=2").find("query") != std::string::npos);
    CHECK(parse_error("redis://user:pw@h").find("user name") != std::string::npos);
    CHECK(parse_error("redis://:pw%4@h").find("%") != std::string::npos);
}

TEST_CASE("redis endpoint: error messages never repeat the password") {
    // Parse errors end up in logs; the password must not.
    for (const std::string url : {"redis://:hunter2@h:99999", "redis://:hunter2@h:1/db",
                                  "redis://:hunter2@h:1?x", "redis://:hunter2%zz@h"}) {
        const auto msg = parse_error(url);
        CHECK_FALSE(msg.empty());
        CHECK(msg.find("hunter2") == std::string::npos);
    }
}

TEST_CASE("redis value: as_int reads integers and numeric strings and refuses the rest") {
    value i;
    i.type = value::kind::integer;
    i.integer = -42;
    CHECK(i.as_int() == -42);
    CHECK(string_value("9007199254740993").as_int() == 9007199254740993LL);
    CHECK(string_value("-7", value::kind::status).as_int() == -7);
    CHECK_THROWS_AS(string_value("12x").as_int(), std::runtime_error);
    CHECK_THROWS_AS(string_value("").as_int(), std::runtime_error);
    CHECK_THROWS_AS(string_value(" 1").as_int(), std::runtime_error);
    CHECK_THROWS_AS(string_value("99999999999999999999").as_int(), std::runtime_error);
    CHECK_THROWS_AS(value{}.as_int(), std::runtime_error);
    CHECK_THROWS_AS(string_value("1", value::kind::error).as_int(), std::runtime_error);
}

TEST_CASE("redis value: as_string gives string and status text, empty for nil, and throws otherwise") {
    CHECK(string_value(std::string("a\0b", 3)).as_string() == std::string("a\0b", 3));
    CHECK(string_value("OK", value::kind::status).as_string() == "OK");
    CHECK(value{}.as_string().empty());
    CHECK(value{}.is_nil());
    CHECK_THROWS_AS(string_value("ERR boom", value::kind::error).as_string(), std::runtime_error);
    value arr;
    arr.type = value::kind::array;
    arr.elements.push_back(string_value("x"));
    CHECK_THROWS_AS(arr.as_string(), std::runtime_error);
    value i;
    i.type = value::kind::integer;
    i.integer = 5;
    CHECK_THROWS_AS(i.as_string(), std::runtime_error);
}

TEST_CASE("redis script: the SHA1 is computed locally from the source") {
    const warmline::redis::script s("return 1");
    CHECK(s.source() == "return 1");
    // `redis-cli SCRIPT LOAD "return 1"` prints this.
    CHECK(s.sha1() == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST_CASE("redis adapter: a write into a socket the peer has closed raises no SIGPIPE under the guard") {
    // hiredis writes with write(2); without the guard this kills the test binary.
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    ::close(pair[1]);
    ssize_t written = 0;
    int error = 0;
    {
        warmline::redis::detail::sigpipe_guard guard;
        written = ::write(pair[0], "x", 1);
        error = errno;
    }
    ::close(pair[0]);
    CHECK(written == -1);
    CHECK(error == EPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    CHECK_FALSE(sigismember(&pending, SIGPIPE));
}
