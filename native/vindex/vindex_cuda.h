// CUDA exact scan (vindex.cu): distances on the device with the CPU scan's
// formulas (int8 rows x int16 query levels in int32 per block), then a
// per-query top-k ordered by (distance, label). Rows are uploaded per call.
#pragma once
#include <cstddef>
#include <cstdint>

#include "store.h"
#include "types.h"

namespace whale::vindex::cuda {

inline constexpr uint32_t kMaxK = 256;  // larger k: the CPU path

struct HostRows {
  Storage kind = Storage::kF32;
  uint32_t stride = 0;
  size_t rows = 0;
  const float* f32 = nullptr;     // rows x stride
  const int8_t* codes = nullptr;  // rows x stride
  const float* scales = nullptr;  // rows x blocks
  const BlockLayout* layout = nullptr;
  const float* norm2 = nullptr;
  const float* inv_norm = nullptr;
  const uint32_t* labels = nullptr;
};

void exact_search(int device, const HostRows& rows, const Queries& q, Metric metric, uint32_t k, uint32_t* labels,
                  float* dists);

}  // namespace whale::vindex::cuda
