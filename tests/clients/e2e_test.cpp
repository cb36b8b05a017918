// End-to-end encryption: X25519, HKDF and AES-GCM against their RFCs and the GCM specification;
// the published vectors in tests/vectors/e2e_v1.json against the code (rewrite them with
// WARMLINE_WRITE_VECTORS=1); and senders and receivers refusing everything they should.
#include "common/codec.hpp"
#include "common/crypto.hpp"
#include "clients/e2e.hpp"

#include <doctest/doctest.h>
#include <google/protobuf/struct.pb.h>
#include <openssl/err.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace warmline::e2e;

namespace {

// Typed from RFC 7748 section 6.1; the vectors use Alice as the seeker and Bob as the listener.
constexpr std::string_view rfc7748_alice_private = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
constexpr std::string_view rfc7748_alice_public = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
constexpr std::string_view rfc7748_bob_private = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
constexpr std::string_view rfc7748_bob_public = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
constexpr std::string_view rfc7748_shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

constexpr std::string_view vector_session = "c0123456789abcdef-0001";
const std::string vector_path = WARMLINE_SOURCE_DIR "/tests/vectors/e2e_v1.json";

std::span<const std::uint8_t> as_span(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

const char* direction_name(direction d) {
    return d == direction::seeker_to_listener ? "seeker_to_listener" : "listener_to_seeker";
}

struct vector_message {
    direction d;
    std::uint64_t seq;
    std::string plaintext;
};

std::vector<vector_message> vector_messages() {
    std::string long_text;
    for (int i = 1; long_text.size() < 1000; ++i)
        long_text += "Sentence " + std::to_string(i) + " of a long reply, so that the cipher runs over many blocks. ";
    long_text.resize(1000);
    return {
        {direction::seeker_to_listener, 1, "Hi. I don't really know how to start."},
        {direction::listener_to_seeker, 1, "That's okay. I'm here, and there is no rush."},
        {direction::seeker_to_listener, 2, ""},
        {direction::listener_to_seeker, 2, "Gr\u00fc\u00dfe, \u4f60\u597d \U0001F642"},
        {direction::seeker_to_listener, 3, "Some nights are \"fine\".\nThis one isn't.\t\\ (quotes, newline, tab, backslash)"},
        {direction::listener_to_seeker, 3, long_text},
        {direction::seeker_to_listener, 4294967297, "A sequence number above 2^32 checks the 64-bit big-endian layout."},
    };
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
            out += esc;
        } else out += ch;  // UTF-8 passes through as is
    }
    return out + "\"";
}

// The whole vector file as the code computes it, byte for byte.
std::string render_vectors() {
    const keypair seeker = keypair_from_private(key_from_hex(rfc7748_alice_private));
    const keypair listener = keypair_from_private(key_from_hex(rfc7748_bob_private));
    const key32 shared = shared_secret(seeker.private_key, listener.public_key);
    const session_keys keys = derive_keys(shared, vector_session);

    std::ostringstream out;
    auto field = [&](const char* name, const std::string& json_value, bool last = false) {
        out << "  \"" << name << "\": " << json_value << (last ? "\n" : ",\n");
    };
    out << "{\n";
    field("suite", json_string("warmline-e2e-v1"));
    field("spec", json_string("docs/e2e.md"));
    field("session_id", json_string(vector_session));
    field("seeker_private_key", json_string(to_hex(seeker.private_key)));
    field("seeker_public_key", json_string(to_hex(seeker.public_key)));
    field("listener_private_key", json_string(to_hex(listener.private_key)));
    field("listener_public_key", json_string(to_hex(listener.public_key)));
    field("shared_secret", json_string(to_hex(shared)));
    field("key_seeker_to_listener", json_string(to_hex(keys.seeker_to_listener)));
    field("key_listener_to_seeker", json_string(to_hex(keys.listener_to_seeker)));
    field("safety_code", json_string(safety_code(seeker.public_key, listener.public_key)));
    out << "  \"messages\": [\n";
    const auto messages = vector_messages();
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const auto& m = messages[i];
        const key32& key = m.d == direction::seeker_to_listener ? keys.seeker_to_listener : keys.listener_to_seeker;
        out << "    {\n"
            << "      \"direction\": " << json_string(direction_name(m.d)) << ",\n"
            << "      \"seq\": " << m.seq << ",\n"
            << "      \"plaintext\": " << json_string(m.plaintext) << ",\n"
            << "      \"nonce\": " << json_string(to_hex(nonce_for(m.d, m.seq))) << ",\n"
            << "      \"aad\": " << json_string(to_hex(associated_data(vector_session, m.d, m.seq))) << ",\n"
            << "      \"ciphertext\": "
            << json_string(to_hex(seal(key, vector_session, m.d, m.seq, m.plaintext))) << "\n"
            << "    }" << (i + 1 < messages.size() ? ",\n" : "\n");
    }
    out << "  ]\n}\n";
    return out.str();
}

