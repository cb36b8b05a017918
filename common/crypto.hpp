// Small cryptographic helpers on OpenSSL: digests for script SHA1s and token hashes, HMAC for
// relay tickets, random tokens and ids, constant-time comparison. No message content ever
// passes through here: end-to-end encryption lives with the clients.
#pragma once

#include <string>
#include <string_view>

namespace warmline::crypto {

std::string sha1_hex(std::string_view data);
std::string sha256_hex(std::string_view data);
// Raw 32-byte HMAC-SHA256.
std::string hmac_sha256(std::string_view key, std::string_view data);
// `bytes` random bytes from the OS CSPRNG, base64url without padding.
std::string random_token(std::size_t bytes = 32);
// A short random id (16 random bytes, hex), for seekers, offers and sessions.
std::string random_id();
std::string base64url_encode(std::string_view data);
// Throws std::invalid_argument on a character outside the base64url alphabet.
std::string base64url_decode(std::string_view text);
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace warmline::crypto
