// libFuzzer: the envelope codec (common/codec.hpp) on every message of both services, binary and
// JSON. Anything may come in; whatever decodes must encode and decode again to the same message.
#include "common/codec.hpp"
#include "warmline/v1/matchmaker.pb.h"
#include "warmline/v1/relay.pb.h"

#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using warmline::codec::format;

template <class Message>
void round_trip(std::string_view data, format f) {
    Message m;
    std::string why;
    if (!warmline::codec::decode(data, f, m, why)) {
        if (why.empty()) std::abort();  // a refusal always says why
        return;
    }
    // fields this version does not know survive a binary round trip but not a JSON one: they
    // are not part of the message the services act on
    m.DiscardUnknownFields();
    for (format again : {format::binary, format::json}) {
        const std::string encoded = warmline::codec::encode(m, again);
        Message back;
        if (!warmline::codec::decode(encoded, again, back, why)) std::abort();
        if (!google::protobuf::util::MessageDifferencer::Equals(back, m)) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    for (format f : {format::binary, format::json}) {
        round_trip<warmline::v1::ClientMessage>(in, f);
        round_trip<warmline::v1::ServerMessage>(in, f);
        round_trip<warmline::v1::RelayClientMessage>(in, f);
        round_trip<warmline::v1::RelayServerMessage>(in, f);
    }
    return 0;
}
