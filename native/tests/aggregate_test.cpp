// Native unit tests: every CPU strategy against a double-precision reference
// written here independently (full sorts, direct sums), plus edge cases.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <random>
#include <string>
#include <vector>
#include "aggregate_data.h"
#include "check.h"

#include "../aggregate/robust_lanes.h"
#include "../aggregate/run.h"
#include "../common/error.h"

using namespace whale;
using namespace whale::aggregate;
using namespace whale::aggregate::testing;
using whale::aggregate::testing::random_data;  // not glibc's struct random_data

static std::vector<double> column(const Data& d, size_t j) {
  std::vector<double> c;
  for (auto& r : d.rows) c.push_back(r[j]);
  std::sort(c.begin(), c.end());
  return c;
}

template <typename Fn>
static std::string error_code(Fn fn) {
  try {
    fn();
  } catch (const EngineError& e) {
    return e.code();
  }
  return "";
}

static void test_strategies(size_t n, size_t p, unsigned seed) {
  Data d = random_data(n, p, seed);
  ClientUpdates u = d.view();
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = 1.0 + 1000.0 * (i % 3 == 0);
  std::vector<float> out(p);
  Request req;
  req.updates = u;
  req.weights = w;
  req.device.kind = Device::Kind::kCpu;

  req.strategy = Strategy::kFedAvg;
  run(req, out.data());
  double wsum = 0;
  for (double x : w) wsum += x;
  bool ok = true;
  for (size_t j = 0; j < p; ++j) {
    double ref = 0;
    for (size_t i = 0; i < n; ++i) ref += w[i] * d.rows[i][j];
    ok &= close(out[j], ref / wsum, 1e-6, 1e-6);
  }
  CHECK(ok, ("fedavg n=" + std::to_string(n) + " p=" + std::to_string(p)).c_str());

  req.strategy = Strategy::kMedian;
  run(req, out.data());
  ok = true;
  for (size_t j = 0; j < p; ++j) {
    auto c = column(d, j);
    double ref = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    ok &= close(out[j], ref, 1e-6, 1e-7);
  }
  CHECK(ok, ("median n=" + std::to_string(n)).c_str());

  req.strategy = Strategy::kTrimmedMean;
  req.beta = 0.2;
  run(req, out.data());
  ok = true;
  size_t k = static_cast<size_t>(std::floor(0.2 * n));
  for (size_t j = 0; j < p; ++j) {
    auto c = column(d, j);
    double s = 0;
    for (size_t i = k; i < n - k; ++i) s += c[i];
    ok &= close(out[j], s / (n - 2 * k), 1e-6, 1e-6);
  }
  CHECK(ok, ("trimmed mean n=" + std::to_string(n)).c_str());

  std::vector<double> dist(n * n);
  distances(u, req.device, true, dist.data());
  ok = true;
  for (size_t i = 0; i < n; ++i)
    for (size_t m = 0; m < n; ++m) {
      double ref = 0;
      for (size_t j = 0; j < p; ++j) {
        double diff = double(d.rows[i][j]) - d.rows[m][j];
        ref += diff * diff;
      }
      ok &= close(dist[i * n + m], ref, 1e-5, 1e-9);
    }
  CHECK(ok, ("distances n=" + std::to_string(n)).c_str());
}

