// Krum / Multi-Krum (Blanchard et al., 2017): pairwise squared distances in
// double precision (through the Gram matrix up to a few thousand clients,
// directly beyond), then scores from the closest N - f - 2 of each client.
#include <algorithm>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "../common/error.h"
#include "../common/simd.h"
#include "../common/thread_pool.h"
#include "aggregate.h"
#include "gram.h"

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

// Per-thread partial matrices of the block schedule may take at most this much.
constexpr size_t kPartialBudget = size_t{64} << 20;

// In double: float squares overflow for |x| > ~1.8e19 and underflow to 0 for
// |x| < ~1e-23, which would make Krum pick clients by index order.
WHALE_SIMD_CLONES
double sq_distance(const float* a, const float* b, size_t len) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (size_t j = 0; j < len; ++j) {
    const double d = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    s += d * d;
  }
  return s;
}

bool use_block_schedule(size_t n) {
  return n * n * sizeof(double) * ThreadPool::shared().concurrency() <= kPartialBudget;
}

// Few clients: each task accumulates the Gram matrix of a slice of the
// parameters into its own N x N matrix (gram.h); the sums are merged, turned
// into distances, and pairs too close for the subtraction to be accurate are
// recomputed directly.
void distances_by_block(const ClientUpdates& u, double* dist) {
  const size_t n = u.clients(), p = u.params;
  const size_t blocks = (p + gram::kBlock - 1) / gram::kBlock;
  std::vector<double> g(n * n, 0.0);
  std::mutex merge;
  size_t tasks = 0;
  ThreadPool::shared().parallel_for(blocks, 16, [&](size_t bb, size_t be) {
    std::vector<double> local(n * n, 0.0), scratch(gram::scratch_doubles(n));
    gram::accumulate(u, bb * gram::kBlock, std::min(p, be * gram::kBlock), local.data(), scratch.data());
    std::lock_guard<std::mutex> lock(merge);
    ++tasks;
    for (size_t i = 0; i < n; ++i)
      for (size_t k = 0; k <= i; ++k) g[i * n + k] += local[i * n + k];
  });
  // |error of d| <= 4 * bound * (|a|^2 + |b|^2) / 2 (three entries, the cross
  // one doubled); below kRelative of d, the Gram value is kept.
  constexpr double kRelative = 1e-10;
  const double cutoff = 2 * gram::entry_error_bound(p, tasks) / kRelative;
  std::vector<std::pair<size_t, size_t>> close;
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < i; ++k) {
      const double norms = g[i * n + i] + g[k * n + k];
      const double d = norms - 2 * g[i * n + k];
      if (d < cutoff * norms) close.emplace_back(k, i);
      else dist[k * n + i] = d;
    }
  }
  ThreadPool::shared().parallel_for(close.size(), 1, [&](size_t b, size_t e) {
    for (size_t q = b; q < e; ++q) {
      const auto [k, i] = close[q];
      dist[k * n + i] = sq_distance(u.rows[k], u.rows[i], p);
    }
  });
}

// Many clients: no per-task matrix; task q owns rows q and n - 1 - q (equal
// numbers of pairs) and writes their upper-triangle entries directly.
void distances_by_row(const ClientUpdates& u, double* dist) {
  const size_t n = u.clients(), p = u.params;
  ThreadPool::shared().parallel_for((n + 1) / 2, 1, [&](size_t qb, size_t qe) {
    auto row = [&](size_t i) {
      for (size_t k = i + 1; k < n; ++k) dist[i * n + k] = sq_distance(u.rows[i], u.rows[k], p);
    };
    for (size_t q = qb; q < qe; ++q) {
      row(q);
      if (n - 1 - q != q) row(n - 1 - q);
    }
  });
}

}  // namespace

size_t krum_scratch_bytes(size_t clients) {
  const size_t matrix = clients * clients * sizeof(double);
  // The block schedule: one merged Gram matrix, and per running task a partial
  // matrix and its converted block.
  const size_t per_task = matrix + gram::scratch_doubles(clients) * sizeof(double);
  const size_t partial = use_block_schedule(clients) ? matrix + per_task * ThreadPool::shared().concurrency() : 0;
  return matrix + partial + clients * sizeof(double);
}

void pairwise_sq_distances(const ClientUpdates& u, double* dist, bool check_finite) {
  require_non_empty(u);
  if (check_finite) require_finite(u);
  const size_t n = u.clients();
  std::fill(dist, dist + n * n, 0.0);
  if (use_block_schedule(n)) distances_by_block(u, dist);
  else distances_by_row(u, dist);
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
