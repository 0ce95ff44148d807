// x86 block kernels of the float Gram matrix (gram_f32_kernels.h): AVX2 + FMA
// and AVX-512F, chosen at run time after a CPU check.
#include <cstdlib>

#include "../common/simd.h"
#include "gram_f32_kernels.h"

namespace whale::aggregate::gram_f32::kernels {

#if WHALE_X86_AVX2_KERNELS
// GCC 12's own headers trip this warning on the AVX-512 extract/convert
// intrinsics (their "undefined" pass-through operands).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

// Keeps a loaded vector in a register: without it GCC folds the load into
// each FMA that uses it, multiplying the loads.
#define WHALE_IN_REGISTER(v) asm("" : "+v"(v))

// AVX2: 4 x 3 tiles (16 ymm registers), each run's eight lanes widened into
// four double lanes with two vcvtps2pd.
__attribute__((target("avx2,fma"))) inline void widen_avx2(__m256 v, double* d) {
  const __m256d w =
      _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  _mm256_store_pd(d, _mm256_add_pd(_mm256_load_pd(d), w));
}

__attribute__((target("avx2,fma"))) void block_gram_avx2(const float* s, const Tile* tiles, size_t count, float*,
                                                         double* acc, bool, const Prefetch* next) {
  for (size_t t = 0; t < count; ++t) {
    const float* a = s + tiles[t].first * kStride;
    const float* b = s + tiles[t].second * kStride;
    double* d = acc + t * 12 * 4;
    const size_t pf_first = next ? next->first_row(t) : 0, pf_last = next ? next->last_row(t) : 0;
    for (size_t run = 0; run < kBlock; run += kRun * 8) {
      __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s10 = s00, s11 = s00, s12 = s00;
      __m256 s20 = s00, s21 = s00, s22 = s00, s30 = s00, s31 = s00, s32 = s00;
      for (size_t j = run; j < run + kRun * 8; j += 8) {
        if (j % 16 == 0) {
          for (size_t r = pf_first; r < pf_last; ++r)
            _mm_prefetch(reinterpret_cast<const char*>(next->rows[r] + next->lo + j), _MM_HINT_T1);
        }
        const __m256 y0 = _mm256_load_ps(b + j), y1 = _mm256_load_ps(b + kStride + j),
                     y2 = _mm256_load_ps(b + 2 * kStride + j);
        __m256 x = _mm256_load_ps(a + j);
        s00 = _mm256_fmadd_ps(x, y0, s00), s01 = _mm256_fmadd_ps(x, y1, s01), s02 = _mm256_fmadd_ps(x, y2, s02);
        x = _mm256_load_ps(a + kStride + j);
        s10 = _mm256_fmadd_ps(x, y0, s10), s11 = _mm256_fmadd_ps(x, y1, s11), s12 = _mm256_fmadd_ps(x, y2, s12);
        x = _mm256_load_ps(a + 2 * kStride + j);
        s20 = _mm256_fmadd_ps(x, y0, s20), s21 = _mm256_fmadd_ps(x, y1, s21), s22 = _mm256_fmadd_ps(x, y2, s22);
        x = _mm256_load_ps(a + 3 * kStride + j);
        s30 = _mm256_fmadd_ps(x, y0, s30), s31 = _mm256_fmadd_ps(x, y1, s31), s32 = _mm256_fmadd_ps(x, y2, s32);
      }
      widen_avx2(s00, d), widen_avx2(s01, d + 4), widen_avx2(s02, d + 8);
      widen_avx2(s10, d + 12), widen_avx2(s11, d + 16), widen_avx2(s12, d + 20);
      widen_avx2(s20, d + 24), widen_avx2(s21, d + 28), widen_avx2(s22, d + 32);
      widen_avx2(s30, d + 36), widen_avx2(s31, d + 40), widen_avx2(s32, d + 44);
    }
  }
}

__attribute__((target("avx2"))) void copy_block_avx2(const float* const* rows, size_t n, size_t lo, const float* center,
                                                     float* s) {
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < kBlock; c += 8)
      _mm256_store_ps(s + i * kStride + c,
                      _mm256_sub_ps(_mm256_loadu_ps(rows[i] + lo + c), _mm256_load_ps(center + c)));
}

