// Dot-product micro-kernels of the exact scan: a tile of rows against a tile
// of queries, each pair with its own accumulator and the same sequence of
// operations, so a pair's result never depends on its place in the tile.
//
// int8 rows x int16 query levels: per block, sum of code * level in int32
// (exact: |code| <= 127, |level| <= 8191, at most 4096 codes per block gives
// |sum| < 2^31), then scaled by the row's block scale in float. The caller
// multiplies by the query scale.
#pragma once
#include <cstddef>
#include <cstdint>

namespace whale::vindex::kernels {

inline constexpr size_t kF32Rows = 4, kF32Queries = 3;
inline constexpr size_t kI8Rows = 3, kI8Queries = 2;

// out[r * kF32Queries + q] = <rows[r], queries[q]> over `stride` values (a multiple of 8).
using DotF32 = void (*)(const float* const* rows, const float* const* queries, size_t stride, float* out);
// out[r * kI8Queries + q] = sum_b scales[r][b] * <codes[r], levels[q]>_b over padded blocks.
using DotI8 = void (*)(const int8_t* const* rows, const float* const* scales, const int16_t* const* queries,
                       const uint32_t* block_offset, const uint32_t* block_length, size_t blocks, float* out);

struct Table {
  DotF32 dot_f32;
  DotI8 dot_i8;
  const char* name;
};

// AVX2+FMA when the CPU has them (and WHALE_NO_AVX2 is unset), else portable C++.
const Table& pick();

void dot_f32_portable(const float* const* rows, const float* const* queries, size_t stride, float* out);
void dot_i8_portable(const int8_t* const* rows, const float* const* scales, const int16_t* const* queries,
                     const uint32_t* block_offset, const uint32_t* block_length, size_t blocks, float* out);

#if defined(__x86_64__) && defined(__GNUC__)
#define WHALE_VINDEX_AVX2 1
bool avx2_available();
void dot_f32_avx2(const float* const* rows, const float* const* queries, size_t stride, float* out);
void dot_i8_avx2(const int8_t* const* rows, const float* const* scales, const int16_t* const* queries,
                 const uint32_t* block_offset, const uint32_t* block_length, size_t blocks, float* out);
#else
#define WHALE_VINDEX_AVX2 0
#endif

}  // namespace whale::vindex::kernels
