#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "../common/error.h"
#include "../common/simd.h"
#include "../common/thread_pool.h"
#include "aggregate.h"

namespace whale::aggregate {

void check_weights(const std::vector<double>& weights, size_t clients) {
  if (weights.size() != clients) {
    throw EngineError(kErrInvalidArg, "weights: expected " + std::to_string(clients) +
                                          " weights (one per client), got " + std::to_string(weights.size()));
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!std::isfinite(weights[i]) || weights[i] <= 0) {
      throw EngineError(
          kErrInvalidArg,
          "weights[" + std::to_string(i) + "]: must be a finite number > 0, got " + std::to_string(weights[i]),
          static_cast<long long>(i));
    }
  }
}

std::vector<double> normalized_weights(const std::vector<double>& weights, size_t clients) {
  check_weights(weights, clients);
  const double largest = *std::max_element(weights.begin(), weights.end());
  std::vector<double> norm(weights.size());
  double total = 0;  // <= clients: cannot overflow
  for (size_t i = 0; i < weights.size(); ++i) total += norm[i] = weights[i] / largest;
  for (double& w : norm) w /= total;
  return norm;
}

namespace {

// Coordinates per pass: each pass reads a run of that many floats of every
// row, long enough for the hardware prefetchers to stream it (2048 gave 25-29
// GB/s at 100 x 1e6 here, 32768 gave 48-50 GB/s); the double accumulator (256
// KiB at most) stays in L2. Smaller models take shorter passes, so that every
// thread still gets a few.
constexpr size_t kMaxChunk = 32768, kMinChunk = 2048;

size_t chunk_for(size_t params) {
  size_t chunk = kMaxChunk;
  while (chunk > kMinChunk && params / chunk < 4 * ThreadPool::shared().concurrency()) chunk /= 2;
  return chunk;
}

// Four rows per pass: the accumulator is loaded and stored once per four
// client rows instead of once per row.
WHALE_SIMD_CLONES
void axpy4_f32_to_f64(double* acc, const float* x0, const float* x1, const float* x2, const float* x3, const double* w,
                      size_t n) {
  const double w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
  for (size_t j = 0; j < n; ++j) {
    acc[j] += w0 * static_cast<double>(x0[j]) + w1 * static_cast<double>(x1[j]) + w2 * static_cast<double>(x2[j]) +
              w3 * static_cast<double>(x3[j]);
  }
}

WHALE_SIMD_CLONES
void axpy_f32_to_f64(double* acc, const float* x, double w, size_t n) {
  for (size_t j = 0; j < n; ++j) acc[j] += w * static_cast<double>(x[j]);
}

WHALE_SIMD_CLONES
void scale_f64_to_f32(float* out, const double* acc, size_t n) {
  for (size_t j = 0; j < n; ++j) out[j] = static_cast<float>(acc[j]);
}

}  // namespace

void fedavg(const ClientUpdates& u, const std::vector<double>& weights, float* out, bool check_finite) {
  require_non_empty(u);
  const std::vector<double> norm = normalized_weights(weights, u.clients());

  const size_t p = u.params, n = u.clients(), chunk = chunk_for(p);
  const size_t chunks = (p + chunk - 1) / chunk;
  std::atomic<bool> non_finite{false};
  ThreadPool::shared().parallel_for(chunks, 1, [&](size_t cb, size_t ce) {
    // One per thread, kept: too big for a worker thread's stack, and a fresh
    // allocation per task would pay its page faults again.
    thread_local std::vector<double> buffer;
    buffer.resize(kMaxChunk);
    double* acc = buffer.data();
    for (size_t c = cb; c < ce; ++c) {
      const size_t lo = c * chunk, len = std::min(chunk, p - lo);
      std::fill(acc, acc + len, 0.0);
      size_t i = 0;
      for (; i + 4 <= n; i += 4) {
        axpy4_f32_to_f64(acc, u.rows[i] + lo, u.rows[i + 1] + lo, u.rows[i + 2] + lo, u.rows[i + 3] + lo, &norm[i],
                         len);
      }
      for (; i < n; ++i) axpy_f32_to_f64(acc, u.rows[i] + lo, norm[i], len);
      scale_f64_to_f32(out + lo, acc, len);
      if (check_finite && !all_finite(out + lo, len)) non_finite = true;
    }
  });
  // A NaN/Inf input always makes its output coordinate non-finite (double
  // accumulation of float inputs cannot overflow), so scanning the output is
  // enough to detect one; only then pay for a scan of the inputs.
  if (non_finite) require_finite(u);
}

}  // namespace whale::aggregate
