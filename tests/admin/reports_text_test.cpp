// admin::printable: a report's text is the seeker's and untrusted; what the safety team's
// terminal shows must be exactly that text, never something the text makes the terminal do.
#include "services/admin/reports.hpp"

#include <doctest/doctest.h>

using warmline::admin::printable;

TEST_CASE("printable keeps ordinary text, accents, scripts and emoji as they are") {
    CHECK(printable("plain text") == "plain text");
    CHECK(printable("Grüße, 你好, ça va? 🌱") == "Grüße, 你好, ça va? 🌱");
}

TEST_CASE("printable escapes C0 controls, DEL and backslashes") {
    CHECK(printable("a\nb\tc\\d") == "a\\nb\\tc\\\\d");
    CHECK(printable("\x1b[31mred") == "\\x1b[31mred");
    CHECK(printable(std::string("nul\0x", 5)) == "nul\\x00x");
    CHECK(printable("\x7f") == "\\x7f");
}

TEST_CASE("printable escapes C1 controls and bidirectional overrides, which terminals act on") {
    CHECK(printable("\xc2\x9b" "31mred") == "\\u{009b}31mred");            // the 8-bit CSI
    CHECK(printable("\xc2\x85") == "\\u{0085}");                          // NEL
    CHECK(printable("file\xe2\x80\xaegnp.exe") == "file\\u{202e}gnp.exe");  // RIGHT-TO-LEFT OVERRIDE
    CHECK(printable("\xe2\x81\xa6x\xe2\x81\xa9") == "\\u{2066}x\\u{2069}");  // isolates
}

TEST_CASE("printable writes bytes that are not UTF-8 as \\xNN, overlong forms included") {
    CHECK(printable("\xff") == "\\xff");
    CHECK(printable("\xc2") == "\\xc2");                      // cut short
    CHECK(printable("\xe0\x82\x9b") == "\\xe0\\x82\\x9b");    // U+009B written overlong
    CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");
}
