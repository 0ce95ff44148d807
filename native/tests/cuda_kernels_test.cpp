// ctest cuda_kernels: every .cu file of native/, compiled as C++ against the CUDA emulation
// (native/cuemu), its kernels run on the CPU and compared with the CPU path:
//   codec.cu       blobs and decoded floats bit-identical (the CPU path's arithmetic is the kernels')
//   vindex.cu      distances within the tolerance of vindex_test (float sums in another order),
//                  labels equal except where two distances are that close
//   aggregate.cu   cuda_kernels_aggregate.cpp (tolerances there)
//   cuda_allocator.cu, cuda_devices.cu  the caching pool over cudaMalloc, the device probe
// cuemu_test.cpp checks the emulation itself (barriers, shared memory, atomics, launch errors).
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../alloc/caching_pool.h"
#include "../common/error.h"
#include "../cuemu/cuemu.h"
#include "../gpu/cuda_devices.h"
#include "../quant/codec.h"
#include "../quant/codec_cuda.h"
#include "../vindex/index.h"
#include "check.h"

using namespace whale;

void test_cuda_aggregate();  // cuda_kernels_aggregate.cpp
void test_cuemu();           // cuemu_test.cpp

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const EngineError& e) {
    return e.code() + ": " + e.what();
  }
  return "";
}

std::vector<float> values(size_t n, uint32_t seed, float scale) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd;
  std::vector<float> x(n);
  for (float& v : x) v = nd(g) * scale;
  return x;
}

void check_codec_case(const quant::EncodeOptions& o, const std::vector<float>& x, const std::string& what) {
  std::vector<uint8_t> cpu, gpu;
  const std::string ec = error_of([&] {
    cpu.resize(quant::encoded_size(o, x.size()));
    quant::encode(o, x.data(), x.size(), cpu.data());
  });
  const std::string eg = error_of([&] {
    gpu.resize(quant::encoded_size(o, x.size()));
    quant::cuda::encode(0, o, x.data(), x.size(), gpu.data());
  });
  CHECK(ec == eg, (what + ": the same error (cpu '" + ec + "', cuda '" + eg + "')").c_str());
  if (!ec.empty()) return;
  CHECK(cpu == gpu, (what + ": blob bit-identical").c_str());
  std::vector<float> dc(x.size()), dg(x.size());
  quant::decode(cpu.data(), cpu.size(), dc.data());
  quant::cuda::decode(0, cpu.data(), cpu.size(), dg.data());
  CHECK(std::memcmp(dc.data(), dg.data(), x.size() * 4) == 0, (what + ": decoded bit-identical").c_str());
}

void test_codec() {
  using quant::Codec;
  const float inf = std::numeric_limits<float>::infinity();
  for (Codec c : {Codec::kInt8, Codec::kInt4, Codec::kFp16, Codec::kBf16}) {
    for (uint32_t bs : {32u, 64u, 4096u}) {
      if ((c == Codec::kFp16 || c == Codec::kBf16) && bs != 64) continue;
      quant::EncodeOptions o;
      o.codec = c;
      o.block_size = bs;
      const std::string name = "codec " + std::to_string(static_cast<int>(c)) + " block " + std::to_string(bs);
      for (size_t n : {size_t{1}, size_t{33}, size_t{1000}, size_t{100003}}) {
        check_codec_case(o, values(n, static_cast<uint32_t>(n), 1.f), name + " n=" + std::to_string(n));
      }
      // Scales at the edges: tiny blocks (lifted by 2^64), subnormals, values near FLT_MAX, zero blocks.
      std::vector<float> edge = values(4 * bs, 7, 1e-38f);
      for (size_t j = bs; j < 2 * bs; ++j) edge[j] = (j % 2 ? 3.4e38f : -3.3e38f) / static_cast<float>(1 + j % 5);
      for (size_t j = 2 * bs; j < 3 * bs; ++j) edge[j] = 0.f;
      for (size_t j = 3 * bs; j < 4 * bs; ++j) edge[j] = std::ldexp(static_cast<float>(j % 17), -140);
      edge[5] = 70000.f;  // fp16: saturates
      edge[6] = 1e-9f;    // fp16: flushed to zero
      check_codec_case(o, edge, name + " edge scales");
      std::vector<float> bad = values(3 * bs + 5, 8, 2.f);
      bad[bs + 3] = std::nanf("");
      bad[2 * bs] = -inf;
      o.non_finite = quant::NonFinite::kError;
      check_codec_case(o, bad, name + " NaN/Inf -> error");
      o.non_finite = quant::NonFinite::kZero;
      check_codec_case(o, bad, name + " NaN/Inf -> zero");
      if (c == Codec::kFp16) {
        o.non_finite = quant::NonFinite::kError;
        o.out_of_range = quant::OutOfRange::kError;
        check_codec_case(o, edge, name + " out of range -> error");
      }
    }
  }
}

