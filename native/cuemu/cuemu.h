// The CUDA emulation: the constructs the project's .cu files use, implemented for the host, so that
// those files compile unchanged as C++ (g++) and their kernels run on the CPU in ctest. Only the
// ctest target `cuda_kernels` compiles against it (native/cuemu/README.md says how and what is
// covered); the addon never does.
//
// A launch runs every block of the grid (blocks spread over a few host threads) and, inside a
// block, every thread as a fiber (Boost.Context): __syncthreads() suspends the fiber until all
// threads of the block have reached the barrier. __shared__ variables are per host thread, which
// runs one block at a time, so they are per block. Launches are synchronous: streams order
// nothing that is not already ordered. Device memory is host memory that the runtime tracks, so
// copies, frees and pointer kernel arguments are checked against it.
#pragma once
#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers ------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __constant__

// ---- vector types and the built-in indices ---------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
inline constexpr int warpSize = 32;

// ---- runtime types ---------------------------------------------------------------------------
// Values as in CUDA's driver_types.h (the codes a caller may print or compare).
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
};
using cudaError = cudaError_t;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
inline constexpr unsigned cudaStreamDefault = 0, cudaStreamNonBlocking = 1;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major;
  int minor;
  int multiProcessorCount;
};

const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);

// ---- device functions ------------------------------------------------------------------------
void __syncthreads();

__device__ inline unsigned __float_as_uint(float v) {
  unsigned u;
  std::memcpy(&u, &v, 4);
  return u;
}
__device__ inline float __uint_as_float(unsigned u) {
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}
__device__ inline int __float_as_int(float v) { return static_cast<int>(__float_as_uint(v)); }
__device__ inline float __int_as_float(int v) { return __uint_as_float(static_cast<unsigned>(v)); }
// The emulated TUs build with -ffp-contract=off, so each of these is one IEEE operation.
__device__ inline float __fadd_rn(float a, float b) { return a + b; }
__device__ inline float __fsub_rn(float a, float b) { return a - b; }
__device__ inline float __fmul_rn(float a, float b) { return a * b; }
__device__ inline float __fdiv_rn(float a, float b) { return a / b; }
__device__ inline double __dadd_rn(double a, double b) { return a + b; }
__device__ inline double __dmul_rn(double a, double b) { return a * b; }

// CUDA's min/max overloads for integers (the float ones are fminf/fmaxf).
#define WHALE_CUEMU_MINMAX(T)                                 \
  __device__ inline T min(T a, T b) { return b < a ? b : a; } \
  __device__ inline T max(T a, T b) { return a < b ? b : a; }
WHALE_CUEMU_MINMAX(int)
WHALE_CUEMU_MINMAX(unsigned)
WHALE_CUEMU_MINMAX(long long)
WHALE_CUEMU_MINMAX(unsigned long long)
#undef WHALE_CUEMU_MINMAX

