// One entry point for every strategy on any device: what the bindings call.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../common/device.h"
#include "aggregate.h"
#include "server_optimizer.h"

namespace whale::aggregate {

enum class Strategy { kFedAvg, kMedian, kTrimmedMean, kKrum };

struct Request {
  Strategy strategy = Strategy::kFedAvg;
  ClientUpdates updates;
  std::vector<double> weights;  // FedAvg and Krum's final average
  double beta = 0.1;            // trimmed mean
  size_t f = 0;                 // Krum: tolerated Byzantine clients
  size_t m = 1;                 // Krum: clients averaged (1 = Krum, > 1 = Multi-Krum)
  Device device;
  bool check_finite = true;
  size_t max_memory_bytes = SIZE_MAX;  // bound on the native memory one call may allocate
};

struct Result {
  Device device;                 // where it actually ran
  std::vector<size_t> selected;  // Krum only
  std::vector<double> scores;    // Krum only
};

// Native memory a request needs beyond its inputs and output: Krum's N x N
// distances and its per-thread scratch.
size_t scratch_bytes(Strategy strategy, size_t clients, size_t params);

// Throws ERR_OUT_OF_MEMORY (naming options.maxMemoryBytes) when scratch_bytes
// plus `copied` (inputs the caller copies for an async job) exceed the
// request's bound; called before anything is allocated.
void check_memory(const Request& req, size_t clients, size_t params, size_t copied);

// Writes updates.params floats to out.
Result run(const Request& req, float* out);

// Pairwise squared distances (N x N) on the requested device.
Device distances(const ClientUpdates& u, Device device, bool check_finite, double* dist);

// One server optimizer step (see server_optimizer.h) on the requested device.
Device server_opt(const ServerOptConfig& c, Device device, float* global, const float* aggregate, float* m, float* v,
                  size_t params);

}  // namespace whale::aggregate
