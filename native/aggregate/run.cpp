#include "run.h"

#include <cstdio>
#include <string>

#include "../common/error.h"
#include "aggregate_cuda.h"

namespace whale::aggregate {
namespace {

size_t input_bytes(const ClientUpdates& u) { return u.clients() * u.params * sizeof(float); }

void fedavg_on(Device d, const ClientUpdates& u, const std::vector<double>& w, float* out, bool check_finite) {
  if (!d.is_cuda()) return fedavg(u, w, out, check_finite);
  cuda::fedavg(d.index, u, w, out);
  if (check_finite && !all_finite(out, u.params)) require_finite(u);
}

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1u << 30));
  return buf;
}

}  // namespace

size_t scratch_bytes(Strategy strategy, size_t clients, size_t params) {
  (void)params;
  if (strategy == Strategy::kKrum) return krum_scratch_bytes(clients);
  return 0;  // the others use a few KiB per thread
}

void check_memory(const Request& req, size_t clients, size_t params, size_t copied) {
  const size_t scratch = scratch_bytes(req.strategy, clients, params);
  const size_t needed = scratch + copied;
  if (needed <= req.max_memory_bytes) return;
  std::string what;
  if (scratch > 0)
    what += "Krum over " + std::to_string(clients) + " clients needs " + gib(scratch) + " for its distances";
  if (copied > 0)
    what += std::string(what.empty() ? "" : " and ") + "the async job copies " + gib(copied) + " of input";
  throw EngineError(kErrOutOfMemory, "options.maxMemoryBytes: " + what + " (" + gib(needed) +
                                         " in all), above the limit of " + gib(req.max_memory_bytes) +
                                         "; raise maxMemoryBytes or aggregate fewer clients per call");
}

Device distances(const ClientUpdates& u, Device device, bool check_finite, double* dist) {
  require_non_empty(u);
  Device d = resolve_device(device, input_bytes(u));
  if (!d.is_cuda()) {
    pairwise_sq_distances(u, dist, check_finite);
  } else {
    if (check_finite) require_finite(u);
    cuda::pairwise_sq_distances(d.index, u, dist);
  }
  return d;
}

Result run(const Request& req, float* out) {
  const ClientUpdates& u = req.updates;
  require_non_empty(u);
  Result r;
  r.device = resolve_device(req.device, input_bytes(u));
  const Device d = r.device;
  switch (req.strategy) {
    case Strategy::kFedAvg: fedavg_on(d, u, req.weights, out, req.check_finite); break;
    case Strategy::kMedian:
      if (!d.is_cuda()) {
        coordinate_median(u, out, req.check_finite);
      } else {
        if (req.check_finite) require_finite(u);
        cuda::coordinate_median(d.index, u, out);
      }
      break;
    case Strategy::kTrimmedMean:
      if (!d.is_cuda()) {
        trimmed_mean(u, req.beta, out, req.check_finite);
      } else {
        trim_count(req.beta, u.clients());
        if (req.check_finite) require_finite(u);
        cuda::trimmed_mean(d.index, u, req.beta, out);
      }
      break;
    case Strategy::kKrum: {
      check_krum_args(u.clients(), req.f, req.m);
      check_memory(req, u.clients(), u.params, 0);
      check_weights(req.weights, u.clients());
      KrumResult k;
      if (!d.is_cuda()) {
        k = krum(u, req.f, req.m, req.check_finite);
      } else {
        std::vector<double> dist(u.clients() * u.clients());
        distances(u, d, req.check_finite, dist.data());
        k = krum_select(dist.data(), u.clients(), req.f, req.m);
      }
      ClientUpdates chosen;
      chosen.params = u.params;
      std::vector<double> w;
      for (size_t i : k.selected) {
        chosen.rows.push_back(u.rows[i]);
        w.push_back(req.weights[i]);
      }
      fedavg_on(d, chosen, w, out, false);
      r.selected = std::move(k.selected);
      r.scores = std::move(k.scores);
      break;
    }
  }
  return r;
}

Device server_opt(const ServerOptConfig& c, Device device, float* global, const float* aggregate, float* m, float* v,
                  size_t params) {
  check_server_opt(c);
  check_step_inputs(global, aggregate, params);
  Device d = resolve_device(device, params * sizeof(float) * 4);
  if (d.is_cuda()) cuda::server_opt_step(d.index, c, global, aggregate, m, v, params);
  else server_opt_step(c, global, aggregate, m, v, params);
  return d;
}

}  // namespace whale::aggregate
