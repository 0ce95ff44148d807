#include "detector.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "../common/error.h"

namespace whale::anomaly {
namespace {

// A pattern this many vigilances away (or the first one) counts as maximally novel.
constexpr double kMaxExcess = 10;

[[noreturn]] void bad(const char* field, const std::string& what) {
  throw EngineError(kErrInvalidArg, std::string(field) + ": " + what);
}

void check_int(uint32_t v, uint32_t lo, uint32_t hi, const char* field) {
  if (v < lo || v > hi) bad(field, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

void check_real(double v, double lo, double hi, bool lo_open, const char* field) {
  const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
  if (!ok)
    bad(field, std::string("must be a number in ") + (lo_open ? "(" : "[") + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]");
}

}  // namespace

void validate(const Params& p) {
  if (p.method != Method::kWhale && p.method != Method::kArt && p.method != Method::kEnsemble)
    bad("method", "must be whale, art or ensemble");
  check_real(p.threshold, 0, 1, true, "threshold");
  check_int(p.warmup, 0, 100000000, "warmupPoints");
  check_int(p.refractory, 0, 100000000, "refractoryPoints");
  check_int(p.window, 1, 256, "window");
  check_int(p.codebook, 1, 4096, "codebookSize");
  check_int(p.levels, 1, 8, "levels");
  check_real(p.vigilance, 0, 10, true, "vigilance");
  check_real(p.spread, 0, 1000, false, "spread");
  check_real(p.rate_horizon, 1, 1e12, false, "rateHorizon");
  check_real(p.range_tolerance, 0, 100, false, "rangeTolerance");
  check_int(p.learn_cap, 1, 100000000, "learnCap");
  check_int(p.min_blocks, 0, 100000000, "minBlocks");
  check_int(p.art_window, 1, 64, "artWindow");
  check_int(p.art_categories, 1, 4096, "artCategories");
  check_real(p.art_vigilance, 0, 1, true, "artVigilance");
  check_real(p.art_vigilance_low, 0, 0.9999, true, "artVigilanceLow");
  if (p.art_vigilance_low > p.art_vigilance) bad("artVigilanceLow", "must not exceed artVigilance");
  check_real(p.art_spread, 0, 1000, false, "artSpread");
  check_real(p.art_learning_rate, 0, 1, true, "artLearningRate");
}

Level::Level(const Params& p, uint32_t block, double span)
    : block_(block),
      span_(span),
      win_(p.window),
      book_(static_cast<size_t>(p.window) * p.codebook),
      count_(p.codebook),
      last_(p.codebook),
      dist_(p.codebook) {}

void Level::reset() {
  filled_ = used_ = muted_ = 0;
  acc_ = mean_dist_ = rate_ = 0;
  peak_ = 1;
  blocks_ = 0;
  std::fill(win_.begin(), win_.end(), 0.0);
}

void Level::mute(const Params& p) { muted_ = p.window * block_; }

double Level::push(const Params& p, double x, double scale, double inv_scale, bool scoring) {
  if (muted_ > 0) {
    --muted_;
    scoring = false;
  }
  acc_ += x;
  if (++filled_ < block_) return 0;
  const double v = acc_ / block_;
  acc_ = 0;
  filled_ = 0;
  const uint32_t w = p.window, K = p.codebook;
  std::copy(win_.begin() + 1, win_.end(), win_.begin());
  win_[w - 1] = v;
  if (blocks_++ < w - 1) return 0;

  // Nearest remembered pattern. The codebook is transposed so the inner loop runs
  // across patterns (vectorizable) while each pattern's sum keeps the order j = 0..w-1.
  std::fill(dist_.begin(), dist_.begin() + used_, 0.0);
  for (uint32_t j = 0; j < w; ++j) {
    const double wj = win_[j];
    const double* row = &book_[static_cast<size_t>(j) * K];
    double* d = dist_.data();
    for (uint32_t k = 0; k < used_; ++k) {
      const double e = (wj - row[k]) * inv_scale;
      d[k] += e * e;
    }
  }
  double best = std::numeric_limits<double>::infinity();
  int64_t bi = -1;
  for (uint32_t k = 0; k < used_; ++k) {
    if (dist_[k] < best) {
      best = dist_[k];
      bi = k;
    }
  }
  // dist is in units of the value range; mean_dist_ is kept in value units so that a
  // growing range does not inflate what counts as a typical distance.
  const double dist = std::sqrt(best / w);
  const double vig = std::max(p.spread * mean_dist_ * inv_scale, p.vigilance);
  const bool novel = bi < 0 || dist > vig;
  double out = 0;
  if (scoring && novel && blocks_ > static_cast<uint64_t>(w) + p.min_blocks) {
    // Real-valued novelty: the recent rate of novel patterns per span of the slowest
    // time scale (so that every scale has the same false-alarm rate per unit of time),
    // discounted by how far beyond the vigilance this one lies relative to the recent
    // novelties (excess / peak, squared): a novelty as large as recent ones is not news.
    const double excess = bi < 0 ? kMaxExcess : std::min(dist / vig, kMaxExcess);
    const double r = excess / peak_;
    out = std::max(0.0, 1 - rate_ * span_ / (r * r));
  }

  // The rate is an EWMA that starts at 0, so the codebook's first fill (every pattern
  // novel) does not mute a slow level for thousands of points.
  const double a = std::min(block_ / p.rate_horizon, 1.0);
  rate_ += a * ((novel ? 1.0 : 0.0) - rate_);
  // The largest recent excess relaxes towards 1 over the same horizon.
  peak_ += a * (1 - peak_);
  if (novel && bi >= 0) peak_ = std::max(peak_, std::min(dist / vig, kMaxExcess));
  if (bi >= 0) mean_dist_ += a * (std::min(dist * scale, 4 * mean_dist_ + p.vigilance * scale) - mean_dist_);

  if (novel) {
    uint32_t slot = 0;
    if (used_ < K) {
      slot = used_++;
    } else {
      for (uint32_t k = 1; k < K; ++k)
        if (last_[k] < last_[slot]) slot = k;
    }
    for (uint32_t j = 0; j < w; ++j) book_[static_cast<size_t>(j) * K + slot] = win_[j];
    count_[slot] = 1;
    last_[slot] = blocks_;
  } else {
    const size_t k = static_cast<size_t>(bi);
    const double c = std::min(count_[k] + 1, static_cast<double>(p.learn_cap));
    count_[k] = c;
    last_[k] = blocks_;
    for (uint32_t j = 0; j < w; ++j) {
      double& b = book_[static_cast<size_t>(j) * K + k];
      b += (win_[j] - b) / c;
    }
  }
  return out;
}

namespace {
// The whale time scales, or none when only the art detector runs (and the reverse).
Params art_part(const Params& p) {
  Params q = p;
  if (p.method == Method::kWhale) q.levels = 0;
  return q;
}
}  // namespace

Detector::Detector(const Params& p) : art_(art_part(p)) {
  if (p.method == Method::kArt) return;
  uint32_t slowest = 1;
  for (uint32_t l = 1; l < p.levels; ++l) slowest *= 4;
  uint32_t block = 1;
  for (uint32_t l = 0; l < p.levels; ++l, block *= 4)
    levels_.emplace_back(p, block, static_cast<double>(slowest / block));
}

void Detector::reset() {
  n_ = 0;
  min_ = max_ = range_rate_ = 0;
  hold_ = 0;
  for (Level& l : levels_) l.reset();
  art_.reset();
}

size_t Detector::state_bytes() const {
  size_t bytes = sizeof(*this);
  for (const Level& l : levels_) bytes += sizeof(Level) + l.state_bytes();
  return bytes + art_.state_bytes() - sizeof(art_);
}

size_t Level::state_bytes() const {
  return (win_.size() + book_.size() + count_.size() + dist_.size()) * sizeof(double) + last_.size() * sizeof(uint64_t);
}

double Detector::update(const Params& p, double x) {
  const bool warm = n_ >= p.warmup;
  double out;
  if (p.method == Method::kWhale) {
    out = whale_score(p, x, warm);
  } else if (p.method == Method::kArt) {
    out = art_.push(p, x, warm);
  } else {
    const double a = whale_score(p, x, warm);
    out = 0.5 * (a + art_.push(p, x, warm));
  }
  ++n_;
  if (!warm) return 0;
  if (hold_ > 0) {
    --hold_;
    return 0;
  }
  if (out >= p.threshold) hold_ = p.refractory;
  return out;
}

double Detector::whale_score(const Params& p, double x, bool warm) {
  bool outside = false;
  double range_score = 0;
  if (n_ == 0) {
    min_ = max_ = x;
  } else {
    const double margin = p.range_tolerance * (max_ - min_);
    const bool beyond = x > max_ + margin || x < min_ - margin;
    outside = warm && beyond;
    // The range component reports this value; patterns containing it are not scored.
    if (beyond)
      for (Level& l : levels_) l.mute(p);
    // A range excursion scores 1 - (recent rate of excursions): while the range is
    // still being learned excursions are frequent and score low.
    range_score = 1 - range_rate_;
    const double a = std::max(1 / p.rate_horizon, 1 / static_cast<double>(n_));
    range_rate_ += a * ((beyond ? 1.0 : 0.0) - range_rate_);
    min_ = std::min(min_, x);
    max_ = std::max(max_, x);
  }
  const double scale = std::max({max_ - min_, 1e-12 * std::max(std::fabs(max_), std::fabs(min_)), 1e-300});
  const double inv_scale = 1 / scale;
  double out = 0;
  for (Level& l : levels_) out = std::max(out, l.push(p, x, scale, inv_scale, warm));
  if (outside) out = std::max(out, range_score);
  return out;
}

}  // namespace whale::anomaly
