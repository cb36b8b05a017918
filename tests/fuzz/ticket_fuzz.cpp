// libFuzzer: the relay ticket (common/ticket.hpp). A forged, truncated or garbled ticket is
// refused without a crash; one that verifies is exactly what signing its claims gives.
#include "common/ticket.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    const std::string secret = "fuzz-secret-fuzz-secret-fuzz-secret!";
    warmline::ticket::claims c;
    const auto verdict = warmline::ticket::verify(secret, in, 1'800'000'000'000, c);
    if (verdict == warmline::ticket::verdict::ok && warmline::ticket::sign(secret, c) != in) std::abort();
    // and a well-signed ticket of whatever session id the input is
    warmline::ticket::claims made{in, warmline::ticket::role::listener, 1'900'000'000'000};
    const auto signed_ticket = warmline::ticket::sign(secret, made);
    warmline::ticket::claims back;
    const auto v = warmline::ticket::verify(secret, signed_ticket, 1'800'000'000'000, back);
    if (v == warmline::ticket::verdict::ok && (back.session_id != in || back.who != made.who)) std::abort();
    return 0;
}
