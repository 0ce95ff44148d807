#include "robust_lanes.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../common/simd.h"

namespace whale::aggregate::lanes {
namespace {

using simd::v4d;
using simd::v4f;
using simd::v8f;
using simd::v8i;

// One network wire: a client's values of kLanes coordinates, as two vectors.
struct Wire {
  v8f h[2];
  float at(size_t l) const { return h[l / 8][l % 8]; }
};
static_assert(sizeof(Wire) == kLanes * sizeof(float), "one wire is kLanes floats");

// How far ahead (floats) a Scratch with `prefetch` asks for each row: into L2,
// not L1, whose few ways cannot hold a line of every row (rows are often 4
// KiB-aligned alike).
constexpr size_t kPrefetchAhead = 512;

// Gathers coordinates [j, j + len) of every row into v (lanes >= len are 0),
// prefetching the part of each row a later call will read if asked. Returns
// whether every value gathered is finite (x - x is 0 for those, NaN otherwise).
WHALE_SIMD_CLONES
bool load(const float* const* rows, size_t n, size_t j, size_t len, bool prefetch, Wire* v) {
  v8i bad = {};
  for (size_t i = 0; i < n; ++i) {
    if (prefetch) __builtin_prefetch(rows[i] + j + kPrefetchAhead, 0, 1);
    if (len == kLanes) {
      std::memcpy(&v[i], rows[i] + j, sizeof(Wire));
    } else {
      Wire t = {};
      std::memcpy(&t, rows[i] + j, len * sizeof(float));
      v[i] = t;
    }
    for (size_t h = 0; h < 2; ++h) {
      const v8f d = v[i].h[h] - v[i].h[h];
      bad |= d != d;
    }
  }
  for (size_t l = 0; l < 8; ++l)
    if (bad[l]) return false;
  return true;
}

// Compare-exchange on all lanes: min to wire lo, max to wire hi. Equal values
// (including -0 and +0) stay where they are, and so does a NaN.
WHALE_SIMD_CLONES
void apply_portable(Wire* v, const Comparator* net, size_t count) {
  for (size_t q = 0; q < count; ++q) {
    for (size_t h = 0; h < 2; ++h) {
      const v8f a = v[net[q].lo].h[h], b = v[net[q].hi].h[h];
      const v8i swap = b < a;
      v[net[q].lo].h[h] = swap ? b : a;
      v[net[q].hi].h[h] = swap ? a : b;
    }
  }
}

#if WHALE_X86_AVX2_KERNELS
// The same with AVX2 min/max, bit for bit: vminps(b, a) is b < a ? b : a, and
// vmaxps(a, b) is a > b ? a : b (each returns its second operand on equality
// or NaN), so one instruction replaces a compare and a blend.
__attribute__((target("avx2"))) void apply_avx2(Wire* v, const Comparator* net, size_t count) {
  float* base = reinterpret_cast<float*>(v);
  for (size_t q = 0; q < count; ++q) {
    float* lo = base + net[q].lo * kLanes;
    float* hi = base + net[q].hi * kLanes;
    const __m256 a0 = _mm256_load_ps(lo), a1 = _mm256_load_ps(lo + 8);
    const __m256 b0 = _mm256_load_ps(hi), b1 = _mm256_load_ps(hi + 8);
    _mm256_store_ps(lo, _mm256_min_ps(b0, a0));
    _mm256_store_ps(lo + 8, _mm256_min_ps(b1, a1));
    _mm256_store_ps(hi, _mm256_max_ps(a0, b0));
    _mm256_store_ps(hi + 8, _mm256_max_ps(a1, b1));
  }
}
#endif

// Batcher's sorting network for 16 wires at compile time (the same as
// sort16(), which the tests check), so that it runs on registers.
struct Pair {
  uint8_t lo, hi;
};
constexpr size_t kSort16Size = 63;
constexpr std::array<Pair, kSort16Size> make_sort16() {
  std::array<Pair, kSort16Size> t{};
  size_t c = 0;
  for (size_t p = 1; p < kSortedBlock; p <<= 1)
    for (size_t k = p; k >= 1; k >>= 1)
      for (size_t j = k % p; j + k < kSortedBlock; j += 2 * k)
        for (size_t i = 0; i < std::min(k, kSortedBlock - j - k); ++i)
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) {
            t[c].lo = static_cast<uint8_t>(i + j);
            t[c].hi = static_cast<uint8_t>(i + j + k);
            ++c;
          }
  return t;
}
constexpr std::array<Pair, kSort16Size> kSort16 = make_sort16();

#if WHALE_X86_AVX2_KERNELS
// kSort16 on 16 registers r[] of vector type V, fully unrolled (a macro: the
// min/max intrinsics must expand inside each kernel's target attribute).
#define WHALE_SORT16_IN_REGISTERS(r, V, MIN, MAX)                     \
  _Pragma("GCC unroll 63") for (size_t q = 0; q < kSort16Size; ++q) { \
    const V a = r[kSort16[q].lo], b = r[kSort16[q].hi];               \
    r[kSort16[q].lo] = MIN(b, a);                                     \
    r[kSort16[q].hi] = MAX(a, b);                                     \
  }

// GCC 12's own headers trip these on the AVX-512 compare intrinsic.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// AVX-512: a wire's 16 lanes are one zmm register; vminps/vmaxps as above.
__attribute__((target("avx512f"))) void apply_avx512(Wire* v, const Comparator* net, size_t count) {
  static_assert(kLanes == 16, "one zmm a wire");
  float* base = reinterpret_cast<float*>(v);
  for (size_t q = 0; q < count; ++q) {
    float* lo = base + net[q].lo * kLanes;
    float* hi = base + net[q].hi * kLanes;
    const __m512 a = _mm512_load_ps(lo), b = _mm512_load_ps(hi);
    _mm512_store_ps(lo, _mm512_min_ps(b, a));
    _mm512_store_ps(hi, _mm512_max_ps(a, b));
  }
}

// load_sorted16_avx2 (below) with all 16 lanes of the 16 wires in registers at once.
__attribute__((target("avx512f"))) bool load_sorted16_avx512(const float* const* rows, size_t j, Wire* v) {
  __m512 r[kSortedBlock];
  __m512 bad = _mm512_setzero_ps();  // NaN lanes once any x is NaN or Infinity
  for (size_t i = 0; i < kSortedBlock; ++i) {
    r[i] = _mm512_loadu_ps(rows[i] + j);
    bad = _mm512_add_ps(bad, _mm512_sub_ps(r[i], r[i]));
  }
  WHALE_SORT16_IN_REGISTERS(r, __m512, _mm512_min_ps, _mm512_max_ps);
  for (size_t i = 0; i < kSortedBlock; ++i) _mm512_store_ps(reinterpret_cast<float*>(&v[i]), r[i]);
  return _mm512_cmp_ps_mask(bad, bad, _CMP_UNORD_Q) == 0;
}

// load() of a full group with one 64-byte store a wire: the network's loads of
// a wire then forward from one store (from load()'s 16-byte copies they cannot,
// and wait for the stores to reach L1: two thirds of the time at 10 clients).
__attribute__((target("avx512f"))) bool load_full_avx512(const float* const* rows, size_t n, size_t j, bool prefetch,
                                                         Wire* v) {
  __m512 bad = _mm512_setzero_ps();
  for (size_t i = 0; i < n; ++i) {
    if (prefetch) __builtin_prefetch(rows[i] + j + kPrefetchAhead, 0, 1);
    const __m512 x = _mm512_loadu_ps(rows[i] + j);
    bad = _mm512_add_ps(bad, _mm512_sub_ps(x, x));
    _mm512_store_ps(reinterpret_cast<float*>(&v[i]), x);
  }
  return _mm512_cmp_ps_mask(bad, bad, _CMP_UNORD_Q) == 0;
}
#pragma GCC diagnostic pop

// Gathers 16 coordinates of 16 rows into 16 wires, sorting them on the way:
// one half (8 lanes) of all 16 wires in registers at a time. Returns whether
// every value gathered is finite.
__attribute__((target("avx2"))) bool load_sorted16_avx2(const float* const* rows, size_t j, Wire* v) {
  __m256 bad = _mm256_setzero_ps();  // OR of x - x: NaN bits once any x is NaN or Infinity
  for (size_t h = 0; h < 2; ++h) {
    __m256 r[kSortedBlock];
    for (size_t i = 0; i < kSortedBlock; ++i) {
      r[i] = _mm256_loadu_ps(rows[i] + j + 8 * h);
      bad = _mm256_or_ps(bad, _mm256_sub_ps(r[i], r[i]));
    }
    WHALE_SORT16_IN_REGISTERS(r, __m256, _mm256_min_ps, _mm256_max_ps);
    for (size_t i = 0; i < kSortedBlock; ++i) _mm256_store_ps(reinterpret_cast<float*>(&v[i]) + 8 * h, r[i]);
  }
  return _mm256_movemask_ps(_mm256_cmp_ps(bad, bad, _CMP_UNORD_Q)) == 0;
}
#undef WHALE_SORT16_IN_REGISTERS

// load_full_avx512 with two 32-byte stores a wire (the halves apply_avx2 loads).
__attribute__((target("avx2"))) bool load_full_avx2(const float* const* rows, size_t n, size_t j, bool prefetch,
                                                    Wire* v) {
  __m256 bad = _mm256_setzero_ps();
  for (size_t i = 0; i < n; ++i) {
    if (prefetch) __builtin_prefetch(rows[i] + j + kPrefetchAhead, 0, 1);
    const __m256 a = _mm256_loadu_ps(rows[i] + j), b = _mm256_loadu_ps(rows[i] + j + 8);
    bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_sub_ps(a, a), _mm256_sub_ps(b, b)));
    _mm256_store_ps(reinterpret_cast<float*>(&v[i]), a);
    _mm256_store_ps(reinterpret_cast<float*>(&v[i]) + 8, b);
  }
  return _mm256_movemask_ps(_mm256_cmp_ps(bad, bad, _CMP_UNORD_Q)) == 0;
}
#endif

