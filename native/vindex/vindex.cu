// CUDA exact scan. Kernel 1: one thread per (row, query) distance, for a chunk
// of queries at a time. Kernel 2: one block per query; each thread keeps the
// best k of a strided share of the rows, then thread 0 merges the shares.
// The (distance, label) order is the CPU's, so ties resolve the same way.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common/error.h"
#include "../gpu/cuda_util.cuh"
#include "vindex_cuda.h"

namespace whale::vindex::cuda {
namespace {

using gpu::check;
template <typename T>
using Buf = gpu::DeviceBuffer<T>;

constexpr int kThreads = 128;

struct DevRows {
  int storage;
  unsigned stride, blocks;
  unsigned long long rows;
  const float* f32;
  const signed char* codes;
  const float* scales;
  const unsigned* boff;
  const unsigned* blen;
  const float* norm2;
  const float* inv_norm;
};

struct DevQueries {
  unsigned stride;
  const float* f32;
  const short* i16;
  const float* scale;
  const float* norm2;
  const float* inv_norm;
};

__device__ float finish(int metric, float dot, float qn, float qinv, float xn, float xinv) {
  if (metric == 0) return fmaxf(0.f, (qn + xn) - 2.f * dot);
  if (metric == 1) return -dot;
  return 1.f - dot * qinv * xinv;
}

__global__ void distances(DevRows r, DevQueries q, unsigned long long q0, unsigned nq, int metric, float* out) {
  const unsigned long long row = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
  const unsigned qi = blockIdx.y;
  if (row >= r.rows || qi >= nq) return;
  const unsigned long long query = q0 + qi;
  float dot = 0.f;
  if (r.storage == 0) {
    const float* x = r.f32 + row * r.stride;
    const float* v = q.f32 + query * q.stride;
    for (unsigned j = 0; j < r.stride; ++j) dot += x[j] * v[j];
  } else {
    const signed char* x = r.codes + row * r.stride;
    const short* v = q.i16 + query * q.stride;
    const float* s = r.scales + row * r.blocks;
    for (unsigned b = 0; b < r.blocks; ++b) {
      int sum = 0;
      for (unsigned j = r.boff[b]; j < r.boff[b] + r.blen[b]; ++j) sum += int(x[j]) * int(v[j]);
      dot += float(sum) * s[b];
    }
    dot *= q.scale[query];
  }
  out[qi * r.rows + row] = finish(metric, dot, q.norm2[query], q.inv_norm[query], r.norm2[row], r.inv_norm[row]);
}

__device__ bool closer(float da, unsigned la, float db, unsigned lb) { return da < db || (da == db && la < lb); }

// Inserts (d, l) into the sorted list (d_list, l_list) of length n <= k.
__device__ void insert(float* dl, unsigned* ll, unsigned& n, unsigned k, float d, unsigned l) {
  if (n == k && !closer(d, l, dl[k - 1], ll[k - 1])) return;
  unsigned i = n < k ? n++ : k - 1;
  while (i > 0 && closer(d, l, dl[i - 1], ll[i - 1])) {
    dl[i] = dl[i - 1];
    ll[i] = ll[i - 1];
    --i;
  }
  dl[i] = d;
  ll[i] = l;
}

__global__ void select_topk(const float* dist, unsigned long long rows, const unsigned* labels, unsigned k,
                            float* scratch_d, unsigned* scratch_l, unsigned* scratch_n, float* out_d, unsigned* out_l) {
  const unsigned qi = blockIdx.x, t = threadIdx.x;
  float* dl = scratch_d + (qi * kThreads + t) * k;
  unsigned* ll = scratch_l + (qi * kThreads + t) * k;
  unsigned n = 0;
  const float* d = dist + qi * rows;
  for (unsigned long long r = t; r < rows; r += kThreads) insert(dl, ll, n, k, d[r], labels[r]);
  scratch_n[qi * kThreads + t] = n;
  __syncthreads();
  if (t != 0) return;
  float* bd = out_d + qi * k;
  unsigned* bl = out_l + qi * k;
  unsigned m = 0;
  for (unsigned s = 0; s < kThreads; ++s) {
    const float* sd = scratch_d + (qi * kThreads + s) * k;
    const unsigned* sl = scratch_l + (qi * kThreads + s) * k;
    for (unsigned i = 0; i < scratch_n[qi * kThreads + s]; ++i) insert(bd, bl, m, k, sd[i], sl[i]);
  }
  for (unsigned i = m; i < k; ++i) {
    bd[i] = nanf("");
    bl[i] = 0xFFFFFFFFu;
  }
}

template <typename T>
void upload(Buf<T>& dst, const T* src, size_t n) {
  if (n) check(cudaMemcpy(dst.ptr, src, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy");
}

}  // namespace

void exact_search(int device, const HostRows& rows, const Queries& q, Metric metric, uint32_t k, uint32_t* labels,
                  float* dists) {
  check(cudaSetDevice(device), "cudaSetDevice");
  const size_t n = rows.rows, nq = q.count;
  if (nq == 0) return;
  const bool f32 = rows.kind == Storage::kF32;
  const uint32_t blocks = f32 ? 0 : rows.layout->blocks;
  Buf<float> d_f32(f32 ? n * rows.stride : 0), d_scales(f32 ? 0 : n * blocks), d_norm2(n), d_inv(n);
  Buf<signed char> d_codes(f32 ? 0 : n * rows.stride);
  Buf<unsigned> d_boff(blocks), d_blen(blocks), d_labels(n);
  upload(d_f32, rows.f32, f32 ? n * rows.stride : 0);
  upload(d_codes, reinterpret_cast<const signed char*>(rows.codes), f32 ? 0 : n * rows.stride);
  upload(d_scales, rows.scales, f32 ? 0 : n * blocks);
  if (!f32) {
    upload(d_boff, rows.layout->offset.data(), blocks);
    upload(d_blen, rows.layout->length.data(), blocks);
  }
  upload(d_norm2, rows.norm2, n);
  upload(d_inv, rows.inv_norm, n);
  upload(d_labels, rows.labels, n);
  Buf<float> q_f32(q.f32.size()), q_scale(q.scale.size()), q_norm2(nq), q_inv(nq);
  Buf<short> q_i16(q.i16.size());
  upload(q_f32, q.f32.data(), q.f32.size());
  upload(q_i16, reinterpret_cast<const short*>(q.i16.data()), q.i16.size());
  upload(q_scale, q.scale.data(), q.scale.size());
  upload(q_norm2, q.norm2.data(), nq);
  upload(q_inv, q.inv_norm.data(), nq);

  const DevRows dr{f32 ? 0 : 1,  rows.stride, blocks,     n,           d_f32.ptr, d_codes.ptr,
                   d_scales.ptr, d_boff.ptr,  d_blen.ptr, d_norm2.ptr, d_inv.ptr};
  const DevQueries dq{q.stride, q_f32.ptr, q_i16.ptr, q_scale.ptr, q_norm2.ptr, q_inv.ptr};
  // Distances for as many queries as fit in ~1 GiB at once (and at most 65535: the grid's y limit).
  // The per-thread top-k scratch is bounded the same way.
  const size_t chunk = std::max<size_t>(1, std::min<size_t>({nq, 65535, (size_t{1} << 28) / std::max<size_t>(n, 1),
                                                             (size_t{1} << 26) / (size_t{kThreads} * k)}));
  Buf<float> d_dist(chunk * std::max<size_t>(n, 1));
  Buf<float> s_d(chunk * kThreads * k), o_d(chunk * k);
  Buf<unsigned> s_l(chunk * kThreads * k), s_n(chunk * kThreads), o_l(chunk * k);
  for (size_t q0 = 0; q0 < nq; q0 += chunk) {
    const unsigned m = static_cast<unsigned>(std::min(chunk, nq - q0));
    if (n > 0) {
      const dim3 grid(static_cast<unsigned>((n + 255) / 256), m);
      distances<<<grid, 256>>>(dr, dq, q0, m, static_cast<int>(metric), d_dist.ptr);
      check(cudaGetLastError(), "vindex distances kernel");
    }
    select_topk<<<m, kThreads>>>(d_dist.ptr, n, d_labels.ptr, k, s_d.ptr, s_l.ptr, s_n.ptr, o_d.ptr, o_l.ptr);
    check(cudaGetLastError(), "vindex top-k kernel");
    check(cudaMemcpy(dists + q0 * k, o_d.ptr, size_t{m} * k * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
    check(cudaMemcpy(labels + q0 * k, o_l.ptr, size_t{m} * k * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
  }
}

}  // namespace whale::vindex::cuda
