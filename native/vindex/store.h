// Rows of one vector collection, back to back, in float32 or in the memory
// module's blockwise int8 format. Rows are padded with zeros so the kernels
// never handle tails: float rows to a multiple of 8 values, every int8 block
// to a multiple of 16 codes. Removing a row moves the last row into its slot.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "types.h"

namespace whale::vindex {

// Where each int8 block of a row lies in the padded layout.
struct BlockLayout {
  std::vector<uint32_t> offset;  // first code of block b (padded units)
  std::vector<uint32_t> length;  // padded length of block b (multiple of 16)
  uint32_t padded = 0;           // codes per padded row
  uint32_t blocks = 0;
};
BlockLayout block_layout(uint32_t dim, uint32_t block_size);

// A query batch in the form the kernels of one storage read.
struct Queries {
  size_t count = 0;
  uint32_t stride = 0;          // values per padded query
  std::vector<float> f32;       // float rows (f32 storage and coarse search)
  std::vector<int16_t> i16;     // int8 storage: query levels, |level| <= kQueryLevels
  std::vector<float> scale;     // int8 storage: value = scale * level
  std::vector<float> norm2;     // squared norm of the query as given
  std::vector<float> inv_norm;  // cosine: 1 / |q|
};
inline constexpr int kQueryLevels = 8191;  // keeps every int32 block sum exact (see kernels.h)

class Store {
 public:
  Store(Storage kind, uint32_t dim, uint32_t block_size);

  Storage kind() const { return kind_; }
  uint32_t dim() const { return dim_; }
  size_t rows() const { return labels_.size(); }
  uint32_t stride() const { return stride_; }
  const BlockLayout& layout() const { return layout_; }
  uint32_t label(size_t slot) const { return labels_[slot]; }
  size_t memory_bytes() const;

  // float rows are stored as given (int8 storage quantizes them with the codec).
  void push_f32(uint32_t label, const float* x);
  // int8 storage only: codes[dim] and scales[blocks] of a validated blob.
  void push_codes(uint32_t label, const int8_t* codes, const float* scales);
  // Appends row `slot` of a store with the same kind and layout, bit for bit.
  void push_copy(const Store& from, size_t slot);
  // Returns the label moved into `slot` (kNoLabel if slot was the last row).
  uint32_t remove_at(size_t slot);
  void decode_row(size_t slot, float* out) const;  // for k-means and list assignment only
  void reserve(size_t rows);

  const float* f32_row(size_t slot) const { return f32_.data() + slot * stride_; }
  const int8_t* code_row(size_t slot) const { return codes_.data() + slot * stride_; }
  const float* scales_row(size_t slot) const { return scales_.data() + slot * layout_.blocks; }
  float norm2(size_t slot) const { return norm2_[slot]; }
  float inv_norm(size_t slot) const { return inv_norm_[slot]; }

  // Prepares queries [count x dim] for this storage; cosine uses inv_norm.
  Queries prepare(const float* q, size_t count, bool parallel) const;

 private:
  void push_norm(double n2);

  Storage kind_;
  uint32_t dim_, block_size_, stride_;
  BlockLayout layout_;
  std::vector<float> f32_;
  std::vector<int8_t> codes_;
  std::vector<float> scales_;
  std::vector<float> norm2_, inv_norm_;
  std::vector<uint32_t> labels_;
};

}  // namespace whale::vindex
