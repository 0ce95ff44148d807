// Krum / Multi-Krum (Blanchard et al., 2017): pairwise squared distances in
// double precision (through the Gram matrix up to a few thousand clients,
// directly beyond), then scores from the closest N - f - 2 of each client.
// krum() first tries the float-speed Gram matrix (gram_f32.h, on rows centered
// amid the clients), whose distances are within kFloatRelative of the exact
// ones, and keeps its result only when that error cannot change which clients
// are selected or their order.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "../common/error.h"
#include "../common/simd.h"
#include "../common/thread_pool.h"
#include "aggregate.h"
#include "gram.h"
#include "gram_f32.h"

namespace whale::aggregate {

void check_krum_args(size_t n, size_t f, size_t m) {
  if (n < 2 * f + 3) {
    throw EngineError(kErrInvalidArg,
                      "f: Krum needs n >= 2f + 3 clients; got n = " + std::to_string(n) + ", f = " + std::to_string(f));
  }
  if (m < 1 || m > n) {
    throw EngineError(kErrInvalidArg, "m: Multi-Krum selects 1..n clients; got m = " + std::to_string(m) +
                                          " with n = " + std::to_string(n));
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

// Per running task of the float path: a partial matrix, tile accumulators, a block.
size_t float_task_bytes(size_t n) {
  return n * n * sizeof(double) + gram_f32::tile_bytes(n) + gram_f32::scratch_floats(n) * sizeof(float);
}

bool use_float_path(size_t n) { return float_task_bytes(n) * ThreadPool::shared().concurrency() <= kPartialBudget; }

// Relative accuracy of every distance the float path returns (pairs it cannot
// bound this tightly are recomputed in double).
constexpr double kFloatRelative = 4e-6;

// The lower triangle of the Gram matrix (n x n): tasks of about `grain` blocks
// of coordinates each accumulate(u, lo, hi, partial, scratch) into their own
// zeroed partial matrix, then add it in. `tasks` gets their number (each merge
// adds to the error bound).
template <typename T, typename Accumulate>
std::vector<double> gram_in_tasks(const ClientUpdates& u, size_t block, size_t grain, size_t scratch_size,
                                  Accumulate accumulate, size_t& tasks) {
  const size_t n = u.clients(), p = u.params;
  std::vector<double> g(n * n, 0.0);
  std::mutex merge;
  ThreadPool::shared().parallel_for((p + block - 1) / block, grain, [&](size_t bb, size_t be) {
    std::vector<double> local(n * n, 0.0);
    std::vector<T> scratch(scratch_size);
    accumulate(u, bb * block, std::min(p, be * block), local.data(), scratch.data());
    std::lock_guard<std::mutex> lock(merge);
    ++tasks;
    for (size_t i = 0; i < n; ++i)
      for (size_t k = 0; k <= i; ++k) g[i * n + k] += local[i * n + k];
  });
  return g;
}

// dist[k][i] for the (k, i) pairs in `close`, directly from the differences.
void recompute(const ClientUpdates& u, const std::vector<std::pair<size_t, size_t>>& close, double* dist) {
  const size_t n = u.clients();
  ThreadPool::shared().parallel_for(close.size(), 1, [&](size_t b, size_t e) {
    for (size_t q = b; q < e; ++q) {
      const auto [k, i] = close[q];
      dist[k * n + i] = sq_distance(u.rows[k], u.rows[i], u.params);
    }
  });
}

// Distances |a|^2 + |b|^2 - 2ab from the lower triangle of the Gram matrix g
// into the upper triangle of dist, except the pairs (k, i) for which
// too_close(norms, d) holds: those are returned, to be recomputed.
template <typename TooClose>
std::vector<std::pair<size_t, size_t>> from_gram(const double* g, size_t n, double* dist, TooClose too_close) {
  std::vector<std::pair<size_t, size_t>> close;
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < i; ++k) {
      const double norms = g[i * n + i] + g[k * n + k];
      const double d = norms - 2 * g[i * n + k];
      if (too_close(norms, d)) close.emplace_back(k, i);
      else dist[k * n + i] = d;
    }
  }
  return close;
}

// Few clients: each task accumulates the Gram matrix of a slice of the
// parameters into its own N x N matrix (gram.h); the sums are merged, turned
// into distances, and pairs too close for the subtraction to be accurate are
// recomputed directly.
void distances_by_block(const ClientUpdates& u, double* dist) {
  const size_t n = u.clients(), p = u.params;
  size_t tasks = 0;
  const std::vector<double> g =
      gram_in_tasks<double>(u, gram::kBlock, 16, gram::scratch_doubles(n), gram::accumulate, tasks);
  // |error of d| <= 4 * bound * (|a|^2 + |b|^2) / 2 (three entries, the cross
  // one doubled); below kRelative of d, the Gram value is kept.
  constexpr double kRelative = 1e-10;
  const double cutoff = 2 * gram::entry_error_bound(p, tasks) / kRelative;
  recompute(u, from_gram(g.data(), n, dist, [&](double norms, double d) { return d < cutoff * norms; }), dist);
}

// The float path (gram_f32.h): distances within kFloatRelative, close pairs
// recomputed from their differences. False (dist unusable) when the Gram sums
// overflowed float, or when so many pairs are close that the double Gram
// matrix costs less than recomputing them one by one. A NaN or Infinity in
// client i makes its |x_i|^2 non-finite: with check_finite, that is when the
// inputs are scanned (require_finite throws), not before.
bool distances_by_float_block(const ClientUpdates& u, double* dist, bool check_finite) {
  const size_t n = u.clients(), p = u.params;
  size_t tasks = 0;
  const std::vector<double> g =
      gram_in_tasks<float>(u, gram_f32::kBlock, 64, gram_f32::scratch_floats(n), gram_f32::accumulate, tasks);
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k <= i; ++k)
      if (!std::isfinite(g[i * n + k])) {
        if (check_finite) require_finite(u);
        return false;  // float overflow: the double path
      }
  // |error of d| from the Gram matrix <= 4 * bound * |a| |b| + 4 * underflow
  // (three entries, the cross one doubled), and |a| |b| <= (|a|^2 + |b|^2) / 2;
  // from centering, 2 |a - b| e + e^2 (|a - b| at most sqrt(d + that error)).
  const double bound = gram_f32::entry_error_bound(p, tasks), under = gram_f32::entry_underflow_bound(p);
  const auto close = from_gram(g.data(), n, dist, [&](double norms, double d) {
    const double gram_error = 2 * bound * norms + 4 * under, e = gram_f32::centering_error(norms, p);
    const double error = gram_error + 2 * std::sqrt(std::max(d, 0.0) + gram_error) * e + e * e;
    return !(error <= kFloatRelative * d);
  });
  if (close.size() > n) return false;
  recompute(u, close, dist);
  return true;
}

