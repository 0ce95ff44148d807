// The CUDA emulation itself (native/cuemu): the constructs the .cu kernels rely on behave as on a
// device, and what a device would reject is rejected with CUDA's error codes.
#include <cmath>
#include <cstring>
#include <vector>

#include "../cuemu/cuda_fp16.h"
#include "../cuemu/cuemu.h"
#include "check.h"

using whale::cuemu::launch;

namespace {

// Reverses each block's slice through shared memory: wrong without a working barrier.
__global__ void reverse_blocks(const int* in, int* out) {
  __shared__ int tile[256];
  const unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
  tile[t] = in[base + t];
  __syncthreads();
  out[base + t] = tile[blockDim.x - 1 - t];
}

// Several barriers in a loop, 3-D indices: each thread adds its neighbours' values each round.
__global__ void rounds(int* out, int n_rounds) {
  __shared__ int v[4][4][4];
  const unsigned x = threadIdx.x, y = threadIdx.y, z = threadIdx.z;
  v[z][y][x] = static_cast<int>(x + 4 * y + 16 * z);
  for (int r = 0; r < n_rounds; ++r) {
    __syncthreads();
    const int next = v[z][y][(x + 1) % 4] + 1;
    __syncthreads();
    v[z][y][x] = next;
  }
  __syncthreads();
  out[blockIdx.y * 64 + z * 16 + y * 4 + x] = v[z][y][x] + static_cast<int>(1000 * (blockIdx.y + gridDim.y));
}

__global__ void count(unsigned long long* total, double* sum, unsigned* lowest) {
  atomicAdd(total, 1ull);
  atomicAdd(sum, 0.5);
  atomicMin(lowest, blockIdx.x * blockDim.x + threadIdx.x + 7);
}

__global__ void diverge(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
    out[threadIdx.x] = 1;
  }
}

__global__ void noop(float* p) {
  if (p) p[0] = 1.f;
}

template <typename T>
T* device(size_t n) {
  T* p = nullptr;
  cudaMalloc(&p, n * sizeof(T));
  return p;
}

void barriers_and_shared_memory() {
  const int n = 8 * 256;
  std::vector<int> in(n), out(n, -1);
  for (int i = 0; i < n; ++i) in[i] = i * 3;
  int *din = device<int>(n), *dout = device<int>(n);
  cudaMemcpy(din, in.data(), n * 4, cudaMemcpyHostToDevice);
  launch(reverse_blocks, 8, 256)(din, dout);
  CHECK(cudaGetLastError() == cudaSuccess, "reverse: launched");
  cudaMemcpy(out.data(), dout, n * 4, cudaMemcpyDeviceToHost);
  bool ok = true;
  for (int b = 0; b < 8; ++b)
    for (int t = 0; t < 256; ++t) ok &= out[b * 256 + t] == in[b * 256 + 255 - t];
  CHECK(ok, "shared memory is per block and __syncthreads orders its writes and reads");
  cudaFree(din);
  cudaFree(dout);

  int* d = device<int>(3 * 64);
  launch(rounds, dim3(1, 3), dim3(4, 4, 4))(d, 5);
  std::vector<int> r(3 * 64);
  cudaMemcpy(r.data(), d, r.size() * 4, cudaMemcpyDeviceToHost);
  ok = true;
  for (unsigned by = 0; by < 3; ++by)
    for (unsigned i = 0; i < 64; ++i) {
      const unsigned x = i % 4, rest = i - x;
      ok &= r[by * 64 + i] == static_cast<int>(rest + (x + 5) % 4 + 5 + 1000 * (by + 3));
    }
  CHECK(ok, "barriers in a loop, 3-D thread and 2-D block indices");
  cudaFree(d);
}

void atomics_across_blocks() {
  unsigned long long* total = device<unsigned long long>(1);
  double* sum = device<double>(1);
  unsigned* lowest = device<unsigned>(1);
  cudaMemset(total, 0, 8);
  cudaMemset(sum, 0, 8);
  cudaMemset(lowest, 0xFF, 4);
  launch(count, 300, 128)(total, sum, lowest);  // 38400 threads: blocks run on several host threads
  unsigned long long t = 0;
  double s = 0;
  unsigned l = 0;
  cudaMemcpy(&t, total, 8, cudaMemcpyDeviceToHost);
  cudaMemcpy(&s, sum, 8, cudaMemcpyDeviceToHost);
  cudaMemcpy(&l, lowest, 4, cudaMemcpyDeviceToHost);
  CHECK(t == 38400 && s == 19200.0 && l == 7, "atomicAdd (integer, double) and atomicMin across blocks");
  cudaFree(total);
  cudaFree(sum);
  cudaFree(lowest);
}