// AVX-512: 5 x 5 tiles (25 accumulators, 5 column vectors and a row vector:
// 31 of the 32 zmm registers), sixteen lanes, so one run a block. A run is
// added to the entry's float partial sum; widening (two vcvtps2pd and three
// adds) happens once every kRunsPerWiden blocks instead of every run.
constexpr size_t kRows512 = 5, kCols512 = 5;

__attribute__((target("avx512f"))) inline void widen_avx512(__m512 v, double* d) {
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  const __m512d w = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(hi));
  _mm512_store_pd(d, _mm512_add_pd(_mm512_load_pd(d), w));
}

__attribute__((target("avx512f"))) void block_gram_avx512(const float* s, const Tile* tiles, size_t count,
                                                          float* partial, double* acc, bool widen,
                                                          const Prefetch* next) {
  static_assert(kBlock == kRun * 16, "one AVX-512 run a block");
  constexpr size_t R = kRows512, C = kCols512;
  for (size_t t = 0; t < count; ++t) {
    const float* a = s + tiles[t].first * kStride;
    const float* b = s + tiles[t].second * kStride;
    __m512 sum[R][C];
#pragma GCC unroll 5
    for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 5
      for (size_t c = 0; c < C; ++c) sum[r][c] = _mm512_setzero_ps();
    const size_t pf_first = next ? next->first_row(t) : 0, pf_last = next ? next->last_row(t) : 0;
    for (size_t j = 0; j < kBlock; j += 16) {
      for (size_t r = pf_first; r < pf_last; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(next->rows[r] + next->lo + j), _MM_HINT_T1);
      __m512 y[C];
#pragma GCC unroll 5
      for (size_t c = 0; c < C; ++c) y[c] = _mm512_load_ps(b + c * kStride + j);
#pragma GCC unroll 5
      for (size_t r = 0; r < R; ++r) {
        __m512 x = _mm512_load_ps(a + r * kStride + j);
        WHALE_IN_REGISTER(x);
#pragma GCC unroll 5
        for (size_t c = 0; c < C; ++c) sum[r][c] = _mm512_fmadd_ps(x, y[c], sum[r][c]);
      }
    }
    float* p = partial + t * R * C * 16;
    double* d = acc + t * R * C * 8;
#pragma GCC unroll 5
    for (size_t r = 0; r < R; ++r)
#pragma GCC unroll 5
      for (size_t c = 0; c < C; ++c) {
        const size_t e = r * C + c;
        __m512 v = _mm512_add_ps(_mm512_load_ps(p + e * 16), sum[r][c]);
        if (widen) {
          widen_avx512(v, d + e * 8);
          v = _mm512_setzero_ps();
        }
        _mm512_store_ps(p + e * 16, v);
      }
  }
}

__attribute__((target("avx512f"))) void copy_block_avx512(const float* const* rows, size_t n, size_t lo,
                                                          const float* center, float* s) {
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < kBlock; c += 16)
      _mm512_store_ps(s + i * kStride + c,
                      _mm512_sub_ps(_mm512_loadu_ps(rows[i] + lo + c), _mm512_load_ps(center + c)));
}

#undef WHALE_IN_REGISTER

}  // namespace

Kernel best() {
  if (!std::getenv("WHALE_NO_AVX2")) {
    if (__builtin_cpu_supports("avx512f") && !std::getenv("WHALE_NO_AVX512")) {
      return {block_gram_avx512, copy_block_avx512, kRows512, kCols512, 16, 8, kRunsPerWiden};
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return {block_gram_avx2, copy_block_avx2, 4, 3, 0, 4, 1};
    }
  }
  return portable();
}

#else
Kernel best() { return portable(); }
#endif

}  // namespace whale::aggregate::gram_f32::kernels
