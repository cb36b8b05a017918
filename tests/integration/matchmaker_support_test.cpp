// "I need support": a listener's request reaches every supervisor (who asks, never what was said),
// one supervisor answers and the others see that it is taken, and the side chat's sealed lines go
// to the other side only, over real WebSockets against a real redis-server.
#include "tests/integration/matchmaker_invariants.hpp"
#include "tests/integration/matchmaker_ws_fixture.hpp"

#include <doctest/doctest.h>

using namespace warmline;
using namespace warmline::test;
using M = v1::ServerMessage;

namespace {

// 32 bytes of `c`, base64 (a stand-in public key: the matchmaker only passes keys on).
std::string key_b64(char c) {
    std::string out;
    const std::string raw(32, c);
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < raw.size(); i += 3) {
        unsigned v = static_cast<unsigned char>(raw[i]) << 16;
        if (i + 1 < raw.size()) v |= static_cast<unsigned char>(raw[i + 1]) << 8;
        if (i + 2 < raw.size()) v |= static_cast<unsigned char>(raw[i + 2]);
        out += t[(v >> 18) & 63];
        out += t[(v >> 12) & 63];
        out += i + 1 < raw.size() ? t[(v >> 6) & 63] : '=';
        out += i + 2 < raw.size() ? t[v & 63] : '=';
    }
    return out;
}

std::unique_ptr<peer> supervisor(matchmaker_fixture& f, std::uint16_t port, const std::string& name,
                                 v1::StatsSnapshot* first = nullptr) {
    auto s = f.run(f.accounts->create_supervisor(name));
    auto p = std::make_unique<peer>(port);
    auto r = p->call(R"("supervisorSignIn":{"token":")" + s.token + "\"}");
    REQUIRE(r.has_stats());
    if (first) *first = r.stats();
    return p;
}

bool support_in(const M& m, v1::SupportState state) { return m.has_support() && m.support().state() == state; }

}  // namespace

TEST_CASE("support: a listener asks, every supervisor is alerted, one answers, and the side chat is private to "
          "the two" * doctest::timeout(30)) {
    matchmaker_fixture f;
    running_matchmaker mm(f.server.url(), fast_settings());
    auto a = supervisor(f, mm.port(), "Ana");
    auto b = supervisor(f, mm.port(), "Ben");
    auto account = f.listener({"anxiety"}, {"en"}, 2, /*available=*/false);
    peer listener(mm.port());
    REQUIRE(listener.call(R"("listenerSignIn":{"token":")" + account.token + "\"}").has_listener_welcome());

    // a seeker cannot ask; a bad key is refused
    peer seeker(mm.port());
    REQUIRE(seeker.call(R"("seekerHello":{})").has_seeker_welcome());
    CHECK(seeker.call(R"("askForSupport":{"publicKey":")" + key_b64('s') + "\"}").error().code() ==
          v1::PERMISSION_DENIED);
    CHECK(listener.call(R"("askForSupport":{"publicKey":"AAAA"})").error().code() == v1::INVALID_ARGUMENT);

    auto asked = listener.call(R"("askForSupport":{"publicKey":")" + key_b64('l') + "\"}");
    REQUIRE(support_in(asked, v1::SUPPORT_WAITING));
    const std::string id = asked.support().support_id();
    // asking again while it is open is the same request
    CHECK(listener.call(R"("askForSupport":{"publicKey":")" + key_b64('l') + "\"}").support().support_id() == id);
    for (auto* s : {a.get(), b.get()}) {
        auto alert = s->until([](const M& m) { return support_in(m, v1::SUPPORT_WAITING); });
        CHECK(alert.support().support_id() == id);
        CHECK(alert.support().listener_id() == account.id);
        CHECK(alert.support().listener_name() == "Listener 1");
        CHECK(alert.support().listener_key() == std::string(32, 'l'));
    }
    // a supervisor who signs in now finds it in the first snapshot
    v1::StatsSnapshot first;
    auto late = supervisor(f, mm.port(), "Cai", &first);
    REQUIRE(first.support_size() == 1);
    CHECK(first.support(0).support_id() == id);

    auto answered = a->call(R"("answerSupport":{"supportId":")" + id + R"(","publicKey":")" + key_b64('a') + "\"}");
    REQUIRE(support_in(answered, v1::SUPPORT_ANSWERED));
    CHECK(answered.support().supervisor_name() == "Ana");
    auto taken = b->call(R"("answerSupport":{"supportId":")" + id + R"(","publicKey":")" + key_b64('b') + "\"}");
    CHECK(taken.error().code() == v1::WRONG_STATE);
    CHECK(taken.error().message() == "Another supervisor is already with them.");
    auto to_listener = listener.until([](const M& m) { return support_in(m, v1::SUPPORT_ANSWERED); });
    CHECK(to_listener.support().supervisor_key() == std::string(32, 'a'));
    CHECK(to_listener.support().supervisor_name() == "Ana");
    b->until([](const M& m) { return support_in(m, v1::SUPPORT_ANSWERED); });

    // sealed lines, to the other side only; a supervisor who did not answer cannot speak in it
    const std::string sealed_l = key_b64('x'), sealed_a = key_b64('y');
    REQUIRE(listener.call(R"("supportSay":{"supportId":")" + id + R"(","seq":"1","ciphertext":")" + sealed_l + "\"}")
                .has_ok());
    auto line = a->until([](const M& m) { return m.has_support_line(); });
    CHECK(line.support_line().from() == v1::LISTENER);
    CHECK(line.support_line().seq() == 1);
    CHECK(line.support_line().ciphertext() == std::string(32, 'x'));
    CHECK(b->call(R"("supportSay":{"supportId":")" + id + R"(","seq":"1","ciphertext":")" + sealed_a + "\"}")
              .error()
              .code() == v1::NOT_FOUND);
    REQUIRE(a->call(R"("supportSay":{"supportId":")" + id + R"(","seq":"1","ciphertext":")" + sealed_a + "\"}").has_ok());
    auto back = listener.until([](const M& m) { return m.has_support_line(); });
    CHECK(back.support_line().from() == v1::SUPERVISOR);
    CHECK(back.support_line().ciphertext() == std::string(32, 'y'));
    // nothing of the side chat is stored
    CHECK(f.server.cmd({"HGET", "wl:support:" + id, "lkey"}) == std::string(32, 'l'));
    CHECK(f.server.cmd({"HLEN", "wl:support:" + id}) == "7");

    auto ended = listener.call(R"("endSupport":{"supportId":")" + id + "\"}");
    REQUIRE(support_in(ended, v1::SUPPORT_CLOSED));
    CHECK(ended.support().closed_by() == v1::LISTENER);
    for (auto* s : {a.get(), b.get(), late.get()}) s->until([](const M& m) { return support_in(m, v1::SUPPORT_CLOSED); });
    // the supervisors who were not in it never got a line
    for (auto* s : {b.get(), late.get()})
        for (const auto& m : s->pending) CHECK_FALSE(m.has_support_line());
    CHECK(a->call(R"("supportSay":{"supportId":")" + id + R"(","seq":"2","ciphertext":")" + sealed_a + "\"}")
              .error()
              .code() == v1::WRONG_STATE);
    CHECK(f.server.cmd({"ZCARD", "wl:supports"}) == "0");
    CHECK(std::stoll(f.server.cmd({"TTL", "wl:support:" + id})) > 11 * 3600);
    // a new request may follow
    auto again = listener.call(R"("askForSupport":{"publicKey":")" + key_b64('l') + "\"}");
    REQUIRE(support_in(again, v1::SUPPORT_WAITING));
    CHECK(again.support().support_id() != id);
}
