// The end-to-end suite of clients/e2e.hpp on OpenSSL 3: X25519 through EVP_PKEY, HKDF through
// EVP_KDF, AES-256-GCM through EVP_CIPHER. Buffers that held a private or derived key, or a
// plaintext we refuse to hand out, are cleansed; errors OpenSSL queues on the way are dropped
// so that they cannot surface later in an unrelated TLS call on the same thread.
#include "clients/e2e.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <memory>
#include <utility>

namespace warmline::e2e {
namespace {

struct openssl_free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
    void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
    void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
    void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
template <class T>
using openssl_ptr = std::unique_ptr<T, openssl_free>;

// Whatever OpenSSL queues while one of our calls runs is ours to drop: our callers learn of a
// failure through an exception or nullopt, and a stale entry would confuse the next SSL_get_error.
class error_queue_scope {
public:
    error_queue_scope() { ERR_set_mark(); }
    ~error_queue_scope() { ERR_pop_to_mark(); }
    error_queue_scope(const error_queue_scope&) = delete;
    error_queue_scope& operator=(const error_queue_scope&) = delete;
};

constexpr std::string_view suite_label = "warmline/v1";
constexpr std::string_view info_seeker_to_listener = "warmline/v1/seeker->listener";
constexpr std::string_view info_listener_to_seeker = "warmline/v1/listener->seeker";
constexpr std::string_view safety_label = "warmline/v1/safety";

std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

template <std::size_t N>
void wipe(std::array<std::uint8_t, N>& a) {
    OPENSSL_cleanse(a.data(), a.size());
}

void put_be64(std::uint8_t* out, std::uint64_t v) {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<std::uint8_t>(v & 0xff);
        v >>= 8;
    }
}

int checked_int(std::size_t n) {
    if (n > static_cast<std::size_t>(INT_MAX)) throw error("e2e: input too large");
    return static_cast<int>(n);
}

openssl_ptr<EVP_PKEY> x25519_private(const key32& priv) {
    openssl_ptr<EVP_PKEY> k(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv.data(), priv.size()));
    if (!k) throw error("X25519: cannot load the private key");
    return k;
}

// OSSL_PARAM wants a mutable pointer for input it only reads.
OSSL_PARAM octet_param(const char* name, std::span<const std::uint8_t> data) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<std::uint8_t*>(data.data()), data.size());
}

void hkdf_into(std::span<const std::uint8_t> salt, std::span<const std::uint8_t> ikm,
               std::span<const std::uint8_t> info, std::uint8_t* out, std::size_t len) {
    if (ikm.empty()) throw error("HKDF: the input key material is empty");
    if (len == 0) return;
    error_queue_scope scope;
    openssl_ptr<EVP_KDF> kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr));
    if (!kdf) throw error("HKDF: not available");
    openssl_ptr<EVP_KDF_CTX> ctx(EVP_KDF_CTX_new(kdf.get()));
    if (!ctx) throw error("HKDF: out of memory");
    char digest[] = "SHA256";
    std::array<OSSL_PARAM, 5> params{};
    std::size_t n = 0;
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    params[n++] = octet_param(OSSL_KDF_PARAM_KEY, ikm);
    // An absent salt is RFC 5869's default (HashLen zero bytes); an absent info is empty.
    if (!salt.empty()) params[n++] = octet_param(OSSL_KDF_PARAM_SALT, salt);
    if (!info.empty()) params[n++] = octet_param(OSSL_KDF_PARAM_INFO, info);
    params[n] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(ctx.get(), out, len, params.data()) != 1) {
        OPENSSL_cleanse(out, len);
        throw error("HKDF: derivation failed (output too long?)");
    }
}

openssl_ptr<EVP_CIPHER_CTX> gcm_context(const key32& key, const nonce12& iv, bool encrypt) {
    openssl_ptr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
    if (!ctx || EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr, encrypt ? 1 : 0) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()), nullptr) != 1 ||
        EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data(), -1) != 1)
        throw error("AES-GCM: cannot initialise");
    return ctx;
}

