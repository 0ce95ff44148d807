// Per-range codec kernels (CPU). Each works on whole blocks [b0, b1) (int8,
// int4) or element ranges [lo, hi) (fp16, bf16) so callers can split work.
// Non-finite inputs: with zero_non_finite they are encoded as 0; otherwise the
// kernel returns the index of the first one it met (or SIZE_MAX if none).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace whale::quant::kernels {

inline constexpr size_t kNone = SIZE_MAX;

size_t encode_int8(const float* x, size_t n, size_t bs, size_t b0, size_t b1, bool zero_non_finite, float* scales,
                   int8_t* q);
void decode_int8(const float* scales, const int8_t* q, size_t n, size_t bs, size_t b0, size_t b1, float* out);

// int4: levels -8..7, two per byte (low nibble first); bs must be even. The
// scale of each block is searched among a few clipping ratios for least error.
size_t encode_int4(const float* x, size_t n, size_t bs, size_t b0, size_t b1, bool zero_non_finite, float* scales,
                   uint8_t* q);
void decode_int4(const float* scales, const uint8_t* q, size_t n, size_t bs, size_t b0, size_t b1, float* out);

// int8 scale of a block with largest |value| absmax: absmax / 127, one ulp
// lower where 127 * scale would round up to Infinity (absmax near FLT_MAX).
inline float int8_scale(float absmax) {
  const float s = absmax / 127.f;
  return std::isinf(s * 127.f) ? std::nextafter(s, 0.f) : s;
}

// Blocks whose absmax is below kTinyAbsmax are quantized after an exact
// multiplication by kTinyLift (then the scale is divided by it), so that
// 127 / absmax and 1 / scale cannot overflow; elsewhere results are unchanged.
inline constexpr float kTinyAbsmax = 0x1p-100f;
inline constexpr float kTinyLift = 0x1p64f;

// int4 scale search: the clipping ratios tried (scale = ratio * absmax / 7.5),
// and the fixed order in which eight lane sums of squared errors are added.
inline constexpr float kInt4Clip[] = {1.f, 0.95f, 0.9f, 0.85f, 0.8f};
inline float lane_sum8(const float* a) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }
// The lowest int4 level is -8 unless -8 * s would overflow (|x| near FLT_MAX).
inline float int4_low(float s) { return std::isinf(-8.f * s) ? -7.f : -8.f; }

// fp16 saturates at +-65504; bf16 rounds to nearest even and saturates at its max.
size_t encode_fp16(const float* x, size_t lo, size_t hi, bool zero_non_finite, uint16_t* out);
void decode_fp16(const uint16_t* in, size_t lo, size_t hi, float* out);
// fp16 range report over [lo, hi): first index whose |value| exceeds 65504 and
// first nonzero value that rounds to 0 (|x| <= 2^-25); NaN/Inf are ignored.
void fp16_range(const float* x, size_t lo, size_t hi, size_t& saturated, size_t& flushed);
size_t encode_bf16(const float* x, size_t lo, size_t hi, bool zero_non_finite, uint16_t* out);
void decode_bf16(const uint16_t* in, size_t lo, size_t hi, float* out);

}  // namespace whale::quant::kernels