std::optional<std::string> read_whole_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The first line where two texts differ, for a failure message a person can act on.
std::string first_difference(const std::string& expected, const std::string& actual) {
    std::istringstream e(expected), a(actual);
    std::string le, la;
    for (int line = 1;; ++line) {
        bool more_e = static_cast<bool>(std::getline(e, le));
        bool more_a = static_cast<bool>(std::getline(a, la));
        if (!more_e && !more_a) return "the texts differ only in their line endings";
        if (!more_e || !more_a || le != la)
            return "line " + std::to_string(line) + ": file has [" + (more_a ? la : "<end>") + "], code computes [" +
                   (more_e ? le : "<end>") + "]";
    }
}

key32 test_key(std::uint8_t fill) {
    key32 k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(fill + i);
    return k;
}

}  // namespace

TEST_CASE("e2e: X25519 gives the public keys and shared secret of RFC 7748 section 6.1" * doctest::timeout(10)) {
    const keypair alice = keypair_from_private(key_from_hex(rfc7748_alice_private));
    const keypair bob = keypair_from_private(key_from_hex(rfc7748_bob_private));
    CHECK(to_hex(alice.private_key) == rfc7748_alice_private);
    CHECK(to_hex(alice.public_key) == rfc7748_alice_public);
    CHECK(to_hex(bob.public_key) == rfc7748_bob_public);
    CHECK(to_hex(shared_secret(alice.private_key, bob.public_key)) == rfc7748_shared);
    CHECK(to_hex(shared_secret(bob.private_key, alice.public_key)) == rfc7748_shared);
}

