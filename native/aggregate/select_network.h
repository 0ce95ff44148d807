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

// Wires per block that Batcher's network first sorts on its own: its opening
// stages (merge sizes up to kSortedBlock / 2) never cross a block boundary.
inline constexpr size_t kSortedBlock = 16;

// The same pruned network less its opening-stage comparators inside the full
// blocks [16 q, 16 q + 16) of wires (q < n / 16): what is left to apply after
// sorting each full block with sort16() (at least those comparators, in the
// same order per wire; any extra ones touch only wires the wanted ranks do not
// depend on at that point, so the result is the same, bit for bit).
std::shared_ptr<const std::vector<Comparator>> network_after_sorted_blocks(size_t n, size_t a, size_t b);

// Batcher's sorting network for kSortedBlock wires (63 comparators).
const std::vector<Comparator>& sort16();

}  // namespace whale::aggregate
