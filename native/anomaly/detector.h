// Streaming anomaly detector for one series: multi-scale window novelty.
//
// At each of `levels` time scales (block means of 1, 4, 16, 64, ... points) the
// last `window` block values form a pattern. A bounded codebook (`codebook`
// patterns per level, least recently matched replaced first) remembers the
// patterns seen so far. A pattern farther (RMS, in units of the observed value
// range) than the level's vigilance from every remembered one is novel; its
// score is 1 - rate * span / (excess / peak)^2 (at least 0), where rate is the
// recent rate of novel patterns at that level (an EWMA from 0), span the number
// of the level's blocks in one block of the slowest level (so every time scale
// has the same false-alarm rate per unit of time), excess = distance /
// vigilance (capped at 10) and peak the largest excess of the level's recent
// novel patterns (relaxing towards 1 over the rate horizon): a novelty no
// larger than recent ones is not news, and novelty in a series whose patterns
// repeat scores near 1.
// A value outside the range seen so far scores 1 - (recent rate of range
// excursions), and no level scores a pattern containing it (the excursion is
// one event, reported by the range component). The point's score is the
// largest of these.
// After a score >= threshold the scores of the next `refractory` points are 0
// (one report per event). Memory is fixed per series; score of point t uses
// points <= t only. Everything is double precision and summed in a fixed order
// so that the TypeScript reference gives the same numbers.
// Params::method picks this detector ('whale'), the adaptive-resonance one
// (art_detector.h) or the mean of both raw scores ('ensemble'); warm-up,
// threshold and refractory period apply to the chosen score.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "art_detector.h"

namespace whale::anomaly {

enum class Method : uint8_t { kWhale = 0, kArt = 1, kEnsemble = 2 };

struct Params {
  Method method = Method::kWhale;
  double threshold = 0.9;         // decision threshold on the score (and refractory trigger)
  uint32_t warmup = 200;          // points scored 0 while the detector learns
  uint32_t refractory = 200;      // points scored 0 after a reported anomaly
  uint32_t window = 8;            // pattern length, in blocks
  uint32_t codebook = 64;         // remembered patterns per level
  uint32_t levels = 4;            // time scales: block sizes 1, 4, 16, 64, ...
  double vigilance = 0.05;        // novelty distance floor, fraction of the value range
  double spread = 2.0;            // novelty distance, multiple of the mean nearest distance
  double rate_horizon = 1000.0;   // points over which the novelty rate is averaged
  double range_tolerance = 0.02;  // margin beyond the seen range (fraction of it) that scores 1
  uint32_t learn_cap = 50;        // a pattern's running mean weighs at most this many matches
  uint32_t min_blocks = 20;       // blocks a level sees before it may score
  // art (art_detector.h)
  uint32_t art_window = 8;          // block means per pattern
  uint32_t art_categories = 64;     // categories per time scale
  double art_vigilance = 0.98;      // rho_ub
  double art_vigilance_low = 0.96;  // rho_lb
  double art_spread = 2.0;          // per-series widening of 1 - rho_lb (0: off)
  double art_learning_rate = 1.0;   // beta
};

// Throws EngineError(ERR_INVALID_ARG) naming the option at fault.
void validate(const Params& p);

// Largest |value| accepted: differences and sums of a window stay finite.
inline constexpr double kMaxMagnitude = 1e300;

class Level {
 public:
  // span: blocks of this level in one block of the slowest level.
  Level(const Params& p, uint32_t block, double span);
  // Feeds one point; returns the level's score for it (0 unless a block completes as a novel pattern).
  double push(const Params& p, double x, double scale, double inv_scale, bool scoring);
  // Stops scoring until the current point has left the level's window.
  void mute(const Params& p);
  void reset();
  size_t state_bytes() const;

 private:
  uint32_t block_;
  double span_;
  uint32_t filled_ = 0;  // points in the current block
  uint32_t muted_ = 0;   // points left before the level scores again
  double acc_ = 0;
  uint64_t blocks_ = 0;   // completed blocks
  uint32_t used_ = 0;     // codebook slots in use
  double mean_dist_ = 0;  // value units
  double rate_ = 0;
  double peak_ = 1;           // largest recent excess of a novel pattern, relaxing towards 1
  std::vector<double> win_;   // window, oldest first
  std::vector<double> book_;  // codebook, transposed: book_[j * codebook + k]
  std::vector<double> count_;
  std::vector<uint64_t> last_;
  std::vector<double> dist_;  // scratch: squared distance to each pattern
};

class Detector {
 public:
  explicit Detector(const Params& p);
  // One point (finite, |x| <= kMaxMagnitude; checked by the caller). Returns the score in [0, 1].
  double update(const Params& p, double x);
  void reset();
  // Bytes of state this detector holds.
  size_t state_bytes() const;

 private:
  double whale_score(const Params& p, double x, bool warm);
  uint64_t n_ = 0;
  double min_ = 0, max_ = 0;
  double range_rate_ = 0;  // EWMA of range excursions
  uint32_t hold_ = 0;
  std::vector<Level> levels_;  // empty for Method::kArt
  ArtDetector art_;            // no time scales for Method::kWhale
};

}  // namespace whale::anomaly
