// Unit tests for the parts of the Redis client that need no server: parsing redis://,
// redis-sentinel:// and redis-cluster:// URLs into endpoints (and refusing bad ones without
// echoing the password), Redis Cluster's CRC16 and key slots,
// reading integers and strings out of reply values, script SHA1s, and the adapter's SIGPIPE
// guard.
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

TEST_CASE("redis endpoint: a redis-sentinel:// URL lists the sentinels in order, the master's name and the database") {
    SUBCASE("every part") {
        const auto ep = endpoint::parse("redis-sentinel://:s3cret@10.0.0.1:26380,sentinel-b:26381,[::1]:26382/mymaster/3");
        REQUIRE(ep.via_sentinel());
        REQUIRE(ep.sentinels.size() == 3);
        CHECK(ep.sentinels[0] == endpoint::address{"10.0.0.1", 26380});
        CHECK(ep.sentinels[1] == endpoint::address{"sentinel-b", 26381});
        CHECK(ep.sentinels[2] == endpoint::address{"::1", 26382});
        CHECK(ep.master_name == "mymaster");
        CHECK(ep.db == 3);
        CHECK(ep.password == "s3cret");
        // Nothing to connect to directly: a caller that reads host/port gets nothing plausible.
        CHECK(ep.host.empty());
        CHECK(ep.port == 0);
    }
    SUBCASE("sentinel ports default to 26379, the database to 0") {
        const auto ep = endpoint::parse("redis-sentinel://a,b:1/cache");
        REQUIRE(ep.sentinels.size() == 2);
        CHECK(ep.sentinels[0] == endpoint::address{"a", 26379});
        CHECK(ep.sentinels[1] == endpoint::address{"b", 1});
        CHECK(ep.master_name == "cache");
        CHECK(ep.db == 0);
        CHECK(ep.password.empty());
        CHECK(endpoint::parse("redis-sentinel://a/cache/").db == 0);
    }
    SUBCASE("a sentinel named twice is asked once") {
        CHECK(endpoint::parse("redis-sentinel://a:1,a:1,b/m").sentinels.size() == 2);
    }
    SUBCASE("a %-encoded password is decoded, and the last '@' ends it") {
        CHECK(endpoint::parse("redis-sentinel://:p%40ss@h/m").password == "p@ss");
        CHECK(endpoint::parse("redis-sentinel://:a@b@h/m").password == "a@b");
    }
    SUBCASE("a redis:// URL goes nowhere near a sentinel") {
        const auto ep = endpoint::parse("redis://h:1/2");
        CHECK_FALSE(ep.via_sentinel());
        CHECK(ep.master_name.empty());
    }
}

TEST_CASE("redis endpoint: a redis-sentinel:// URL round-trips through to_string without the password") {
    const auto ep = endpoint::parse("redis-sentinel://:topsecret@a:26379,[::1]:5/mymaster/2");
    CHECK(ep.to_string() == "redis-sentinel://a:26379,[::1]:5/mymaster/2");
    CHECK(ep.to_string().find("topsecret") == std::string::npos);
    const auto again = endpoint::parse(ep.to_string());
    CHECK(again.sentinels == ep.sentinels);
    CHECK(again.master_name == ep.master_name);
    CHECK(again.db == ep.db);
}

TEST_CASE("redis endpoint: malformed redis-sentinel:// URLs are refused with a sentence saying why") {
    CHECK(parse_error("redis-sentinel://").find("at least one sentinel") != std::string::npos);
    CHECK(parse_error("redis-sentinel:///mymaster").find("at least one sentinel") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a:26379").find("master's name") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a:26379/").find("master's name") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a,,b/m").find("empty sentinel address") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a,/m").find("empty sentinel address") != std::string::npos);
    CHECK(parse_error("redis-sentinel://,a/m").find("empty sentinel address") != std::string::npos);
    CHECK(parse_error("redis-sentinel://:26379/m").find("no host") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a:0/m").find("port") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a:99999/m").find("port") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a:x,b/m").find("port") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a:/m").find("port") != std::string::npos);
    CHECK(parse_error("redis-sentinel://::1:26379/m").find("IPv6") != std::string::npos);
    CHECK(parse_error("redis-sentinel://[::1/m").find("]") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a/my master").find("master name") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a/m%20x").find("master name") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a/m/x").find("database") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a/m/1/2").find("database") != std::string::npos);
    CHECK(parse_error("redis-sentinel://a/m?db=1").find("query") != std::string::npos);
    CHECK(parse_error("redis-sentinel://user:pw@a/m").find("user name") != std::string::npos);
    CHECK(parse_error("rediss-sentinel://a/m").find("TLS") != std::string::npos);
    CHECK(parse_error("sentinel://a/m").find("redis-sentinel://") != std::string::npos);
}