static void test_edge_cases() {
  Data d = random_data(5, 33, 7);
  ClientUpdates u = d.view();
  std::vector<float> out(33);
  Request req;
  req.updates = u;
  req.weights = std::vector<double>(5, 1.0);
  req.device.kind = Device::Kind::kCpu;

  Request empty = req;
  empty.updates = ClientUpdates{};
  CHECK(error_code([&] { run(empty, out.data()); }) == kErrInvalidArg, "empty client list");

  Request bad_w = req;
  bad_w.weights[2] = 0;
  CHECK(error_code([&] { run(bad_w, out.data()); }) == kErrInvalidArg, "zero weight");

  d.rows[3][17] = std::nanf("");
  Request nan_req = req;
  nan_req.updates = d.view();
  long long client = -1;
  for (Strategy s : {Strategy::kFedAvg, Strategy::kMedian, Strategy::kTrimmedMean}) {
    nan_req.strategy = s;
    try {
      run(nan_req, out.data());
    } catch (const EngineError& e) {
      client = e.code() == kErrNonFinite ? e.client() : -2;
    }
    CHECK(client == 3, "NaN names client 3");
    client = -1;
  }

  Request krum = req;
  krum.strategy = Strategy::kKrum;
  krum.f = 2;  // 5 < 2*2 + 3
  CHECK(error_code([&] { run(krum, out.data()); }) == kErrInvalidArg, "krum f too large");

  Request trim = req;
  trim.strategy = Strategy::kTrimmedMean;
  trim.beta = 0.5;
  CHECK(error_code([&] { run(trim, out.data()); }) == kErrInvalidArg, "beta 0.5");

  Request cuda = req;
  cuda.device = Device{Device::Kind::kCuda, 0};
  // Without a usable GPU this is a clear error; with one it must just work.
  std::string code = error_code([&] { run(cuda, out.data()); });
  CHECK(code.empty() || code == kErrDeviceUnavailable, "cuda request without GPU");
}

static void test_krum_rejects_outlier() {
  Data d = random_data(9, 1000, 11);
  for (auto& x : d.rows[4]) x = x * 50.f + 100.f;  // a Byzantine client
  Request req;
  req.updates = d.view();
  req.weights = std::vector<double>(9, 1.0);
  req.device.kind = Device::Kind::kCpu;
  req.strategy = Strategy::kKrum;
  req.f = 1;
  req.m = 3;
  std::vector<float> out(1000);
  Result r = run(req, out.data());
  bool outlier_chosen = std::find(r.selected.begin(), r.selected.end(), size_t{4}) != r.selected.end();
  CHECK(r.selected.size() == 3 && !outlier_chosen, "multi-krum skips the outlier");
  CHECK(r.scores[4] > r.scores[0] * 10, "outlier has the worst score");
}

static void test_server_opt() {
  const size_t p = 1000;
  std::vector<float> x(p, 1.f), agg(p, 0.5f), m(p, 0.f), v(p, 0.f);
  ServerOptConfig c;
  c.kind = ServerOptKind::kAdam;
  c.lr = 0.1;
  server_opt(c, Device{Device::Kind::kCpu, 0}, x.data(), agg.data(), m.data(), v.data(), p);
  // delta = -0.5; m = 0.1 * -0.5; v = 0.01 * 0.25; x = 1 + 0.1 * m / (sqrt(v) + 1e-3)
  double mm = 0.1 * -0.5, vv = 0.01 * 0.25, ref = 1 + 0.1 * mm / (std::sqrt(vv) + 1e-3);
  CHECK(close(x[0], ref, 1e-6, 1e-6) && close(x[p - 1], ref, 1e-6, 1e-6), "fedadam step");
  c.beta1 = 1.0;
  CHECK(error_code([&] { server_opt(c, Device{}, x.data(), agg.data(), m.data(), v.data(), p); }) == kErrInvalidArg,
        "beta1 = 1 rejected");
}