// Whether scores each within a relative `tol` of the exact ones give the same
// selection, in the same order, as the exact scores: every neighbour pair of
// the sorted order up to the (m + 1)-th is further apart than both errors.
bool selection_certain(const KrumResult& r, size_t m, double tol) {
  std::vector<double> sorted = r.scores;
  std::sort(sorted.begin(), sorted.end());
  for (size_t q = 0; q < m && q + 1 < sorted.size(); ++q) {
    if (!(sorted[q] * (1 + tol) < sorted[q + 1] * (1 - tol))) return false;
  }
  return true;
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
  // matrix and its converted block (the float path: also its tile accumulators).
  const size_t per_task = std::max(matrix + gram::scratch_doubles(clients) * sizeof(double),
                                   use_float_path(clients) ? float_task_bytes(clients) : 0);
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

KrumResult krum(const ClientUpdates& u, size_t f, size_t m, bool check_finite) {
  require_non_empty(u);
  const size_t n = u.clients();
  check_krum_args(n, f, m);
  std::vector<double> dist(n * n, 0.0);
  if (!use_float_path(n)) {
    pairwise_sq_distances(u, dist.data(), check_finite);
    return krum_select(dist.data(), n, f, m);
  }
  // Inputs were scanned for NaN/Infinity when it returns true (see above).
  if (distances_by_float_block(u, dist.data(), check_finite)) {
    for (size_t i = 0; i < n; ++i)
      for (size_t k = 0; k < i; ++k) dist[i * n + k] = dist[k * n + i];
    KrumResult r = krum_select(dist.data(), n, f, m);
    // The double path's own scores are within ~1e-10 of exact ones: with that
    // margin too, both paths select the same clients in the same order.
    if (selection_certain(r, m, kFloatRelative + 1e-9)) return r;
  }
  pairwise_sq_distances(u, dist.data(), false);  // already scanned when check_finite
  return krum_select(dist.data(), n, f, m);
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
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r.scores[a] < r.scores[b]; });
  r.selected.assign(order.begin(), order.begin() + m);
  return r;
}

}  // namespace whale::aggregate
