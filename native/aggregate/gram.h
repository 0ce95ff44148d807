// Pairwise squared distances through the Gram matrix, in double:
// |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, computed a block of coordinates at a time
// with a register-tiled (GEMM-style) kernel. Float products are exact in
// double, so the only error is in the sums; a pair whose distance is small
// next to its norms (near-duplicates, where the subtraction cancels) is
// recomputed directly from the difference.
#pragma once
#include <cstddef>

#include "client_updates.h"

namespace whale::aggregate::gram {

// Accumulates the lower triangle (i >= k) of the Gram matrix of coordinates
// [lo, hi) of every row into g (n x n, row-major), adding to what is there.
// scratch: (n rounded up to 4) x kBlock doubles.
void accumulate(const ClientUpdates& u, size_t lo, size_t hi, double* g, double* scratch);

inline constexpr size_t kBlock = 256;  // coordinates converted to double at once

// Doubles of scratch accumulate() needs for n clients.
size_t scratch_doubles(size_t n);

// Worst-case relative error bound of one accumulated Gram entry (in units of
// |a| |b|) after summing `params` coordinates in `tasks` partial matrices.
double entry_error_bound(size_t params, size_t tasks);

}  // namespace whale::aggregate::gram
