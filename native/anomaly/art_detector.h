// Streaming anomaly scorer for one series from adaptive resonance: Dual-Vigilance
// Fuzzy ART (DVFA; da Silva, Elnabarawy and Wunsch, Neural Networks 2019) over
// windows of the series, written from the papers (Fuzzy ART: Carpenter, Grossberg
// and Rosen 1991).
//
// Input. At each of `levels` time scales (block means of 1, 4, 16, 64, ... points)
// the last `art_window` block means form a pattern x, normalised by the running
// (causal) min/max of the series and complement-coded, I = (x, 1 - x). A
// complement-coded category w = (u, 1 - v) is the box [u, v]; it is stored by its
// corners in value units, so |I ^ w| = d - |box enlarged to x| / range and
// |w| = d - |box| / range (d = art_window, |.| the L1 size): the match and choice
// below equal Fuzzy ART's on the normalised, complement-coded window for the
// current range, and a growing range needs no re-coding of the categories.
//
// DVFA. Match M_j = |I ^ w_j| / |I|, choice T_j = |I ^ w_j| / (alpha + |w_j|),
// alpha = 1e-3. Categories are searched in decreasing T; the first with
// M_j >= rho_lb decides: if M_j >= rho_ub it resonates and learns
// (w_j <- beta (I ^ w_j) + (1 - beta) w_j), else a new category joins its
// cluster. When no category reaches rho_lb the pattern opens a new cluster: a
// novelty. (The first j in decreasing T with M_j >= rho_lb is the argmax of T
// over {M_j >= rho_lb}: one pass, no sort.) New categories are fast-committed
// (w = I). At most `art_categories` categories per time scale: when full, the
// least recently chosen one is replaced (fixed memory per series).
// Per-series vigilance: the allowed mismatch 1 - rho_lb widens to
// art_spread x the level's mean best-match deficit (value units, relaxed over
// rate_horizon) when that is larger (rho_ub keeps its ratio to it), so a noisy
// series does not report its noise.
//
// Score. A novelty scores 1 - rate * span / (excess / peak)^2 (at least 0), as the
// 'whale' detector's levels do: excess = (1 - max_j M_j) / (1 - rho_lb) (capped
// at 10) is how far the best match falls short of the cluster vigilance, rate
// the recent rate of novelties at this time scale (EWMA from 0 over
// rate_horizon points), span the level's blocks per block of the slowest level
// (the same false-alarm rate per unit of time at every scale), peak the largest
// recent excess (relaxing towards 1): a novelty no larger than recent ones is not
// news. The point's raw score is the largest over the time scales; the caller
// (Detector) applies the warm-up (probation), threshold and refractory period.
// Everything is double precision, summed in a fixed order, so the TypeScript
// reference (anomaly-art-reference.ts) gives the same numbers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace whale::anomaly {

struct Params;

class ArtLevel {
 public:
  ArtLevel(const Params& p, uint32_t block, double span);
  // Feeds one point; returns the level's score for it (0 unless a block completes as a novelty).
  double push(const Params& p, double x, double range, bool scoring);
  void reset();
  uint32_t categories() const noexcept { return used_; }
  size_t state_bytes() const;

 private:
  uint32_t block_;
  double span_;
  uint32_t filled_ = 0;
  double acc_ = 0;
  uint64_t blocks_ = 0;
  uint32_t used_ = 0;
  double rate_ = 0;
  double peak_ = 1;
  double mean_deficit_ = 0;  // value units
  std::vector<double> win_;  // window, oldest first
  std::vector<double> lo_;   // box corners, transposed: lo_[j * K + k]
  std::vector<double> hi_;
  std::vector<double> size_;  // L1 size of each box, value units
  std::vector<uint64_t> last_;
  std::vector<double> enl_;  // scratch: L1 size of each box enlarged to the window
};

class ArtDetector {
 public:
  explicit ArtDetector(const Params& p);
  // Raw score in [0, 1] of one point (finite, checked by the caller).
  double push(const Params& p, double x, bool scoring);
  void reset();
  size_t state_bytes() const;
  // Categories in use at time scale `level`.
  uint32_t categories(size_t level) const { return levels_.at(level).categories(); }

 private:
  uint64_t n_ = 0;
  double min_ = 0, max_ = 0;
  std::vector<ArtLevel> levels_;
};

}  // namespace whale::anomaly
