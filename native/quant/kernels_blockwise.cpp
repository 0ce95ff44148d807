#include <algorithm>
#include <cmath>
#include <cstring>

#include "../common/simd.h"
#include "float_bits.h"
#include "kernels.h"

namespace whale::quant::kernels {
namespace {

// Largest |x| as ordered bit patterns: finite values compare like their
// magnitudes, and any NaN/Inf shows up as >= the exponent mask.
#define WHALE_INLINE inline __attribute__((always_inline))

WHALE_INLINE uint32_t max_abs_bits(const float* x, size_t n) {
  uint32_t m = 0;
  for (size_t j = 0; j < n; ++j) {
    uint32_t u;
    std::memcpy(&u, x + j, 4);
    u &= 0x7FFFFFFFu;
    m = u > m ? u : m;
  }
  return m;
}

// Copies a block with NaN/Inf replaced by 0, or reports the first one.
size_t sanitize(const float* x, size_t n, bool zero_non_finite, float* tmp) {
  for (size_t j = 0; j < n; ++j) {
    const bool bad = is_non_finite(x[j]);
    if (bad && !zero_non_finite) return j;
    tmp[j] = bad ? 0.f : x[j];
  }
  return kNone;
}

// Round to nearest even for |v| < 2^22 without libm: vectorizes on SSE2.
WHALE_INLINE float round_even(float v) { return (v + 12582912.f) - 12582912.f; }

WHALE_INLINE void quantize_int8(const float* x, size_t n, float inv, int8_t* q) {
  for (size_t j = 0; j < n; ++j) {
    float r = round_even(x[j] * inv);
    r = std::min(127.f, std::max(-127.f, r));
    q[j] = static_cast<int8_t>(static_cast<int32_t>(r));
  }
}

WHALE_INLINE void dequantize_int8(const int8_t* q, size_t n, float scale, float* out) {
  for (size_t j = 0; j < n; ++j) out[j] = static_cast<float>(q[j]) * scale;
}

// Squared error of quantizing with scale s, in units of s: sum (r - x / s)^2.
// Scale-free, so it neither overflows for huge blocks nor underflows for tiny ones.
// Eight lane sums reduced in a fixed order (lane_sum8), which the AVX2 kernel
// reproduces bit for bit.
WHALE_INLINE float int4_error_units(const float* x, size_t n, float s) {
  const float inv = 1.f / s, low = int4_low(s);
  float acc[8] = {};
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (size_t l = 0; l < 8; ++l) {
      const float y = x[j + l] * inv;
      const float d = std::min(7.f, std::max(low, round_even(y))) - y;
      acc[l] += d * d;
    }
  }
  for (size_t l = 0; j + l < n; ++l) {
    const float y = x[j + l] * inv;
    const float d = std::min(7.f, std::max(low, round_even(y))) - y;
    acc[l] += d * d;
  }
  return lane_sum8(acc);
}

WHALE_INLINE void quantize_int4(const float* x, size_t n, float s, uint8_t* q) {
  const float inv = 1.f / s, low = int4_low(s);
  for (size_t j = 0; j < n; j += 2) {
    const int32_t lo = static_cast<int32_t>(std::min(7.f, std::max(low, round_even(x[j] * inv))));
    const int32_t hi = j + 1 < n ? static_cast<int32_t>(std::min(7.f, std::max(low, round_even(x[j + 1] * inv)))) : 0;
    q[j / 2] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
  }
}

// A block with a tiny absmax is lifted into tmp (exact power-of-two scaling);
// returns the factor its scale must be multiplied by afterwards.
WHALE_INLINE float lift_tiny(const float*& src, size_t len, float& absmax, float* tmp) {
  if (!(absmax > 0 && absmax < kTinyAbsmax)) return 1.f;
  for (size_t j = 0; j < len; ++j) tmp[j] = src[j] * kTinyLift;
  src = tmp;
  absmax *= kTinyLift;
  return 1.f / kTinyLift;
}

// The block's source (sanitized into tmp when it holds NaN/Inf) and its
// absmax; bad receives the block-relative index of a rejected value.
WHALE_INLINE const float* block_source(const float* src, size_t len, bool zero_non_finite, float* tmp, float& absmax,
                                       size_t& bad) {
  bad = kNone;
  uint32_t m = max_abs_bits(src, len);
  if (m >= kExpMask) {
    bad = sanitize(src, len, zero_non_finite, tmp);
    if (bad != kNone) return nullptr;
    src = tmp;
    m = max_abs_bits(src, len);
  }
  std::memcpy(&absmax, &m, 4);
  return src;
}

}  // namespace

WHALE_SIMD_CLONES
size_t encode_int8(const float* x, size_t n, size_t bs, size_t b0, size_t b1, bool zero_non_finite, float* scales,
                   int8_t* q) {
  float tmp[4096];
  for (size_t b = b0; b < b1; ++b) {
    const size_t lo = b * bs, len = std::min(bs, n - lo);
    float absmax;
    size_t bad;
    const float* src = block_source(x + lo, len, zero_non_finite, tmp, absmax, bad);
    if (!src) return lo + bad;
    const float unlift = lift_tiny(src, len, absmax, tmp);
    scales[b] = int8_scale(absmax) * unlift;
    quantize_int8(src, len, absmax > 0 ? 127.f / absmax : 0.f, q + lo);
  }
  return kNone;
}

WHALE_SIMD_CLONES
void decode_int8(const float* scales, const int8_t* q, size_t n, size_t bs, size_t b0, size_t b1, float* out) {
  for (size_t b = b0; b < b1; ++b) {
    const size_t lo = b * bs;
    dequantize_int8(q + lo, std::min(bs, n - lo), scales[b], out + lo);
  }
}

WHALE_SIMD_CLONES
size_t encode_int4(const float* x, size_t n, size_t bs, size_t b0, size_t b1, bool zero_non_finite, float* scales,
                   uint8_t* q) {
  float tmp[4096];
  for (size_t b = b0; b < b1; ++b) {
    const size_t lo = b * bs, len = std::min(bs, n - lo);
    float absmax;
    size_t bad;
    const float* src = block_source(x + lo, len, zero_non_finite, tmp, absmax, bad);
    if (!src) return lo + bad;
    const float unlift = lift_tiny(src, len, absmax, tmp);
    float best = absmax / 7.5f;
    if (absmax > 0) {
      float best_err = INFINITY;
      for (float c : kInt4Clip) {
        const float s = c * absmax / 7.5f;
        const float e = int4_error_units(src, len, s) * (c * c);
        if (e < best_err) {
          best_err = e;
          best = s;
        }
      }
      quantize_int4(src, len, best, q + lo / 2);
    } else {
      std::memset(q + lo / 2, 0, (len + 1) / 2);
    }
    scales[b] = best * unlift;
  }
  return kNone;
}

WHALE_SIMD_CLONES
void decode_int4(const float* scales, const uint8_t* q, size_t n, size_t bs, size_t b0, size_t b1, float* out) {
  for (size_t b = b0; b < b1; ++b) {
    const size_t lo = b * bs, len = std::min(bs, n - lo);
    const float s = scales[b];
    const uint8_t* src = q + lo / 2;
    float* dst = out + lo;
    for (size_t j = 0; j < len; ++j) {
      const uint8_t byte = src[j / 2];
      const int8_t nib = static_cast<int8_t>(static_cast<uint8_t>(j & 1 ? byte & 0xF0 : byte << 4)) >> 4;
      dst[j] = static_cast<float>(nib) * s;
    }
  }
}

}  // namespace whale::quant::kernels
