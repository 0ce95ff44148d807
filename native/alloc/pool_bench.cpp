#include "pool_bench.h"

#include <chrono>
#include <cstdlib>
#include <vector>

#include "../common/error.h"
#include "caching_pool.h"

namespace whale::alloc {
namespace {

using Clock = std::chrono::steady_clock;

template <typename Alloc, typename Free>
double pairs_per_s(size_t pairs, size_t live, Alloc alloc, Free release) {
  std::vector<void*> held;
  for (size_t i = 0; i < live; ++i) held.push_back(alloc());
  // Warm-up: the pool fills its cache, malloc its arenas.
  for (size_t i = 0; i < 64; ++i) release(alloc());
  const auto t0 = Clock::now();
  for (size_t i = 0; i < pairs; ++i) {
    void* p = alloc();
    // Keep the compiler from pairing the two calls away.
    asm volatile("" : : "r"(p) : "memory");
    release(p);
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  for (void* p : held) release(p);
  return s > 0 ? static_cast<double>(pairs) / s : 0;
}

}  // namespace

PairBenchResult bench_pairs(const std::string& backend, int device, size_t bytes, size_t pairs, size_t live) {
  if (bytes == 0 || bytes > (size_t{1} << 34)) throw EngineError(kErrInvalidArg, "bytes: expected 1 .. 2^34");
  if (pairs == 0) throw EngineError(kErrInvalidArg, "pairs: must be > 0");
  const bool cuda = backend == "cuda";
  if (!cuda && backend != "host") throw EngineError(kErrInvalidArg, "backend: expected 'host' or 'cuda'");
  PairBenchResult r;
  {
    CachingPool pool(cuda ? make_cuda_allocator(device) : make_host_allocator());
    r.pool_pairs_per_s = pairs_per_s(
        pairs, live, [&] { return reinterpret_cast<void*>(pool.allocate(0, bytes)); },
        [&](void* p) { pool.free(reinterpret_cast<uintptr_t>(p)); });
  }
  if (cuda) {
    std::unique_ptr<RawAllocator> raw = make_cuda_allocator(device);
    r.raw_name = "cudaMalloc/cudaFree";
    // cudaMalloc/cudaFree synchronise the device and cost far more: fewer pairs keep the run short.
    const size_t n = pairs / 100 > 0 ? pairs / 100 : 1;
    r.raw_pairs_per_s = pairs_per_s(
        n, live,
        [&] {
          void* p = raw->allocate(bytes);
          if (!p) throw EngineError(kErrOutOfMemory, "cudaMalloc failed in the bench");
          return p;
        },
        [&](void* p) { raw->deallocate(p, bytes); });
  } else {
    r.raw_name = "malloc/free";
    r.raw_pairs_per_s = pairs_per_s(
        pairs, live,
        [&] {
          void* p = std::malloc(bytes);
          if (!p) throw EngineError(kErrOutOfMemory, "malloc failed in the bench");
          return p;
        },
        [](void* p) { std::free(p); });
  }
  return r;
}

}  // namespace whale::alloc
