// Block kernels of the float Gram matrix (gram_f32.h), one per instruction
// set. A kernel takes one block of every row, copied to a scratch of kStride
// floats a row, and adds the dot products of its tiles (rows x cols rows of
// the scratch) into the tiles' accumulators.
#pragma once
#include <algorithm>
#include <cstddef>
#include <utility>

#include "gram_f32.h"

namespace whale::aggregate::gram_f32::kernels {

inline constexpr size_t kAlign = 64;  // bytes: whole cache lines, aligned AVX-512 loads
// Scratch row stride (floats): a block plus one cache line, so that rows sit in
// different L1 sets rather than 1 KiB apart.
inline constexpr size_t kStride = kBlock + kAlign / sizeof(float);

using Tile = std::pair<size_t, size_t>;  // (first row, first column)

// A later block that a kernel asks the memory for while it computes, a line
// per step of its inner loop: tile t takes rows [t * rows_per_tile, ...).
// Spread out so, the prefetches are served; issued all at once, most of them
// were lost here (the block's copy then waited on memory as if none had been).
struct Prefetch {
  const float* const* rows;
  size_t n, lo, rows_per_tile;
  size_t first_row(size_t tile) const { return std::min(n, tile * rows_per_tile); }
  size_t last_row(size_t tile) const { return std::min(n, (tile + 1) * rows_per_tile); }
};

// Adds the tiles' products over one block. A kernel with float lanes sums each
// run of kRun products per lane in float and adds it to the entry's float
// partial sum in `partial`; with `widen` (at least every kRunsPerWiden runs
// and at the last block) the partial sums are widened into the double lanes
// in `acc` and restarted. A kernel without them widens every run. `next`, if
// not null, is the block to prefetch.
using BlockGram = void (*)(const float* s, const Tile* tiles, size_t count, float* partial, double* acc, bool widen,
                           const Prefetch* next);
// Rows [0, n) of coordinates [lo, lo + kBlock) into the scratch, less the
// block's center (block_center(); 64-byte aligned).
using CopyBlock = void (*)(const float* const* rows, size_t n, size_t lo, const float* center, float* s);

// Distances do not change when every row is moved by the same vector, but the
// float Gram matrix's error scales with the rows' norms: centered on a point
// amid the clients, close clients (most honest updates of one round) have
// small norms and their distances stay accurate. A median of a few rows, so
// that a minority of far-off (Byzantine) rows does not move the center.
// Writes the sample's row indices (five, three or one of them) to `out`.
inline size_t sample_rows(size_t n, size_t out[5]) {
  if (n >= 5) {
    out[0] = 0, out[1] = n / 4, out[2] = n / 2, out[3] = 3 * n / 4, out[4] = n - 1;
    return 5;
  }
  if (n >= 3) {
    out[0] = 0, out[1] = n / 2, out[2] = n - 1;
    return 3;
  }
  out[0] = 0;
  return 1;
}

struct Kernel {
  BlockGram run;
  CopyBlock copy;
  size_t rows, cols;    // tile shape
  size_t float_lanes;   // of a partial sum, 0: none
  size_t double_lanes;  // of an accumulator
  size_t blocks_per_widen;
};

Kernel portable();

// The center of coordinates [lo, lo + len): per coordinate, the median of the
// sample rows (sample_rows()).
void block_center(const float* const* rows, size_t n, size_t lo, size_t len, float* center);

// The widest x86 kernel this CPU runs (AVX-512F, else AVX2 + FMA), or
// portable(); WHALE_NO_AVX512 stops at AVX2, WHALE_NO_AVX2 at portable().
Kernel best();

}  // namespace whale::aggregate::gram_f32::kernels