TEST_CASE("redis endpoint: redis-sentinel:// error messages never repeat the password") {
    for (const std::string url : {"redis-sentinel://:hunter2@a:99999/m", "redis-sentinel://:hunter2@a/m/db",
                                  "redis-sentinel://:hunter2@a/m?x", "redis-sentinel://:hunter2%zz@a/m",
                                  "redis-sentinel://:hunter2@/m", "redis-sentinel://:hunter2@a"}) {
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

TEST_CASE("redis endpoint: a redis-cluster:// URL names seed nodes, a password and only database 0") {
    SUBCASE("every part") {
        const auto ep = endpoint::parse("redis-cluster://:s3cret@a:7000,b:7001,[::1]:7002/0");
        CHECK(ep.is_cluster());
        CHECK_FALSE(ep.via_sentinel());
        REQUIRE(ep.cluster_nodes.size() == 3);
        CHECK(ep.cluster_nodes[0] == endpoint::address{"a", 7000});
        CHECK(ep.cluster_nodes[1] == endpoint::address{"b", 7001});
        CHECK(ep.cluster_nodes[2] == endpoint::address{"::1", 7002});
        CHECK(ep.password == "s3cret");
        CHECK(ep.db == 0);
        CHECK(ep.host.empty());
        CHECK(ep.port == 0);
    }
    SUBCASE("ports default to 6379, the path may be empty, a node named twice is kept once") {
        const auto ep = endpoint::parse("redis-cluster://a,b:1,a");
        REQUIRE(ep.cluster_nodes.size() == 2);
        CHECK(ep.cluster_nodes[0].port == 6379);
        CHECK(endpoint::parse("redis-cluster://a/").cluster_nodes.size() == 1);
    }
    SUBCASE("round trip through to_string without the password") {
        const auto ep = endpoint::parse("redis-cluster://:topsecret@a:1,[::1]:2");
        CHECK(ep.to_string() == "redis-cluster://a:1,[::1]:2/0");
        CHECK(endpoint::parse(ep.to_string()).cluster_nodes == ep.cluster_nodes);
    }
    SUBCASE("redis:// and redis-sentinel:// are not clusters") {
        CHECK_FALSE(endpoint::parse("redis://h").is_cluster());
        CHECK_FALSE(endpoint::parse("redis-sentinel://h/m").is_cluster());
    }
}

TEST_CASE("redis endpoint: malformed redis-cluster:// URLs are refused with a sentence saying why") {
    CHECK(parse_error("redis-cluster://").find("at least one cluster node") != std::string::npos);
    CHECK(parse_error("redis-cluster:///0").find("at least one cluster node") != std::string::npos);
    CHECK(parse_error("redis-cluster://a,,b").find("empty cluster node address") != std::string::npos);
    CHECK(parse_error("redis-cluster://a,").find("empty cluster node address") != std::string::npos);
    CHECK(parse_error("redis-cluster://:1").find("no host") != std::string::npos);
    CHECK(parse_error("redis-cluster://a:0").find("port") != std::string::npos);
    CHECK(parse_error("redis-cluster://a:70000").find("port") != std::string::npos);
    CHECK(parse_error("redis-cluster://a/1").find("database 0") != std::string::npos);
    CHECK(parse_error("redis-cluster://a/x").find("database") != std::string::npos);
    CHECK(parse_error("redis-cluster://a?x=1").find("query") != std::string::npos);
    CHECK(parse_error("redis-cluster://u:p@a").find("user name") != std::string::npos);
    CHECK(parse_error("rediss-cluster://a").find("TLS") != std::string::npos);
    CHECK(parse_error("cluster://a").find("redis-cluster://") != std::string::npos);
    for (const std::string url : {"redis-cluster://:hunter2@a:0", "redis-cluster://:hunter2@a/5",
                                  "redis-cluster://:hunter2%zz@a", "redis-cluster://:hunter2@"}) {
        const auto msg = parse_error(url);
        CHECK_FALSE(msg.empty());
        CHECK(msg.find("hunter2") == std::string::npos);
    }
}

TEST_CASE("redis cluster: CRC16 is the XMODEM variant Redis specifies") {
    // The reference value in the Redis Cluster specification (and crc16.c).
    CHECK(warmline::redis::crc16("123456789") == 0x31C3);
    CHECK(warmline::redis::crc16("") == 0);
}

TEST_CASE("redis cluster: a key's slot is what CLUSTER KEYSLOT answers") {
    using warmline::redis::key_slot;
    // Answers of Redis 7.0's CLUSTER KEYSLOT.
    CHECK(key_slot("foo") == 12182);
    CHECK(key_slot("bar") == 5061);
    CHECK(key_slot("hello") == 866);
    CHECK(key_slot("123456789") == 12739);
    SUBCASE("a non-empty hash tag decides, so tagged keys share a slot") {
        CHECK(key_slot("{user1000}.following") == 3443);
        CHECK(key_slot("{user1000}.followers") == 3443);
        CHECK(key_slot("foo{bar}{zap}") == 5061);  // the first tag only
        CHECK(key_slot("foo{{bar}}zap") == 4015);  // the tag is "{bar"
        CHECK(key_slot("wl:relay:{b3f}:c1") == 10669);
    }
    SUBCASE("an empty tag counts for nothing: the whole key is hashed") {
        CHECK(key_slot("foo{}{bar}") == 8363);
        CHECK(key_slot("{}foo") == 9500);
    }
}

TEST_CASE("redis cluster: a command is routed by its first key") {
    using warmline::redis::command_slot;
    using warmline::redis::key_slot;
    CHECK(command_slot({"GET", "foo"}) == key_slot("foo"));
    CHECK(command_slot({"set", "{user1000}.x", "v"}) == 3443);
    CHECK(command_slot({"EVALSHA", "abc", "2", "foo", "bar", "arg"}) == key_slot("foo"));
    CHECK_FALSE(command_slot({"EVAL", "return 1", "0", "arg"}).has_value());
    CHECK(command_slot({"XREAD", "COUNT", "5", "STREAMS", "s1", "0"}) == key_slot("s1"));
    CHECK(command_slot({"BITOP", "AND", "dest", "a"}) == key_slot("dest"));
    CHECK(command_slot({"MEMORY", "USAGE", "foo"}) == key_slot("foo"));
    CHECK(command_slot({"XGROUP", "CREATE", "s1", "g", "$"}) == key_slot("s1"));
    CHECK_FALSE(command_slot({"PING"}).has_value());
    CHECK_FALSE(command_slot({"CLUSTER", "SLOTS"}).has_value());
    CHECK_FALSE(command_slot({"SCRIPT", "LOAD", "return 1"}).has_value());
}
