// Secure aggregation over the ring Z_{2^k} (k <= 32, values in uint32_t):
// adding or removing PRG masks, and the modular sum of masked inputs.
#pragma once
#include <cstddef>
#include <cstdint>

namespace whale::secagg {

// Mask of element i for a seed: word i of the ChaCha20 keystream (key = seed,
// nonce = 0, counter from 0), reduced mod 2^bits.
//
// acc[i] = acc[i] + sum_j signs[j] * mask_j[i]  (mod 2^bits), for `count` seeds
// of 32 bytes each and signs in {-1, +1}. Each thread expands the keystream of
// its own range of blocks for every seed, so no mask is ever materialized.
void add_masks(uint32_t* acc, size_t n, const uint8_t* seeds, const int8_t* signs, size_t count, unsigned bits,
               bool parallel);

// out[i] = sum_r rows[r][i] (mod 2^bits).
void sum_rows(uint32_t* out, size_t n, const uint32_t* const* rows, size_t count, unsigned bits, bool parallel);

// 2^bits - 1 (all ones for bits = 32); throws EngineError for bits outside [1, 32].
uint32_t ring_mask(unsigned bits);

}  // namespace whale::secagg
