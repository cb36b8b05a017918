// The protobuf writer of common/lua/base.lua, run inside a real redis-server: what the scripts
// publish must parse with the code generated from proto/warmline/v1/events.proto, field for
// field, at the edges of the varint encoding and with binary bytes.
#include "common/lua_sources.hpp"
#include "tests/support/redis_server.hpp"
#include "warmline/v1/events.pb.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

using namespace warmline;
using warmline::test::redis_server;

namespace {

// Evaluate `body` after base.lua (ARGV[1] now, ARGV[2] TTL, then `args`) and return its reply.
std::string eval_after_base(const redis_server& r, const std::string& body, std::vector<std::string> args = {}) {
    std::vector<std::string> cmd{"EVAL", lua::lua_sources().at("base") + "\n" + body, "0", "1800000000000", "86400"};
    for (auto& a : args) cmd.push_back(std::move(a));
    return r.cmd(cmd);
}

}  // namespace

TEST_CASE("lua events: varints round-trip at every byte boundary up to 2^53") {
    redis_server r;
    // Offer.deadline_unix_ms is an int64 and waited_s a uint32: both carry our varints
    for (std::uint64_t n : {0ULL, 1ULL, 127ULL, 128ULL, 16383ULL, 16384ULL, 2097151ULL, 2097152ULL, 4294967295ULL,
                            4294967296ULL, 1800000000123ULL, (1ULL << 53) - 1}) {
        CAPTURE(n);
        auto bytes = eval_after_base(r, "return PB.msg(1, PB.bytes(1, 'l1') .. PB.msg(2, PB.uint(5, ARGV[3])))",
                                     {std::to_string(n)});
        v1::MatchEvent e;
        REQUIRE(e.ParseFromString(bytes));
        REQUIRE(e.has_offer());
        CHECK(e.offer().listener_id() == "l1");
        CHECK(static_cast<std::uint64_t>(e.offer().offer().deadline_unix_ms()) == n);
    }
    // a negative number (a bug of ours) is written as 0 rather than as garbage
    v1::MatchEvent e;
    REQUIRE(e.ParseFromString(eval_after_base(r, "return PB.msg(1, PB.msg(2, PB.uint(5, -5)))")));
    CHECK(e.offer().offer().deadline_unix_ms() == 0);
}

TEST_CASE("lua events: binary bytes, bools, enums and nested messages parse as the proto says") {
    redis_server r;
    std::string cipher;
    for (int i = 0; i < 300; ++i) cipher += static_cast<char>(i % 256);  // every byte value, NUL included
    auto bytes = eval_after_base(
        r, "return PB.bytes(1, 'c9') .. PB.uint(2, ROLE.l) .. PB.msg(10, PB.uint(1, ROLE.s) .. PB.uint(2, 42) .. "
           "PB.bytes(3, ARGV[3]) .. PB.uint(4, NOW))",
        {cipher});
    v1::RelayEvent d;
    REQUIRE(d.ParseFromString(bytes));
    CHECK(d.session_id() == "c9");
    CHECK(d.to() == v1::LISTENER);
    REQUIRE(d.has_deliver());
    CHECK(d.deliver().from() == v1::SEEKER);
    CHECK(d.deliver().seq() == 42);
    CHECK(d.deliver().ciphertext() == cipher);
    CHECK(d.deliver().sent_unix_ms() == 1800000000000);

    // a oneof member holding its default value (typing = false) is still set
    v1::RelayEvent typing;
    REQUIRE(typing.ParseFromString(eval_after_base(r, "return PB.bytes(1, 'c9') .. PB.uint(2, ROLE.s) .. PB.bool(12, false)")));
    CHECK(typing.kind_case() == v1::RelayEvent::kTyping);
    CHECK_FALSE(typing.typing());

    // chat_ended_pb: a side's end names the role; Warmline's end names the reason
    v1::ChatEnded by_side, idle, lost;
    REQUIRE(by_side.ParseFromString(eval_after_base(r, "return chat_ended_pb('c1', 'listener')")));
    CHECK(by_side.session_id() == "c1");
    CHECK(by_side.ended_by() == v1::LISTENER);
    CHECK(by_side.reason().empty());
    REQUIRE(idle.ParseFromString(eval_after_base(r, "return chat_ended_pb('c1', 'idle')")));
    CHECK(idle.ended_by() == v1::ROLE_UNSPECIFIED);
    CHECK(idle.reason() == "idle");
    REQUIRE(lost.ParseFromString(eval_after_base(r, "return chat_ended_pb('c1', 'peer_lost', 'l', true)")));
    CHECK(lost.reason() == "peer_lost");
    CHECK(lost.lost() == v1::LISTENER);
    CHECK(lost.requeued());
}
