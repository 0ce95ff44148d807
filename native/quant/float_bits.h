// Float bit tricks shared by the codec kernels.
#pragma once
#include <cstdint>
#include <cstring>

namespace whale::quant {

inline constexpr uint32_t kExpMask = 0x7F800000u;  // all-ones exponent: NaN or Inf

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline bool is_non_finite(float f) { return (float_bits(f) & kExpMask) == kExpMask; }

}  // namespace whale::quant
