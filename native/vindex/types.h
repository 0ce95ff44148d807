// Vector index configuration and search parameters (native/vindex).
//
// Distances are "smaller is closer" for every metric:
//   l2      squared Euclidean distance
//   ip      minus the inner product
//   cosine  1 - cosine similarity
// Ties are broken by the smaller label, so results never depend on the order
// rows were stored in, on tiling or on the thread count.
#pragma once
#include <cstddef>
#include <cstdint>

namespace whale::vindex {

enum class Metric : uint8_t { kL2 = 0, kIP = 1, kCosine = 2 };
// kInt8: rows kept in the memory module's blockwise int8 format (codes + one
// float scale per block); distances are computed on the codes.
enum class Storage : uint8_t { kF32 = 0, kInt8 = 1 };

inline constexpr uint32_t kNoLabel = UINT32_MAX;
inline constexpr uint32_t kMaxDim = 1u << 16;
inline constexpr uint32_t kMaxK = 4096;

struct IndexConfig {
  uint32_t dim = 0;
  Metric metric = Metric::kL2;
  Storage storage = Storage::kF32;
  uint32_t block_size = 64;  // int8 only: 32..4096, even (the codec's rule)
  uint32_t nlist = 0;        // > 0: inverted lists (IVF) once trained; 0: exact only
  uint32_t nprobe = 8;       // default lists visited per query
};

struct SearchParams {
  uint32_t k = 10;
  uint32_t nprobe = 0;             // 0: the index's default; >= nlist: every list
  bool exact = false;              // ignore the inverted lists, scan everything
  const uint8_t* allow = nullptr;  // bitmap by label (bit l of byte l/8); nullptr: all
  size_t allow_bytes = 0;          // labels beyond the bitmap are not allowed
  bool parallel = true;
};

inline bool allowed(const SearchParams& p, uint32_t label) {
  if (!p.allow) return true;
  const size_t byte = label >> 3;
  return byte < p.allow_bytes && ((p.allow[byte] >> (label & 7)) & 1u);
}

}  // namespace whale::vindex
