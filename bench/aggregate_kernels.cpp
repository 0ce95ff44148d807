// Kernel-level timing of the CPU aggregation strategies, for A/B comparisons on
// a busy machine: with CPUTIME=1 it reports the calling thread's CPU time
// (run it with WHALE_THREADS=1 so all the work is on that thread), which other
// processes sharing the cores disturb far less than wall time.
//
// Build against a CPU-only core library (any commit; -DBASE for one before krum()):
//   cmake -S . -B /tmp/pb -G Ninja -DWHALE_WITH_CUDA=OFF && ninja -C /tmp/pb whale_core
//   g++ -O2 -std=c++17 -I. bench/aggregate_kernels.cpp /tmp/pb/libwhale_core.a -lpthread -ldl -o /tmp/agg
//   CPUTIME=1 WHALE_THREADS=1 /tmp/agg median|trimmed|krum|krumf|finite|fedavg N P RUNS
//   /tmp/agg ratios N P ROUNDS   (wall time, all threads: per round the triad (best of 3), FedAvg,
//   median and trimmed mean back to back, so each round's ratios share the machine's state)
// Data: the same LCG fill as bench/aggregate.ts (uniform in [-1, 1)).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "native/aggregate/aggregate.h"
#include "native/common/membench.h"

using namespace whale;

static double now_ms() {
  if (std::getenv("CPUTIME")) {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F>
static double median_ms(int runs, F f) {
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    const double a = now_ms();
    f();
    t.push_back(now_ms() - a);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s median|trimmed|krum|krumf|finite|fedavg|ratios N P RUNS\n", argv[0]);
    return 2;
  }
  const std::string what = argv[1];
  const size_t n = std::strtoul(argv[2], nullptr, 10), p = std::strtoul(argv[3], nullptr, 10);
  const int runs = std::atoi(argv[4]);
  // One LCG stream over the rows, from 12345, as makeRows() in bench/aggregate.ts.
  auto fill = [](std::vector<std::vector<float>>& rows) {
    int s = 12345;
    for (auto& r : rows)
      for (auto& x : r) {
        s = static_cast<int>(static_cast<unsigned>(s) * 1664525u + 1013904223u);
        x = static_cast<float>(s / 2147483648.0);
      }
  };
  std::vector<std::vector<float>> data(n, std::vector<float>(p));
  fill(data);
  if (std::getenv("CLOSE")) {  // as bench/aggregate.ts's (close) rows: a shared vector plus 10% noise
    std::vector<std::vector<float>> shared(1, std::vector<float>(p));
    fill(shared);
    for (auto& r : data)
      for (size_t j = 0; j < p; ++j) r[j] = static_cast<float>(shared[0][j] + 0.1 * r[j]);
  }
  aggregate::ClientUpdates u;
  u.params = p;
  for (auto& r : data) u.rows.push_back(r.data());
  // ALIASED=1: rows back to back in one allocation (4 MiB + 16 bytes apart for
  // 1e6 floats), as JS typed arrays from glibc's heap are: every row's block
  // then maps to the same cache sets.
  std::vector<float> packed;
  if (std::getenv("ALIASED")) {
    const size_t stride = p + 4;
    packed.resize(n * stride);
    for (size_t i = 0; i < n; ++i) {
      std::copy(data[i].begin(), data[i].end(), packed.begin() + i * stride);
      u.rows[i] = packed.data() + i * stride;
    }
  }
  std::vector<float> out(p);
  auto report = [&](const char* name, double ms) {
    std::printf("%-16s n=%zu p=%zu %9.2f ms %6.2f GB/s\n", name, n, p, ms, n * p * 4 / 1e6 / ms);
  };
  if (what == "finite") report("require_finite", median_ms(runs, [&] { aggregate::require_finite(u); }));
  if (what == "median") report("median", median_ms(runs, [&] { aggregate::coordinate_median(u, out.data(), false); }));
  if (what == "trimmed") report("trimmed 0.1", median_ms(runs, [&] { aggregate::trimmed_mean(u, 0.1, out.data(), false); }));
  if (what == "fedavg") {
    const std::vector<double> w(n, 1.0);
    report("fedavg", median_ms(runs, [&] { aggregate::fedavg(u, w, out.data(), true); }));
  }
  if (what == "ratios") {
    const std::vector<double> w(n, 1.0);
    const double bytes = n * p * 4.0;
    for (int r = 0; r < runs; ++r) {
      const std::vector<double> t = triad_bandwidth(10000000, 3);
      const double triad = *std::max_element(t.begin(), t.end());
      const double fa = median_ms(3, [&] { aggregate::fedavg(u, w, out.data(), true); });
      const double me = median_ms(3, [&] { aggregate::coordinate_median(u, out.data(), false); });
      const double tm = median_ms(3, [&] { aggregate::trimmed_mean(u, 0.1, out.data(), false); });
      std::printf("round %d: triad %.1f GB/s | fedavg %.2f ms %.1f GB/s = %.2fx triad | median %.2f ms = %.2fx fedavg"
                  " | trimmed %.2f ms = %.2fx fedavg\n",
                  r, triad, fa, bytes / 1e6 / fa, bytes / 1e6 / fa / triad, me, me / fa, tm, tm / fa);
    }
  }
  if (what == "krum") {  // the distances Krum needs, double path, with the NaN scan
    std::vector<double> d(n * n);
    report("distances", median_ms(runs, [&] { aggregate::pairwise_sq_distances(u, d.data(), true); }));
  }
#ifndef BASE
  if (what == "krumf") {  // krum(): float Gram path when it is certain, with the NaN scan
    aggregate::KrumResult r;
    report("krum()", median_ms(runs, [&] { r = aggregate::krum(u, (n - 3) / 4, 1, true); }));
    std::vector<double> d(n * n);
    aggregate::pairwise_sq_distances(u, d.data(), false);
    const aggregate::KrumResult ref = aggregate::krum_select(d.data(), n, (n - 3) / 4, 1);
    double worst = 0;
    for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(r.scores[i] - ref.scores[i]) / ref.scores[i]);
    std::printf("  selected %zu (double path %zu), worst score difference %.1e relative\n", r.selected[0], ref.selected[0], worst);
  }
#endif
  return 0;
}
