#include "kmeans.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../common/thread_pool.h"
#include "scan.h"

namespace whale::vindex {
namespace {

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Store centroid_store(const std::vector<float>& c, uint32_t k, uint32_t dim) {
  Store s(Storage::kF32, dim, 64);
  s.reserve(k);
  for (uint32_t i = 0; i < k; ++i) s.push_f32(i, c.data() + size_t{i} * dim);
  return s;
}

}  // namespace

std::vector<uint32_t> nearest_centroids(const std::vector<float>& centroids, uint32_t k, const float* x, size_t n,
                                        uint32_t dim, bool parallel) {
  const Store s = centroid_store(centroids, k, dim);
  std::vector<uint32_t> out(n);
  SearchParams p;
  auto run = [&](size_t lo, size_t hi) {
    const Queries q = s.prepare(x + lo * dim, hi - lo, false);
    std::vector<uint32_t> idx(hi - lo);
    std::iota(idx.begin(), idx.end(), 0u);
    std::vector<TopK> heaps(hi - lo, TopK(1));
    std::vector<TopK*> ptrs;
    for (TopK& h : heaps) ptrs.push_back(&h);
    scan(s, q, Metric::kL2, idx.data(), idx.size(), 0, s.rows(), p, ptrs.data());
    for (size_t i = lo; i < hi; ++i) out[i] = heaps[i - lo].hits().front().label;
  };
  if (parallel && n >= 256) {
    ThreadPool::shared().parallel_for(n, 128, run);
  } else if (n > 0) {
    run(0, n);
  }
  return out;
}

std::vector<float> kmeans(const float* x, size_t n, uint32_t dim, uint32_t k, uint32_t iterations, uint64_t seed,
                          bool parallel) {
  // No iterations on exactly k points: they are the centroids, in order (restoring a trained index).
  if (iterations == 0 && n == k) return std::vector<float>(x, x + n * dim);
  // Initial centroids: k distinct points of a seeded shuffle.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  uint64_t s = seed;
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[splitmix(s) % i]);
  std::vector<float> c(size_t{k} * dim);
  for (uint32_t i = 0; i < k; ++i) std::memcpy(c.data() + size_t{i} * dim, x + size_t{order[i]} * dim, dim * 4);

  std::vector<double> sums(size_t{k} * dim);
  std::vector<size_t> counts(k);
  for (uint32_t it = 0; it < iterations; ++it) {
    const std::vector<uint32_t> assign = nearest_centroids(c, k, x, n, dim, parallel);
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      double* dst = sums.data() + size_t{assign[i]} * dim;
      const float* src = x + i * dim;
      for (uint32_t j = 0; j < dim; ++j) dst[j] += src[j];
      ++counts[assign[i]];
    }
    for (uint32_t i = 0; i < k; ++i) {
      if (counts[i] == 0) continue;
      for (uint32_t j = 0; j < dim; ++j)
        c[size_t{i} * dim + j] = static_cast<float>(sums[size_t{i} * dim + j] / counts[i]);
    }
    // An empty cluster takes half of the largest one: both get its centroid, nudged apart.
    for (uint32_t i = 0; i < k; ++i) {
      if (counts[i] != 0) continue;
      const uint32_t big = static_cast<uint32_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
      for (uint32_t j = 0; j < dim; ++j) {
        const float v = c[size_t{big} * dim + j];
        const float eps = (j % 2 ? 1.f : -1.f) * 1e-4f * (std::fabs(v) + 1e-6f);
        c[size_t{i} * dim + j] = v + eps;
        c[size_t{big} * dim + j] = v - eps;
      }
      counts[i] = counts[big] / 2;
      counts[big] -= counts[i];
    }
  }
  return c;
}

}  // namespace whale::vindex
