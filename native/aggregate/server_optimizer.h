// Server-side optimizer steps on the aggregated update (Reddi et al., 2021,
// "Adaptive Federated Optimization"). The pseudo-gradient is
// delta = aggregate - global; the global model moves along it.
#pragma once
#include <cstddef>

namespace whale::aggregate {

enum class ServerOptKind { kAvgM, kAdam, kYogi, kAdagrad };

struct ServerOptConfig {
  ServerOptKind kind = ServerOptKind::kAvgM;
  double lr = 1.0;      // server learning rate (eta)
  double beta1 = 0.9;   // momentum
  double beta2 = 0.99;  // second-moment decay (Adam, Yogi)
  double tau = 1e-3;    // adaptivity (epsilon)
};

void check_server_opt(const ServerOptConfig& c);

// ERR_NON_FINITE naming the first NaN/Inf of aggregate, then of global.
void check_step_inputs(const float* global, const float* aggregate, size_t params);

// Updates global (P values) in place; m and v are the optimizer state (P
// values each, zero-initialized by the caller before the first round; v is
// unused by AvgM). All or nothing: NaN/Inf inputs, or a step whose results
// would overflow float32, raise ERR_NON_FINITE before anything is written.
void server_opt_step(const ServerOptConfig& c, float* global, const float* aggregate, float* m, float* v,
                     size_t params);

}  // namespace whale::aggregate
