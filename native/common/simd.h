// Run-time SIMD selection, portable builds: on x86-64 GCC/Clang build an
// x86-64-v3 (AVX2+FMA) clone of a hot function beside the baseline (SSE2) one, and the
// loader picks the best clone for the CPU it runs on (ifunc).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__) && defined(__linux__)
#define WHALE_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define WHALE_SIMD_CLONES
#endif