bool use_avx2() {
#if WHALE_X86_AVX2_KERNELS
  static const bool avx2 = __builtin_cpu_supports("avx2") && !std::getenv("WHALE_NO_AVX2");
  return avx2;
#else
  return false;
#endif
}

bool use_avx512() {
#if WHALE_X86_AVX2_KERNELS
  static const bool avx512 = use_avx2() && __builtin_cpu_supports("avx512f") && !std::getenv("WHALE_NO_AVX512");
  return avx512;
#else
  return false;
#endif
}

void apply(Wire* v, const Comparator* net, size_t count) {
#if WHALE_X86_AVX2_KERNELS
  if (use_avx512()) return apply_avx512(v, net, count);
  if (use_avx2()) return apply_avx2(v, net, count);
#endif
  apply_portable(v, net, count);
}

// The wanted ranks into place: each full block of 16 wires sorted by sort16()
// (in registers as it is loaded, with AVX2 and a full group), then `net`, the
// network less those comparators. The same comparators in the same order on
// every path, so every path leaves the same values on every wire. Returns
// whether every value loaded was finite (NaN and Infinity pass through the
// network harmlessly; the caller reports them).
bool load_and_select(const float* const* rows, size_t n, size_t j, size_t len, const std::vector<Comparator>& net,
                     bool prefetch, Wire* v) {
  const size_t blocks = n / kSortedBlock, done = blocks * kSortedBlock;
  bool finite = true;
#if WHALE_X86_AVX2_KERNELS
  if (len == kLanes && use_avx2()) {
    for (size_t q = 0; q < blocks; ++q) {
      if (prefetch)
        for (size_t i = q * kSortedBlock; i < (q + 1) * kSortedBlock; ++i)
          __builtin_prefetch(rows[i] + j + kPrefetchAhead, 0, 1);
      finite &= use_avx512() ? load_sorted16_avx512(rows + q * kSortedBlock, j, v + q * kSortedBlock)
                             : load_sorted16_avx2(rows + q * kSortedBlock, j, v + q * kSortedBlock);
    }
    finite &= use_avx512() ? load_full_avx512(rows + done, n - done, j, prefetch, v + done)
                           : load_full_avx2(rows + done, n - done, j, prefetch, v + done);
    apply(v, net.data(), net.size());
    return finite;
  }
#endif
  finite = load(rows, n, j, len, prefetch, v);
  for (size_t q = 0; q < blocks; ++q) apply(v + q * kSortedBlock, sort16().data(), sort16().size());
  apply(v, net.data(), net.size());
  return finite;
}

