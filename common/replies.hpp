// The replies every WebSocket service builds the same way, for either envelope
// (v1::ServerMessage of the matchmaker, v1::RelayServerMessage of the relay): an Error with a
// code and a sentence, a script's refusal turned into one, and Ok.
#pragma once

#include "common/metrics.hpp"
#include "common/script_reply.hpp"
#include "warmline/v1/common.pb.h"

#include <string>

namespace warmline {

template <class Envelope>
Envelope error_reply(v1::ErrorCode code, std::string message) {
    Envelope m;
    m.mutable_error()->set_code(code);
    m.mutable_error()->set_message(std::move(message));
    return m;
}

// A code the proto does not know is a bug of ours: it goes out as INTERNAL.
template <class Envelope>
Envelope refusal_reply(const refusal& r) {
    v1::ErrorCode code = v1::INTERNAL;
    if (!v1::ErrorCode_Parse(r.code, &code)) code = v1::INTERNAL;
    return error_reply<Envelope>(code, r.message);
}

template <class Envelope>
Envelope ok_reply() {
    Envelope m;
    m.mutable_ok();
    return m;
}

// Register the counter `name` labelled code="<ErrorCode>" for every code a client can be sent,
// at 0, so that the series exist (for dashboards and alerts) before the first error.
inline void count_every_error_code(metrics::registry& m, const std::string& name, const std::string& help) {
    const auto* codes = v1::ErrorCode_descriptor();
    for (int i = 0; i < codes->value_count(); ++i)
        if (codes->value(i)->number() != 0) m.counter(name, help, "code=\"" + codes->value(i)->name() + "\"");
}

}  // namespace warmline
