// Run-time SIMD selection, portable builds: on x86-64 GCC/Clang build an
// x86-64-v3 (AVX2+FMA) clone of a hot function beside the baseline (SSE2) one, and the
// loader picks the best clone for the CPU it runs on (ifunc).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__) && defined(__linux__)
#define WHALE_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define WHALE_SIMD_CLONES
#endif

// Hand-written AVX2 kernels (intrinsics in functions with a target attribute, picked at run time
// after a CPU check) build where the compiler offers x86 intrinsics.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#include <immintrin.h>
#define WHALE_X86_AVX2_KERNELS 1
#endif

#if defined(__GNUC__)
namespace whale::simd {
// GCC/Clang vector extensions: portable element-wise code that each clone compiles to its ISA.
typedef float v4f __attribute__((vector_size(16)));
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));
}  // namespace whale::simd
#endif