void gcm_aad(EVP_CIPHER_CTX* ctx, std::span<const std::uint8_t> aad) {
    int n = 0;
    // Update with a null output is how GCM takes associated data; skip it when there is none.
    if (!aad.empty() && EVP_CipherUpdate(ctx, nullptr, &n, aad.data(), checked_int(aad.size())) != 1)
        throw error("AES-GCM: associated data refused");
}

// `out` has room for plaintext.size() + tag_size bytes.
void gcm_seal_into(const key32& key, const nonce12& iv, std::span<const std::uint8_t> aad,
                   std::span<const std::uint8_t> plaintext, std::uint8_t* out) {
    error_queue_scope scope;
    auto ctx = gcm_context(key, iv, true);
    gcm_aad(ctx.get(), aad);
    int n = 0;
    if (!plaintext.empty() &&
        (EVP_EncryptUpdate(ctx.get(), out, &n, plaintext.data(), checked_int(plaintext.size())) != 1 ||
         static_cast<std::size_t>(n) != plaintext.size()))
        throw error("AES-GCM: encryption failed");
    std::array<std::uint8_t, 16> scratch{};  // GCM's final writes nothing; never hand it a null pointer
    if (EVP_EncryptFinal_ex(ctx.get(), scratch.data(), &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_size), out + plaintext.size()) != 1)
        throw error("AES-GCM: encryption failed");
}

// `out` has room for ciphertext.size() - tag_size bytes; false (and `out` cleansed) when the
// ciphertext does not authenticate.
bool gcm_open_into(const key32& key, const nonce12& iv, std::span<const std::uint8_t> aad,
                   std::span<const std::uint8_t> ciphertext, std::uint8_t* out) {
    if (ciphertext.size() < tag_size) return false;
    const std::size_t body = ciphertext.size() - tag_size;
    error_queue_scope scope;
    auto ctx = gcm_context(key, iv, false);
    gcm_aad(ctx.get(), aad);
    int n = 0;
    if (body > 0 && (EVP_DecryptUpdate(ctx.get(), out, &n, ciphertext.data(), checked_int(body)) != 1 ||
                     static_cast<std::size_t>(n) != body))
        throw error("AES-GCM: decryption failed");
    std::array<std::uint8_t, tag_size> tag{};
    std::copy(ciphertext.begin() + static_cast<std::ptrdiff_t>(body), ciphertext.end(), tag.begin());
    std::array<std::uint8_t, 16> scratch{};
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()), tag.data()) != 1)
        throw error("AES-GCM: cannot set the tag");
    if (EVP_DecryptFinal_ex(ctx.get(), scratch.data(), &n) != 1) {
        if (body > 0) OPENSSL_cleanse(out, body);
        return false;
    }
    return true;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

keypair::~keypair() { wipe(private_key); }

session_keys::~session_keys() {
    wipe(seeker_to_listener);
    wipe(listener_to_seeker);
}

keypair generate_keypair() {
    key32 priv{};
    if (RAND_priv_bytes(priv.data(), static_cast<int>(priv.size())) != 1) {
        ERR_clear_error();
        throw error("the system random generator failed");
    }
    keypair kp = keypair_from_private(priv);
    wipe(priv);
    return kp;
}

keypair keypair_from_private(const key32& priv) {
    error_queue_scope scope;
    auto k = x25519_private(priv);
    keypair kp{priv, {}};
    std::size_t n = kp.public_key.size();
    if (EVP_PKEY_get_raw_public_key(k.get(), kp.public_key.data(), &n) != 1 || n != kp.public_key.size())
        throw error("X25519: cannot compute the public key");
    return kp;
}

key32 shared_secret(const key32& my_private, const key32& peer_public) {
    error_queue_scope scope;
    auto mine = x25519_private(my_private);
    openssl_ptr<EVP_PKEY> peer(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(), peer_public.size()));
    if (!peer) throw error("X25519: the peer's public key is not valid");
    openssl_ptr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(mine.get(), nullptr));
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) throw error("X25519: cannot start the key agreement");
    if (EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1)
        throw error("X25519: the peer's public key is not valid");
    key32 out{};
    std::size_t n = out.size();
    // OpenSSL already fails on an all-zero result (RFC 7748 section 6.1); the check after it
    // keeps the promise even if that ever changes, and is what WebCrypto does too.
    const bool derived = EVP_PKEY_derive(ctx.get(), out.data(), &n) == 1 && n == out.size();
    std::uint8_t any = 0;
    for (std::uint8_t b : out) any |= b;
    if (!derived || any == 0) {
        wipe(out);
        throw error("X25519: the peer's public key is not valid (low order)");
    }
    return out;
}

