// AVX2 (+F16C) versions of the hottest codec kernels, chosen at run time by
// codec.cpp when the CPU has them. Results are bit-identical to the portable
// kernels: same float products, round-to-nearest-even, same clamps.
#include "kernels_avx2.h"
#include "float_bits.h"

#if WHALE_HAVE_AVX2_KERNELS
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace whale::quant::kernels::avx2 {
namespace {

#define WHALE_AVX2 __attribute__((target("avx2,fma,f16c")))

WHALE_AVX2 uint32_t max_abs_bits(const float* x, size_t n) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
  __m256i m = _mm256_setzero_si256();
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j)), abs_mask));
  }
  // Horizontal max in registers: halves, then pairs of dwords, then neighbours.
  m = _mm256_max_epu32(m, _mm256_permute2x128_si256(m, m, 1));
  m = _mm256_max_epu32(m, _mm256_shuffle_epi32(m, 0x4E));
  m = _mm256_max_epu32(m, _mm256_shuffle_epi32(m, 0xB1));
  uint32_t r = static_cast<uint32_t>(_mm256_cvtsi256_si32(m));
  for (; j < n; ++j) {
    uint32_t u;
    std::memcpy(&u, x + j, 4);
    r = std::max(r, u & 0x7FFFFFFFu);
  }
  return r;
}

inline float round_even(float v) { return (v + 12582912.f) - 12582912.f; }

WHALE_AVX2 void quantize(const float* x, size_t n, float inv, int8_t* q) {
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    __m256i i[4];
    for (int k = 0; k < 4; ++k) {
      __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vinv));
      i[k] = _mm256_min_epi32(hi, _mm256_max_epi32(lo, v));
    }
    __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + j), _mm256_permutevar8x32_epi32(packed, order));
  }
  for (; j < n; ++j) {
    float r = std::min(127.f, std::max(-127.f, round_even(x[j] * inv)));
    q[j] = static_cast<int8_t>(static_cast<int32_t>(r));
  }
}

WHALE_AVX2 void dequantize(const int8_t* q, size_t n, float scale, float* out) {
  const __m256 vs = _mm256_set1_ps(scale);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + j));
    _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), vs));
  }
  for (; j < n; ++j) out[j] = static_cast<float>(q[j]) * scale;
}

// int4 clipping search: kernels::int4_error_units for every clipping ratio in
// one pass over the block, eight lanes each, summed in the same order
// (kernels::lane_sum8), so the chosen scale is the same.
constexpr size_t kClips = sizeof(kInt4Clip) / sizeof(kInt4Clip[0]);

WHALE_AVX2 void int4_errors(const float* x, size_t n, const float* s, float* err) {
  __m256 vinv[kClips], vlow[kClips], acc[kClips];
  float inv[kClips], low[kClips];
  for (size_t c = 0; c < kClips; ++c) {
    inv[c] = 1.f / s[c];
    low[c] = kernels::int4_low(s[c]);
    vinv[c] = _mm256_set1_ps(inv[c]);
    vlow[c] = _mm256_set1_ps(low[c]);
    acc[c] = _mm256_setzero_ps();
  }
  const __m256 v7 = _mm256_set1_ps(7.f), magic = _mm256_set1_ps(12582912.f);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 xv = _mm256_loadu_ps(x + j);
    for (size_t c = 0; c < kClips; ++c) {
      const __m256 y = _mm256_mul_ps(xv, vinv[c]);
      const __m256 r = _mm256_sub_ps(_mm256_add_ps(y, magic), magic);
      const __m256 d = _mm256_sub_ps(_mm256_min_ps(_mm256_max_ps(r, vlow[c]), v7), y);
      acc[c] = _mm256_add_ps(acc[c], _mm256_mul_ps(d, d));
    }
  }
  for (size_t c = 0; c < kClips; ++c) {
    alignas(32) float a[8];
    _mm256_store_ps(a, acc[c]);
    for (size_t l = 0; j + l < n; ++l) {
      const float y = x[j + l] * inv[c];
      const float d = std::min(7.f, std::max(low[c], round_even(y))) - y;
      a[l] += d * d;
    }
    err[c] = kernels::lane_sum8(a);
  }
}

inline int32_t int4_level(float v, float inv, float low) {
  return static_cast<int32_t>(std::min(7.f, std::max(low, round_even(v * inv))));
}

