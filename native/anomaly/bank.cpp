#include "bank.h"

#include <cmath>
#include <limits>
#include <string>

#include "../common/error.h"
#include "../common/thread_pool.h"

namespace whale::anomaly {
namespace {

std::string at(const char* field, size_t i, size_t n) {
  return n == 1 ? std::string(field) : std::string(field) + "[" + std::to_string(i) + "]";
}

// Below this many points a batch runs on the calling thread.
constexpr size_t kParallelMinPoints = 16384;

}  // namespace

void check_values(const double* values, size_t n, const char* field) {
  for (size_t i = 0; i < n; ++i) {
    const double v = values[i];
    if (!std::isfinite(v))
      throw EngineError(kErrNonFinite, at(field, i, n) + ": must be a finite number, got " + std::to_string(v));
    if (std::fabs(v) > kMaxMagnitude) {
      throw EngineError(kErrInvalidArg, at(field, i, n) + ": magnitude above 1e300 is not supported");
    }
  }
}

Bank::Bank(const Params& p) : params_(p) { validate(p); }

uint32_t Bank::add() {
  if (series_.size() >= 0xffffffffu) throw EngineError(kErrInvalidArg, "series: too many series");
  series_.emplace_back(params_);
  last_ts_.push_back(-std::numeric_limits<double>::infinity());
  return static_cast<uint32_t>(series_.size() - 1);
}

void Bank::check_series(uint32_t series, const char* field) const {
  if (series >= series_.size())
    throw EngineError(kErrInvalidArg, std::string(field) + ": unknown series index " + std::to_string(series));
}

void Bank::reset(uint32_t series) {
  check_series(series, "series");
  series_[series].reset();
  last_ts_[series] = -std::numeric_limits<double>::infinity();
}

size_t Bank::state_bytes() const {
  size_t bytes = 0;
  for (const Detector& d : series_) bytes += d.state_bytes();
  return bytes;
}

void Bank::update_series(uint32_t series, const double* values, const double* timestamps, size_t n, double* scores,
                         uint8_t* flags) {
  check_series(series, "series");
  check_values(values, n, n == 1 ? "value" : "values");
  double last = last_ts_[series];
  if (timestamps != nullptr) {
    const char* field = n == 1 ? "timestampMs" : "timestampsMs";
    for (size_t i = 0; i < n; ++i) {
      const double t = timestamps[i];
      if (!std::isfinite(t)) throw EngineError(kErrInvalidArg, at(field, i, n) + ": must be a finite number of ms");
      if (t < last) throw EngineError(kErrInvalidArg, at(field, i, n) + ": earlier than the series' previous point");
      last = t;
    }
  }
  Detector& d = series_[series];
  for (size_t i = 0; i < n; ++i) {
    const double s = d.update(params_, values[i]);
    scores[i] = s;
    flags[i] = s >= params_.threshold ? 1 : 0;
  }
  last_ts_[series] = last;
}

void Bank::update_many(const uint32_t* series_of, const double* values, const double* timestamps, size_t n,
                       double* scores, uint8_t* flags) {
  check_values(values, n, "values");
  // Group the points by series (counting sort keeps each series' order).
  std::vector<uint32_t> start(series_.size() + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    if (series_of[i] >= series_.size()) {
      throw EngineError(kErrInvalidArg, at("series", i, n) + ": unknown series index " + std::to_string(series_of[i]));
    }
    ++start[series_of[i] + 1];
  }
  for (size_t s = 0; s < series_.size(); ++s) start[s + 1] += start[s];
  std::vector<uint32_t> order(n), next(start.begin(), start.end() - 1);
  for (size_t i = 0; i < n; ++i) order[next[series_of[i]]++] = static_cast<uint32_t>(i);
  std::vector<double> last(last_ts_);
  if (timestamps != nullptr) {
    for (size_t i = 0; i < n; ++i) {
      const double t = timestamps[i];
      double& prev = last[series_of[i]];
      if (!std::isfinite(t))
        throw EngineError(kErrInvalidArg, at("timestampsMs", i, n) + ": must be a finite number of ms");
      if (t < prev)
        throw EngineError(kErrInvalidArg, at("timestampsMs", i, n) + ": earlier than the series' previous point");
      prev = t;
    }
  }
  // Validated: from here on nothing throws.
  auto run = [&](size_t s_begin, size_t s_end) {
    for (size_t s = s_begin; s < s_end; ++s) {
      Detector& d = series_[s];
      for (uint32_t k = start[s]; k < start[s + 1]; ++k) {
        const uint32_t i = order[k];
        const double v = d.update(params_, values[i]);
        scores[i] = v;
        flags[i] = v >= params_.threshold ? 1 : 0;
      }
    }
  };
  const size_t count = series_.size();
  if (n < kParallelMinPoints || count < 2) {
    run(0, count);
  } else {
    ThreadPool& pool = ThreadPool::shared();
    pool.parallel_for(count, std::max<size_t>(1, count / (pool.concurrency() * 8)), run);
  }
  last_ts_.swap(last);
}

}  // namespace whale::anomaly
