// Explicit AVX2/F16C kernels (x86-64 GCC/Clang only); same contracts as kernels.h.
#pragma once
#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define WHALE_HAVE_AVX2_KERNELS 1
namespace whale::quant::kernels::avx2 {

bool available();  // the CPU has AVX2, FMA and F16C
size_t encode_int8(const float* x, size_t n, size_t bs, size_t b0, size_t b1, bool zero_non_finite, float* scales,
                   int8_t* q);
void decode_int8(const float* scales, const int8_t* q, size_t n, size_t bs, size_t b0, size_t b1, float* out);
size_t encode_int4(const float* x, size_t n, size_t bs, size_t b0, size_t b1, bool zero_non_finite, float* scales,
                   uint8_t* q);
size_t encode_fp16(const float* x, size_t lo, size_t hi, bool zero_non_finite, uint16_t* out);
void decode_fp16(const uint16_t* in, size_t lo, size_t hi, float* out);

}  // namespace whale::quant::kernels::avx2
#else
#define WHALE_HAVE_AVX2_KERNELS 0
#endif