// sum[l] = the sum (in double) of min(max(v[i], lo), hi) over all n wires,
// with lo = v[k] and hi = v[n - k - 1] on lane l. With lo and hi the values of
// ranks k and n - k - 1, the k values below rank k count as lo and the k above
// rank n - k - 1 as hi, so the sum of ranks k..n-k-1 is this less
// k * (lo + hi): a min, a max and two adds a wire, whatever the ties. The sum
// is (even i, in order) + (odd i, in order) on every path: two chains of adds.
WHALE_SIMD_CLONES
void clamped_sums_portable(const Wire* v, size_t n, size_t k, double* sum) {
  for (size_t h = 0; h < 2; ++h) {
    const v8f lo = v[k].h[h], hi = v[n - k - 1].h[h];
    v4d acc[2][2] = {};  // [i odd][lanes 0-3 or 4-7 of this half]
    for (size_t i = 0; i < n; ++i) {
      v8f x = v[i].h[h];
      x = x < lo ? lo : x;
      x = x > hi ? hi : x;
      const v4f a = __builtin_shufflevector(x, x, 0, 1, 2, 3), b = __builtin_shufflevector(x, x, 4, 5, 6, 7);
      acc[i % 2][0] += __builtin_convertvector(a, v4d);
      acc[i % 2][1] += __builtin_convertvector(b, v4d);
    }
    for (size_t l = 0; l < 4; ++l) {
      sum[8 * h + l] = acc[0][0][l] + acc[1][0][l];
      sum[8 * h + 4 + l] = acc[0][1][l] + acc[1][1][l];
    }
  }
}

