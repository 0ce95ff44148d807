#include "store.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../common/error.h"
#include "../common/thread_pool.h"
#include "../quant/codec.h"

namespace whale::vindex {
namespace {

uint32_t round_up(uint32_t v, uint32_t m) { return (v + m - 1) / m * m; }

}  // namespace

BlockLayout block_layout(uint32_t dim, uint32_t block_size) {
  BlockLayout l;
  l.blocks = (dim + block_size - 1) / block_size;
  for (uint32_t b = 0; b < l.blocks; ++b) {
    const uint32_t len = std::min(block_size, dim - b * block_size);
    l.offset.push_back(l.padded);
    l.length.push_back(round_up(len, 16));
    l.padded += l.length.back();
  }
  return l;
}

Store::Store(Storage kind, uint32_t dim, uint32_t block_size)
    : kind_(kind), dim_(dim), block_size_(block_size), layout_(block_layout(dim, block_size)) {
  stride_ = kind == Storage::kF32 ? round_up(dim, 8) : layout_.padded;
}

size_t Store::memory_bytes() const {
  return f32_.capacity() * 4 + codes_.capacity() + scales_.capacity() * 4 + norm2_.capacity() * 8 +
         labels_.capacity() * 4;
}

void Store::reserve(size_t rows) {
  if (kind_ == Storage::kF32) {
    f32_.reserve(rows * stride_);
  } else {
    codes_.reserve(rows * stride_);
    scales_.reserve(rows * layout_.blocks);
  }
  norm2_.reserve(rows);
  inv_norm_.reserve(rows);
  labels_.reserve(rows);
}

void Store::push_norm(double n2) {
  norm2_.push_back(static_cast<float>(n2));
  inv_norm_.push_back(n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.f);
}

void Store::push_f32(uint32_t label, const float* x) {
  if (kind_ == Storage::kInt8) {
    // Quantized by the memory module's codec, so a float row and its int8 blob are the same row.
    quant::EncodeOptions o;
    o.codec = quant::Codec::kInt8;
    o.block_size = block_size_;
    o.parallel = false;
    std::vector<uint8_t> blob(quant::encoded_size(o, dim_));
    quant::encode(o, x, dim_, blob.data());
    const size_t scales_at = quant::kHeaderBytes;
    std::vector<float> scales(layout_.blocks);
    std::memcpy(scales.data(), blob.data() + scales_at, scales.size() * 4);
    push_codes(label, reinterpret_cast<const int8_t*>(blob.data() + scales_at + scales.size() * 4), scales.data());
    return;
  }
  const size_t at = f32_.size();
  f32_.resize(at + stride_, 0.f);
  std::memcpy(f32_.data() + at, x, dim_ * 4);
  double n2 = 0;
  for (uint32_t j = 0; j < dim_; ++j) n2 += static_cast<double>(x[j]) * x[j];
  push_norm(n2);
  labels_.push_back(label);
}

void Store::push_codes(uint32_t label, const int8_t* codes, const float* scales) {
  const size_t at = codes_.size();
  codes_.resize(at + stride_, 0);
  double n2 = 0;
  for (uint32_t b = 0; b < layout_.blocks; ++b) {
    const uint32_t lo = b * block_size_, len = std::min(block_size_, dim_ - lo);
    std::memcpy(codes_.data() + at + layout_.offset[b], codes + lo, len);
    int64_t sq = 0;
    for (uint32_t j = 0; j < len; ++j) sq += int64_t{codes[lo + j]} * codes[lo + j];
    n2 += static_cast<double>(scales[b]) * scales[b] * static_cast<double>(sq);
  }
  scales_.insert(scales_.end(), scales, scales + layout_.blocks);
  push_norm(n2);
  labels_.push_back(label);
}

void Store::push_copy(const Store& from, size_t slot) {
  if (kind_ == Storage::kF32) {
    f32_.insert(f32_.end(), from.f32_row(slot), from.f32_row(slot) + stride_);
  } else {
    codes_.insert(codes_.end(), from.code_row(slot), from.code_row(slot) + stride_);
    scales_.insert(scales_.end(), from.scales_row(slot), from.scales_row(slot) + layout_.blocks);
  }
  norm2_.push_back(from.norm2(slot));
  inv_norm_.push_back(from.inv_norm(slot));
  labels_.push_back(from.label(slot));
}

uint32_t Store::remove_at(size_t slot) {
  const size_t last = rows() - 1;
  uint32_t moved = kNoLabel;
  if (slot != last) {
    if (kind_ == Storage::kF32) {
      std::memcpy(f32_.data() + slot * stride_, f32_.data() + last * stride_, stride_ * 4);
    } else {
      std::memcpy(codes_.data() + slot * stride_, codes_.data() + last * stride_, stride_);
      std::memcpy(scales_.data() + slot * layout_.blocks, scales_.data() + last * layout_.blocks, layout_.blocks * 4);
    }
    norm2_[slot] = norm2_[last];
    inv_norm_[slot] = inv_norm_[last];
    labels_[slot] = labels_[last];
    moved = labels_[slot];
  }
  if (kind_ == Storage::kF32) {
    f32_.resize(last * stride_);
  } else {
    codes_.resize(last * stride_);
    scales_.resize(last * layout_.blocks);
  }
  norm2_.pop_back();
  inv_norm_.pop_back();
  labels_.pop_back();
  return moved;
}

void Store::decode_row(size_t slot, float* out) const {
  if (kind_ == Storage::kF32) {
    std::memcpy(out, f32_row(slot), dim_ * 4);
    return;
  }
  const int8_t* c = code_row(slot);
  const float* s = scales_row(slot);
  for (uint32_t b = 0; b < layout_.blocks; ++b) {
    const uint32_t lo = b * block_size_, len = std::min(block_size_, dim_ - lo);
    for (uint32_t j = 0; j < len; ++j) out[lo + j] = static_cast<float>(c[layout_.offset[b] + j]) * s[b];
  }
}

Queries Store::prepare(const float* q, size_t count, bool parallel) const {
  Queries out;
  out.count = count;
  out.stride = stride_;
  out.norm2.resize(count);
  out.inv_norm.resize(count);
  if (kind_ == Storage::kF32) {
    out.f32.assign(count * stride_, 0.f);
  } else {
    out.i16.assign(count * stride_, 0);
    out.scale.resize(count);
  }
  auto one = [&](size_t i) {
    const float* x = q + i * dim_;
    double n2 = 0;
    float absmax = 0;
    for (uint32_t j = 0; j < dim_; ++j) {
      n2 += static_cast<double>(x[j]) * x[j];
      absmax = std::max(absmax, std::fabs(x[j]));
    }
    out.norm2[i] = static_cast<float>(n2);
    out.inv_norm[i] = n2 > 0 ? static_cast<float>(1.0 / std::sqrt(n2)) : 0.f;
    if (kind_ == Storage::kF32) {
      std::memcpy(out.f32.data() + i * stride_, x, dim_ * 4);
      return;
    }
    // One scale for the whole query: its rounding error (< absmax / 16382) is
    // far below the rows' int8 error, and the kernels can then apply it once.
    const double scale = absmax > 0 ? static_cast<double>(absmax) / kQueryLevels : 1.0;
    out.scale[i] = static_cast<float>(scale);
    int16_t* dst = out.i16.data() + i * stride_;
    for (uint32_t b = 0; b < layout_.blocks; ++b) {
      const uint32_t lo = b * block_size_, len = std::min(block_size_, dim_ - lo);
      for (uint32_t j = 0; j < len; ++j) {
        const double level = std::nearbyint(static_cast<double>(x[lo + j]) / scale);
        dst[layout_.offset[b] + j] =
            static_cast<int16_t>(std::clamp(level, -double{kQueryLevels}, double{kQueryLevels}));
      }
    }
  };
  if (parallel && count >= 64) {
    ThreadPool::shared().parallel_for(count, 16, [&](size_t lo, size_t hi) {
      for (size_t i = lo; i < hi; ++i) one(i);
    });
  } else {
    for (size_t i = 0; i < count; ++i) one(i);
  }
  return out;
}

}  // namespace whale::vindex