TEST_CASE("e2e: HKDF-SHA256 gives the output of RFC 5869 test case 1" * doctest::timeout(10)) {
    const bytes ikm(22, 0x0b);
    const bytes salt = from_hex("000102030405060708090a0b0c");
    const bytes info = from_hex("f0f1f2f3f4f5f6f7f8f9");
    CHECK(to_hex(hkdf_sha256(salt, ikm, info, 42)) ==
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    CHECK(hkdf_sha256(salt, ikm, info, 0).empty());
    CHECK_THROWS_AS(hkdf_sha256(salt, bytes{}, info, 32), error);
    CHECK_THROWS_AS(hkdf_sha256(salt, ikm, info, 255 * 32 + 1), error);
}

TEST_CASE("e2e: AES-256-GCM gives the ciphertexts and tags of GCM spec test cases 14 and 16" * doctest::timeout(10)) {
    SUBCASE("test case 14: zero key and IV, one zero block, no associated data") {
        const key32 key{};
        const nonce12 iv{};
        const bytes plaintext(16, 0);
        const bytes sealed = aes256gcm_seal(key, iv, {}, plaintext);
        CHECK(to_hex(sealed) == "cea7403d4d606b6e074ec5d3baf39d18" "d0d1c8a799996bf0265b98b5d48ab919");
        CHECK(aes256gcm_open(key, iv, {}, sealed) == plaintext);
    }
    SUBCASE("test case 16: 60 bytes of plaintext and 20 of associated data") {
        const key32 key = key_from_hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        nonce12 iv{};
        const bytes iv_bytes = from_hex("cafebabefacedbaddecaf888");
        std::copy(iv_bytes.begin(), iv_bytes.end(), iv.begin());
        const bytes aad = from_hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        const bytes plaintext = from_hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        const bytes sealed = aes256gcm_seal(key, iv, aad, plaintext);
        CHECK(to_hex(sealed) ==
              "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
              "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
              "76fc6ece0f4e1768cddf8853bb2d551b");
        CHECK(aes256gcm_open(key, iv, aad, sealed) == plaintext);
        REQUIRE(sealed.size() == 60 + tag_size);
        bytes flipped = sealed;
        flipped[60 + tag_size - 1] ^= 0x01;  // the tag's last bit
        CHECK_FALSE(aes256gcm_open(key, iv, aad, flipped).has_value());
        CHECK_FALSE(aes256gcm_open(key, iv, {}, sealed).has_value());
    }
}

TEST_CASE("e2e: nonce and associated data have the documented byte layout" * doctest::timeout(10)) {
    CHECK(to_hex(nonce_for(direction::seeker_to_listener, 1)) == "010000000000000000000001");
    CHECK(to_hex(nonce_for(direction::listener_to_seeker, 0x0102030405060708)) == "020000000102030405060708");
    CHECK(to_hex(nonce_for(direction::listener_to_seeker, std::numeric_limits<std::uint64_t>::max())) ==
          "02000000ffffffffffffffff");
    // "warmline/v1" 00 "c1" 00 02 then seq 258 in 8 bytes.
    CHECK(to_hex(associated_data("c1", direction::listener_to_seeker, 258)) ==
          "7761726d6c696e652f7631" "00" "6331" "00" "02" "0000000000000102");
}

TEST_CASE("e2e: the checked-in vectors are exactly what the code computes" * doctest::timeout(10)) {
    const std::string computed = render_vectors();
    const char* write = std::getenv("WARMLINE_WRITE_VECTORS");
    if (write && std::string_view(write) == "1") {
        std::filesystem::create_directories(std::filesystem::path(vector_path).parent_path());
        std::ofstream(vector_path, std::ios::binary | std::ios::trunc) << computed;
        MESSAGE("wrote " << vector_path);
    }
    const auto on_disk = read_whole_file(vector_path);
    REQUIRE_MESSAGE(on_disk.has_value(), "cannot read " << vector_path);
    if (*on_disk != computed) FAIL_CHECK(first_difference(computed, *on_disk));
}

TEST_CASE("e2e: the vector file parses as JSON and every entry checks out against the library" * doctest::timeout(10)) {
    const auto text = read_whole_file(vector_path);
    REQUIRE(text.has_value());
    google::protobuf::Struct doc;
    std::string parse_error;
    REQUIRE_MESSAGE(warmline::codec::from_json(*text, doc, parse_error), parse_error);
    const auto& top = doc.fields();
    auto str = [](const auto& fields, const char* name) {
        auto it = fields.find(name);
        REQUIRE_MESSAGE(it != fields.end(), "missing field " << name);
        return it->second.string_value();
    };
    CHECK(str(top, "suite") == "warmline-e2e-v1");
    const std::string session = str(top, "session_id");
    CHECK(session == vector_session);
    CHECK(str(top, "seeker_private_key") == rfc7748_alice_private);
    CHECK(str(top, "seeker_public_key") == rfc7748_alice_public);
    CHECK(str(top, "listener_private_key") == rfc7748_bob_private);
    CHECK(str(top, "listener_public_key") == rfc7748_bob_public);
    CHECK(str(top, "shared_secret") == rfc7748_shared);

    const key32 shared = key_from_hex(str(top, "shared_secret"));
    const session_keys keys = derive_keys(shared, session);
    CHECK(str(top, "key_seeker_to_listener") == to_hex(keys.seeker_to_listener));
    CHECK(str(top, "key_listener_to_seeker") == to_hex(keys.listener_to_seeker));
    CHECK(str(top, "safety_code") ==
          safety_code(key_from_hex(str(top, "listener_public_key")), key_from_hex(str(top, "seeker_public_key"))));

    const auto& messages = top.at("messages").list_value().values();
    const auto expected = vector_messages();
    REQUIRE(static_cast<std::size_t>(messages.size()) == expected.size());
    for (int i = 0; i < messages.size(); ++i) {
        CAPTURE(i);
        const auto& m = messages[i].struct_value().fields();
        const std::string dir_name = str(m, "direction");
        REQUIRE((dir_name == "seeker_to_listener" || dir_name == "listener_to_seeker"));
        const direction d = dir_name == "seeker_to_listener" ? direction::seeker_to_listener
                                                             : direction::listener_to_seeker;
        const auto seq = static_cast<std::uint64_t>(m.at("seq").number_value());
        const key32& key = d == direction::seeker_to_listener ? keys.seeker_to_listener : keys.listener_to_seeker;
        CHECK(d == expected[static_cast<std::size_t>(i)].d);
        CHECK(seq == expected[static_cast<std::size_t>(i)].seq);
        // The JSON escapes of the plaintext come back as the bytes that were sealed.
        CHECK(str(m, "plaintext") == expected[static_cast<std::size_t>(i)].plaintext);
        CHECK(str(m, "nonce") == to_hex(nonce_for(d, seq)));
        CHECK(str(m, "aad") == to_hex(associated_data(session, d, seq)));
        const auto opened = open(key, session, d, seq, from_hex(str(m, "ciphertext")));
        REQUIRE(opened.has_value());
        CHECK(*opened == str(m, "plaintext"));
    }
}

TEST_CASE("e2e: two fresh keypairs agree on keys and talk in both directions" * doctest::timeout(10)) {
    const keypair seeker = generate_keypair();
    const keypair listener = generate_keypair();
    CHECK(seeker.public_key != listener.public_key);
    CHECK(keypair_from_private(seeker.private_key).public_key == seeker.public_key);
    const key32 shared = shared_secret(seeker.private_key, listener.public_key);
    REQUIRE(shared == shared_secret(listener.private_key, seeker.public_key));

    const std::string session = "c-roundtrip";
    const session_keys seeker_keys = derive_keys(shared, session);
    const session_keys listener_keys = derive_keys(shared_secret(listener.private_key, seeker.public_key), session);
    CHECK(seeker_keys.seeker_to_listener != seeker_keys.listener_to_seeker);

    sender seeker_out(seeker_keys.seeker_to_listener, session, direction::seeker_to_listener);
    receiver seeker_in(seeker_keys.listener_to_seeker, session, direction::listener_to_seeker);
    sender listener_out(listener_keys.listener_to_seeker, session, direction::listener_to_seeker);
    receiver listener_in(listener_keys.seeker_to_listener, session, direction::seeker_to_listener);

    for (const std::string text : {"hello", "", "still there?"}) {
        auto up = seeker_out.seal(text);
        auto got = listener_in.accept(up.seq, up.ciphertext);
        CHECK(got.st == receiver::status::delivered);
        CHECK(got.plaintext == text);
        auto down = listener_out.seal("re: " + text);
        got = seeker_in.accept(down.seq, down.ciphertext);
        CHECK(got.st == receiver::status::delivered);
        CHECK(got.plaintext == "re: " + text);
    }
    CHECK(seeker_out.next_seq() == 4);
    CHECK(listener_in.delivered() == 3);
    CHECK(seeker_in.delivered() == 3);
}

TEST_CASE("e2e: a changed, truncated or misaddressed ciphertext does not open" * doctest::timeout(10)) {
    const key32 key = test_key(1);
    const std::string session = "c-tamper";
    const auto d = direction::seeker_to_listener;
    ERR_clear_error();
    const bytes sealed = seal(key, session, d, 7, "meet me at the usual place");
    REQUIRE(sealed.size() == 26 + tag_size);
    REQUIRE(open(key, session, d, 7, sealed) == "meet me at the usual place");

    SUBCASE("a flipped bit in the ciphertext") {
        bytes c = sealed;
        c[3] ^= 0x20;
        CHECK_FALSE(open(key, session, d, 7, c).has_value());
    }
    SUBCASE("a flipped bit in the tag") {
        bytes c = sealed;
        c[c.size() - 5] ^= 0x01;
        CHECK_FALSE(open(key, session, d, 7, c).has_value());
    }
    SUBCASE("another session") { CHECK_FALSE(open(key, "c-tamper2", d, 7, sealed).has_value()); }
    SUBCASE("the other direction") {
        CHECK_FALSE(open(key, session, direction::listener_to_seeker, 7, sealed).has_value());
    }
    SUBCASE("another sequence number") {
        CHECK_FALSE(open(key, session, d, 6, sealed).has_value());
        CHECK_FALSE(open(key, session, d, 8, sealed).has_value());
        CHECK_FALSE(open(key, session, d, 7 + (std::uint64_t{1} << 32), sealed).has_value());
    }
    SUBCASE("another key") { CHECK_FALSE(open(test_key(2), session, d, 7, sealed).has_value()); }
    SUBCASE("truncated, down to nothing") {
        for (std::size_t len : {sealed.size() - 1, tag_size, tag_size - 1, std::size_t{1}, std::size_t{0}}) {
            CAPTURE(len);
            CHECK_FALSE(open(key, session, d, 7, bytes(sealed.begin(), sealed.begin() + static_cast<std::ptrdiff_t>(len)))
                            .has_value());
        }
    }
    SUBCASE("extended by a byte") {
        bytes c = sealed;
        c.push_back(0);
        CHECK_FALSE(open(key, session, d, 7, c).has_value());
    }
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("e2e: a receiver delivers in order and once, and nothing else changes its state" * doctest::timeout(10)) {
    const key32 key = test_key(9);
    const std::string session = "c-receiver";
    const auto d = direction::listener_to_seeker;
    sender tx(key, session, d);
    receiver rx(key, session, d);
    const auto m1 = tx.seal("one");
    const auto m2 = tx.seal("two");
    const auto m3 = tx.seal("three");
    REQUIRE(m1.seq == 1);
    REQUIRE(m2.seq == 2);
    REQUIRE(m3.seq == 3);

    // Ahead of what was delivered: not opened, nothing moves.
    CHECK(rx.accept(m2.seq, m2.ciphertext).st == receiver::status::out_of_order);
    CHECK(rx.accept(m3.seq, m3.ciphertext).st == receiver::status::out_of_order);
    CHECK(rx.delivered() == 0);

    // The next number but the wrong content: forged, nothing moves.
    CHECK(rx.accept(1, m2.ciphertext).st == receiver::status::forged);
    bytes bent = m1.ciphertext;
    bent[0] ^= 0x80;
    CHECK(rx.accept(1, bent).st == receiver::status::forged);
    CHECK(rx.accept(1, {}).st == receiver::status::forged);
    const bytes other_direction = seal(key, session, direction::seeker_to_listener, 1, "one");
    CHECK(rx.accept(1, other_direction).st == receiver::status::forged);
    CHECK(rx.delivered() == 0);

    auto r = rx.accept(m1.seq, m1.ciphertext);
    CHECK(r.st == receiver::status::delivered);
    CHECK(r.plaintext == "one");
    CHECK(rx.delivered() == 1);

    // Already delivered: dropped unopened, whatever the bytes.
    r = rx.accept(m1.seq, m1.ciphertext);
    CHECK(r.st == receiver::status::duplicate);
    CHECK(r.plaintext.empty());
    CHECK(rx.accept(1, bytes{1, 2, 3}).st == receiver::status::duplicate);
    CHECK(rx.accept(0, m1.ciphertext).st == receiver::status::duplicate);
    CHECK(rx.delivered() == 1);

    r = rx.accept(m2.seq, m2.ciphertext);
    CHECK(r.st == receiver::status::delivered);
    CHECK(r.plaintext == "two");
    CHECK(rx.accept(m1.seq, m1.ciphertext).st == receiver::status::duplicate);  // a replay of 1 after 2
    CHECK(rx.accept(m3.seq, bent).st == receiver::status::forged);
    CHECK(rx.delivered() == 2);
    r = rx.accept(m3.seq, m3.ciphertext);
    CHECK(r.st == receiver::status::delivered);
    CHECK(r.plaintext == "three");
    CHECK(rx.delivered() == 3);
    CHECK(std::string_view(to_string(receiver::status::out_of_order)) == "out_of_order");

    SUBCASE("a receiver resumed after 2 takes 3 next") {
        receiver resumed(key, session, d, 2);
        CHECK(resumed.accept(m2.seq, m2.ciphertext).st == receiver::status::duplicate);
        CHECK(resumed.accept(m3.seq, m3.ciphertext).st == receiver::status::delivered);
    }
    SUBCASE("a moved-from receiver refuses to work") {
        receiver moved(std::move(rx));
        CHECK(moved.delivered() == 3);
        CHECK_THROWS_AS(rx.accept(4, m3.ciphertext), error);  // NOLINT(bugprone-use-after-move)
    }
}

TEST_CASE("e2e: a sender numbers from 1 and never reuses a number" * doctest::timeout(10)) {
    const key32 key = test_key(3);
    sender tx(key, "c-sender", direction::seeker_to_listener);
    CHECK(tx.next_seq() == 1);
    const auto a = tx.seal("same text");
    const auto b = tx.seal("same text");
    CHECK(a.seq == 1);
    CHECK(b.seq == 2);
    CHECK(a.ciphertext != b.ciphertext);
    CHECK(tx.next_seq() == 3);

    CHECK_THROWS_AS(sender(key, "c-sender", direction::seeker_to_listener, 0), error);

    SUBCASE("the last number is used once, then the sender is exhausted") {
        const auto last = std::numeric_limits<std::uint64_t>::max();
        sender end(key, "c-sender", direction::seeker_to_listener, last);
        CHECK(end.seal("last").seq == last);
        CHECK(end.next_seq() == 0);
        CHECK_THROWS_AS(end.seal("one too many"), error);
    }
    SUBCASE("a moved-from sender refuses to seal, and the new owner carries on") {
        sender moved(std::move(tx));
        CHECK(tx.next_seq() == 0);                            // NOLINT(bugprone-use-after-move)
        CHECK_THROWS_AS(tx.seal("reuse attempt"), error);  // NOLINT(bugprone-use-after-move)
        CHECK(moved.seal("next").seq == 3);
    }
}

TEST_CASE("e2e: direction keys differ by direction and by session" * doctest::timeout(10)) {
    const key32 shared = key_from_hex(rfc7748_shared);
    const session_keys a = derive_keys(shared, "c-one");
    const session_keys b = derive_keys(shared, "c-two");
    CHECK(a.seeker_to_listener != a.listener_to_seeker);
    CHECK(a.seeker_to_listener != b.seeker_to_listener);
    CHECK(a.listener_to_seeker != b.listener_to_seeker);
    // Spelled out with the primitive: salt = session id, info = the direction label.
    CHECK(hkdf_sha256(as_span("c-one"), shared, as_span("warmline/v1/seeker->listener"), 32) ==
          bytes(a.seeker_to_listener.begin(), a.seeker_to_listener.end()));
    CHECK(hkdf_sha256(as_span("c-one"), shared, as_span("warmline/v1/listener->seeker"), 32) ==
          bytes(a.listener_to_seeker.begin(), a.listener_to_seeker.end()));
    CHECK_THROWS_AS(derive_keys(shared, ""), error);
}

TEST_CASE("e2e: the safety code is symmetric, six groups of five digits, and follows both keys" * doctest::timeout(10)) {
    const key32 a = key_from_hex(rfc7748_alice_public);
    const key32 b = key_from_hex(rfc7748_bob_public);
    const std::string code = safety_code(a, b);
    CHECK(code == safety_code(b, a));
    REQUIRE(code.size() == 35);
    for (std::size_t i = 0; i < code.size(); ++i) {
        CAPTURE(i);
        if (i % 6 == 5) CHECK(code[i] == ' ');
        else CHECK((code[i] >= '0' && code[i] <= '9'));
    }

    // Recomputed by hand from the definition: Alice's key (85...) is the lower, Bob's (de...) the higher.
    std::string input = "warmline/v1/safety";
    for (const key32* k : {&a, &b}) input.append(reinterpret_cast<const char*>(k->data()), k->size());
    const std::string digest = warmline::crypto::sha256_hex(input);
    std::string by_hand;
    for (int g = 0; g < 6; ++g) {
        char group[8];
        std::snprintf(group, sizeof group, "%05llu",
                      std::stoull(digest.substr(static_cast<std::size_t>(g) * 10, 10), nullptr, 16) % 100000);
        if (g > 0) by_hand += ' ';
        by_hand += group;
    }
    CHECK(code == by_hand);

    key32 a2 = a;
    a2[31] ^= 0x01;
    key32 b2 = b;
    b2[0] ^= 0x01;
    CHECK(safety_code(a2, b) != code);
    CHECK(safety_code(a, b2) != code);
    CHECK(safety_code(a2, b) == safety_code(b, a2));
}

TEST_CASE("e2e: an all-zero or low-order peer key is refused" * doctest::timeout(10)) {
    ERR_clear_error();
    const key32 mine = key_from_hex(rfc7748_alice_private);
    // u = 0, u = 1 and u = p - 1 are points of small order: every private key lands on zero.
    for (std::string_view peer : {"0000000000000000000000000000000000000000000000000000000000000000",
                                  "0100000000000000000000000000000000000000000000000000000000000000",
                                  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"}) {
        CAPTURE(peer);
        CHECK_THROWS_AS(shared_secret(mine, key_from_hex(peer)), error);
    }
    CHECK_NOTHROW(shared_secret(mine, key_from_hex(rfc7748_bob_public)));
    // What OpenSSL queued on the way out is dropped, so a later TLS call on this thread is not misled.
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("e2e: hex helpers round-trip and refuse what is not hex" * doctest::timeout(10)) {
    bytes all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::uint8_t>(i));
    CHECK(from_hex(to_hex(all)) == all);
    CHECK(from_hex("ABcd") == bytes{0xab, 0xcd});
    CHECK(from_hex("").empty());
    CHECK_THROWS_AS(from_hex("abc"), error);
    CHECK_THROWS_AS(from_hex("zz"), error);
    CHECK_THROWS_AS(key_from_hex("abcd"), error);
    CHECK(to_hex(key_from_hex(rfc7748_shared)) == rfc7748_shared);
}
