// A vector collection with exact search and optional inverted lists (IVF):
// labels (uint32) name rows; adding an existing label replaces its row.
// Until train() runs (or with SearchParams::exact) every search is exact.
// Thread safety: searches may run concurrently; add/remove/train wait for them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "store.h"
#include "types.h"

namespace whale::vindex {

class Index {
 public:
  explicit Index(const IndexConfig& config);  // ERR_INVALID_ARG naming the option

  const IndexConfig& config() const { return cfg_; }
  size_t size() const;
  bool trained() const;
  size_t memory_bytes() const;
  bool contains(uint32_t label) const;

  // All or nothing: every row is checked (finite, nonzero for cosine, labels
  // unique) before any is stored. Errors name vectors[i] / labels[i].
  void add(const uint32_t* labels, size_t n, const float* x);
  // Memory-module blobs: an int8 blob with the index's block size is stored
  // as is on int8 storage; any other codec is decoded. Errors name blobs[i].
  void add_blobs(const uint32_t* labels, size_t n, const uint8_t* const* blobs, const size_t* sizes);
  size_t remove(const uint32_t* labels, size_t n);  // returns how many were present

  // k-means over samples (n x dim), or over the stored rows when samples is null.
  void train(const float* samples, size_t n, uint32_t iterations, uint64_t seed, bool parallel);
  void set_nprobe(uint32_t nprobe);
  // The trained centroids (nlist x dim), empty before training: train(c, nlist, 0, ...) restores them.
  std::vector<float> centroids() const;

  // labels/dists: nq x k, best first, padded with kNoLabel / NaN.
  void search(const float* queries, size_t nq, const SearchParams& p, uint32_t* labels, float* dists) const;

  // Exact scan of the rows on a CUDA device (vindex.cu): same results as the
  // CPU scan up to float rounding. Throws ERR_DEVICE_UNAVAILABLE without one.
  void search_cuda(int device, const float* queries, size_t nq, const SearchParams& p, uint32_t* labels,
                   float* dists) const;

 private:
  void check_vectors(const float* x, size_t n, const char* field) const;
  void check_labels(const uint32_t* labels, size_t n) const;
  void insert(uint32_t label, const float* x, const int8_t* codes, const float* scales);
  void erase(uint32_t label);
  uint32_t list_for(const float* x) const;
  std::vector<float> coarse_copy(const float* x, size_t n) const;

  IndexConfig cfg_;
  Store proto_;               // empty: prepares queries for the rows' storage
  std::vector<Store> lists_;  // one (the whole collection) until trained, then nlist
  Store centroids_;           // f32, nlist rows once trained
  bool trained_ = false;
  struct Where {
    uint32_t list;
    uint32_t slot;
  };
  std::unordered_map<uint32_t, Where> where_;
  mutable std::shared_mutex mutex_;
};

}  // namespace whale::vindex
