// The envelope codec: binary and JSON carry the same message; garbage is refused, not crashed on.
#include "common/codec.hpp"
#include "warmline/v1/matchmaker.pb.h"

#include <doctest/doctest.h>

using namespace warmline;

TEST_CASE("codec: a request survives binary and JSON round trips alike") {
    v1::ClientMessage m;
    m.set_request_id("r1");
    m.mutable_request_chat()->set_topic("grief");
    m.mutable_request_chat()->set_language("en");
    m.mutable_request_chat()->set_crisis(true);
    for (auto f : {codec::format::binary, codec::format::json}) {
        v1::ClientMessage back;
        std::string err;
        REQUIRE(codec::decode(codec::encode(m, f), f, back, err));
        CHECK(back.request_id() == "r1");
        CHECK(back.request_chat().topic() == "grief");
        CHECK(back.request_chat().crisis());
    }
    CHECK(codec::encode(m, codec::format::json).find("\"requestChat\"") != std::string::npos);
}

TEST_CASE("codec: malformed JSON, unknown fields and bad protobuf are refused with a reason") {
    v1::ClientMessage m;
    std::string err;
    CHECK_FALSE(codec::decode("{not json", codec::format::json, m, err));
    CHECK(err.find("not valid JSON") != std::string::npos);
    CHECK_FALSE(codec::decode(R"({"requestId":"1","bogus":{}})", codec::format::json, m, err));
    CHECK_FALSE(codec::decode(std::string("\xff\xff\xff\xff\x0f", 5), codec::format::binary, m, err));
    CHECK(err.find("not a valid protobuf") != std::string::npos);
    CHECK(codec::decode(R"({"requestId":"1","ping":{}})", codec::format::json, m, err));
    CHECK(m.has_ping());
}
