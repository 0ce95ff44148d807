// STREAM-like triad (a[i] = b[i] + s * c[i], doubles) on the shared thread
// pool: the memory bandwidth bandwidth-bound kernels are judged against.
#pragma once
#include <cstddef>
#include <vector>

namespace whale {

// Runs the triad `repeats` times over arrays of `elements` doubles each and
// returns the GB/s of each run (24 bytes moved per element, as STREAM counts).
std::vector<double> triad_bandwidth(size_t elements, size_t repeats);

}  // namespace whale
