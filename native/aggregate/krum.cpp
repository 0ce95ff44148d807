// Krum / Multi-Krum (Blanchard et al., 2017). Pairwise distances are computed
// blockwise: each task walks a slice of the parameters in cache-sized blocks
// and accumulates every pair's partial sum into its own N x N matrix.
#include <algorithm>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "../common/error.h"
#include "../common/simd.h"
#include "../common/thread_pool.h"
#include "aggregate.h"

namespace whale::aggregate {

void check_krum_args(size_t n, size_t f, size_t m) {
  if (n < 2 * f + 3) {
    throw EngineError(kErrInvalidArg, "f: Krum needs n >= 2f + 3 clients; got n = " +
                                          std::to_string(n) + ", f = " + std::to_string(f));
  }
  if (m < 1 || m > n) {
    throw EngineError(kErrInvalidArg, "m: Multi-Krum selects 1..n clients; got m = " +
                                          std::to_string(m) + " with n = " + std::to_string(n));
  }
}

namespace {

constexpr size_t kBlock = 512;  // floats per row per block: N x 2 KiB in L2

WHALE_SIMD_CLONES
float sq_distance_block(const float* a, const float* b, size_t len) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (size_t j = 0; j < len; ++j) {
    const float d = a[j] - b[j];
    s += d * d;
  }
  return s;
}

}  // namespace

void pairwise_sq_distances(const ClientUpdates& u, double* dist, bool check_finite) {
  require_non_empty(u);
  if (check_finite) require_finite(u);
  const size_t n = u.clients(), p = u.params;
  std::fill(dist, dist + n * n, 0.0);
  const size_t blocks = (p + kBlock - 1) / kBlock;
  std::mutex merge;
  ThreadPool::shared().parallel_for(blocks, 16, [&](size_t bb, size_t be) {
    std::vector<double> local(n * n, 0.0);
    for (size_t b = bb; b < be; ++b) {
      const size_t lo = b * kBlock, len = std::min(kBlock, p - lo);
      for (size_t i = 0; i < n; ++i) {
        const float* xi = u.rows[i] + lo;
        for (size_t k = i + 1; k < n; ++k) local[i * n + k] += sq_distance_block(xi, u.rows[k] + lo, len);
      }
    }
    std::lock_guard<std::mutex> g(merge);
    for (size_t i = 0; i < n; ++i)
      for (size_t k = i + 1; k < n; ++k) dist[i * n + k] += local[i * n + k];
  });
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < i; ++k) dist[i * n + k] = dist[k * n + i];
}

KrumResult krum_select(const double* dist, size_t n, size_t f, size_t m) {
  check_krum_args(n, f, m);
  const size_t closest = n - f - 2;
  KrumResult r;
  r.scores.resize(n);
  std::vector<double> row(n - 1);
  for (size_t i = 0; i < n; ++i) {
    size_t c = 0;
    for (size_t k = 0; k < n; ++k)
      if (k != i) row[c++] = dist[i * n + k];
    std::partial_sort(row.begin(), row.begin() + closest, row.end());
    double s = 0;
    for (size_t k = 0; k < closest; ++k) s += row[k];
    r.scores[i] = s;
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Ties go to the lower client index, so CPU, GPU and reference agree.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return r.scores[a] < r.scores[b]; });
  r.selected.assign(order.begin(), order.begin() + m);
  return r;
}

}  // namespace whale::aggregate
