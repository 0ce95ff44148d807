// Native anomaly detector tests: quiet and constant series stay at 0, a level
// shift and a spike are reported once each, refractory suppression, scores in
// [0, 1], a missing daily peak found by the slow time scales, all-or-nothing
// batch validation, series independence in update_many.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../anomaly/bank.h"
#include "../common/error.h"
#include "check.h"

using namespace whale;
using namespace whale::anomaly;

namespace {

std::vector<double> periodic_noise(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 0.3);
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 10 + 5 * std::sin(2 * M_PI * i / 96.0) + noise(rng);
  return v;
}

struct Run {
  std::vector<double> scores;
  std::vector<uint8_t> flags;
};

Run run(Bank& b, uint32_t s, const std::vector<double>& v) {
  Run r{std::vector<double>(v.size()), std::vector<uint8_t>(v.size())};
  b.update_series(s, v.data(), nullptr, v.size(), r.scores.data(), r.flags.data());
  return r;
}

size_t count_flags(const Run& r, size_t from, size_t to) {
  size_t c = 0;
  for (size_t i = from; i < to; ++i) c += r.flags[i];
  return c;
}

void test_constant_and_shift() {
  Bank b{Params{}};
  const uint32_t s = b.add();
  std::vector<double> v(3000, 45.0);
  for (size_t i = 2000; i < v.size(); ++i) v[i] = 60.0;
  Run r = run(b, s, v);
  CHECK(count_flags(r, 0, 2000) == 0, "constant series: no anomaly");
  CHECK(r.flags[2000] == 1, "level shift reported at its first point");
  CHECK(count_flags(r, 2001, 3000) == 0, "the shift is reported once");
  bool bounded = true;
  for (double x : r.scores) bounded = bounded && x >= 0 && x <= 1;
  CHECK(bounded, "scores in [0, 1]");
}

void test_periodic_spike() {
  Bank b{Params{}};
  const uint32_t s = b.add();
  std::vector<double> v = periodic_noise(6000, 7);
  v[5000] += 12;
  Run r = run(b, s, v);
  CHECK(count_flags(r, 3000, 4990) == 0, "no anomaly in the learned periodic pattern");
  CHECK(count_flags(r, 5000, 5010) >= 1, "spike reported");
}

// A daily pattern (288 points a day) whose high phase is missing one day: inside the
// seen range, visible only to the slow time scales.
void test_missing_daily_peak() {
  Bank b{Params{}};
  const uint32_t s = b.add();
  const size_t day = 288, skipped = 11 * day;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 1.5);
  std::vector<double> v(14 * day);
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t phase = i % day;
    const bool high = phase >= 100 && phase < 180 && !(i >= skipped && i < skipped + day);
    v[i] = (high ? 80 : 20) + noise(rng);
  }
  Run r = run(b, s, v);
  CHECK(count_flags(r, 1000, skipped + 100) == 0, "no anomaly while the daily pattern repeats");
  CHECK(count_flags(r, skipped + 100, skipped + 180) >= 1, "the missing peak is reported within its phase");
  bool graded = false;
  for (size_t i = skipped + 100; i < skipped + 180; ++i) graded = graded || (r.scores[i] > 0 && r.scores[i] < 1);
  CHECK(graded, "pattern novelty scores are real-valued");
}

void test_validation_all_or_nothing() {
  Bank b{Params{}};
  const uint32_t s = b.add();
  std::vector<double> v = {1, 2, std::numeric_limits<double>::quiet_NaN()};
  std::vector<double> out(3);
  std::vector<uint8_t> flags(3);
  std::string code, msg;
  try {
    b.update_series(s, v.data(), nullptr, v.size(), out.data(), flags.data());
  } catch (const EngineError& e) {
    code = e.code();
    msg = e.what();
  }
  CHECK(code == kErrNonFinite && msg.rfind("values[2]:", 0) == 0, "NaN named by index");
  std::vector<double> ts = {5, 4};
  v = {1, 2};
  code.clear();
  try {
    b.update_series(s, v.data(), ts.data(), 2, out.data(), flags.data());
  } catch (const EngineError& e) {
    code = e.code();
    msg = e.what();
  }
  CHECK(code == kErrInvalidArg && msg.rfind("timestampsMs[1]:", 0) == 0, "out-of-order timestamp named");
  // The failed calls changed nothing: the same stream gives the same scores as a fresh bank.
  Bank fresh{Params{}};
  fresh.add();
  const std::vector<double> w = periodic_noise(1000, 3);
  CHECK(run(b, s, w).scores == run(fresh, 0, w).scores, "failed batches leave the state unchanged");
  code.clear();
  Params bad;
  bad.threshold = 0;
  try {
    Bank x{bad};
  } catch (const EngineError& e) {
    code = e.code();
    msg = e.what();
  }
  CHECK(code == kErrInvalidArg && msg.rfind("threshold:", 0) == 0, "bad option named");
}

void test_many_matches_single() {
  Bank many{Params{}}, single{Params{}};
  const size_t series = 8, points = 4000;
  for (size_t s = 0; s < series; ++s) {
    many.add();
    single.add();
  }
  std::vector<uint32_t> idx;
  std::vector<double> vals;
  std::vector<std::vector<double>> per(series);
  for (size_t i = 0; i < points; ++i) {
    for (size_t s = 0; s < series; ++s) {
      const double x = 100.0 * s + 10 * std::sin(i / (7.0 + s)) + (i == 3000 + s ? 50 : 0);
      idx.push_back(static_cast<uint32_t>(s));
      vals.push_back(x);
      per[s].push_back(x);
    }
  }
  std::vector<double> scores(vals.size());
  std::vector<uint8_t> flags(vals.size());
  many.update_many(idx.data(), vals.data(), nullptr, vals.size(), scores.data(), flags.data());
  bool same = true;
  for (size_t s = 0; s < series; ++s) {
    Run r = run(single, static_cast<uint32_t>(s), per[s]);
    for (size_t i = 0; i < points; ++i) same = same && r.scores[i] == scores[i * series + s];
  }
  CHECK(same, "update_many (parallel) equals per-series updates");
}

void test_huge_and_tiny() {
  Bank b{Params{}};
  const uint32_t s = b.add(), t = b.add();
  std::vector<double> big = periodic_noise(3000, 5), tiny = big;
  for (double& x : big) x *= 1e298;
  for (double& x : tiny) x *= 1e-300;
  Run rb = run(b, s, big), rt = run(b, t, tiny);
  bool finite = true;
  for (size_t i = 0; i < big.size(); ++i) finite = finite && std::isfinite(rb.scores[i]) && std::isfinite(rt.scores[i]);
  CHECK(finite, "huge and tiny magnitudes give finite scores");
  std::vector<double> v = {2e300};
  std::string code;
  double out;
  uint8_t f;
  try {
    b.update_series(s, v.data(), nullptr, 1, &out, &f);
  } catch (const EngineError& e) {
    code = e.code();
  }
  CHECK(code == kErrInvalidArg, "magnitude above 1e300 refused");
}

}  // namespace

int main() {
  test_constant_and_shift();
  test_periodic_spike();
  test_missing_daily_peak();
  test_validation_all_or_nothing();
  test_many_matches_single();
  test_huge_and_tiny();
  return report();
}
