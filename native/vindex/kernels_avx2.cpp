// AVX2+FMA micro-kernels (compiled for x86-64 only, picked at run time).
#include "kernels.h"

#if WHALE_VINDEX_AVX2
#include <immintrin.h>

#define WHALE_AVX2 __attribute__((target("avx2,fma")))

namespace whale::vindex::kernels {
namespace {

WHALE_AVX2 inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));  // lanes l + l+4
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));                                  // (0+4)+(2+6), (1+5)+(3+7)
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

}  // namespace

bool avx2_available() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

WHALE_AVX2 void dot_f32_avx2(const float* const* rows, const float* const* queries, size_t stride, float* out) {
  const float *x0 = rows[0], *x1 = rows[1], *x2 = rows[2], *x3 = rows[3];
  const float *q0 = queries[0], *q1 = queries[1], *q2 = queries[2];
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
  __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
  for (size_t j = 0; j < stride; j += 8) {
    const __m256 v0 = _mm256_loadu_ps(q0 + j), v1 = _mm256_loadu_ps(q1 + j), v2 = _mm256_loadu_ps(q2 + j);
    __m256 x = _mm256_loadu_ps(x0 + j);
    a00 = _mm256_fmadd_ps(x, v0, a00), a01 = _mm256_fmadd_ps(x, v1, a01), a02 = _mm256_fmadd_ps(x, v2, a02);
    x = _mm256_loadu_ps(x1 + j);
    a10 = _mm256_fmadd_ps(x, v0, a10), a11 = _mm256_fmadd_ps(x, v1, a11), a12 = _mm256_fmadd_ps(x, v2, a12);
    x = _mm256_loadu_ps(x2 + j);
    a20 = _mm256_fmadd_ps(x, v0, a20), a21 = _mm256_fmadd_ps(x, v1, a21), a22 = _mm256_fmadd_ps(x, v2, a22);
    x = _mm256_loadu_ps(x3 + j);
    a30 = _mm256_fmadd_ps(x, v0, a30), a31 = _mm256_fmadd_ps(x, v1, a31), a32 = _mm256_fmadd_ps(x, v2, a32);
  }
  out[0] = hsum(a00), out[1] = hsum(a01), out[2] = hsum(a02);
  out[3] = hsum(a10), out[4] = hsum(a11), out[5] = hsum(a12);
  out[6] = hsum(a20), out[7] = hsum(a21), out[8] = hsum(a22);
  out[9] = hsum(a30), out[10] = hsum(a31), out[11] = hsum(a32);
}

WHALE_AVX2 void dot_i8_avx2(const int8_t* const* rows, const float* const* scales, const int16_t* const* queries,
                            const uint32_t* block_offset, const uint32_t* block_length, size_t blocks, float* out) {
  const int8_t *x0 = rows[0], *x1 = rows[1], *x2 = rows[2];
  const int16_t *q0 = queries[0], *q1 = queries[1];
  __m256 f00 = _mm256_setzero_ps(), f01 = f00, f10 = f00, f11 = f00, f20 = f00, f21 = f00;
  for (size_t b = 0; b < blocks; ++b) {
    __m256i i00 = _mm256_setzero_si256(), i01 = i00, i10 = i00, i11 = i00, i20 = i00, i21 = i00;
    const size_t end = block_offset[b] + block_length[b];
    for (size_t j = block_offset[b]; j < end; j += 16) {
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q0 + j));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q1 + j));
      __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x0 + j)));
      i00 = _mm256_add_epi32(i00, _mm256_madd_epi16(x, v0)), i01 = _mm256_add_epi32(i01, _mm256_madd_epi16(x, v1));
      x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x1 + j)));
      i10 = _mm256_add_epi32(i10, _mm256_madd_epi16(x, v0)), i11 = _mm256_add_epi32(i11, _mm256_madd_epi16(x, v1));
      x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x2 + j)));
      i20 = _mm256_add_epi32(i20, _mm256_madd_epi16(x, v0)), i21 = _mm256_add_epi32(i21, _mm256_madd_epi16(x, v1));
    }
    const __m256 s0 = _mm256_set1_ps(scales[0][b]), s1 = _mm256_set1_ps(scales[1][b]),
                 s2 = _mm256_set1_ps(scales[2][b]);
    f00 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i00), s0, f00), f01 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i01), s0, f01);
    f10 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i10), s1, f10), f11 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i11), s1, f11);
    f20 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i20), s2, f20), f21 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i21), s2, f21);
  }
  out[0] = hsum(f00), out[1] = hsum(f01), out[2] = hsum(f10), out[3] = hsum(f11), out[4] = hsum(f20),
  out[5] = hsum(f21);
}

}  // namespace whale::vindex::kernels
#endif
