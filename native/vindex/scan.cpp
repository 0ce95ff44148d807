#include "scan.h"

#include <algorithm>

#include "kernels.h"

namespace whale::vindex {
namespace {

constexpr size_t kQueryBlock = 96;  // queries whose rows stay in L2 while rows stream past

inline float finish(Metric m, float dot, float qn, float qinv, float xn, float xinv) {
  switch (m) {
    case Metric::kL2: return std::max(0.f, (qn + xn) - 2.f * dot);
    case Metric::kIP: return -dot;
    case Metric::kCosine: return 1.f - dot * qinv * xinv;
  }
  return dot;
}

// Tile of R rows x Q queries: pointers padded by repeating the last entry.
template <size_t R, size_t Q>
struct Tile {
  size_t slots[R];
  size_t rows = 0;
};

template <size_t R, size_t Q, typename Kernel>
void scan_tiles(const Store& s, const Queries& q, Metric metric, const uint32_t* qidx, size_t nq, size_t begin,
                size_t end, const SearchParams& p, TopK* const* heaps, Kernel kernel) {
  float out[R * Q];
  for (size_t qb = 0; qb < nq; qb += kQueryBlock) {
    const size_t qe = std::min(nq, qb + kQueryBlock);
    size_t slot = begin;
    while (slot < end) {
      Tile<R, Q> t;
      for (; slot < end && t.rows < R; ++slot) {
        if (allowed(p, s.label(slot))) t.slots[t.rows++] = slot;
      }
      if (t.rows == 0) break;
      for (size_t r = t.rows; r < R; ++r) t.slots[r] = t.slots[t.rows - 1];
      for (size_t qt = qb; qt < qe; qt += Q) {
        const size_t nqt = std::min(Q, qe - qt);
        size_t qs[Q];
        for (size_t i = 0; i < Q; ++i) qs[i] = qidx[qt + std::min(i, nqt - 1)];
        kernel(t.slots, qs, out);
        for (size_t i = 0; i < nqt; ++i) {
          const size_t qi = qs[i];
          const float scale = q.scale.empty() ? 1.f : q.scale[qi];
          TopK& h = *heaps[qt + i];
          for (size_t r = 0; r < t.rows; ++r) {
            const size_t sl = t.slots[r];
            const float d =
                finish(metric, out[r * Q + i] * scale, q.norm2[qi], q.inv_norm[qi], s.norm2(sl), s.inv_norm(sl));
            if (d <= h.bound()) h.offer(d, s.label(sl));
          }
        }
      }
    }
  }
}

}  // namespace

void scan(const Store& s, const Queries& q, Metric metric, const uint32_t* qidx, size_t nq, size_t begin, size_t end,
          const SearchParams& p, TopK* const* heaps) {
  if (nq == 0 || begin >= end) return;
  const kernels::Table& k = kernels::pick();
  if (s.kind() == Storage::kF32) {
    using namespace kernels;
    scan_tiles<kF32Rows, kF32Queries>(s, q, metric, qidx, nq, begin, end, p, heaps,
                                      [&](const size_t* rs, const size_t* qs, float* out) {
                                        const float* rows[kF32Rows];
                                        const float* queries[kF32Queries];
                                        for (size_t r = 0; r < kF32Rows; ++r) rows[r] = s.f32_row(rs[r]);
                                        for (size_t i = 0; i < kF32Queries; ++i)
                                          queries[i] = q.f32.data() + qs[i] * q.stride;
                                        k.dot_f32(rows, queries, q.stride, out);
                                      });
    return;
  }
  const BlockLayout& l = s.layout();
  using namespace kernels;
  scan_tiles<kI8Rows, kI8Queries>(s, q, metric, qidx, nq, begin, end, p, heaps,
                                  [&](const size_t* rs, const size_t* qs, float* out) {
                                    const int8_t* rows[kI8Rows];
                                    const float* scales[kI8Rows];
                                    const int16_t* queries[kI8Queries];
                                    for (size_t r = 0; r < kI8Rows; ++r)
                                      rows[r] = s.code_row(rs[r]), scales[r] = s.scales_row(rs[r]);
                                    for (size_t i = 0; i < kI8Queries; ++i)
                                      queries[i] = q.i16.data() + qs[i] * q.stride;
                                    k.dot_i8(rows, scales, queries, l.offset.data(), l.length.data(), l.blocks, out);
                                  });
}

float distance(const Store& s, const Queries& q, Metric metric, size_t query, size_t slot) {
  SearchParams p;
  TopK h(1);
  TopK* hp = &h;
  const uint32_t qi = static_cast<uint32_t>(query);
  scan(s, q, metric, &qi, 1, slot, slot + 1, p, &hp);
  return h.hits().empty() ? NAN : h.hits()[0].dist;
}

}  // namespace whale::vindex