session_keys derive_keys(const key32& shared, std::string_view session_id) {
    if (session_id.empty()) throw error("e2e: the session id must not be empty");
    session_keys keys{};
    hkdf_into(as_bytes(session_id), shared, as_bytes(info_seeker_to_listener), keys.seeker_to_listener.data(),
              keys.seeker_to_listener.size());
    hkdf_into(as_bytes(session_id), shared, as_bytes(info_listener_to_seeker), keys.listener_to_seeker.data(),
              keys.listener_to_seeker.size());
    return keys;
}

nonce12 nonce_for(direction d, std::uint64_t seq) {
    nonce12 n{};
    n[0] = static_cast<std::uint8_t>(d);
    put_be64(n.data() + 4, seq);
    return n;
}

bytes associated_data(std::string_view session_id, direction d, std::uint64_t seq) {
    // Filled in place: GCC 12 at -O2 misreads chained vector::insert as an overflow.
    bytes aad(suite_label.size() + 1 + session_id.size() + 1 + 1 + 8);
    std::uint8_t* p = std::copy(suite_label.begin(), suite_label.end(), aad.data());
    *p++ = 0;
    p = std::copy(session_id.begin(), session_id.end(), p);
    *p++ = 0;
    *p++ = static_cast<std::uint8_t>(d);
    put_be64(p, seq);
    return aad;
}

bytes seal(const key32& key, std::string_view session_id, direction d, std::uint64_t seq, std::string_view plaintext) {
    return aes256gcm_seal(key, nonce_for(d, seq), associated_data(session_id, d, seq), as_bytes(plaintext));
}

std::optional<std::string> open(const key32& key, std::string_view session_id, direction d, std::uint64_t seq,
                                const bytes& ciphertext) {
    if (ciphertext.size() < tag_size) return std::nullopt;
    std::string plaintext(ciphertext.size() - tag_size, '\0');
    if (!gcm_open_into(key, nonce_for(d, seq), associated_data(session_id, d, seq), ciphertext,
                       reinterpret_cast<std::uint8_t*>(plaintext.data())))
        return std::nullopt;
    return plaintext;
}

