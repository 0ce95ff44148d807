// CUDA codec kernels: one thread per quantization block (encode int8/int4),
// one thread per value otherwise. Arithmetic mirrors kernels_*.cpp (no FMA
// contraction, round-to-nearest-even) so blobs match the CPU path.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "../common/error.h"
#include "../gpu/cuda_util.cuh"
#include "codec_cuda.h"

namespace whale::quant::cuda {
namespace {

using gpu::check;
template <typename T>
using Buf = gpu::DeviceBuffer<T>;

__device__ inline bool non_finite(float v) { return (__float_as_uint(v) & 0x7F800000u) == 0x7F800000u; }

__device__ inline float clean(float v, bool zero, unsigned long long idx, unsigned long long* first_bad) {
  if (!non_finite(v)) return v;
  if (!zero) atomicMin(first_bad, idx);
  return 0.f;
}

__device__ inline float clampf(float v, float lo, float hi) { return fminf(hi, fmaxf(lo, v)); }

// Mirrors kernels_blockwise.cpp: tiny blocks are lifted by 2^64 (exact), the
// int8 scale steps one ulp down where 127 * scale would overflow, int4 picks
// its clipping by the scale-free error sum (r - x / s)^2 * c^2 and uses level
// -8 only where -8 * s is finite.
__global__ void enc_blocks(const float* x, unsigned long long n, unsigned bs, bool int4, bool zero, float* scales,
                           unsigned char* q, unsigned long long* first_bad) {
  const unsigned long long b = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
  const unsigned long long lo = b * bs;
  if (lo >= n) return;
  const unsigned long long len = min((unsigned long long)bs, n - lo);
  float absmax = 0.f;
  for (unsigned long long j = 0; j < len; ++j) absmax = fmaxf(absmax, fabsf(clean(x[lo + j], zero, lo + j, first_bad)));
  float lift = 1.f, unlift = 1.f;
  if (absmax > 0.f && absmax < 0x1p-100f) {
    lift = 0x1p64f;
    unlift = 0x1p-64f;
    absmax = __fmul_rn(absmax, lift);
  }
  if (!int4) {
    float scale = __fdiv_rn(absmax, 127.f);
    if (isinf(__fmul_rn(scale, 127.f))) scale = nextafterf(scale, 0.f);
    scales[b] = __fmul_rn(scale, unlift);
    const float inv = absmax > 0 ? __fdiv_rn(127.f, absmax) : 0.f;
    for (unsigned long long j = 0; j < len; ++j) {
      const float v = __fmul_rn(clean(x[lo + j], true, 0, first_bad), lift);
      q[lo + j] = (unsigned char)(signed char)(int)clampf(rintf(__fmul_rn(v, inv)), -127.f, 127.f);
    }
    return;
  }
  const float clips[5] = {1.f, 0.95f, 0.9f, 0.85f, 0.8f};
  float best = __fdiv_rn(absmax, 7.5f), best_err = INFINITY;
  if (absmax > 0) {
    for (int c = 0; c < 5; ++c) {
      const float s = __fdiv_rn(__fmul_rn(clips[c], absmax), 7.5f), inv = __fdiv_rn(1.f, s);
      const float low = isinf(__fmul_rn(-8.f, s)) ? -7.f : -8.f;
      float e = 0.f;
      for (unsigned long long j = 0; j < len; ++j) {
        const float y = __fmul_rn(__fmul_rn(clean(x[lo + j], true, 0, first_bad), lift), inv);
        const float d = __fsub_rn(clampf(rintf(y), low, 7.f), y);
        e = __fadd_rn(e, __fmul_rn(d, d));
      }
      e = __fmul_rn(e, __fmul_rn(clips[c], clips[c]));
      if (e < best_err) {
        best_err = e;
        best = s;
      }
    }
  }
  scales[b] = __fmul_rn(best, unlift);
  const float inv = absmax > 0 ? __fdiv_rn(1.f, best) : 0.f;
  const float low = isinf(__fmul_rn(-8.f, best)) ? -7.f : -8.f;
  for (unsigned long long j = 0; j < len; j += 2) {
    const float v0 = __fmul_rn(clean(x[lo + j], true, 0, first_bad), lift);
    const int a = (int)clampf(rintf(__fmul_rn(v0, inv)), low, 7.f);
    int c = 0;
    if (j + 1 < len)
      c = (int)clampf(rintf(__fmul_rn(__fmul_rn(clean(x[lo + j + 1], true, 0, first_bad), lift), inv)), low, 7.f);
    q[(lo + j) / 2] = (unsigned char)((a & 0xF) | ((c & 0xF) << 4));
  }
}

__global__ void dec_blocks(const float* scales, const unsigned char* q, unsigned long long n, unsigned bs, bool int4,
                           float* out) {
  for (unsigned long long j = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; j < n;
       j += (unsigned long long)gridDim.x * blockDim.x) {
    const float s = scales[j / bs];
    int v;
    if (int4) {
      const unsigned char byte = q[j / 2];
      v = (signed char)(unsigned char)((j & 1) ? (byte & 0xF0) : (byte << 4)) >> 4;
    } else {
      v = (signed char)q[j];
    }
    out[j] = __fmul_rn((float)v, s);
  }
}

// range[0]: first |x| > 65504, range[1]: first 0 < |x| <= 2^-25 (fp16 only).
__global__ void enc_half(const float* x, unsigned long long n, bool bf16, bool zero, unsigned short* out,
                         unsigned long long* first_bad, unsigned long long* range) {
  for (unsigned long long j = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; j < n;
       j += (unsigned long long)gridDim.x * blockDim.x) {
    const float v = clean(x[j], zero, j, first_bad);
    if (!bf16) {
      out[j] = __half_as_ushort(__float2half_rn(clampf(v, -65504.f, 65504.f)));
      const unsigned a = __float_as_uint(x[j]) & 0x7FFFFFFFu;
      if (a > 0x477FE000u && a < 0x7F800000u) atomicMin(&range[0], j);
      if (a != 0u && a <= 0x33000000u) atomicMin(&range[1], j);
    } else {
      const unsigned u = __float_as_uint(v);
      unsigned r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
      if ((r & 0x7F80u) == 0x7F80u) r = ((u >> 16) & 0x8000u) | 0x7F7Fu;
      out[j] = (unsigned short)r;
    }
  }
}

__global__ void dec_half(const unsigned short* in, unsigned long long n, bool bf16, float* out) {
  for (unsigned long long j = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; j < n;
       j += (unsigned long long)gridDim.x * blockDim.x) {
    out[j] = bf16 ? __uint_as_float((unsigned)in[j] << 16) : __half2float(__ushort_as_half(in[j]));
  }
}

unsigned grid(unsigned long long items, unsigned threads) {
  unsigned long long g = (items + threads - 1) / threads;
  return (unsigned)(g > 65535ull * 32 ? 65535ull * 32 : (g == 0 ? 1 : g));
}

}  // namespace

void encode(int device, const EncodeOptions& o, const float* x, uint64_t length, uint8_t* out) {
  const Layout l = layout_of(o, length);
  write_header(o, length, out);
  check(cudaSetDevice(device), "cudaSetDevice");
  if (o.codec == Codec::kF32) throw EngineError(kErrUnsupported, "codec: f32 blobs are encoded on the CPU");
  Buf<float> dx(length);
  Buf<unsigned long long> bad(3);  // first non-finite, first saturated, first flushed
  const unsigned long long none = ~0ull, nones[3] = {none, none, none};
  check(cudaMemcpy(bad.ptr, nones, sizeof nones, cudaMemcpyHostToDevice), "cudaMemcpy");
  check(cudaMemcpy(dx.ptr, x, length * 4, cudaMemcpyHostToDevice), "cudaMemcpy(values)");
  const bool zero = o.non_finite == NonFinite::kZero;
  const size_t body = l.size - kHeaderBytes - kTrailerBytes;
  Buf<unsigned char> dbody(body);
  if (o.codec == Codec::kInt8 || o.codec == Codec::kInt4) {
    float* scales = reinterpret_cast<float*>(dbody.ptr);
    unsigned char* q = dbody.ptr + l.blocks * 4;
    enc_blocks<<<grid(l.blocks, 128), 128>>>(dx.ptr, length, o.block_size, o.codec == Codec::kInt4, zero, scales, q,
                                             bad.ptr);
  } else {
    enc_half<<<grid(length, 256), 256>>>(dx.ptr, length, o.codec == Codec::kBf16, zero,
                                         reinterpret_cast<unsigned short*>(dbody.ptr), bad.ptr, bad.ptr + 1);
  }
  check(cudaGetLastError(), "encode kernel launch");
  unsigned long long found[3];
  check(cudaMemcpy(found, bad.ptr, sizeof found, cudaMemcpyDeviceToHost), "encode kernel");
  if (found[0] != none) throw_non_finite(found[0]);
  if (o.codec == Codec::kFp16) {
    const auto pos = [&](unsigned long long v) { return v == none ? static_cast<uint64_t>(SIZE_MAX) : v; };
    uint16_t flags;
    std::memcpy(&flags, out + 6, 2);
    flags |= fp16_range_flags(o, x, pos(found[1]), pos(found[2]));
    std::memcpy(out + 6, &flags, 2);
  }
  check(cudaMemcpy(out + kHeaderBytes, dbody.ptr, body, cudaMemcpyDeviceToHost), "cudaMemcpy(blob)");
  seal(out, l.size);
}

void decode(int device, const uint8_t* blob, size_t size, float* out) {
  const BlobInfo info = inspect(blob, size);
  if (info.codec == Codec::kF32) return quant::decode(blob, size, out);
  check(cudaSetDevice(device), "cudaSetDevice");
  const size_t body = size - kHeaderBytes - kTrailerBytes;
  Buf<unsigned char> dbody(body);
  Buf<float> dout(info.length);
  check(cudaMemcpy(dbody.ptr, blob + kHeaderBytes, body, cudaMemcpyHostToDevice), "cudaMemcpy(blob)");
  if (info.codec == Codec::kInt8 || info.codec == Codec::kInt4) {
    const unsigned long long blocks = (info.length + info.block_size - 1) / info.block_size;
    dec_blocks<<<grid(info.length, 256), 256>>>(reinterpret_cast<float*>(dbody.ptr), dbody.ptr + blocks * 4,
                                                info.length, info.block_size, info.codec == Codec::kInt4, dout.ptr);
  } else {
    dec_half<<<grid(info.length, 256), 256>>>(reinterpret_cast<unsigned short*>(dbody.ptr), info.length,
                                              info.codec == Codec::kBf16, dout.ptr);
  }
  check(cudaGetLastError(), "decode kernel launch");
  check(cudaMemcpy(out, dout.ptr, info.length * 4, cudaMemcpyDeviceToHost), "decode kernel");
}

}  // namespace whale::quant::cuda
