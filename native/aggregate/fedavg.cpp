#include <algorithm>
#include <cmath>
#include <string>

#include "../common/error.h"
#include "../common/simd.h"
#include "../common/thread_pool.h"
#include "aggregate.h"

namespace whale::aggregate {

void check_weights(const std::vector<double>& weights, size_t clients) {
  if (weights.size() != clients) {
    throw EngineError(kErrInvalidArg, "weights: expected " + std::to_string(clients) +
                                          " weights (one per client), got " +
                                          std::to_string(weights.size()));
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!std::isfinite(weights[i]) || weights[i] <= 0) {
      throw EngineError(kErrInvalidArg,
                        "weights[" + std::to_string(i) + "]: must be a finite number > 0, got " +
                            std::to_string(weights[i]),
                        static_cast<long long>(i));
    }
  }
}

namespace {

constexpr size_t kChunk = 2048;  // doubles per accumulator: 16 KiB, stays in L1

WHALE_SIMD_CLONES
void axpy_f32_to_f64(double* acc, const float* x, double w, size_t n) {
  for (size_t j = 0; j < n; ++j) acc[j] += w * static_cast<double>(x[j]);
}

WHALE_SIMD_CLONES
void scale_f64_to_f32(float* out, const double* acc, size_t n) {
  for (size_t j = 0; j < n; ++j) out[j] = static_cast<float>(acc[j]);
}

bool all_finite(const float* x, size_t n) {
  size_t bad = 0;
  for (size_t j = 0; j < n; ++j) bad += !std::isfinite(x[j]);
  return bad == 0;
}

}  // namespace

void fedavg(const ClientUpdates& u, const std::vector<double>& weights, float* out,
            bool check_finite) {
  require_non_empty(u);
  check_weights(weights, u.clients());
  double total = 0;
  for (double w : weights) total += w;
  std::vector<double> norm(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) norm[i] = weights[i] / total;

  const size_t p = u.params, n = u.clients();
  const size_t chunks = (p + kChunk - 1) / kChunk;
  ThreadPool::shared().parallel_for(chunks, 8, [&](size_t cb, size_t ce) {
    alignas(64) double acc[kChunk];
    for (size_t c = cb; c < ce; ++c) {
      const size_t lo = c * kChunk, len = std::min(kChunk, p - lo);
      std::fill(acc, acc + len, 0.0);
      for (size_t i = 0; i < n; ++i) axpy_f32_to_f64(acc, u.rows[i] + lo, norm[i], len);
      scale_f64_to_f32(out + lo, acc, len);
    }
  });
  // A NaN/Inf input always makes its output coordinate non-finite (double
  // accumulation of float inputs cannot overflow), so scanning the output is
  // enough to detect one; only then pay for a scan of the inputs.
  if (check_finite && !all_finite(out, p)) require_finite(u);
}

}  // namespace whale::aggregate
