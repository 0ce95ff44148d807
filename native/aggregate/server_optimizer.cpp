#include "server_optimizer.h"

#include <cmath>
#include <string>

#include "../common/error.h"
#include "../common/simd.h"
#include "../common/thread_pool.h"

namespace whale::aggregate {

void check_server_opt(const ServerOptConfig& c) {
  auto bad = [](const char* field, const std::string& why) {
    throw EngineError(kErrInvalidArg, std::string(field) + ": " + why);
  };
  if (!(std::isfinite(c.lr) && c.lr > 0)) bad("lr", "must be a finite number > 0");
  if (!(c.beta1 >= 0 && c.beta1 < 1)) bad("beta1", "must be in [0, 1)");
  if (!(c.beta2 >= 0 && c.beta2 < 1)) bad("beta2", "must be in [0, 1)");
  if (!(std::isfinite(c.tau) && c.tau > 0)) bad("tau", "must be a finite number > 0");
}

namespace {

WHALE_SIMD_CLONES
void step_range(const ServerOptConfig& c, float* x, const float* agg, float* m, float* v,
                size_t lo, size_t hi) {
  const float lr = static_cast<float>(c.lr), b1 = static_cast<float>(c.beta1),
              b2 = static_cast<float>(c.beta2), tau = static_cast<float>(c.tau);
  switch (c.kind) {
    case ServerOptKind::kAvgM:
      for (size_t j = lo; j < hi; ++j) {
        const float d = agg[j] - x[j];
        m[j] = b1 * m[j] + d;
        x[j] += lr * m[j];
      }
      break;
    case ServerOptKind::kAdam:
      for (size_t j = lo; j < hi; ++j) {
        const float d = agg[j] - x[j];
        m[j] = b1 * m[j] + (1 - b1) * d;
        v[j] = b2 * v[j] + (1 - b2) * d * d;
        x[j] += lr * m[j] / (std::sqrt(v[j]) + tau);
      }
      break;
    case ServerOptKind::kYogi:
      for (size_t j = lo; j < hi; ++j) {
        const float d = agg[j] - x[j];
        const float d2 = d * d;
        m[j] = b1 * m[j] + (1 - b1) * d;
        const float diff = v[j] - d2;
        const float sign = diff > 0 ? 1.f : (diff < 0 ? -1.f : 0.f);
        v[j] = v[j] - (1 - b2) * d2 * sign;
        x[j] += lr * m[j] / (std::sqrt(v[j]) + tau);
      }
      break;
    case ServerOptKind::kAdagrad:
      for (size_t j = lo; j < hi; ++j) {
        const float d = agg[j] - x[j];
        m[j] = b1 * m[j] + (1 - b1) * d;
        v[j] = v[j] + d * d;
        x[j] += lr * m[j] / (std::sqrt(v[j]) + tau);
      }
      break;
  }
}

}  // namespace

void server_opt_step(const ServerOptConfig& c, float* global, const float* aggregate,
                     float* m, float* v, size_t params) {
  check_server_opt(c);
  ThreadPool::shared().parallel_for(params, 1 << 15, [&](size_t lo, size_t hi) {
    step_range(c, global, aggregate, m, v, lo, hi);
  });
}

}  // namespace whale::aggregate
