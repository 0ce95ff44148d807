#include "gram_f32.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "../common/simd.h"

namespace whale::aggregate::gram_f32 {
namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4)));  // an unaligned load
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
constexpr size_t kTileRows = 4, kTileCols = 3;
constexpr size_t kPrefetchBlocks = 6;  // how far ahead the copy asks for rows (into L2)

// Scratch rows: n rounded up to whole row tiles, plus the column tile that may
// stick out past the last one (zero rows).
size_t scratch_rows(size_t n) { return (n + kTileRows - 1) / kTileRows * kTileRows + kTileCols - 1; }

// Macros, not functions: a vector-typed function of the portable clone would
// change its ABI (-Wpsabi).
#define WHALE_AT(p) (*reinterpret_cast<const v8fu*>(p))
// Adds the eight float lanes of v, widened exactly, into the four double lanes at d.
#define WHALE_FLUSH(v, d)                                                                              \
  (*reinterpret_cast<v4d*>(d) += __builtin_convertvector(__builtin_shufflevector((v), (v), 0, 1, 2, 3), v4d) + \
                                 __builtin_convertvector(__builtin_shufflevector((v), (v), 4, 5, 6, 7), v4d))

// One 4 x 3 tile of dot products over one block: rows a[0..4) against rows
// b[0..3) of the scratch, twelve float accumulators in registers (a run of
// kRun additions per lane), then added into the tile's twelve double vectors
// at acc (12 x 4 doubles). Inlined into block_gram's clones.
inline __attribute__((always_inline)) void tile_dots(const float* a, const float* b, double* acc) {
  v8f s00 = {}, s01 = {}, s02 = {}, s10 = {}, s11 = {}, s12 = {};
  v8f s20 = {}, s21 = {}, s22 = {}, s30 = {}, s31 = {}, s32 = {};
  for (size_t j = 0; j < kBlock; j += kLanes) {
    const v8f y0 = WHALE_AT(b + j), y1 = WHALE_AT(b + kBlock + j), y2 = WHALE_AT(b + 2 * kBlock + j);
    v8f x = WHALE_AT(a + j);
    s00 += x * y0, s01 += x * y1, s02 += x * y2;
    x = WHALE_AT(a + kBlock + j);
    s10 += x * y0, s11 += x * y1, s12 += x * y2;
    x = WHALE_AT(a + 2 * kBlock + j);
    s20 += x * y0, s21 += x * y1, s22 += x * y2;
    x = WHALE_AT(a + 3 * kBlock + j);
    s30 += x * y0, s31 += x * y1, s32 += x * y2;
  }
  WHALE_FLUSH(s00, acc + 0), WHALE_FLUSH(s01, acc + 4), WHALE_FLUSH(s02, acc + 8);
  WHALE_FLUSH(s10, acc + 12), WHALE_FLUSH(s11, acc + 16), WHALE_FLUSH(s12, acc + 20);
  WHALE_FLUSH(s20, acc + 24), WHALE_FLUSH(s21, acc + 28), WHALE_FLUSH(s22, acc + 32);
  WHALE_FLUSH(s30, acc + 36), WHALE_FLUSH(s31, acc + 40), WHALE_FLUSH(s32, acc + 44);
}

constexpr size_t kTileDoubles = kTileRows * kTileCols * 4;

// The tiles covering the lower triangle: (first row, first column) pairs.
std::vector<std::pair<size_t, size_t>> tiles_of(size_t n) {
  std::vector<std::pair<size_t, size_t>> t;
  for (size_t i0 = 0; i0 < n; i0 += kTileRows)
    for (size_t k0 = 0; k0 <= std::min(i0 + kTileRows - 1, n - 1); k0 += kTileCols) t.emplace_back(i0, k0);
  return t;
}

// Rows [0, n) of coordinates [lo, lo + len) into the scratch (a short last
// block zero-padded), asking for the rows of a later block meanwhile.
void copy_block(const ClientUpdates& u, size_t lo, size_t len, float* s) {
  const size_t n = u.clients(), ahead = lo + kPrefetchBlocks * kBlock;
  for (size_t i = 0; i < n; ++i) {
    const float* x = u.rows[i] + lo;
    if (ahead + kBlock <= u.params) {
      for (size_t c = 0; c < kBlock; c += 64 / sizeof(float)) __builtin_prefetch(u.rows[i] + ahead + c, 0, 1);
    }
    float* row = s + i * kBlock;
    std::memcpy(row, x, len * sizeof(float));
    if (len < kBlock) std::fill(row + len, row + kBlock, 0.f);
  }
}

// Every tile of one copied block, added into its double vectors.
WHALE_SIMD_CLONES
void block_gram(const float* s, const std::pair<size_t, size_t>* tiles, size_t count, double* acc) {
  for (size_t t = 0; t < count; ++t) {
    tile_dots(s + tiles[t].first * kBlock, s + tiles[t].second * kBlock, acc + t * kTileDoubles);
  }
}

}  // namespace

size_t scratch_floats(size_t n) { return scratch_rows(n) * kBlock + kLanes; }

size_t tile_bytes(size_t n) { return (tiles_of(n).size() * kTileDoubles + 4) * sizeof(double); }

double entry_error_bound(size_t params, size_t tasks) {
  // A lane's run of kRun terms is rounded kRun times (each product, or each
  // fused multiply-add, and each later sum), each error at most FLT_EPSILON / 2
  // of a partial sum, itself at most the run's sum of |a_j b_j| (and all runs
  // together: <= |a| |b|). Then in double: the two halves of a run (1), one add
  // per block, the lane reduction (2), one per task merge, and the final
  // |a|^2 + |b|^2 - 2ab (3).
  const double run = kRun * (FLT_EPSILON / 2);
  const size_t blocks = (params + kBlock - 1) / kBlock;
  const double adds = static_cast<double>(1 + blocks + 2 + tasks + 3);
  return run / (1 - run) + adds * DBL_EPSILON / 2;
}

double entry_underflow_bound(size_t params) {
  return static_cast<double>(params) * 2 * std::ldexp(1.0, -150);  // up to two roundings per coordinate
}

void accumulate(const ClientUpdates& u, size_t lo, size_t hi, double* g, float* scratch) {
  const size_t n = u.clients();
  float* s = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 31) & ~uintptr_t{31});
  std::fill(s + n * kBlock, s + scratch_rows(n) * kBlock, 0.f);  // the padding rows
  const auto tiles = tiles_of(n);
  std::vector<double> buffer(tiles.size() * kTileDoubles + 4, 0.0);
  double* acc = reinterpret_cast<double*>((reinterpret_cast<uintptr_t>(buffer.data()) + 31) & ~uintptr_t{31});
  for (size_t b = lo; b < hi; b += kBlock) {
    copy_block(u, b, std::min(kBlock, hi - b), s);
    block_gram(s, tiles.data(), tiles.size(), acc);
  }
  for (size_t t = 0; t < tiles.size(); ++t) {
    for (size_t r = 0; r < kTileRows; ++r)
      for (size_t c = 0; c < kTileCols; ++c) {
        const size_t i = tiles[t].first + r, k = tiles[t].second + c;
        const double* v = acc + t * kTileDoubles + (r * kTileCols + c) * 4;
        if (i < n && k <= i) g[i * n + k] += (v[0] + v[1]) + (v[2] + v[3]);
      }
  }
}

}  // namespace whale::aggregate::gram_f32
