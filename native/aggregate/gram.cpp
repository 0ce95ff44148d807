#include "gram.h"

#include <algorithm>
#include <cfloat>
#include <cstring>

#include "../common/simd.h"

namespace whale::aggregate::gram {
namespace {

using simd::v4d;
constexpr size_t kTileRows = 4, kTileCols = 2;

size_t padded(size_t n) { return (n + kTileRows - 1) / kTileRows * kTileRows; }

typedef double v4du __attribute__((vector_size(32), aligned(8)));  // an unaligned load

// Macros, not functions: a vector-typed function of the portable clone would
// change its ABI (-Wpsabi).
#define WHALE_AT(p) (*reinterpret_cast<const v4du*>(p))
#define WHALE_LANES_SUM(v) (((v)[0] + (v)[1]) + ((v)[2] + (v)[3]))

// One 4 x 2 tile of dot products over len doubles (len a multiple of 4): rows
// a[0..4) against rows b[0..2), eight accumulators kept in registers. Inlined
// into block_gram's clones, so no call per tile.
inline __attribute__((always_inline)) void tile_dots(const double* a, const double* b, size_t stride, size_t len,
                                                     double out[kTileRows][kTileCols]) {
  v4d s00 = {}, s01 = {}, s10 = {}, s11 = {}, s20 = {}, s21 = {}, s30 = {}, s31 = {};
  const double *a0 = a, *a1 = a + stride, *a2 = a + 2 * stride, *a3 = a + 3 * stride;
  const double *b0 = b, *b1 = b + stride;
  for (size_t j = 0; j < len; j += 4) {
    const v4d y0 = WHALE_AT(b0 + j), y1 = WHALE_AT(b1 + j);
    v4d x = WHALE_AT(a0 + j);
    s00 += x * y0;
    s01 += x * y1;
    x = WHALE_AT(a1 + j);
    s10 += x * y0;
    s11 += x * y1;
    x = WHALE_AT(a2 + j);
    s20 += x * y0;
    s21 += x * y1;
    x = WHALE_AT(a3 + j);
    s30 += x * y0;
    s31 += x * y1;
  }
  out[0][0] = WHALE_LANES_SUM(s00), out[0][1] = WHALE_LANES_SUM(s01), out[1][0] = WHALE_LANES_SUM(s10),
  out[1][1] = WHALE_LANES_SUM(s11);
  out[2][0] = WHALE_LANES_SUM(s20), out[2][1] = WHALE_LANES_SUM(s21), out[3][0] = WHALE_LANES_SUM(s30),
  out[3][1] = WHALE_LANES_SUM(s31);
}

// Rows [0, n) of coordinates [lo, lo + len) as doubles, zero-padded to
// padded(n) rows and kBlock columns.
WHALE_SIMD_CLONES
void convert(const ClientUpdates& u, size_t lo, size_t len, double* d) {
  const size_t n = u.clients();
  for (size_t i = 0; i < padded(n); ++i) {
    double* row = d + i * kBlock;
    if (i >= n) {
      std::fill(row, row + kBlock, 0.0);
      continue;
    }
    const float* x = u.rows[i] + lo;
    for (size_t j = 0; j < len; ++j) row[j] = static_cast<double>(x[j]);
    std::fill(row + len, row + kBlock, 0.0);
  }
}

// The lower-triangle tiles of one converted block, added into g.
WHALE_SIMD_CLONES
void block_gram(const double* scratch, size_t n, size_t len4, double* g) {
  const size_t np = padded(n);
  double dots[kTileRows][kTileCols];
  for (size_t i0 = 0; i0 < np; i0 += kTileRows) {
    // Column tiles up to the diagonal of this row tile.
    for (size_t k0 = 0; k0 < std::min(i0 + kTileRows, np); k0 += kTileCols) {
      tile_dots(scratch + i0 * kBlock, scratch + k0 * kBlock, kBlock, len4, dots);
      for (size_t r = 0; r < kTileRows; ++r)
        for (size_t c = 0; c < kTileCols; ++c) {
          const size_t i = i0 + r, k = k0 + c;
          if (i < n && k <= i) g[i * n + k] += dots[r][c];
        }
    }
  }
}

}  // namespace

size_t scratch_doubles(size_t n) { return padded(n) * kBlock; }

double entry_error_bound(size_t params, size_t tasks) {
  // Sequential additions one product goes through: its lane (kBlock / 4), the
  // lane reduction (2), one per block, one per task merge; plus the final
  // |a|^2 + |b|^2 - 2ab (3). Each contributes at most one rounding (DBL_EPSILON / 2).
  const size_t blocks = (params + kBlock - 1) / kBlock;
  const double adds = static_cast<double>(kBlock / 4 + 2 + blocks + tasks + 3);
  return adds * DBL_EPSILON / 2;
}

void accumulate(const ClientUpdates& u, size_t lo, size_t hi, double* g, double* scratch) {
  for (size_t b = lo; b < hi; b += kBlock) {
    const size_t len = std::min(kBlock, hi - b);
    convert(u, b, len, scratch);
    block_gram(scratch, u.clients(), (len + 3) / 4 * 4, g);
  }
}

}  // namespace whale::aggregate::gram
