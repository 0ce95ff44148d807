// AVX2 (+F16C) versions of the hottest codec kernels, chosen at run time by
// codec.cpp when the CPU has them. Results are bit-identical to the portable
// kernels: same float products, round-to-nearest-even, same clamps.
#include "kernels_avx2.h"
#include "float_bits.h"

#if WHALE_HAVE_AVX2_KERNELS
#include <immintrin.h>

#include <algorithm>
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
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), m);
  uint32_t r = *std::max_element(lanes, lanes + 8);
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

}  // namespace

bool available() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
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
