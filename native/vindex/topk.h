// Bounded best-k selection ordered by (distance, label): the ordering is total,
// so the k results are the same whatever order candidates arrive in.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "types.h"

namespace whale::vindex {

struct Hit {
  float dist;
  uint32_t label;
};

inline bool closer(const Hit& a, const Hit& b) { return a.dist < b.dist || (a.dist == b.dist && a.label < b.label); }

class TopK {
 public:
  explicit TopK(uint32_t k = 0) : k_(k) { heap_.reserve(k); }

  // A max-heap on (dist, label): the root is the worst kept hit.
  void offer(float dist, uint32_t label) {
    const Hit h{dist, label};
    if (heap_.size() < k_) {
      heap_.push_back(h);
      std::push_heap(heap_.begin(), heap_.end(), closer);
    } else if (k_ > 0 && closer(h, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), closer);
      heap_.back() = h;
      std::push_heap(heap_.begin(), heap_.end(), closer);
    }
  }
  // Distances above this cannot enter (cheap pre-check in the scan loops).
  float bound() const { return heap_.size() < k_ ? INFINITY : heap_.front().dist; }
  void merge(const TopK& other) {
    for (const Hit& h : other.heap_) offer(h.dist, h.label);
  }
  // Best first; the rest of out is padded with (NaN, kNoLabel).
  void write(uint32_t* labels, float* dists) {
    std::sort_heap(heap_.begin(), heap_.end(), closer);
    for (uint32_t i = 0; i < k_; ++i) {
      const bool have = i < heap_.size();
      labels[i] = have ? heap_[i].label : kNoLabel;
      dists[i] = have ? heap_[i].dist : NAN;
    }
    std::make_heap(heap_.begin(), heap_.end(), closer);
  }
  const std::vector<Hit>& hits() const { return heap_; }

 private:
  uint32_t k_;
  std::vector<Hit> heap_;
};

}  // namespace whale::vindex