void test_vindex() {
  using namespace whale::vindex;
  const uint32_t dim = 100, n = 3000, nq = 7;
  const std::vector<float> rows = values(size_t{n} * dim, 21, 1.f), qs = values(size_t{nq} * dim, 22, 1.f);
  std::vector<uint32_t> labels(n);
  for (uint32_t i = 0; i < n; ++i) labels[i] = (i * 7919u) % 100003u;  // not the row order
  for (Storage st : {Storage::kF32, Storage::kInt8}) {
    for (Metric m : {Metric::kL2, Metric::kIP, Metric::kCosine}) {
      IndexConfig cfg;
      cfg.dim = dim, cfg.metric = m, cfg.storage = st, cfg.block_size = 32;
      Index index(cfg);
      index.add(labels.data(), n, rows.data());
      for (uint32_t k : {1u, 10u, 256u}) {
        SearchParams p;
        p.k = k;
        p.exact = true;
        std::vector<uint32_t> lc(size_t{nq} * k), lg(size_t{nq} * k);
        std::vector<float> dc(lc.size()), dg(lc.size());
        index.search(qs.data(), nq, p, lc.data(), dc.data());
        index.search_cuda(0, qs.data(), nq, p, lg.data(), dg.data());
        size_t bad = 0;
        for (size_t i = 0; i < lc.size(); ++i) {
          const double tol =
              (st == Storage::kInt8 ? 2e-3 : 1e-4) * (1 + std::fabs(dc[i])) * (m == Metric::kL2 ? 10 : 1);
          if (!(std::fabs(dg[i] - dc[i]) <= tol)) ++bad;
          else if (lg[i] != lc[i] && !(i + 1 < lc.size() && std::fabs(dc[i + 1] - dc[i]) <= 2 * tol) &&
                   !(i > 0 && std::fabs(dc[i] - dc[i - 1]) <= 2 * tol))
            ++bad;
        }
        CHECK(bad == 0, ("vindex " + std::string(st == Storage::kF32 ? "f32" : "int8") + " metric " +
                         std::to_string(static_cast<int>(m)) + " k " + std::to_string(k) + ": matches the CPU scan")
                            .c_str());
      }
    }
  }
  // Fewer allowed rows than k: padded like the CPU path (kNoLabel, NaN).
  IndexConfig cfg;
  cfg.dim = dim;
  Index index(cfg);
  index.add(labels.data(), 5, rows.data());
  SearchParams p;
  p.k = 8;
  std::vector<uint32_t> lg(8);
  std::vector<float> dg(8);
  index.search_cuda(0, qs.data(), 1, p, lg.data(), dg.data());
  CHECK(lg[5] == kNoLabel && std::isnan(dg[7]) && lg[4] != kNoLabel, "vindex: k > rows pads with kNoLabel / NaN");
  Index empty(cfg);
  index.search_cuda(0, qs.data(), 0, p, lg.data(), dg.data());
  empty.search_cuda(0, qs.data(), 1, p, lg.data(), dg.data());
  CHECK(lg[0] == kNoLabel, "vindex: an empty index returns no labels");
}

void test_alloc_and_probe() {
  const gpu::CudaProbe& probe = gpu::cuda_probe();
  CHECK(probe.compiled && probe.devices.size() == 1 && probe.unavailable_reason.empty(), "probe: one emulated device");
  CHECK(probe.devices[0].name.find("emulation") != std::string::npos, "probe: the device says it is the emulation");
  std::string why;
  CHECK(!alloc::cuda_allocator_available(1, &why) && why.find("does not exist") != std::string::npos,
        "allocator: device 1 does not exist");
  alloc::PoolOptions o;
  o.small_segment = 1 << 16, o.large_segment_round = 1 << 16, o.small_limit = 1 << 14;
  {
    alloc::CachingPool pool(alloc::make_cuda_allocator(0), o);
    const uintptr_t a = pool.allocate(1, 1000), b = pool.allocate(2, 100000);
    CHECK(cuemu::device_bytes_in_use() == pool.stats().reserved, "pool segments are cudaMalloc'd device memory");
    void* dev = reinterpret_cast<void*>(a);
    std::vector<char> host(1000, 7), back(1000, 0);
    CHECK(cudaMemcpy(dev, host.data(), 1000, cudaMemcpyHostToDevice) == cudaSuccess &&
              cudaMemcpy(back.data(), dev, 1000, cudaMemcpyDeviceToHost) == cudaSuccess && back == host,
          "a pool block takes device copies");
    pool.free(a);
    pool.free(b);
    cuemu::set_memory_limit(cuemu::device_bytes_in_use() + (1 << 17));
    CHECK(error_of([&] { pool.allocate(3, 1 << 20); }).rfind(kErrOutOfMemory, 0) == 0,
          "cudaMalloc out of memory: the pool's typed error");
    CHECK(error_of([&] { pool.allocate(3, 1 << 16); }).empty(), "within the limit the pool still serves");
    cuemu::set_memory_limit(0);
  }
  CHECK(cuemu::device_bytes_in_use() == 0, "the pool gave every segment back (cudaFree)");
}

}  // namespace

int main() {
  test_cuemu();
  test_cuda_aggregate();
  test_codec();
  test_vindex();
  test_alloc_and_probe();
  std::printf("emulated kernels launched: %llu, threads run: %llu\n",
              static_cast<unsigned long long>(cuemu::kernels_launched()),
              static_cast<unsigned long long>(cuemu::threads_run()));
  return report();
}
