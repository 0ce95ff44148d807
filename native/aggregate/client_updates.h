// A read-only view of N client updates of P parameters each, as row pointers
// (one Float32Array per client, or rows of one contiguous N x P buffer).
#pragma once
#include <cstddef>
#include <vector>

namespace whale::aggregate {

struct ClientUpdates {
  std::vector<const float*> rows;
  size_t params = 0;

  size_t clients() const noexcept { return rows.size(); }
};

// Throws EngineError(ERR_INVALID_ARG) when there are no clients or no params.
void require_non_empty(const ClientUpdates& u);

// True when none of x[0..n) is NaN or Inf.
bool all_finite(const float* x, size_t n);

// Number of non-finite values per client (multi-threaded scan).
std::vector<size_t> non_finite_counts(const ClientUpdates& u);

// Throws EngineError(ERR_NON_FINITE) naming the first client that holds a
// NaN/Inf, with the index of its first such value.
void require_finite(const ClientUpdates& u);

}  // namespace whale::aggregate
