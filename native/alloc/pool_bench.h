// Allocate/free pair throughput of the caching pool against the allocator it
// replaces (malloc/free for host memory, cudaMalloc/cudaFree on a GPU),
// measured inside C++ so the figures carry no JS call overhead.
#pragma once
#include <cstddef>
#include <string>

namespace whale::alloc {

struct PairBenchResult {
  double pool_pairs_per_s = 0;
  double raw_pairs_per_s = 0;
  std::string raw_name;  // "malloc/free" or "cudaMalloc/cudaFree"
};

// backend: "host" or "cuda"; `live` blocks are kept allocated around the
// pairs so the pool's cache holds more than one block.
PairBenchResult bench_pairs(const std::string& backend, int device, size_t bytes, size_t pairs, size_t live);

}  // namespace whale::alloc
