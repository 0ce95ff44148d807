// Selection networks for coordinate-wise order statistics: a fixed list of
// compare-exchange steps that, applied to the N values of a coordinate, leaves
// the wanted ranks in place. Being data-independent, one list runs on many
// coordinates at once across SIMD lanes (robust_lanes.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace whale::aggregate {

// After min/max of wires lo and hi (lo < hi), lo holds the smaller value.
struct Comparator {
  uint32_t lo, hi;
};

// Networks are used up to this many clients; beyond, per-coordinate selection.
inline constexpr size_t kNetworkMaxClients = 256;

// Batcher's odd-even merge sort for n wires, pruned to the comparators the
// values at ranks a and b depend on (a == b for one rank). Built once per
// (n, a, b) and cached (a bounded cache: callers hold their own reference).
std::shared_ptr<const std::vector<Comparator>> selection_network(size_t n, size_t a, size_t b);

}  // namespace whale::aggregate
