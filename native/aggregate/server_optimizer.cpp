#include "server_optimizer.h"

#include <atomic>
#include <cmath>
#include <string>

#include "../common/error.h"
#include "../common/simd.h"
#include "../common/thread_pool.h"
#include "client_updates.h"

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

void check_step_inputs(const float* global, const float* aggregate, size_t params) {
  const char* names[] = {"aggregate", "global"};
  const float* arrays[] = {aggregate, global};
  for (int k = 0; k < 2; ++k) {
    if (all_finite(arrays[k], params)) continue;
    size_t j = 0;
    while (std::isfinite(arrays[k][j])) ++j;
    throw EngineError(kErrNonFinite, std::string(names[k]) + "[" + std::to_string(j) +
                                         "]: NaN or Infinity; the model and the optimizer state are unchanged");
  }
}

namespace {

struct Hyper {
  float lr, b1, b2, tau;
};

// One element of a step; Write = false only checks that the results are finite.
template <ServerOptKind K, bool Write>
WHALE_SIMD_CLONES bool step_range(const Hyper h, float* x, const float* agg, float* m, float* v, size_t lo, size_t hi) {
  bool finite = true;
  for (size_t j = lo; j < hi; ++j) {
    const float d = agg[j] - x[j];
    float nm, nv = 0.f, nx;
    if constexpr (K == ServerOptKind::kAvgM) {
      nm = h.b1 * m[j] + d;
      nx = x[j] + h.lr * nm;
    } else {
      const float d2 = d * d;
      nm = h.b1 * m[j] + (1 - h.b1) * d;
      if constexpr (K == ServerOptKind::kAdam) {
        nv = h.b2 * v[j] + (1 - h.b2) * d2;
      } else if constexpr (K == ServerOptKind::kYogi) {
        const float diff = v[j] - d2;
        const float sign = diff > 0 ? 1.f : (diff < 0 ? -1.f : 0.f);
        nv = v[j] - (1 - h.b2) * d2 * sign;
      } else {
        nv = v[j] + d2;
      }
      nx = x[j] + h.lr * nm / (std::sqrt(nv) + h.tau);
    }
    if constexpr (Write) {
      m[j] = nm;
      if constexpr (K != ServerOptKind::kAvgM) v[j] = nv;
      x[j] = nx;
    } else {
      finite &= std::isfinite(nx) & std::isfinite(nm) & std::isfinite(nv);
    }
  }
  return finite;
}

template <ServerOptKind K>
void step_all(const Hyper h, float* x, const float* agg, float* m, float* v, size_t params) {
  std::atomic<size_t> first_bad{params};
  ThreadPool::shared().parallel_for(params, 1 << 15, [&](size_t lo, size_t hi) {
    if (step_range<K, false>(h, x, agg, m, v, lo, hi)) return;
    for (size_t j = lo; j < hi; ++j) {
      if (!step_range<K, false>(h, x, agg, m, v, j, j + 1)) {
        size_t cur = first_bad.load();
        while (j < cur && !first_bad.compare_exchange_weak(cur, j)) {
        }
        return;
      }
    }
  });
  if (first_bad.load() < params) {
    throw EngineError(kErrNonFinite,
                      "aggregate[" + std::to_string(first_bad.load()) +
                          "]: the step overflows float32 there; the model and the optimizer state are unchanged");
  }
  ThreadPool::shared().parallel_for(params, 1 << 15,
                                    [&](size_t lo, size_t hi) { step_range<K, true>(h, x, agg, m, v, lo, hi); });
}

}  // namespace

void server_opt_step(const ServerOptConfig& c, float* global, const float* aggregate, float* m, float* v,
                     size_t params) {
  check_server_opt(c);
  check_step_inputs(global, aggregate, params);
  const Hyper h{static_cast<float>(c.lr), static_cast<float>(c.beta1), static_cast<float>(c.beta2),
                static_cast<float>(c.tau)};
  switch (c.kind) {
    case ServerOptKind::kAvgM: return step_all<ServerOptKind::kAvgM>(h, global, aggregate, m, v, params);
    case ServerOptKind::kAdam: return step_all<ServerOptKind::kAdam>(h, global, aggregate, m, v, params);
    case ServerOptKind::kYogi: return step_all<ServerOptKind::kYogi>(h, global, aggregate, m, v, params);
    case ServerOptKind::kAdagrad: return step_all<ServerOptKind::kAdagrad>(h, global, aggregate, m, v, params);
  }
}

}  // namespace whale::aggregate