// Weights whose sum overflows a double, Krum at |x| ~ 1e30 and 1e-30, and an
// all-or-nothing server step.
static void test_extremes() {
  Data d = random_data(2, 8, 5);
  std::vector<float> out(8);
  fedavg(d.view(), {1e308, 1e308}, out.data(), true);
  CHECK(close(out[3], 0.5 * (d.rows[0][3] + static_cast<double>(d.rows[1][3])), 1e-6, 1e-30),
        "fedavg with weights 1e308");
  for (float scale : {1e30f, 1e-30f}) {
    Data k = random_data(7, 64, 9);
    for (auto& row : k.rows)
      for (auto& x : row) x = (1.f + 0.01f * x) * scale;
    for (auto& x : k.rows[0]) x *= 3.f;  // the outlier comes first: index order must not decide
    std::vector<double> dist(49);
    pairwise_sq_distances(k.view(), dist.data(), true);
    KrumResult r = krum_select(dist.data(), 7, 1, 1);
    CHECK(std::isfinite(dist[1]) && dist[1] > 0 && r.selected[0] != 0, "krum at an extreme scale");
  }
  ServerOptConfig c;
  c.kind = ServerOptKind::kAdam;
  std::vector<float> x(100, 1.f), agg(100, 0.5f), m(100, 0.f), v(100, 0.f);
  agg[42] = NAN;
  CHECK(error_code([&] { server_opt_step(c, x.data(), agg.data(), m.data(), v.data(), 100); }) == kErrNonFinite &&
            x[0] == 1.f && m[0] == 0.f,
        "server step rejects NaN before writing");
  agg[42] = 3e38f;
  x[42] = -3e38f;
  CHECK(error_code([&] { server_opt_step(c, x.data(), agg.data(), m.data(), v.data(), 100); }) == kErrNonFinite &&
            x[0] == 1.f && v[0] == 0.f,
        "server step rejects an overflowing step before writing");
}

// The selection networks (up to 256 clients) and the per-column fallback
// (beyond) against full sorts, exactly: ties, -0/+0, P not a multiple of 8.
static void test_order_statistics_exact() {
  CHECK(lanes::sort16_matches_network(), "the in-register sort16 is Batcher's network for 16 wires");
  for (size_t n : {2, 3, 8, 9, 31, 100, 255, 256, 257, 300}) {
    const size_t p = 37;
    Data d = random_data(n, p, static_cast<unsigned>(n));
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < p; j += 3) d.rows[i][j] = std::round(d.rows[i][j]);  // many ties
    ClientUpdates u = d.view();
    std::vector<float> out(p);
    Request req;
    req.updates = u;
    req.device.kind = Device::Kind::kCpu;
    req.strategy = Strategy::kMedian;
    run(req, out.data());
    bool ok = true;
    for (size_t j = 0; j < p; ++j) {
      auto c = column(d, j);
      const float ref = n % 2 ? static_cast<float>(c[n / 2]) : static_cast<float>(0.5 * (c[n / 2 - 1] + c[n / 2]));
      ok &= out[j] == ref;
    }
    CHECK(ok, ("median exact n=" + std::to_string(n)).c_str());
    for (double beta : {0.0, 0.1, 0.3, 0.49}) {
      req.strategy = Strategy::kTrimmedMean;
      req.beta = beta;
      run(req, out.data());
      const size_t k = static_cast<size_t>(std::floor(beta * n));
      if (2 * k >= n) continue;
      ok = true;
      for (size_t j = 0; j < p; ++j) {
        auto c = column(d, j);
        double s = 0;
        for (size_t i = k; i < n - k; ++i) s += c[i];
        ok &= close(out[j], s / (n - 2 * k), 1e-6, 1e-7);
      }
      CHECK(ok, ("trimmed mean n=" + std::to_string(n) + " beta=" + std::to_string(beta)).c_str());
    }
  }
}

// NaN and Infinity anywhere (in a register-sorted block of 16 clients or after
// the last one, in a full group of 16 coordinates or the tail) are reported
// with the client, by median and trimmed mean alike.
static void test_robust_non_finite() {
  for (auto [client, index] : std::vector<std::pair<size_t, size_t>>{{20, 37}, {35, 99}, {0, 0}}) {
    for (float value : {std::nanf(""), INFINITY, -INFINITY}) {
      Data d = random_data(40, 100, 3);
      d.rows[client][index] = value;
      std::vector<float> out(100);
      for (Strategy s : {Strategy::kMedian, Strategy::kTrimmedMean}) {
        Request req;
        req.updates = d.view();
        req.device.kind = Device::Kind::kCpu;
        req.strategy = s;
        req.beta = 0.1;
        long long named = -1;
        try {
          run(req, out.data());
        } catch (const EngineError& e) {
          named = e.code() == kErrNonFinite ? e.client() : -2;
        }
        CHECK(named == static_cast<long long>(client),
              ("non-finite value named at client " + std::to_string(client)).c_str());
        req.check_finite = false;
        CHECK(error_code([&] { run(req, out.data()); }).empty(), "no check: no error");
      }
    }
  }
}

