// The Gram matrix at float speed for Krum: rows centered on a point amid the
// clients (distances do not change; see gram_f32_kernels.h), products of
// floats accumulated in float over short runs (kRun per SIMD lane), each run's
// sum added to a float partial sum of at most kRunsPerWiden runs, which is
// then added in double. Several times the arithmetic rate of the double kernel
// (gram.h) at a bounded cost in accuracy: an entry is off by at most
// entry_error_bound() of |a| |b| (centered norms, plus an underflow term), so
// distances are accurate to a chosen relative tolerance except for close
// pairs, which the caller recomputes.
#pragma once
#include <cstddef>

#include "client_updates.h"

namespace whale::aggregate::gram_f32 {

inline constexpr size_t kBlock = 256;       // coordinates of every row copied to L1 at once
inline constexpr size_t kRun = 16;          // float additions per SIMD lane before a run's sum is added
inline constexpr size_t kRunsPerWiden = 4;  // runs summed in float before the double

// Floats of scratch accumulate() needs for n clients.
size_t scratch_floats(size_t n);

// Bytes accumulate() allocates itself per call (its tile accumulators).
size_t tile_bytes(size_t n);

// Adds the lower triangle (i >= k) of the Gram matrix of coordinates [lo, hi)
// into g (n x n, row-major), like gram::accumulate. Entries may be Inf or NaN
// when products overflow float (|x| above ~1e19): check before use.
void accumulate(const ClientUpdates& u, size_t lo, size_t hi, double* g, float* scratch);

// Bound on |error| / (|a| |b|) of an entry after `params` coordinates in
// `tasks` partial matrices (the float runs and partial sums, then the double
// sums).
double entry_error_bound(size_t params, size_t tasks);

// Rows are centered (each block less a per-coordinate center, in float) before
// their products: bound on |e|, the change this rounding makes to a pair's
// difference vector, given the pair's centered norms |a|^2 + |b|^2. The
// distance of the rounded rows is then within 2 |a - b| |e| + |e|^2 of the
// exact one.
double centering_error(double norms, size_t params);

// Bound on the absolute error of an entry from float underflow (products and
// sums below 2^-126 lose relative precision): per coordinate, 2^-150 at most.
double entry_underflow_bound(size_t params);

}  // namespace whale::aggregate::gram_f32
