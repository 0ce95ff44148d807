// Many independent series, each with its own Detector. Batches are validated in
// full before any state changes (all or nothing); a batch over several series
// runs the series in parallel, each series' points in order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "detector.h"

namespace whale::anomaly {

class Bank {
 public:
  explicit Bank(const Params& p);  // validates p
  const Params& params() const noexcept { return params_; }
  size_t size() const noexcept { return series_.size(); }
  // Adds a series; returns its index.
  uint32_t add();
  void reset(uint32_t series);
  size_t state_bytes() const;

  // Points of one series. timestamps may be null (then order is not checked).
  // scores[i] in [0, 1]; flags[i] = scores[i] >= threshold.
  void update_series(uint32_t series, const double* values, const double* timestamps, size_t n, double* scores,
                     uint8_t* flags);
  // Points of several series: series_of[i] names the series of point i; points of one
  // series are taken in the order given.
  void update_many(const uint32_t* series_of, const double* values, const double* timestamps, size_t n, double* scores,
                   uint8_t* flags);

 private:
  void check_series(uint32_t series, const char* field) const;
  Params params_;
  std::vector<Detector> series_;
  std::vector<double> last_ts_;  // -inf until a timestamp is seen
};

// Throws ERR_NON_FINITE / ERR_INVALID_ARG naming `field[i]` for the first bad value.
void check_values(const double* values, size_t n, const char* field);

}  // namespace whale::anomaly
