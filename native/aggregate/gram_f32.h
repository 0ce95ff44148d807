// The Gram matrix at float speed for Krum: products of floats accumulated in
// float over short runs (kRun coordinates per SIMD lane), each run's sums then
// added in double. Twice the arithmetic rate of the double kernel (gram.h) at a
// bounded cost in accuracy: an entry is off by at most entry_error_bound() of
// |a| |b| (plus an underflow term), so distances are accurate to a chosen
// relative tolerance except for close pairs, which the caller recomputes.
#pragma once
#include <cstddef>

#include "client_updates.h"

namespace whale::aggregate::gram_f32 {

inline constexpr size_t kBlock = 128;  // coordinates of every row copied to L1 at once
inline constexpr size_t kLanes = 8;
inline constexpr size_t kRun = kBlock / kLanes;  // float additions per lane before double

// Floats of scratch accumulate() needs for n clients.
size_t scratch_floats(size_t n);

// Bytes accumulate() allocates itself per call (its tile accumulators).
size_t tile_bytes(size_t n);

// Adds the lower triangle (i >= k) of the Gram matrix of coordinates [lo, hi)
// into g (n x n, row-major), like gram::accumulate. Entries may be Inf or NaN
// when products overflow float (|x| above ~1e19): check before use.
void accumulate(const ClientUpdates& u, size_t lo, size_t hi, double* g, float* scratch);

// Bound on |error| / (|a| |b|) of an entry after `params` coordinates in
// `tasks` partial matrices (the float runs, then the double sums).
double entry_error_bound(size_t params, size_t tasks);

// Bound on the absolute error of an entry from float underflow (products and
// sums below 2^-126 lose relative precision): per coordinate, 2^-150 at most.
double entry_underflow_bound(size_t params);

}  // namespace whale::aggregate::gram_f32
