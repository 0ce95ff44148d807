// Weight aggregation strategies for federated learning (CPU path).
// All outputs are float32 vectors of u.params values; inputs are not modified.
#pragma once
#include <cstddef>
#include <vector>

#include "client_updates.h"

namespace whale::aggregate {

// Weighted mean: out[j] = sum_i w_i x_i[j] / sum_i w_i, accumulated in double.
// Weights must be finite and > 0 (checked). With check_finite, a NaN/Inf in
// any input raises ERR_NON_FINITE naming the client.
void fedavg(const ClientUpdates& u, const std::vector<double>& weights, float* out, bool check_finite);

// Coordinate-wise median (mean of the two middle values when N is even).
void coordinate_median(const ClientUpdates& u, float* out, bool check_finite);

// Coordinate-wise trimmed mean: drops floor(beta * N) values from each side.
// Requires 0 <= beta < 0.5 and at least one value left.
void trimmed_mean(const ClientUpdates& u, double beta, float* out, bool check_finite);

// Squared Euclidean distances between all pairs of clients (N x N, row-major,
// symmetric, zero diagonal), accumulated in double.
void pairwise_sq_distances(const ClientUpdates& u, double* dist, bool check_finite);

// Native memory Krum allocates for N clients (the matrix plus scratch).
size_t krum_scratch_bytes(size_t clients);

struct KrumResult {
  std::vector<size_t> selected;  // best score first
  std::vector<double> scores;    // one per client
};

// Krum scores from a distance matrix: score_i = sum of the N - f - 2 smallest
// distances from i to the others. Requires N >= 2f + 3 and 1 <= m <= N.
KrumResult krum_select(const double* dist, size_t n, size_t f, size_t m);

// Krum / Multi-Krum on the CPU: the m best-scored clients. Distances come from
// the float-speed Gram matrix when its error (at most 4e-6 of each distance)
// cannot change the selection or its order, else from the double path of
// pairwise_sq_distances; scores are within 4e-6 (relative) of exact ones.
KrumResult krum(const ClientUpdates& u, size_t f, size_t m, bool check_finite);

// Shared argument checks (also used by the CUDA path).
void check_weights(const std::vector<double>& weights, size_t clients);
// Checks the weights and scales them to sum to 1 (dividing by the largest
// first, so weights whose sum overflows a double still work).
std::vector<double> normalized_weights(const std::vector<double>& weights, size_t clients);
size_t trim_count(double beta, size_t clients);
void check_krum_args(size_t n, size_t f, size_t m);

}  // namespace whale::aggregate
