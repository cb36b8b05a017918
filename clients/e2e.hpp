// End-to-end encryption of chat messages between a seeker and a listener: X25519 key agreement,
// HKDF-SHA256 per-direction keys, AES-256-GCM with a nonce and associated data bound to session,
// direction and sequence number, and a safety code both people can compare. The relay only ever
// sees public keys and ciphertext. docs/e2e.md specifies every byte; browsers implement the same
// suite with WebCrypto and check themselves against tests/vectors/e2e_v1.json.
//
// Free functions are pure and safe to call from any thread. A sender or receiver belongs to one
// side of one chat and must be used by one thread (or strand) at a time.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace warmline::e2e {

using bytes = std::vector<std::uint8_t>;
using key32 = std::array<std::uint8_t, 32>;
using nonce12 = std::array<std::uint8_t, 12>;

// Bad input we cannot work with (an invalid peer key, malformed hex, an exhausted sender) or a
// failure inside OpenSSL. A message that fails authentication is not an error: open() says so.
struct error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The value is the byte that goes on the wire (nonce and associated data).
enum class direction : std::uint8_t { seeker_to_listener = 1, listener_to_seeker = 2 };

constexpr std::size_t tag_size = 16;

// The private key is wiped when a keypair goes away; copies are the caller's to keep few.
struct keypair {
    key32 private_key;
    key32 public_key;
    ~keypair();
};

// A fresh X25519 keypair from the OpenSSL CSPRNG. One per side per chat.
keypair generate_keypair();
// The keypair of a given private key (tests and vectors). X25519 clamps the scalar when it is used,
// so any 32 bytes are a valid private key.
keypair keypair_from_private(const key32& priv);

// X25519(my_private, peer_public). Throws e2e::error if the result is all zero, which is what a
// low-order peer key (all zero bytes, for instance) produces: the peer would control the secret.
key32 shared_secret(const key32& my_private, const key32& peer_public);

struct session_keys {
    key32 seeker_to_listener;
    key32 listener_to_seeker;
    ~session_keys();
};

// HKDF-SHA256 with salt = the UTF-8 bytes of session_id, ikm = shared, and
// info = "warmline/v1/seeker->listener" (resp. "warmline/v1/listener->seeker"), 32 bytes each.
// Throws e2e::error on an empty session_id (it is what binds the keys to this chat).
session_keys derive_keys(const key32& shared, std::string_view session_id);

// 1 byte direction, 3 zero bytes, 8 bytes big-endian seq.
nonce12 nonce_for(direction d, std::uint64_t seq);
// "warmline/v1" 0x00 session_id 0x00, then 1 byte direction and 8 bytes big-endian seq.
bytes associated_data(std::string_view session_id, direction d, std::uint64_t seq);

// AES-256-GCM of one message: enc(plaintext) || 16-byte tag. Plaintext is UTF-8 text by
// convention; any bytes are carried. Sealing two messages with the same key, direction and seq
// destroys the confidentiality of both: use a sender, which never does.
bytes seal(const key32& key, std::string_view session_id, direction d, std::uint64_t seq, std::string_view plaintext);
// The plaintext, or nullopt if the ciphertext was not sealed under exactly this key, session,
// direction and seq (tampered, truncated, replayed elsewhere or forged). Never throws for that.
std::optional<std::string> open(const key32& key, std::string_view session_id, direction d, std::uint64_t seq,
                                const bytes& ciphertext);

// Six groups of five digits, "01234 56789 ...", the same whichever side computes it: SHA-256 of
// "warmline/v1/safety" || the byte-wise lower public key || the higher one; the first 30 bytes read
// as six 5-byte big-endian integers, each mod 100000. Equal codes on both screens mean nobody
// between the two people replaced a public key.
std::string safety_code(const key32& public_a, const key32& public_b);

// A direction key held by one owner: wiped when it goes away, and moving it leaves the source
// empty (and wiped), so a moved-from sender or receiver can never use it again.
class secret_key {
public:
    explicit secret_key(const key32& k) : key_(k), held_(true) {}
    ~secret_key();
    secret_key(secret_key&& other) noexcept;
    secret_key& operator=(secret_key&& other) noexcept;
    secret_key(const secret_key&) = delete;
    secret_key& operator=(const secret_key&) = delete;

    const key32& get() const { return key_; }
    bool empty() const { return !held_; }

private:
    key32 key_;
    bool held_;
};

// The outgoing half of a chat for one side: owns the direction key and the next sequence number,
// so that no (key, nonce) pair is ever used twice. Move-only; a moved-from sender refuses to seal.
class sender {
public:
    // Throws e2e::error if next_seq is 0: sequence numbers start at 1.
    sender(key32 key, std::string session_id, direction d, std::uint64_t next_seq = 1);

    struct sealed {
        std::uint64_t seq;
        bytes ciphertext;
    };
    // Seals under next_seq() and advances it. Throws e2e::error when the sequence is exhausted.
    sealed seal(std::string_view plaintext);
    // 0 once exhausted (or moved from).
    std::uint64_t next_seq() const { return key_.empty() ? 0 : next_seq_; }

private:
    secret_key key_;
    std::string session_id_;
    direction direction_;
    std::uint64_t next_seq_;
};

// The incoming half: delivers messages strictly in order, each exactly once. Only a message that
// authenticates moves it forward, so nothing the relay or anyone else injects changes its state.
// Move-only; accept() on a moved-from receiver throws e2e::error.
class receiver {
public:
    receiver(key32 key, std::string session_id, direction d, std::uint64_t delivered = 0);

    enum class status { delivered, duplicate, out_of_order, forged };
    struct result {
        status st;
        std::string plaintext;  // only for status::delivered
    };
    // seq <= delivered(): duplicate, dropped without opening. seq > delivered() + 1: out_of_order,
    // not opened, nothing changes (the sender must resend what is missing first). seq ==
    // delivered() + 1: opened; if it fails, forged and nothing changes; else delivered.
    result accept(std::uint64_t seq, const bytes& ciphertext);
    // The relay says the messages up to `through` were lost (MessagesLost): expect through + 1
    // next. Returns how many of them this side did not have (0 if it had them all). The relay
    // could always withhold messages; this makes it visible: the caller shows the count.
    std::uint64_t pass_over(std::uint64_t through);
    std::uint64_t delivered() const { return delivered_; }

private:
    secret_key key_;
    std::string session_id_;
    direction direction_;
    std::uint64_t delivered_;
};

const char* to_string(receiver::status s);

// The primitives underneath, exposed so that tests can check them against published vectors.
// HKDF-SHA256 (RFC 5869); ikm must not be empty, len at most 255 * 32.
bytes hkdf_sha256(std::span<const std::uint8_t> salt, std::span<const std::uint8_t> ikm,
                  std::span<const std::uint8_t> info, std::size_t len);
// AES-256-GCM with a 96-bit IV and a 128-bit tag appended to the ciphertext.
bytes aes256gcm_seal(const key32& key, const nonce12& iv, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> plaintext);
std::optional<bytes> aes256gcm_open(const key32& key, const nonce12& iv, std::span<const std::uint8_t> aad,
                                    std::span<const std::uint8_t> ciphertext);

// Lowercase hex, as in the test vectors and docs/e2e.md.
std::string to_hex(std::span<const std::uint8_t> data);
// Accepts upper or lower case; throws e2e::error on odd length or a non-hex character.
bytes from_hex(std::string_view text);
// Throws e2e::error unless text is exactly 64 hex digits.
key32 key_from_hex(std::string_view text);

}  // namespace warmline::e2e
