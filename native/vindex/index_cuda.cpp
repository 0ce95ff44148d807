// Index::search_cuda: gathers the allowed rows into one host block and runs
// the CUDA exact scan on them.
#include <algorithm>
#include <mutex>
#include <string>

#include "../common/error.h"
#include "index.h"
#include "vindex_cuda.h"

namespace whale::vindex {

void Index::search_cuda(int device, const float* queries, size_t nq, const SearchParams& p, uint32_t* labels,
                        float* dists) const {
  if (p.k == 0 || p.k > cuda::kMaxK) {
    throw EngineError(kErrInvalidArg, "k: the CUDA scan takes k in [1, 256], got " + std::to_string(p.k));
  }
  check_vectors(queries, nq, "queries");
  std::shared_lock lock(mutex_);
  const Queries q = proto_.prepare(queries, nq, p.parallel);
  const BlockLayout& l = proto_.layout();
  const uint32_t stride = proto_.stride();
  std::vector<float> f32, scales, norm2, inv_norm;
  std::vector<int8_t> codes;
  std::vector<uint32_t> lab;
  for (const Store& s : lists_) {
    for (size_t slot = 0; slot < s.rows(); ++slot) {
      if (!allowed(p, s.label(slot))) continue;
      if (cfg_.storage == Storage::kF32) {
        f32.insert(f32.end(), s.f32_row(slot), s.f32_row(slot) + stride);
      } else {
        codes.insert(codes.end(), s.code_row(slot), s.code_row(slot) + stride);
        scales.insert(scales.end(), s.scales_row(slot), s.scales_row(slot) + l.blocks);
      }
      norm2.push_back(s.norm2(slot));
      inv_norm.push_back(s.inv_norm(slot));
      lab.push_back(s.label(slot));
    }
  }
  cuda::HostRows rows;
  rows.kind = cfg_.storage;
  rows.stride = stride;
  rows.rows = lab.size();
  rows.f32 = f32.data();
  rows.codes = codes.data();
  rows.scales = scales.data();
  rows.layout = &l;
  rows.norm2 = norm2.data();
  rows.inv_norm = inv_norm.data();
  rows.labels = lab.data();
  cuda::exact_search(device, rows, q, cfg_.metric, p.k, labels, dists);
}

}  // namespace whale::vindex