void errors() {
  float* d = device<float>(4);
  std::vector<float> host(4);
  launch(noop, 0, 32)(d);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "an empty grid: cudaErrorInvalidConfiguration");
  launch(noop, 1, 1025)(d);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "1025 threads per block: rejected");
  launch(noop, dim3(1, 65536), 32)(d);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.y > 65535: rejected");
  launch(noop, 1, 32)(host.data());
  CHECK(cudaGetLastError() == cudaErrorInvalidValue && host[0] == 0.f, "a host pointer argument: rejected, not run");
  launch(noop, 1, 32, 0, reinterpret_cast<cudaStream_t>(&host))(d);
  CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle, "an unknown stream: rejected");
  CHECK(cudaGetLastError() == cudaSuccess, "cudaGetLastError clears the error");

  int* out = device<int>(32);
  launch(diverge, 1, 32)(out);
  CHECK(cudaGetLastError() == cudaSuccess, "a kernel that fails while running launches fine (as launches are async)");
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure, "a barrier only half the block reaches: launch failure");
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "the failure is reported once (not sticky, unlike a device)");
  launch(diverge, 1, 32)(out);
  CHECK(cudaMemcpy(host.data(), d, 16, cudaMemcpyDeviceToHost) == cudaErrorLaunchFailure,
        "the next synchronising copy reports it too");
  cudaGetLastError();

  CHECK(cudaMemcpy(host.data(), d, 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
        "a copy in the wrong direction");
  CHECK(cudaMemcpy(d, host.data(), 20, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
        "a copy past the end of an allocation");
  CHECK(cudaFree(host.data()) == cudaErrorInvalidDevicePointer, "freeing host memory");
  CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice, "device 1 does not exist");
  cudaGetLastError();
  std::memset(host.data(), 0, 16);
  CHECK(cudaMemcpy(host.data(), d, 16, cudaMemcpyDeviceToHost) == cudaSuccess && std::isnan(host[0]),
        "fresh device memory is not zero (NaN for floats)");
  cudaFree(d);
  cudaFree(out);
  whale::cuemu::set_memory_limit(1000);
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 2000) == cudaErrorMemoryAllocation && p == nullptr, "beyond the memory limit: out of memory");
  whale::cuemu::set_memory_limit(0);
  cudaGetLastError();
}

// The half conversions against the compiler's _Float16 (IEEE round-to-nearest-even).
void half_conversions() {
  size_t bad = 0;
  for (unsigned h = 0; h < 65536; ++h) {
    const unsigned short bits = static_cast<unsigned short>(h);
    _Float16 f;
    std::memcpy(&f, &bits, 2);
    const float want = static_cast<float>(f), got = __half2float(__ushort_as_half(bits));
    if (std::memcmp(&want, &got, 4) != 0 && !(std::isnan(want) && std::isnan(got))) ++bad;
  }
  CHECK(bad == 0, "__half2float: every half");
  bad = 0;
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 4093) {  // ~1M floats of every exponent
    const float x = __uint_as_float(static_cast<unsigned>(u));
    if (std::isnan(x)) continue;
    const _Float16 want = static_cast<_Float16>(x);
    unsigned short wb;
    std::memcpy(&wb, &want, 2);
    if (wb != __half_as_ushort(__float2half_rn(x))) ++bad;
  }
  for (unsigned u : {0x33000000u, 0x33000001u, 0x387FC000u, 0x477FEFFFu, 0x477FF000u, 0x38800000u})
    bad += static_cast<_Float16>(__uint_as_float(u)) != __half2float(__float2half_rn(__uint_as_float(u)));
  CHECK(bad == 0, "__float2half_rn: round-to-nearest-even like IEEE (ties, subnormals, overflow)");
}

}  // namespace

void test_cuemu() {
  barriers_and_shared_memory();
  atomics_across_blocks();
  errors();
  half_conversions();
}
