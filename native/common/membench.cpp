#include "membench.h"

#include <chrono>
#include <memory>

#include "simd.h"
#include "thread_pool.h"

namespace whale {
namespace {

WHALE_SIMD_CLONES
void triad(double* a, const double* b, const double* c, double s, size_t lo, size_t hi) {
  for (size_t i = lo; i < hi; ++i) a[i] = b[i] + s * c[i];
}

}  // namespace

std::vector<double> triad_bandwidth(size_t elements, size_t repeats) {
  std::unique_ptr<double[]> a(new double[elements]), b(new double[elements]), c(new double[elements]);
  ThreadPool& pool = ThreadPool::shared();
  const size_t grain = 1 << 16;
  // First touch from the pool, so pages land where the workers run.
  pool.parallel_for(elements, grain, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      a[i] = 0.0;
      b[i] = 1.0;
      c[i] = 2.0;
    }
  });
  std::vector<double> gbps;
  for (size_t r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(elements, grain, [&](size_t lo, size_t hi) { triad(a.get(), b.get(), c.get(), 3.0, lo, hi); });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    gbps.push_back(24.0 * static_cast<double>(elements) / s / 1e9);
  }
  return gbps;
}

}  // namespace whale
