#include "gram_f32.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../common/simd.h"
#include "gram_f32_kernels.h"

namespace whale::aggregate::gram_f32 {

namespace kernels {
namespace {

using simd::v4d;
using simd::v4f;
using simd::v8f;
typedef float v8fu __attribute__((vector_size(32), aligned(4)));  // an unaligned load

// Macros, not functions: a vector-typed function of the portable clone would
// change its ABI (-Wpsabi).
#define WHALE_AT(p) (*reinterpret_cast<const v8fu*>(p))
// Adds the eight float lanes of v, widened exactly, into the four double lanes at d.
#define WHALE_FLUSH(v, d)                                                                                      \
  (*reinterpret_cast<v4d*>(d) += __builtin_convertvector(__builtin_shufflevector((v), (v), 0, 1, 2, 3), v4d) + \
                                 __builtin_convertvector(__builtin_shufflevector((v), (v), 4, 5, 6, 7), v4d))

// 4 x 3 tiles of eight lanes (GCC vector extensions), every run widened.
void block_gram_portable(const float* s, const Tile* tiles, size_t count, float*, double* acc, bool, const Prefetch*) {
  for (size_t t = 0; t < count; ++t) {
    const float* a = s + tiles[t].first * kStride;
    const float* b = s + tiles[t].second * kStride;
    double* d = acc + t * 12 * 4;
    for (size_t run = 0; run < kBlock; run += kRun * 8) {
      v8f s00 = {}, s01 = {}, s02 = {}, s10 = {}, s11 = {}, s12 = {};
      v8f s20 = {}, s21 = {}, s22 = {}, s30 = {}, s31 = {}, s32 = {};
      for (size_t j = run; j < run + kRun * 8; j += 8) {
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
      WHALE_FLUSH(s00, d + 0), WHALE_FLUSH(s01, d + 4), WHALE_FLUSH(s02, d + 8);
      WHALE_FLUSH(s10, d + 12), WHALE_FLUSH(s11, d + 16), WHALE_FLUSH(s12, d + 20);
      WHALE_FLUSH(s20, d + 24), WHALE_FLUSH(s21, d + 28), WHALE_FLUSH(s22, d + 32);
      WHALE_FLUSH(s30, d + 36), WHALE_FLUSH(s31, d + 40), WHALE_FLUSH(s32, d + 44);
    }
  }
}
#undef WHALE_AT
#undef WHALE_FLUSH

}  // namespace

// Min/max networks (minps/maxps in the x86-64-v3 clone): the median of three
// is max(min(a, b), min(max(a, b), c)); of five, the median of three of
// max(min(v0, v1), min(v2, v3)), min(max(v0, v1), max(v2, v3)) and v4.
WHALE_SIMD_CLONES
void block_center(const float* const* rows, size_t n, size_t lo, size_t len, float* center) {
  size_t pick[5] = {};
  const size_t k = sample_rows(n, pick);
  const float *r0 = rows[pick[0]] + lo, *r1 = rows[pick[1]] + lo, *r2 = rows[pick[2]] + lo;
  const float *r3 = rows[pick[3]] + lo, *r4 = rows[pick[4]] + lo;
  auto median3 = [](float a, float b, float c) { return std::max(std::min(a, b), std::min(std::max(a, b), c)); };
  if (k == 5) {
    for (size_t c = 0; c < len; ++c) {
      center[c] = median3(std::max(std::min(r0[c], r1[c]), std::min(r2[c], r3[c])),
                          std::min(std::max(r0[c], r1[c]), std::max(r2[c], r3[c])), r4[c]);
    }
  } else if (k == 3) {
    for (size_t c = 0; c < len; ++c) center[c] = median3(r0[c], r1[c], r2[c]);
  } else {
    std::copy(r0, r0 + len, center);
  }
}

namespace {

void copy_block_portable(const float* const* rows, size_t n, size_t lo, const float* center, float* s) {
  for (size_t i = 0; i < n; ++i) {
    const float* x = rows[i] + lo;
    float* row = s + i * kStride;
    for (size_t c = 0; c < kBlock; c += 4) {
      v4f t;
      std::memcpy(&t, x + c, sizeof t);
      *reinterpret_cast<v4f*>(row + c) = t - *reinterpret_cast<const v4f*>(center + c);
    }
  }
}

}  // namespace

Kernel portable() { return {block_gram_portable, copy_block_portable, 4, 3, 0, 4, 1}; }

}  // namespace kernels

namespace {

using kernels::kAlign;
using kernels::Kernel;
using kernels::kStride;
using kernels::Prefetch;
using kernels::Tile;

const Kernel& kernel() {
  static const Kernel k = kernels::best();
  return k;
}

// Scratch rows: n rounded up to whole row tiles, plus the column tile that may
// stick out past the last one (zero rows).
size_t scratch_rows(size_t n, const Kernel& k) { return (n + k.rows - 1) / k.rows * k.rows + k.cols - 1; }

// The tiles covering the lower triangle.
std::vector<Tile> tiles_of(size_t n, const Kernel& k) {
  std::vector<Tile> t;
  for (size_t i0 = 0; i0 < n; i0 += k.rows)
    for (size_t k0 = 0; k0 <= std::min(i0 + k.rows - 1, n - 1); k0 += k.cols) t.emplace_back(i0, k0);
  return t;
}

constexpr size_t kPrefetchBlocks = 2;  // how far ahead the kernels ask for rows

// The last, short block, less its center, zero-padded.
void copy_short_block(const ClientUpdates& u, size_t lo, size_t len, const float* center, float* s) {
  for (size_t i = 0; i < u.clients(); ++i) {
    float* row = s + i * kStride;
    for (size_t c = 0; c < len; ++c) row[c] = u.rows[i][lo + c] - center[c];
    std::fill(row + len, row + kBlock, 0.f);
  }
}

template <typename T>
T* aligned(T* p) {
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + kAlign - 1) & ~uintptr_t{kAlign - 1});
}

}  // namespace

