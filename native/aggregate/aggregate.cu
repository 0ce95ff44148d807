// CUDA kernels for aggregation. Client rows live in separate host buffers, so
// each call streams column slices [lo, lo + width) of every row into one
// device matrix (row i at x + i * width) and runs the kernel on the slice.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../common/error.h"
#include "../gpu/cuda_util.cuh"
#include "aggregate_cuda.h"

namespace whale::aggregate::cuda {
namespace {

using gpu::check;
using gpu::DeviceBuffer;

// Columns per slice so that one slice of all rows stays under ~1 GiB.
size_t slice_width(size_t clients, size_t params) {
  const size_t budget_floats = size_t{256} << 20;
  return std::max<size_t>(1, std::min(params, budget_floats / std::max<size_t>(clients, 1)));
}

void upload_slice(const ClientUpdates& u, size_t lo, size_t width, float* dx, cudaStream_t s) {
  for (size_t i = 0; i < u.clients(); ++i) {
    check(cudaMemcpyAsync(dx + i * width, u.rows[i] + lo, width * sizeof(float), cudaMemcpyHostToDevice, s),
          "cudaMemcpyAsync(clients)");
  }
}

unsigned blocks_for(size_t items, unsigned threads) {
  return static_cast<unsigned>(std::min<size_t>((items + threads - 1) / threads, 1u << 30));
}

struct Stream {
  cudaStream_t s = nullptr;
  explicit Stream(int device) {
    check(cudaSetDevice(device), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~Stream() {
    if (s) cudaStreamDestroy(s);
  }
  void sync() { check(cudaStreamSynchronize(s), "kernel"); }
};

__global__ void fedavg_kernel(const float* x, size_t n, size_t width, const double* w, float* out) {
  for (size_t j = blockIdx.x * size_t(blockDim.x) + threadIdx.x; j < width; j += size_t(gridDim.x) * blockDim.x) {
    double acc = 0;
    for (size_t i = 0; i < n; ++i) acc += w[i] * static_cast<double>(x[i * width + j]);
    out[j] = static_cast<float>(acc);
  }
}

// Quickselect on a thread-local array: afterwards v[k] holds the k-th
// smallest, everything left of it is <= and everything right is >=.
__device__ void select_kth(float* v, int lo, int hi, int k) {
  while (hi > lo) {
    const float pivot = v[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot) ++i;
      while (v[j] > pivot) --j;
      if (i <= j) {
        const float t = v[i];
        v[i] = v[j];
        v[j] = t;
        ++i;
        --j;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

// mode 0: median; mode 1: trimmed mean dropping `trim` values from each side.
template <int MaxN>
__global__ void select_kernel(const float* x, int n, size_t width, int mode, int trim, float* out) {
  float v[MaxN];
  for (size_t j = blockIdx.x * size_t(blockDim.x) + threadIdx.x; j < width; j += size_t(gridDim.x) * blockDim.x) {
    for (int i = 0; i < n; ++i) v[i] = x[i * width + j];
    if (mode == 0) {
      const int mid = n / 2;
      select_kth(v, 0, n - 1, mid);
      if (n % 2 == 1) {
        out[j] = v[mid];
      } else {
        float lower = v[0];
        for (int i = 1; i < mid; ++i) lower = fmaxf(lower, v[i]);
        out[j] = static_cast<float>((static_cast<double>(lower) + v[mid]) * 0.5);
      }
    } else {
      if (trim > 0) {
        select_kth(v, 0, n - 1, trim);
        select_kth(v, trim, n - 1, n - trim);
      }
      double sum = 0;
      for (int i = trim; i < n - trim; ++i) sum += v[i];
      out[j] = static_cast<float>(sum / (n - 2 * trim));
    }
  }
}

void run_select(int device, const ClientUpdates& u, int mode, int trim, float* out) {
  const size_t n = u.clients();
  if (n > kMaxSelectClients) {
    throw EngineError(kErrUnsupported, "clients: the CUDA median/trimmed-mean kernels take at most " +
                                           std::to_string(kMaxSelectClients) + " clients, got " + std::to_string(n) +
                                           "; use device 'cpu'");
  }
  Stream st(device);
  const size_t width = slice_width(n, u.params);
  DeviceBuffer<float> dx(n * width), dout(width);
  for (size_t lo = 0; lo < u.params; lo += width) {
    const size_t w = std::min(width, u.params - lo);
    upload_slice(u, lo, w, dx.ptr, st.s);
    const unsigned threads = 128, blocks = blocks_for(w, threads);
    const int ni = static_cast<int>(n);
    if (n <= 32) select_kernel<32><<<blocks, threads, 0, st.s>>>(dx.ptr, ni, w, mode, trim, dout.ptr);
    else if (n <= 128) select_kernel<128><<<blocks, threads, 0, st.s>>>(dx.ptr, ni, w, mode, trim, dout.ptr);
    else if (n <= 512) select_kernel<512><<<blocks, threads, 0, st.s>>>(dx.ptr, ni, w, mode, trim, dout.ptr);
    else select_kernel<2048><<<blocks, threads, 0, st.s>>>(dx.ptr, ni, w, mode, trim, dout.ptr);
    check(cudaGetLastError(), "select_kernel launch");
    check(cudaMemcpyAsync(out + lo, dout.ptr, w * sizeof(float), cudaMemcpyDeviceToHost, st.s), "cudaMemcpyAsync(out)");
    st.sync();
  }
}

// GEMM-style tiling: a 16 x 16 block owns a tile of client pairs and a range
// of columns (split-K); operands are staged through shared memory and each
// thread's partial sum is added to the double matrix atomically.
constexpr int kTile = 16;
constexpr int kDepth = 32;

__global__ void distance_kernel(const float* x, int n, size_t width, size_t cols_per_split, double* dist) {
  __shared__ float a[kTile][kDepth + 1];
  __shared__ float b[kTile][kDepth + 1];
  const int ti = threadIdx.y, tk = threadIdx.x;
  const int i0 = blockIdx.y * kTile, k0 = blockIdx.x * kTile;
  if (i0 > k0 + kTile - 1) return;  // whole tile below the diagonal
  const size_t begin = blockIdx.z * cols_per_split;
  const size_t end = (begin + cols_per_split < width) ? begin + cols_per_split : width;
  const int flat = ti * kTile + tk;  // 256 threads load 16 x 32 values each pass
  double total = 0;
  for (size_t c = begin; c < end; c += kDepth) {
    for (int e = flat; e < kTile * kDepth; e += kTile * kTile) {
      const int r = e / kDepth, col = e % kDepth;
      const size_t j = c + col;
      const bool in = j < end;
      a[r][col] = (in && i0 + r < n) ? x[size_t(i0 + r) * width + j] : 0.f;
      b[r][col] = (in && k0 + r < n) ? x[size_t(k0 + r) * width + j] : 0.f;
    }
    __syncthreads();
    // Double, like the CPU path: float squares overflow or underflow at extreme scales.
    double s = 0;
#pragma unroll
    for (int d = 0; d < kDepth; ++d) {
      const double diff = static_cast<double>(a[ti][d]) - static_cast<double>(b[tk][d]);
      s += diff * diff;
    }
    total += s;
    __syncthreads();
  }
  const int i = i0 + ti, k = k0 + tk;
  if (i < n && k < n && i < k) atomicAdd(&dist[size_t(i) * n + k], total);
}

// Updates the device copies; *overflow becomes 1 if any result is not finite
// (the host then downloads nothing, leaving the model and state unchanged).
__global__ void step_kernel(int kind, float lr, float b1, float b2, float tau, float* x, const float* agg, float* m,
                            float* v, size_t p, int* overflow) {
  for (size_t j = blockIdx.x * size_t(blockDim.x) + threadIdx.x; j < p; j += size_t(gridDim.x) * blockDim.x) {
    const float d = agg[j] - x[j];
    if (kind == 0) {  // AvgM
      m[j] = b1 * m[j] + d;
      x[j] += lr * m[j];
      if (!isfinite(x[j]) || !isfinite(m[j])) *overflow = 1;
      continue;
    }
    const float d2 = d * d;
    m[j] = b1 * m[j] + (1 - b1) * d;
    if (kind == 1) {
      v[j] = b2 * v[j] + (1 - b2) * d2;
    } else if (kind == 2) {
      const float diff = v[j] - d2;
      const float sign = diff > 0 ? 1.f : (diff < 0 ? -1.f : 0.f);
      v[j] = v[j] - (1 - b2) * d2 * sign;
    } else {
      v[j] = v[j] + d2;
    }
    x[j] += lr * m[j] / (sqrtf(v[j]) + tau);
    if (!isfinite(x[j]) || !isfinite(m[j]) || !isfinite(v[j])) *overflow = 1;
  }
}

}  // namespace

void fedavg(int device, const ClientUpdates& u, const std::vector<double>& weights, float* out) {
  require_non_empty(u);
  const std::vector<double> norm = normalized_weights(weights, u.clients());

  Stream st(device);
  const size_t n = u.clients(), width = slice_width(n, u.params);
  DeviceBuffer<float> dx(n * width), dout(width);
  DeviceBuffer<double> dw(n);
  check(cudaMemcpyAsync(dw.ptr, norm.data(), n * sizeof(double), cudaMemcpyHostToDevice, st.s),
        "cudaMemcpyAsync(weights)");
  for (size_t lo = 0; lo < u.params; lo += width) {
    const size_t w = std::min(width, u.params - lo);
    upload_slice(u, lo, w, dx.ptr, st.s);
    fedavg_kernel<<<blocks_for(w, 256), 256, 0, st.s>>>(dx.ptr, n, w, dw.ptr, dout.ptr);
    check(cudaGetLastError(), "fedavg_kernel launch");
    check(cudaMemcpyAsync(out + lo, dout.ptr, w * sizeof(float), cudaMemcpyDeviceToHost, st.s), "cudaMemcpyAsync(out)");
    st.sync();
  }
}

void coordinate_median(int device, const ClientUpdates& u, float* out) {
  require_non_empty(u);
  run_select(device, u, 0, 0, out);
}

void trimmed_mean(int device, const ClientUpdates& u, double beta, float* out) {
  require_non_empty(u);
  const size_t k = trim_count(beta, u.clients());
  run_select(device, u, 1, static_cast<int>(k), out);
}

void pairwise_sq_distances(int device, const ClientUpdates& u, double* dist) {
  require_non_empty(u);
  const size_t n = u.clients();
  Stream st(device);
  const size_t width = slice_width(n, u.params);
  DeviceBuffer<float> dx(n * width);
  DeviceBuffer<double> dd(n * n);
  check(cudaMemsetAsync(dd.ptr, 0, n * n * sizeof(double), st.s), "cudaMemset(dist)");
  const unsigned tiles = static_cast<unsigned>((n + kTile - 1) / kTile);
  for (size_t lo = 0; lo < u.params; lo += width) {
    const size_t w = std::min(width, u.params - lo);
    upload_slice(u, lo, w, dx.ptr, st.s);
    // Enough column splits for ~4 blocks per SM-ish parallelism, each >= 4 K columns.
    const size_t splits = std::max<size_t>(1, std::min<size_t>(w / 4096, 65535));
    const size_t per_split = (w + splits - 1) / splits;
    dim3 grid(tiles, tiles, static_cast<unsigned>(splits)), block(kTile, kTile);
    distance_kernel<<<grid, block, 0, st.s>>>(dx.ptr, static_cast<int>(n), w, per_split, dd.ptr);
    check(cudaGetLastError(), "distance_kernel launch");
  }
  check(cudaMemcpyAsync(dist, dd.ptr, n * n * sizeof(double), cudaMemcpyDeviceToHost, st.s), "cudaMemcpyAsync(dist)");
  st.sync();
  for (size_t i = 0; i < n; ++i) {
    dist[i * n + i] = 0;
    for (size_t k = 0; k < i; ++k) dist[i * n + k] = dist[k * n + i];
  }
}

void server_opt_step(int device, const ServerOptConfig& c, float* global, const float* aggregate, float* m, float* v,
                     size_t params) {
  check_server_opt(c);
  if (params == 0) return;
  Stream st(device);
  const bool uses_v = c.kind != ServerOptKind::kAvgM;
  DeviceBuffer<float> dx(params), da(params), dm(params), dv(uses_v ? params : 0);
  DeviceBuffer<int> dflag(1);
  check(cudaMemsetAsync(dflag.ptr, 0, sizeof(int), st.s), "cudaMemset(flag)");
  const size_t bytes = params * sizeof(float);
  check(cudaMemcpyAsync(dx.ptr, global, bytes, cudaMemcpyHostToDevice, st.s), "upload(global)");
  check(cudaMemcpyAsync(da.ptr, aggregate, bytes, cudaMemcpyHostToDevice, st.s), "upload(aggregate)");
  check(cudaMemcpyAsync(dm.ptr, m, bytes, cudaMemcpyHostToDevice, st.s), "upload(m)");
  if (uses_v) check(cudaMemcpyAsync(dv.ptr, v, bytes, cudaMemcpyHostToDevice, st.s), "upload(v)");
  step_kernel<<<blocks_for(params, 256), 256, 0, st.s>>>(
      static_cast<int>(c.kind), static_cast<float>(c.lr), static_cast<float>(c.beta1), static_cast<float>(c.beta2),
      static_cast<float>(c.tau), dx.ptr, da.ptr, dm.ptr, dv.ptr, params, dflag.ptr);
  check(cudaGetLastError(), "step_kernel launch");
  int overflow = 0;
  check(cudaMemcpyAsync(&overflow, dflag.ptr, sizeof(int), cudaMemcpyDeviceToHost, st.s), "download(flag)");
  st.sync();
  if (overflow) {
    throw EngineError(kErrNonFinite,
                      "aggregate: the step overflows float32; the model and the optimizer state are unchanged");
  }
  check(cudaMemcpyAsync(global, dx.ptr, bytes, cudaMemcpyDeviceToHost, st.s), "download(global)");
  check(cudaMemcpyAsync(m, dm.ptr, bytes, cudaMemcpyDeviceToHost, st.s), "download(m)");
  if (uses_v) check(cudaMemcpyAsync(v, dv.ptr, bytes, cudaMemcpyDeviceToHost, st.s), "download(v)");
  st.sync();
}

}  // namespace whale::aggregate::cuda
