// fp16 and bf16 conversions. fp16 uses the compiler's _Float16 (F16C in the
// x86-64-v3 clone), bf16 is bit arithmetic; both round to nearest even.
#include <algorithm>
#include <cstring>

#include "../common/simd.h"
#include "float_bits.h"
#include "kernels.h"

namespace whale::quant::kernels {
namespace {

// First non-finite index in [lo, hi), or kNone.
size_t first_non_finite(const float* x, size_t lo, size_t hi) {
  for (size_t j = lo; j < hi; ++j)
    if (is_non_finite(x[j])) return j;
  return kNone;
}

bool any_non_finite(const float* x, size_t lo, size_t hi) {
  uint32_t m = 0;
  for (size_t j = lo; j < hi; ++j) m |= is_non_finite(x[j]);
  return m != 0;
}

inline float clean(float v) { return is_non_finite(v) ? 0.f : v; }

#ifdef __FLT16_MAX__
WHALE_SIMD_CLONES void to_fp16(const float* x, size_t lo, size_t hi, uint16_t* out) {
  for (size_t j = lo; j < hi; ++j) {
    const _Float16 h = static_cast<_Float16>(std::min(65504.f, std::max(-65504.f, x[j])));
    std::memcpy(out + j, &h, 2);
  }
}

WHALE_SIMD_CLONES
void from_fp16(const uint16_t* in, size_t lo, size_t hi, float* out) {
  for (size_t j = lo; j < hi; ++j) {
    _Float16 h;
    std::memcpy(&h, in + j, 2);
    out[j] = static_cast<float>(h);
  }
}
#else
#error "a compiler with _Float16 support is required (GCC >= 12 or Clang >= 15 on x86-64/aarch64)"
#endif

WHALE_SIMD_CLONES
void to_bf16(const float* x, size_t lo, size_t hi, uint16_t* out) {
  for (size_t j = lo; j < hi; ++j) {
    uint32_t u;
    std::memcpy(&u, x + j, 4);
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    // Rounding the largest floats up would give Inf: saturate at bf16's max.
    if ((r & 0x7F80u) == 0x7F80u) r = (u >> 16 & 0x8000u) | 0x7F7Fu;
    out[j] = static_cast<uint16_t>(r);
  }
}

WHALE_SIMD_CLONES
void from_bf16(const uint16_t* in, size_t lo, size_t hi, float* out) {
  for (size_t j = lo; j < hi; ++j) {
    const uint32_t u = static_cast<uint32_t>(in[j]) << 16;
    std::memcpy(out + j, &u, 4);
  }
}

template <typename Convert>
size_t encode_checked(const float* x, size_t lo, size_t hi, bool zero_non_finite, uint16_t* out, Convert convert) {
  if (!any_non_finite(x, lo, hi)) {
    convert(x, lo, hi, out);
    return kNone;
  }
  if (!zero_non_finite) return first_non_finite(x, lo, hi);
  float tmp[1024];
  for (size_t b = lo; b < hi; b += 1024) {
    const size_t e = std::min(hi, b + 1024);
    for (size_t j = b; j < e; ++j) tmp[j - b] = clean(x[j]);
    convert(tmp, 0, e - b, out + b);
  }
  return kNone;
}

}  // namespace

size_t encode_fp16(const float* x, size_t lo, size_t hi, bool zero_non_finite, uint16_t* out) {
  return encode_checked(x, lo, hi, zero_non_finite, out, to_fp16);
}
void decode_fp16(const uint16_t* in, size_t lo, size_t hi, float* out) { from_fp16(in, lo, hi, out); }

void fp16_range(const float* x, size_t lo, size_t hi, size_t& saturated, size_t& flushed) {
  constexpr uint32_t kMaxBits = 0x477FE000u;    // 65504
  constexpr uint32_t kFlushBits = 0x33000000u;  // 2^-25: rounds (to even) to 0
  saturated = flushed = kNone;
  uint32_t any = 0;
  for (size_t j = lo; j < hi; ++j) {
    const uint32_t a = float_bits(x[j]) & 0x7FFFFFFFu;
    any |= static_cast<uint32_t>((a > kMaxBits) & (a < kExpMask)) | static_cast<uint32_t>((a != 0) & (a <= kFlushBits));
  }
  if (!any) return;
  for (size_t j = lo; j < hi; ++j) {
    const uint32_t a = float_bits(x[j]) & 0x7FFFFFFFu;
    if (saturated == kNone && a > kMaxBits && a < kExpMask) saturated = j;
    if (flushed == kNone && a != 0 && a <= kFlushBits) flushed = j;
  }
}

size_t encode_bf16(const float* x, size_t lo, size_t hi, bool zero_non_finite, uint16_t* out) {
  return encode_checked(x, lo, hi, zero_non_finite, out, to_bf16);
}
void decode_bf16(const uint16_t* in, size_t lo, size_t hi, float* out) { from_bf16(in, lo, hi, out); }

}  // namespace whale::quant::kernels