// Atomics: other blocks may run on other host threads at the same time.
template <typename T>
inline T whale_cuemu_atomic_update(T* p, T (*f)(T, T), T v) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomics on 32- and 64-bit words");
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  Bits* word = reinterpret_cast<Bits*>(p);
  Bits seen = __atomic_load_n(word, __ATOMIC_RELAXED);
  for (;;) {
    T old, next;
    std::memcpy(&old, &seen, sizeof(T));
    next = f(old, v);
    Bits nb;
    std::memcpy(&nb, &next, sizeof(T));
    if (__atomic_compare_exchange_n(word, &seen, nb, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return old;
  }
}
#define WHALE_CUEMU_ATOMICS(T)                              \
  __device__ inline T atomicAdd(T* p, T v) {                \
    return whale_cuemu_atomic_update<T>(                    \
        p, [](T a, T b) -> T { return a + b; }, v);         \
  }                                                         \
  __device__ inline T atomicSub(T* p, T v) {                \
    return whale_cuemu_atomic_update<T>(                    \
        p, [](T a, T b) -> T { return a - b; }, v);         \
  }                                                         \
  __device__ inline T atomicMin(T* p, T v) {                \
    return whale_cuemu_atomic_update<T>(                    \
        p, [](T a, T b) -> T { return b < a ? b : a; }, v); \
  }                                                         \
  __device__ inline T atomicMax(T* p, T v) {                \
    return whale_cuemu_atomic_update<T>(                    \
        p, [](T a, T b) -> T { return a < b ? b : a; }, v); \
  }                                                         \
  __device__ inline T atomicExch(T* p, T v) {               \
    return whale_cuemu_atomic_update<T>(                    \
        p, [](T, T b) -> T { return b; }, v);               \
  }
WHALE_CUEMU_ATOMICS(int)
WHALE_CUEMU_ATOMICS(unsigned)
WHALE_CUEMU_ATOMICS(unsigned long long)
#undef WHALE_CUEMU_ATOMICS
__device__ inline float atomicAdd(float* p, float v) {
  return whale_cuemu_atomic_update<float>(
      p, [](float a, float b) -> float { return a + b; }, v);
}
__device__ inline double atomicAdd(double* p, double v) {
  return whale_cuemu_atomic_update<double>(
      p, [](double a, double b) -> double { return a + b; }, v);
}
template <typename T>
__device__ inline T atomicCAS(T* p, T expected, T desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expected;
}

// ---- kernel launches -------------------------------------------------------------------------
// The build rewrites `kernel<<<grid, block[, shared[, stream]]>>>(args)` in the .cu sources to
// `::whale::cuemu::launch(kernel, grid, block[, shared[, stream]])(args)` (launch_syntax.cmake);
// nothing else in them changes.
namespace whale::cuemu {

struct LaunchConfig {
  dim3 grid, block;
  size_t shared = 0;
  cudaStream_t stream = nullptr;
};

// Checks the configuration and the pointer arguments, then runs body(ctx) once per thread of the
// grid. Errors go where CUDA puts them: a bad launch to cudaGetLastError, a failure while the
// kernel runs (a barrier not reached by every thread of a block) to the next synchronising call
// (cudaStreamSynchronize, cudaDeviceSynchronize, cudaMemcpy), once: unlike a device's, not sticky.
void run_grid(const LaunchConfig& c, const void* const* pointer_args, size_t pointer_count, void (*body)(void*),
              void* ctx);

// Test hooks: a device memory limit (cudaMalloc beyond it fails with cudaErrorMemoryAllocation;
// 0 = none), the bytes cudaMalloc has handed out and not freed, and the kernels launched so far.
void set_memory_limit(size_t bytes);
size_t device_bytes_in_use();
uint64_t kernels_launched();
uint64_t threads_run();

template <typename T>
const void* pointer_of(const T& v) {
  if constexpr (std::is_pointer_v<T>) {
    return static_cast<const void*>(v);
  } else {
    return nullptr;
  }
}

template <typename... P>
class Launch {
 public:
  Launch(void (*kernel)(P...), LaunchConfig c) : kernel_(kernel), c_(c) {}
  template <typename... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    using Args = std::tuple<std::decay_t<P>...>;
    struct Ctx {
      void (*kernel)(P...);
      Args args;
    } ctx{kernel_, Args(std::forward<A>(a)...)};
    const void* pointers[sizeof...(P) + 1] = {};
    size_t n = 0;
    std::apply([&](const auto&... v) { ((pointers[n++] = pointer_of(v)), ...); }, ctx.args);
    run_grid(
        c_, pointers, n, [](void* p) { std::apply(static_cast<Ctx*>(p)->kernel, static_cast<Ctx*>(p)->args); }, &ctx);
  }

 private:
  void (*kernel_)(P...);
  LaunchConfig c_;
};

template <typename... P>
Launch<P...> launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t shared = 0, cudaStream_t stream = nullptr) {
  return Launch<P...>(kernel, LaunchConfig{grid, block, shared, stream});
}

}  // namespace whale::cuemu
