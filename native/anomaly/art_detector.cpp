#include "art_detector.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "detector.h"

namespace whale::anomaly {
namespace {

constexpr double kAlpha = 1e-3;      // Fuzzy ART choice parameter
constexpr double kMaxExcess = 10;    // a novelty this many allowed gaps away (or the first) is maximal
constexpr uint32_t kMinBlocks = 20;  // blocks a level sees before it may score

}  // namespace

ArtLevel::ArtLevel(const Params& p, uint32_t block, double span)
    : block_(block),
      span_(span),
      win_(p.art_window),
      lo_(static_cast<size_t>(p.art_window) * p.art_categories),
      hi_(static_cast<size_t>(p.art_window) * p.art_categories),
      size_(p.art_categories),
      last_(p.art_categories),
      enl_(p.art_categories) {}

void ArtLevel::reset() {
  filled_ = used_ = 0;
  acc_ = rate_ = mean_deficit_ = 0;
  peak_ = 1;
  blocks_ = 0;
  std::fill(win_.begin(), win_.end(), 0.0);
}

size_t ArtLevel::state_bytes() const {
  return (win_.size() + lo_.size() + hi_.size() + size_.size() + enl_.size()) * sizeof(double) +
         last_.size() * sizeof(uint64_t);
}

double ArtLevel::push(const Params& p, double x, double range, bool scoring) {
  acc_ += x;
  if (++filled_ < block_) return 0;
  const double v = acc_ / block_;
  acc_ = 0;
  filled_ = 0;
  const uint32_t w = p.art_window, K = p.art_categories;
  std::copy(win_.begin() + 1, win_.end(), win_.begin());
  win_[w - 1] = v;
  if (blocks_++ < w - 1) return 0;

  const double inv = 1 / range;
  const double gap = std::max(1 - p.art_vigilance_low, p.art_spread * mean_deficit_ * inv);
  const double low = 1 - gap;
  const double high = 1 - gap * ((1 - p.art_vigilance) / (1 - p.art_vigilance_low));
  // Enlarged box sizes; transposed so the inner loop runs across categories (vectorizable)
  // while each category's sum keeps the order j = 0..w-1.
  std::fill(enl_.begin(), enl_.begin() + used_, 0.0);
  for (uint32_t j = 0; j < w; ++j) {
    const double xj = win_[j];
    const double* lo = &lo_[static_cast<size_t>(j) * K];
    const double* hi = &hi_[static_cast<size_t>(j) * K];
    double* e = enl_.data();
    for (uint32_t k = 0; k < used_; ++k) e[k] += std::max(hi[k], xj) - std::min(lo[k], xj);
  }
  double best_t = -std::numeric_limits<double>::infinity();
  double best_m = -std::numeric_limits<double>::infinity();
  double bi_m = 0;
  int64_t bi = -1;
  for (uint32_t k = 0; k < used_; ++k) {
    const double e = enl_[k] * inv;
    const double m = 1 - e / w;
    const double t = (w - e) / (kAlpha + w - size_[k] * inv);
    if (m > best_m) best_m = m;
    if (m >= low && t > best_t) {
      best_t = t;
      bi = k;
      bi_m = m;
    }
  }
  const bool novel = bi < 0;
  const double excess = used_ == 0 ? kMaxExcess : std::min((1 - best_m) / gap, kMaxExcess);
  double out = 0;
  if (scoring && novel && blocks_ > static_cast<uint64_t>(w) + kMinBlocks) {
    const double r = excess / peak_;
    out = std::max(0.0, 1 - rate_ * span_ / (r * r));
  }
  const double a = std::min(block_ / p.rate_horizon, 1.0);
  rate_ += a * ((novel ? 1.0 : 0.0) - rate_);
  peak_ += a * (1 - peak_);
  if (novel && used_ > 0) peak_ = std::max(peak_, excess);
  if (used_ > 0) mean_deficit_ += a * (std::min((1 - best_m) * range, 4 * mean_deficit_ + gap * range) - mean_deficit_);

  if (bi >= 0 && bi_m >= high) {
    // Resonance: w <- beta (I ^ w) + (1 - beta) w, on the box corners.
    const double beta = p.art_learning_rate;
    const size_t k = static_cast<size_t>(bi);
    double size = 0;
    for (uint32_t j = 0; j < w; ++j) {
      double& lo = lo_[static_cast<size_t>(j) * K + k];
      double& hi = hi_[static_cast<size_t>(j) * K + k];
      const double xj = win_[j];
      lo = beta * std::min(lo, xj) + (1 - beta) * lo;
      hi = beta * std::max(hi, xj) + (1 - beta) * hi;
      size += hi - lo;
    }
    size_[k] = size;
    last_[k] = blocks_;
  } else {
    // A new category (in bi's cluster, or a new cluster), fast-committed; when the set is
    // full the least recently chosen category makes room.
    uint32_t slot = 0;
    if (used_ < K) {
      slot = used_++;
    } else {
      for (uint32_t k = 1; k < K; ++k)
        if (last_[k] < last_[slot]) slot = k;
    }
    for (uint32_t j = 0; j < w; ++j)
      lo_[static_cast<size_t>(j) * K + slot] = hi_[static_cast<size_t>(j) * K + slot] = win_[j];
    size_[slot] = 0;
    last_[slot] = blocks_;
  }
  return out;
}

ArtDetector::ArtDetector(const Params& p) {
  uint32_t slowest = 1;
  for (uint32_t l = 1; l < p.levels; ++l) slowest *= 4;
  uint32_t block = 1;
  for (uint32_t l = 0; l < p.levels; ++l, block *= 4)
    levels_.emplace_back(p, block, static_cast<double>(slowest / block));
}

void ArtDetector::reset() {
  n_ = 0;
  min_ = max_ = 0;
  for (ArtLevel& l : levels_) l.reset();
}

size_t ArtDetector::state_bytes() const {
  size_t bytes = sizeof(*this);
  for (const ArtLevel& l : levels_) bytes += sizeof(ArtLevel) + l.state_bytes();
  return bytes;
}

double ArtDetector::push(const Params& p, double x, bool scoring) {
  if (n_++ == 0) min_ = max_ = x;
  min_ = std::min(min_, x);
  max_ = std::max(max_, x);
  const double range = std::max({max_ - min_, 1e-12 * std::max(std::fabs(max_), std::fabs(min_)), 1e-300});
  double out = 0;
  for (ArtLevel& l : levels_) out = std::max(out, l.push(p, x, range, scoring));
  return out;
}

}  // namespace whale::anomaly