// Levels of x / s packed two per byte, low nibble first (n may be odd).
WHALE_AVX2 void quantize_int4(const float* x, size_t n, float s, uint8_t* q) {
  const float inv = 1.f / s, low = kernels::int4_low(s);
  const __m256 vinv = _mm256_set1_ps(inv), vlow = _mm256_set1_ps(low), v7 = _mm256_set1_ps(7.f);
  const __m256 magic = _mm256_set1_ps(12582912.f);
  const __m256i nibble = _mm256_set1_epi32(0xF);
  // Byte 0 of each 64-bit lane (its two nibbles) to bytes 0-1 of each 128-bit half.
  const __m256i gather = _mm256_setr_epi8(0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 8, -1, -1,
                                          -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + j), vinv);
    const __m256 r = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_add_ps(y, magic), magic), vlow), v7);
    const __m256i v = _mm256_and_si256(_mm256_cvttps_epi32(r), nibble);
    const __m256i pairs = _mm256_shuffle_epi8(_mm256_or_si256(v, _mm256_srli_epi64(v, 28)), gather);
    const uint32_t bytes = static_cast<uint32_t>(_mm256_extract_epi16(pairs, 0)) |
                           (static_cast<uint32_t>(_mm256_extract_epi16(pairs, 8)) << 16);
    std::memcpy(q + j / 2, &bytes, 4);
  }
  for (; j < n; j += 2) {
    const int32_t lo = int4_level(x[j], inv, low);
    const int32_t hi = j + 1 < n ? int4_level(x[j + 1], inv, low) : 0;
    q[j / 2] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
  }
}

}  // namespace

bool available() {
  static const bool ok =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return ok;
}

size_t encode_int8(const float* x, size_t n, size_t bs, size_t b0, size_t b1, bool zero_non_finite, float* scales,
                   int8_t* q) {
  for (size_t b = b0; b < b1; ++b) {
    const size_t lo = b * bs, len = std::min(bs, n - lo);
    const uint32_t m = max_abs_bits(x + lo, len);
    float absmax;
    std::memcpy(&absmax, &m, 4);
    if (m >= kExpMask || (m != 0 && absmax < kTinyAbsmax)) {  // rare: NaN/Inf or a tiny block
      size_t bad = kernels::encode_int8(x, n, bs, b, b + 1, zero_non_finite, scales, q);
      if (bad != kNone) return bad;
      continue;
    }
    scales[b] = int8_scale(absmax);
    quantize(x + lo, len, absmax > 0 ? 127.f / absmax : 0.f, q + lo);
  }
  return kNone;
}

size_t encode_int4(const float* x, size_t n, size_t bs, size_t b0, size_t b1, bool zero_non_finite, float* scales,
                   uint8_t* q) {
  for (size_t b = b0; b < b1; ++b) {
    const size_t lo = b * bs, len = std::min(bs, n - lo);
    const uint32_t m = max_abs_bits(x + lo, len);
    float absmax;
    std::memcpy(&absmax, &m, 4);
    if (m >= kExpMask || m == 0 || absmax < kTinyAbsmax) {  // rare: NaN/Inf, all zero, or a tiny block
      size_t bad = kernels::encode_int4(x, n, bs, b, b + 1, zero_non_finite, scales, q);
      if (bad != kNone) return bad;
      continue;
    }
    float s[kClips], err[kClips];
    for (size_t c = 0; c < kClips; ++c) s[c] = kInt4Clip[c] * absmax / 7.5f;
    int4_errors(x + lo, len, s, err);
    float best = absmax / 7.5f, best_err = INFINITY;
    for (size_t c = 0; c < kClips; ++c) {
      const float e = err[c] * (kInt4Clip[c] * kInt4Clip[c]);
      if (e < best_err) {
        best_err = e;
        best = s[c];
      }
    }
    quantize_int4(x + lo, len, best, q + lo / 2);
    scales[b] = best;
  }
  return kNone;
}

void decode_int8(const float* scales, const int8_t* q, size_t n, size_t bs, size_t b0, size_t b1, float* out) {
  for (size_t b = b0; b < b1; ++b) {
    const size_t lo = b * bs;
    dequantize(q + lo, std::min(bs, n - lo), scales[b], out + lo);
  }
}

WHALE_AVX2 void fp16_from_finite(const float* x, size_t lo, size_t hi, uint16_t* out) {
  const __m256 mx = _mm256_set1_ps(65504.f), mn = _mm256_set1_ps(-65504.f);
  size_t j = lo;
  for (; j + 8 <= hi; j += 8) {
    __m256 v = _mm256_min_ps(mx, _mm256_max_ps(mn, _mm256_loadu_ps(x + j)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  if (j < hi) kernels::encode_fp16(x, j, hi, false, out);
}

WHALE_AVX2 void fp16_to_float(const uint16_t* in, size_t lo, size_t hi, float* out) {
  size_t j = lo;
  for (; j + 8 <= hi; j += 8) {
    _mm256_storeu_ps(out + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + j))));
  }
  if (j < hi) kernels::decode_fp16(in, j, hi, out);
}

size_t encode_fp16(const float* x, size_t lo, size_t hi, bool zero_non_finite, uint16_t* out) {
  if (max_abs_bits(x + lo, hi - lo) >= kExpMask) return kernels::encode_fp16(x, lo, hi, zero_non_finite, out);
  fp16_from_finite(x, lo, hi, out);
  return kNone;
}

void decode_fp16(const uint16_t* in, size_t lo, size_t hi, float* out) { fp16_to_float(in, lo, hi, out); }

}  // namespace whale::quant::kernels::avx2
#endif
