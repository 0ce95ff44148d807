// Stands in for CUDA's <cuda_fp16.h> in the emulated build: the half type and the conversions
// the kernels use, round-to-nearest-even like the device's.
#pragma once
#include "cuemu.h"

struct __half {
  unsigned short bits;
};

__device__ inline unsigned short __half_as_ushort(__half h) { return h.bits; }
__device__ inline __half __ushort_as_half(unsigned short u) { return __half{u}; }

__device__ inline __half __float2half_rn(float f) {
  const unsigned x = __float_as_uint(f), sign = (x >> 16) & 0x8000u, a = x & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) return __half{static_cast<unsigned short>(a > 0x7F800000u ? 0x7FFFu : sign | 0x7C00u)};
  const int e = static_cast<int>(a >> 23) - 127;
  if (e > 15) return __half{static_cast<unsigned short>(sign | 0x7C00u)};
  if (e < -25) return __half{static_cast<unsigned short>(sign)};
  const unsigned mant = (a & 0x7FFFFFu) | 0x800000u;  // 24 significant bits
  // Normal halves keep 11 significant bits (shift 13); subnormal ones count units of 2^-24.
  const int shift = e >= -14 ? 13 : -e - 1;
  unsigned q = mant >> shift;
  const unsigned rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;  // a carry may step into the next exponent: fine
  const unsigned bits = e >= -14 ? ((static_cast<unsigned>(e + 15) << 10) + (q - 0x400u)) : q;
  return __half{static_cast<unsigned short>(sign | bits)};
}

__device__ inline float __half2float(__half h) {
  const unsigned sign = (h.bits & 0x8000u) << 16, e = (h.bits >> 10) & 0x1Fu, m = h.bits & 0x3FFu;
  if (e == 0x1F) return __uint_as_float(sign | 0x7F800000u | (m << 13));
  if (e == 0) return (sign ? -1.f : 1.f) * static_cast<float>(m) * 0x1p-24f;  // exact
  return __uint_as_float(sign | ((e + 112) << 23) | (m << 13));
}