std::string safety_code(const key32& public_a, const key32& public_b) {
    const bool a_first = public_a <= public_b;  // std::array compares byte-wise, unsigned
    const key32& lower = a_first ? public_a : public_b;
    const key32& higher = a_first ? public_b : public_a;
    std::array<std::uint8_t, safety_label.size() + 2 * 32> input{};
    std::uint8_t* p = std::copy(safety_label.begin(), safety_label.end(), input.data());
    p = std::copy(lower.begin(), lower.end(), p);
    std::copy(higher.begin(), higher.end(), p);
    std::array<std::uint8_t, 32> digest{};
    unsigned int len = 0;
    {
        error_queue_scope scope;
        if (EVP_Digest(input.data(), input.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1 ||
            len != digest.size())
            throw error("SHA-256 failed");
    }
    std::string code;
    for (int group = 0; group < 6; ++group) {
        std::uint64_t v = 0;
        for (int i = 0; i < 5; ++i) v = (v << 8) | digest[static_cast<std::size_t>(group * 5 + i)];
        char digits[12];
        std::snprintf(digits, sizeof digits, "%05u", static_cast<unsigned>(v % 100000));
        if (group > 0) code += ' ';
        code += digits;
    }
    return code;
}

secret_key::~secret_key() { wipe(key_); }

secret_key::secret_key(secret_key&& other) noexcept : key_(other.key_), held_(other.held_) {
    wipe(other.key_);
    other.held_ = false;
}

secret_key& secret_key::operator=(secret_key&& other) noexcept {
    if (this != &other) {
        key_ = other.key_;
        held_ = other.held_;
        wipe(other.key_);
        other.held_ = false;
    }
    return *this;
}

sender::sender(key32 key, std::string session_id, direction d, std::uint64_t next_seq)
    : key_(key), session_id_(std::move(session_id)), direction_(d), next_seq_(next_seq) {
    wipe(key);
    if (next_seq_ == 0) throw error("e2e: sequence numbers start at 1");  // key_ is wiped as it unwinds
}

sender::sealed sender::seal(std::string_view plaintext) {
    if (key_.empty()) throw error("e2e: seal() on a moved-from sender");
    if (next_seq_ == 0) throw error("e2e: this sender has no sequence numbers left");
    sealed out{next_seq_, e2e::seal(key_.get(), session_id_, direction_, next_seq_, plaintext)};
    ++next_seq_;  // wraps to 0 after the last one, which marks the sender exhausted
    return out;
}

receiver::receiver(key32 key, std::string session_id, direction d, std::uint64_t delivered)
    : key_(key), session_id_(std::move(session_id)), direction_(d), delivered_(delivered) {
    wipe(key);
}

receiver::result receiver::accept(std::uint64_t seq, const bytes& ciphertext) {
    if (key_.empty()) throw error("e2e: accept() on a moved-from receiver");
    if (seq <= delivered_) return {status::duplicate, {}};
    // seq > delivered_ here, so the difference cannot wrap.
    if (seq - delivered_ > 1) return {status::out_of_order, {}};
    auto plaintext = e2e::open(key_.get(), session_id_, direction_, seq, ciphertext);
    if (!plaintext) return {status::forged, {}};
    delivered_ = seq;
    return {status::delivered, std::move(*plaintext)};
}

std::uint64_t receiver::pass_over(std::uint64_t through) {
    if (through <= delivered_) return 0;
    return through - std::exchange(delivered_, through);
}

const char* to_string(receiver::status s) {
    switch (s) {
        case receiver::status::delivered: return "delivered";
        case receiver::status::duplicate: return "duplicate";
        case receiver::status::out_of_order: return "out_of_order";
        case receiver::status::forged: return "forged";
    }
    return "unknown";
}

bytes hkdf_sha256(std::span<const std::uint8_t> salt, std::span<const std::uint8_t> ikm,
                  std::span<const std::uint8_t> info, std::size_t len) {
    bytes out(len);
    hkdf_into(salt, ikm, info, out.data(), out.size());
    return out;
}

bytes aes256gcm_seal(const key32& key, const nonce12& iv, std::span<const std::uint8_t> aad,
                     std::span<const std::uint8_t> plaintext) {
    bytes out(plaintext.size() + tag_size);
    gcm_seal_into(key, iv, aad, plaintext, out.data());
    return out;
}

std::optional<bytes> aes256gcm_open(const key32& key, const nonce12& iv, std::span<const std::uint8_t> aad,
                                    std::span<const std::uint8_t> ciphertext) {
    if (ciphertext.size() < tag_size) return std::nullopt;
    bytes out(ciphertext.size() - tag_size);
    if (!gcm_open_into(key, iv, aad, ciphertext, out.data())) return std::nullopt;
    return out;
}

std::string to_hex(std::span<const std::uint8_t> data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(data.size() * 2, '0');
    for (std::size_t i = 0; i < data.size(); ++i) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xf];
    }
    return out;
}

bytes from_hex(std::string_view text) {
    if (text.size() % 2 != 0) throw error("hex: odd number of digits");
    bytes out(text.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        int hi = hex_value(text[2 * i]);
        int lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) throw error("hex: not a hex digit");
        out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    return out;
}

key32 key_from_hex(std::string_view text) {
    if (text.size() != 64) throw error("hex: a key is exactly 64 hex digits");
    bytes raw = from_hex(text);
    key32 key{};
    std::copy(raw.begin(), raw.end(), key.begin());
    OPENSSL_cleanse(raw.data(), raw.size());
    return key;
}

}  // namespace warmline::e2e
