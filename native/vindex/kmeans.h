// k-means (Lloyd) for the coarse quantizer of the inverted lists.
// Deterministic for a given input, seed and iteration count: assignments run
// in parallel but each point's nearest centroid does not depend on threads,
// and the means are summed in point order in double.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace whale::vindex {

// Returns k centroids (k x dim) trained on x (n x dim), n >= k. With no
// iterations and n == k, x itself (how a saved set of centroids is restored).
std::vector<float> kmeans(const float* x, size_t n, uint32_t dim, uint32_t k, uint32_t iterations, uint64_t seed,
                          bool parallel);

// Index of the nearest of `centroids` (k x dim, squared L2) for each of x's n rows.
std::vector<uint32_t> nearest_centroids(const std::vector<float>& centroids, uint32_t k, const float* x, size_t n,
                                        uint32_t dim, bool parallel);

}  // namespace whale::vindex