// The trimmed mean of d's columns on the CPU path.
static std::vector<float> trimmed_mean_on_cpu(const Data& d, double beta, bool check_finite) {
  std::vector<float> out(d.rows.empty() ? 0 : d.rows[0].size());
  Request req;
  req.updates = d.view();
  req.device.kind = Device::Kind::kCpu;
  req.strategy = Strategy::kTrimmedMean;
  req.beta = beta;
  req.check_finite = check_finite;
  run(req, out.data());
  return out;
}

// Unchecked, infinities are ordered like any value: where more than k of a
// coordinate's values are infinite, rank k or n - k - 1 is infinite and the
// trimmed mean is what the sorted column's sum gives (Infinity, or NaN with
// both signs kept), on the few-rows path and the staged one alike.
static void test_trimmed_infinite_thresholds() {
  for (size_t n : {12, 100}) {
    const size_t p = 40, k = n / 10;
    Data d = random_data(n, p, static_cast<unsigned>(n + 5));
    for (size_t j = 0; j < p; ++j) {
      const size_t infinite = j % 4 == 0 ? k : k + 1 + j % 3;  // j % 4 == 0: all infinities trimmed
      for (size_t i = 0; i < infinite; ++i) d.rows[(i * 7 + j) % n][j] = (j % 8 < 4 || i % 2) ? INFINITY : -INFINITY;
    }
    const std::vector<float> out = trimmed_mean_on_cpu(d, 0.1, false);
    bool ok = true;
    for (size_t j = 0; j < p; ++j) {
      auto c = column(d, j);
      double sum = 0;
      for (size_t i = k; i < n - k; ++i) sum += c[i];
      const float ref = static_cast<float>(sum / static_cast<double>(n - 2 * k));
      ok &=
          std::isnan(ref) ? std::isnan(out[j]) : (std::isfinite(ref) ? close(out[j], ref, 1e-6, 1e-7) : out[j] == ref);
    }
    CHECK(ok, ("trimmed mean with infinite thresholds, n=" + std::to_string(n)).c_str());
  }
}

// More than k far outliers on each side (rank k is one, rank n-k-1 another):
// the kept values include both, which cancel; the result is the honest ones'
// mean, not lost in the rounding of sums around 1e16.
static void test_trimmed_far_outliers() {
  for (size_t n : {40, 100}) {
    const size_t k = n / 4, outliers = k + 1, p = 37;
    Data d = random_data(n, p, static_cast<unsigned>(n + 9));
    for (size_t j = 0; j < p; ++j)
      for (size_t i = 0; i < n; ++i) d.rows[(i + j) % n][j] = i < outliers ? -1e15f : i < 2 * outliers ? 1e15f : 0.3f;
    const std::vector<float> out = trimmed_mean_on_cpu(d, 0.25, true);
    const double honest = static_cast<double>(0.3f) * static_cast<double>(n - 2 * k - 2);
    const double ref = honest / static_cast<double>(n - 2 * k);  // -1e15 and +1e15 kept once each: they cancel
    bool ok = true;
    for (size_t j = 0; j < p; ++j) ok &= close(out[j], ref, 1e-6, 1e-7);
    CHECK(ok, ("trimmed mean with more than k far outliers on each side, n=" + std::to_string(n)).c_str());
  }
}

int main() {
  for (auto [n, p] : std::vector<std::pair<size_t, size_t>>{
           {1, 1}, {1, 17}, {2, 100}, {7, 4099}, {20, 5000}, {64, 3000}, {100, 5000}})
    test_strategies(n, p, static_cast<unsigned>(n * 31 + p));
  test_edge_cases();
  test_krum_rejects_outlier();
  test_server_opt();
  test_extremes();
  test_order_statistics_exact();
  test_robust_non_finite();
  test_trimmed_infinite_thresholds();
  test_trimmed_far_outliers();
  test_krum_distances();
  return report();
}
