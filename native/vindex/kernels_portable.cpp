#include <cstdlib>

#include "kernels.h"

namespace whale::vindex::kernels {

void dot_f32_portable(const float* const* rows, const float* const* queries, size_t stride, float* out) {
  for (size_t r = 0; r < kF32Rows; ++r) {
    for (size_t q = 0; q < kF32Queries; ++q) {
      // Eight partial sums, like the eight lanes of the SIMD kernel.
      float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (size_t j = 0; j < stride; j += 8) {
        for (size_t l = 0; l < 8; ++l) lane[l] += rows[r][j + l] * queries[q][j + l];
      }
      out[r * kF32Queries + q] =
          ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
    }
  }
}

void dot_i8_portable(const int8_t* const* rows, const float* const* scales, const int16_t* const* queries,
                     const uint32_t* block_offset, const uint32_t* block_length, size_t blocks, float* out) {
  for (size_t r = 0; r < kI8Rows; ++r) {
    for (size_t q = 0; q < kI8Queries; ++q) {
      float acc = 0.f;
      for (size_t b = 0; b < blocks; ++b) {
        int32_t sum = 0;
        for (uint32_t j = block_offset[b]; j < block_offset[b] + block_length[b]; ++j)
          sum += int32_t{rows[r][j]} * queries[q][j];
        acc += static_cast<float>(sum) * scales[r][b];
      }
      out[r * kI8Queries + q] = acc;
    }
  }
}

const Table& pick() {
  static const Table t = [] {
#if WHALE_VINDEX_AVX2
    if (avx2_available() && !std::getenv("WHALE_NO_AVX2")) return Table{dot_f32_avx2, dot_i8_avx2, "avx2"};
#endif
    return Table{dot_f32_portable, dot_i8_portable, "portable"};
  }();
  return t;
}

}  // namespace whale::vindex::kernels
