// ChaCha20 block function (RFC 8439, 20 rounds, 32-bit counter, 96-bit nonce):
// the PRG that expands a 32-byte secure-aggregation seed into a mask.
#pragma once
#include <cstdint>

namespace whale::secagg {

// Writes the 16 keystream words of block `counter` (little-endian words of the
// RFC's serialized block) for `key` (8 LE words) and `nonce` (3 LE words).
void chacha20_block(const uint32_t key[8], uint32_t counter, const uint32_t nonce[3], uint32_t out[16]) noexcept;

// Reads 8 little-endian words from 32 bytes.
void load_key(const uint8_t bytes[32], uint32_t key[8]) noexcept;

}  // namespace whale::secagg
