// Coordinate-wise median / trimmed mean on 16 coordinates at once: every
// client's values of coordinates [j, j + len) side by side in one row (two
// AVX2 vectors) of an L1 scratch, then one selection network (select_network.h)
// across the lanes.
#pragma once
#include <cstddef>
#include <vector>

#include "select_network.h"

namespace whale::aggregate::lanes {

inline constexpr size_t kLanes = 16;

// Scratch for n clients: n x kLanes floats, 64-byte aligned (the caller's).
// prefetch: ask for each row's values a few calls ahead (for few rows: many
// more are better read into L2 a row at a time beforehand, see robust.cpp).
struct Scratch {
  float* values;
  bool prefetch;
};

// Both return whether every value they read was finite. Infinities are ordered
// like any value (the trimmed mean is then what the sorted column's sum gives);
// with a NaN among them, what they write is not meaningful.

// Whether the compile-time copy of sort16() matches it (for the tests).
bool sort16_matches_network();

// out[j + l] for l < len (len <= kLanes): the median of rows[0..n)[j + l],
// mean of the two middle values (in double) when n is even. net: for ranks
// (n - 1) / 2 and n / 2, after sorted blocks (network_after_sorted_blocks).
bool median(const float* const* rows, size_t n, size_t j, size_t len, const std::vector<Comparator>& net, Scratch s,
            float* out);

// out[j + l]: the mean (in double) of the values at ranks k..n-k-1. net: for
// ranks k and n - k - 1, after sorted blocks.
bool trimmed_mean(const float* const* rows, size_t n, size_t k, size_t j, size_t len,
                  const std::vector<Comparator>& net, Scratch s, float* out);

}  // namespace whale::aggregate::lanes