#if WHALE_X86_AVX2_KERNELS
#pragma GCC diagnostic push  // GCC 12's own headers trip these on the AVX-512 intrinsics
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The same on a wire's 16 lanes at once (one zmm), bit for bit.
__attribute__((target("avx512f"))) void clamped_sums_avx512(const Wire* v, size_t n, size_t k, double* sum) {
  const float* base = reinterpret_cast<const float*>(v);
  const __m512 lo = _mm512_load_ps(base + k * kLanes), hi = _mm512_load_ps(base + (n - k - 1) * kLanes);
  __m512d acc[2][2] = {{_mm512_setzero_pd(), _mm512_setzero_pd()}, {_mm512_setzero_pd(), _mm512_setzero_pd()}};
  for (size_t i = 0; i < n; ++i) {
    // vmaxps / vminps return their second operand for a NaN: x second, so a NaN stays, as in the portable clamp.
    const __m512 x = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_load_ps(base + i * kLanes)));
    acc[i % 2][0] = _mm512_add_pd(acc[i % 2][0], _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
    acc[i % 2][1] =
        _mm512_add_pd(acc[i % 2][1], _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))));
  }
  _mm512_storeu_pd(sum, _mm512_add_pd(acc[0][0], acc[1][0]));
  _mm512_storeu_pd(sum + 8, _mm512_add_pd(acc[0][1], acc[1][1]));
}
#pragma GCC diagnostic pop
#endif

// The sum of ranks k..n-k-1 on lane l from the values strictly between lo and
// hi, plus lo and hi as many times as they hold kept ranks: where a threshold is
// infinite (the clamped sum would give Infinity - Infinity), and where the
// clamped sum's 2k extra copies of the thresholds dwarf the kept sum (its
// rounding error, ~ n max(|lo|, |hi|) 2^-53, could reach the float result).
double kept_sum_slow(const Wire* v, size_t n, size_t k, size_t l) {
  const float lo = v[k].at(l), hi = v[n - k - 1].at(l);
  if (lo == hi) return static_cast<double>(lo) * static_cast<double>(n - 2 * k);
  double sum = 0;
  size_t le_lo = 0, lt_hi = 0;
  for (size_t i = 0; i < n; ++i) {
    const float x = v[i].at(l);
    if (x > lo && x < hi) sum += x;
    le_lo += x <= lo;
    lt_hi += x < hi;
  }
  // The thresholds' terms first: far outliers on both sides cancel there before the kept sum is added.
  const double thresholds = static_cast<double>(lo) * (static_cast<double>(le_lo) - static_cast<double>(k)) +
                            static_cast<double>(hi) * (static_cast<double>(n - k) - static_cast<double>(lt_hi));
  return thresholds + sum;
}

}  // namespace

bool sort16_matches_network() {
  const std::vector<Comparator>& net = sort16();
  if (net.size() != kSort16Size) return false;
  for (size_t q = 0; q < kSort16Size; ++q)
    if (net[q].lo != kSort16[q].lo || net[q].hi != kSort16[q].hi) return false;
  return true;
}

bool median(const float* const* rows, size_t n, size_t j, size_t len, const std::vector<Comparator>& net, Scratch s,
            float* out) {
  Wire* v = reinterpret_cast<Wire*>(s.values);
  const bool finite = load_and_select(rows, n, j, len, net, s.prefetch, v);
  const size_t hi = n / 2, lo = (n - 1) / 2;
  for (size_t l = 0; l < len; ++l) {
    out[j + l] = lo == hi ? v[hi].at(l) : static_cast<float>((static_cast<double>(v[lo].at(l)) + v[hi].at(l)) * 0.5);
  }
  return finite;
}

bool trimmed_mean(const float* const* rows, size_t n, size_t k, size_t j, size_t len,
                  const std::vector<Comparator>& net, Scratch s, float* out) {
  Wire* v = reinterpret_cast<Wire*>(s.values);
  const bool finite = load_and_select(rows, n, j, len, net, s.prefetch, v);
  double sum[kLanes];
#if WHALE_X86_AVX2_KERNELS
  if (use_avx512()) clamped_sums_avx512(v, n, k, sum);
  else
#endif
    clamped_sums_portable(v, n, k, sum);
  const double kept = static_cast<double>(n - 2 * k);
  for (size_t l = 0; l < len; ++l) {
    const double lo = v[k].at(l), hi = v[n - k - 1].at(l);
    const double fast = sum[l] - static_cast<double>(k) * (lo + hi);
    const double scale = static_cast<double>(n) * std::max(std::fabs(lo), std::fabs(hi));
    const bool exact_enough = std::isfinite(lo) && std::isfinite(hi) && !(scale > 0x1p28 * std::fabs(fast));
    const double total = exact_enough ? fast : kept_sum_slow(v, n, k, l);
    out[j + l] = static_cast<float>(total / kept);
  }
  return finite;
}

}  // namespace whale::aggregate::lanes
