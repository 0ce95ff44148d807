// CUDA path of the aggregation strategies (aggregate.cu). Same contracts as
// aggregate.h; argument checks are shared with the CPU path. Inputs are
// streamed to the device in column slices, so N x P may exceed GPU memory.
#pragma once
#include <vector>

#include "aggregate.h"
#include "server_optimizer.h"

namespace whale::aggregate::cuda {

void fedavg(int device, const ClientUpdates& u, const std::vector<double>& weights, float* out);
void coordinate_median(int device, const ClientUpdates& u, float* out);
void trimmed_mean(int device, const ClientUpdates& u, double beta, float* out);
void pairwise_sq_distances(int device, const ClientUpdates& u, double* dist);
void server_opt_step(int device, const ServerOptConfig& c, float* global, const float* aggregate, float* m, float* v,
                     size_t params);

// Largest client count the median / trimmed-mean kernels accept.
inline constexpr size_t kMaxSelectClients = 2048;

}  // namespace whale::aggregate::cuda