size_t scratch_floats(size_t n) { return scratch_rows(n, kernel()) * kStride + kAlign / sizeof(float); }

size_t tile_bytes(size_t n) {
  const Kernel& k = kernel();
  const size_t entries = tiles_of(n, k).size() * k.rows * k.cols;
  return entries * (k.double_lanes * sizeof(double) + k.float_lanes * sizeof(float)) + 2 * kAlign;
}

double entry_error_bound(size_t params, size_t tasks) {
  // In float, per lane: a run of kRun terms is rounded kRun times (each
  // product, or each fused multiply-add, and each later sum), and the partial
  // sum of up to kRunsPerWiden runs once per run added (after the first); each
  // error is at most FLT_EPSILON / 2 of a partial sum, itself at most the sum
  // of |a_j b_j| it covers (all of them together: <= |a| |b|). Then in
  // double, per lane: the two halves of the widened sum (1), one add per
  // widening (at most two a block), the lane reduction (3 for eight lanes),
  // one per task merge, and the final |a|^2 + |b|^2 - 2ab (3).
  const double roundings = static_cast<double>(kRun + kRunsPerWiden - 1) * (FLT_EPSILON / 2);
  const size_t blocks = (params + kBlock - 1) / kBlock;
  const double adds = static_cast<double>(1 + 2 * blocks + 3 + tasks + 3);
  return roundings / (1 - roundings) + adds * DBL_EPSILON / 2;
}

double centering_error(double norms, size_t params) {
  // Per coordinate, fl(x - c) is within u |fl(x - c)| / (1 - u) of x - c, or
  // 2^-150 when it is subnormal; over a pair, |e| <= u / (1 - u) (|a| + |b|) +
  // 2^-149 sqrt(params), and |a| + |b| <= sqrt(2 (|a|^2 + |b|^2)) (norms
  // taken from the Gram matrix: a little slack for their own error).
  const double u = FLT_EPSILON / 2;
  return u / (1 - u) * std::sqrt(2 * norms * (1 + 1e-5)) +
         std::ldexp(1.0, -149) * std::sqrt(static_cast<double>(params));
}

double entry_underflow_bound(size_t params) {
  // At most two float roundings per coordinate (its product, and the run and
  // partial sums, fewer than one per coordinate), each off by 2^-150 or less.
  return static_cast<double>(params) * 2 * std::ldexp(1.0, -150);
}

void accumulate(const ClientUpdates& u, size_t lo, size_t hi, double* g, float* scratch) {
  const size_t n = u.clients();
  const Kernel& k = kernel();
  float* s = aligned(scratch);
  std::fill(s + n * kStride, s + scratch_rows(n, k) * kStride, 0.f);  // the padding rows
  const std::vector<Tile> tiles = tiles_of(n, k);
  const size_t entries = k.rows * k.cols;
  std::vector<double> acc_buffer(tiles.size() * entries * k.double_lanes + kAlign / sizeof(double), 0.0);
  std::vector<float> partial_buffer(tiles.size() * entries * k.float_lanes + kAlign / sizeof(float), 0.f);
  double* acc = aligned(acc_buffer.data());
  float* partial = aligned(partial_buffer.data());
  alignas(kAlign) float center[kBlock];
  const size_t rows_per_tile = (n + tiles.size() - 1) / tiles.size();
  for (size_t b = lo, count = 1; b < hi; b += kBlock, ++count) {
    const size_t len = std::min(kBlock, hi - b);
    kernels::block_center(u.rows.data(), n, b, len, center);
    if (len == kBlock) k.copy(u.rows.data(), n, b, center, s);
    else copy_short_block(u, b, len, center, s);
    const bool widen = count % k.blocks_per_widen == 0 || b + kBlock >= hi;
    const Prefetch next{u.rows.data(), n, b + kPrefetchBlocks * kBlock, rows_per_tile};
    k.run(s, tiles.data(), tiles.size(), partial, acc, widen, next.lo + kBlock <= hi ? &next : nullptr);
  }
  for (size_t t = 0; t < tiles.size(); ++t) {
    for (size_t r = 0; r < k.rows; ++r)
      for (size_t c = 0; c < k.cols; ++c) {
        const size_t i = tiles[t].first + r, col = tiles[t].second + c;
        if (i >= n || col > i) continue;
        const double* v = acc + (t * entries + r * k.cols + c) * k.double_lanes;
        // Pairwise, as the error bound counts.
        const double sum = k.double_lanes == 8 ? ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
                                               : (v[0] + v[1]) + (v[2] + v[3]);
        g[i * n + col] += sum;
      }
  }
}

}  // namespace whale::aggregate::gram_f32
