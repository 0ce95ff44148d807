#include "gram_f32.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "../common/simd.h"

namespace whale::aggregate::gram_f32 {
namespace {

using simd::v4d;
using simd::v4f;
using simd::v8f;
typedef float v8fu __attribute__((vector_size(32), aligned(4)));  // an unaligned load
constexpr size_t kTileRows = 4, kTileCols = 3;
constexpr size_t kPrefetchBlocks = 3;
// Scratch row stride (floats): a block plus one vector, so that rows sit in
// different L1 banks rather than 512 bytes apart.
constexpr size_t kStride = kBlock + kLanes;  // how far ahead the copy asks for rows (into L2)

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
// at acc (12 x 4 doubles).
inline void tile_dots(const float* a, const float* b, double* acc) {
  v8f s00 = {}, s01 = {}, s02 = {}, s10 = {}, s11 = {}, s12 = {};
  v8f s20 = {}, s21 = {}, s22 = {}, s30 = {}, s31 = {}, s32 = {};
  for (size_t j = 0; j < kBlock; j += kLanes) {
    const v8f y0 = WHALE_AT(b + j), y1 = WHALE_AT(b + kStride + j), y2 = WHALE_AT(b + 2 * kStride + j);
    v8f x = WHALE_AT(a + j);
    s00 += x * y0, s01 += x * y1, s02 += x * y2;
    x = WHALE_AT(a + kStride + j);
    s10 += x * y0, s11 += x * y1, s12 += x * y2;
    x = WHALE_AT(a + 2 * kStride + j);
    s20 += x * y0, s21 += x * y1, s22 += x * y2;
    x = WHALE_AT(a + 3 * kStride + j);
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
// block zero-padded), asking for the rows of a later block meanwhile. A plain
// loop of vector copies: memcpy's rep movs starts too slowly for 512 bytes.
void copy_block(const ClientUpdates& u, size_t lo, size_t len, float* s) {
  const size_t n = u.clients(), ahead = lo + kPrefetchBlocks * kBlock;
  const bool prefetch = ahead + kBlock <= u.params;
  for (size_t i = 0; i < n; ++i) {
    const float* x = u.rows[i] + lo;
    if (prefetch) {
      for (size_t c = 0; c < kBlock; c += 64 / sizeof(float)) __builtin_prefetch(u.rows[i] + ahead + c, 0, 1);
    }
    float* row = s + i * kStride;
    if (len == kBlock) {
      for (size_t c = 0; c < kBlock; c += 4) {
        v4f t;
        std::memcpy(&t, x + c, sizeof t);
        *reinterpret_cast<v4f*>(row + c) = t;
      }
    } else {
      std::memcpy(row, x, len * sizeof(float));
      std::fill(row + len, row + kBlock, 0.f);
    }
  }
}

// Every tile of one copied block, added into its double vectors (portable).
void block_gram_portable(const float* s, const std::pair<size_t, size_t>* tiles, size_t count, double* acc) {
  for (size_t t = 0; t < count; ++t) {
    tile_dots(s + tiles[t].first * kStride, s + tiles[t].second * kStride, acc + t * kTileDoubles);
  }
}

#if WHALE_X86_AVX2_KERNELS
// The same tiles with AVX2 + FMA intrinsics: one fused multiply-add per term,
// and each run's eight lanes widened with two vcvtps2pd.
__attribute__((target("avx2,fma"))) inline void flush_avx2(__m256 v, double* d) {
  const __m256d w = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  _mm256_store_pd(d, _mm256_add_pd(_mm256_load_pd(d), w));
}

__attribute__((target("avx2,fma"))) void block_gram_avx2(const float* s, const std::pair<size_t, size_t>* tiles,
                                                        size_t count, double* acc) {
  for (size_t t = 0; t < count; ++t) {
    const float* a = s + tiles[t].first * kStride;
    const float* b = s + tiles[t].second * kStride;
    __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s10 = s00, s11 = s00, s12 = s00;
    __m256 s20 = s00, s21 = s00, s22 = s00, s30 = s00, s31 = s00, s32 = s00;
    for (size_t j = 0; j < kBlock; j += kLanes) {
      const __m256 y0 = _mm256_load_ps(b + j), y1 = _mm256_load_ps(b + kStride + j), y2 = _mm256_load_ps(b + 2 * kStride + j);
      __m256 x = _mm256_load_ps(a + j);
      s00 = _mm256_fmadd_ps(x, y0, s00), s01 = _mm256_fmadd_ps(x, y1, s01), s02 = _mm256_fmadd_ps(x, y2, s02);
      x = _mm256_load_ps(a + kStride + j);
      s10 = _mm256_fmadd_ps(x, y0, s10), s11 = _mm256_fmadd_ps(x, y1, s11), s12 = _mm256_fmadd_ps(x, y2, s12);
      x = _mm256_load_ps(a + 2 * kStride + j);
      s20 = _mm256_fmadd_ps(x, y0, s20), s21 = _mm256_fmadd_ps(x, y1, s21), s22 = _mm256_fmadd_ps(x, y2, s22);
      x = _mm256_load_ps(a + 3 * kStride + j);
      s30 = _mm256_fmadd_ps(x, y0, s30), s31 = _mm256_fmadd_ps(x, y1, s31), s32 = _mm256_fmadd_ps(x, y2, s32);
    }
    double* d = acc + t * kTileDoubles;
    flush_avx2(s00, d), flush_avx2(s01, d + 4), flush_avx2(s02, d + 8);
    flush_avx2(s10, d + 12), flush_avx2(s11, d + 16), flush_avx2(s12, d + 20);
    flush_avx2(s20, d + 24), flush_avx2(s21, d + 28), flush_avx2(s22, d + 32);
    flush_avx2(s30, d + 36), flush_avx2(s31, d + 40), flush_avx2(s32, d + 44);
  }
}
#endif

void block_gram(const float* s, const std::pair<size_t, size_t>* tiles, size_t count, double* acc) {
#if WHALE_X86_AVX2_KERNELS
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !std::getenv("WHALE_NO_AVX2");
  if (avx2) return block_gram_avx2(s, tiles, count, acc);
#endif
  block_gram_portable(s, tiles, count, acc);
}

}  // namespace

size_t scratch_floats(size_t n) { return scratch_rows(n) * kStride + kLanes; }

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
  std::fill(s + n * kStride, s + scratch_rows(n) * kStride, 0.f);  // the padding rows
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
