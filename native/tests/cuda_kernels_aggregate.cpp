// aggregate.cu's kernels (run by the CUDA emulation) against the CPU path and a plain double
// reference. Tolerances, where the reduction order differs:
//   fedavg, trimmed mean  within 1 float ulp of the double reference (both paths sum in double;
//                         the order differs, so a result may round to the neighbouring float)
//   median                bit-identical up to the sign of a zero (a selection: of equal values -0 and +0
//                         either may be picked; the even-N midpoint uses the same formula)
//   distances             1e-12 relative (double sums in another order)
//   server optimizer      1e-6 x (1 + the sum of |operand| and |result|) per value after 3 steps (float
//                         arithmetic with cancellation; the CPU's AVX2 clone contracts a * b + c to FMA)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../aggregate/aggregate.h"
#include "../aggregate/aggregate_cuda.h"
#include "../aggregate/run.h"
#include "../common/error.h"
#include "../cuemu/cuemu.h"
#include "aggregate_data.h"
#include "check.h"

using namespace whale;
using namespace whale::aggregate;
using whale::aggregate::testing::Data;
using whale::aggregate::testing::random_data;

namespace {

const Device kCuda{Device::Kind::kCuda, 0};

double ulp(float v) {
  const float a = std::fabs(v);
  return std::nextafter(a, std::numeric_limits<float>::infinity()) - a;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b)); }
// Bit-identical, except that -0 and +0 count as one value.
bool same_value(float a, float b) { return same_bits(a, b) || (a == 0.f && b == 0.f); }

template <typename Fn>
std::string code_of(Fn fn) {
  try {
    fn();
  } catch (const EngineError& e) {
    return e.code();
  }
  return "";
}

// Double reference of one coordinate: sorted values of column j.
std::vector<double> column(const Data& d, size_t j) {
  std::vector<double> c;
  for (const auto& r : d.rows) c.push_back(r[j]);
  std::sort(c.begin(), c.end());
  return c;
}

void check_fedavg(const Data& d, const char* what) {
  const ClientUpdates u = d.view();
  const size_t n = u.clients(), p = u.params;
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = 1.0 + static_cast<double>(i % 7);
  std::vector<float> gpu(p), cpu(p);
  const uint64_t launched = cuemu::kernels_launched();
  cuda::fedavg(0, u, w, gpu.data());
  fedavg(u, w, cpu.data(), false);
  CHECK(cuemu::kernels_launched() > launched, what);
  double total = 0;
  for (double x : w) total += x;
  size_t bad_ref = 0, bad_cpu = 0;
  for (size_t j = 0; j < p; ++j) {
    double ref = 0;
    for (size_t i = 0; i < n; ++i) ref += w[i] / total * d.rows[i][j];
    if (std::fabs(gpu[j] - ref) > ulp(static_cast<float>(ref))) ++bad_ref;
    if (std::fabs(gpu[j] - cpu[j]) > ulp(cpu[j])) ++bad_cpu;
  }
  CHECK(bad_ref == 0, (std::string(what) + ": fedavg within 1 ulp of the double reference").c_str());
  CHECK(bad_cpu == 0, (std::string(what) + ": fedavg within 1 ulp of the CPU path").c_str());
}

void check_robust(const Data& d, double beta, const char* what) {
  const ClientUpdates u = d.view();
  const size_t n = u.clients(), p = u.params, k = trim_count(beta, n);
  std::vector<float> gpu(p), cpu(p), tg(p), tc(p);
  cuda::coordinate_median(0, u, gpu.data());
  coordinate_median(u, cpu.data(), false);
  cuda::trimmed_mean(0, u, beta, tg.data());
  trimmed_mean(u, beta, tc.data(), false);
  size_t med_bits = 0, med_ref = 0, tm_ref = 0, tm_cpu = 0;
  for (size_t j = 0; j < p; ++j) {
    const std::vector<double> c = column(d, j);
    const double med = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) * 0.5;
    if (!same_value(gpu[j], cpu[j])) ++med_bits;
    if (!same_value(gpu[j], static_cast<float>(med))) ++med_ref;
    double s = 0;
    for (size_t i = k; i < n - k; ++i) s += c[i];
    const double tm = s / static_cast<double>(n - 2 * k);
    if (!(std::fabs(tg[j] - tm) <= ulp(static_cast<float>(tm)) || same_bits(tg[j], static_cast<float>(tm)))) ++tm_ref;
    if (!(std::fabs(tg[j] - tc[j]) <= ulp(tc[j]) || same_bits(tg[j], tc[j]))) ++tm_cpu;
  }
  const std::string w(what);
  CHECK(med_bits == 0, (w + ": median bit-identical to the CPU path").c_str());
  CHECK(med_ref == 0, (w + ": median equals the double reference").c_str());
  CHECK(tm_ref == 0, (w + ": trimmed mean within 1 ulp of the double reference").c_str());
  CHECK(tm_cpu == 0, (w + ": trimmed mean within 1 ulp of the CPU path").c_str());
}

void check_distances(const Data& d, const char* what) {
  const ClientUpdates u = d.view();
  const size_t n = u.clients(), p = u.params;
  std::vector<double> gpu(n * n), cpu(n * n);
  cuda::pairwise_sq_distances(0, u, gpu.data());
  pairwise_sq_distances(u, cpu.data(), false);
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < n; ++k) {
      double ref = 0;
      for (size_t j = 0; j < p; ++j) {
        const double diff = static_cast<double>(d.rows[i][j]) - d.rows[k][j];
        ref += diff * diff;
      }
      if (std::fabs(gpu[i * n + k] - ref) > 1e-12 * ref) ++bad;
      if (std::fabs(gpu[i * n + k] - cpu[i * n + k]) > 1e-12 * ref) ++bad;
    }
  }
  CHECK(bad == 0, (std::string(what) + ": distances within 1e-12 of the reference and of the CPU path").c_str());
}

void check_server_opt() {
  const size_t p = 5000;
  const Data d = random_data(4, p, 17);
  for (ServerOptKind kind :
       {ServerOptKind::kAvgM, ServerOptKind::kAdam, ServerOptKind::kYogi, ServerOptKind::kAdagrad}) {
    ServerOptConfig c;
    c.kind = kind;
    c.lr = 0.1;
    std::vector<float> xg = d.rows[0], mg = d.rows[2], vg(p), xc, mc, vc;
    for (size_t j = 0; j < p; ++j) vg[j] = std::fabs(d.rows[3][j]);
    xc = xg, mc = mg, vc = vg;
    for (int step = 0; step < 3; ++step) {
      cuda::server_opt_step(0, c, xg.data(), d.rows[1].data(), mg.data(), vg.data(), p);
      server_opt_step(c, xc.data(), d.rows[1].data(), mc.data(), vc.data(), p);
    }
    size_t bad = 0;
    for (size_t j = 0; j < p; ++j) {
      const double scale = 1 + std::fabs(d.rows[0][j]) + std::fabs(d.rows[1][j]) + std::fabs(d.rows[2][j]) +
                           std::fabs(d.rows[3][j]) + std::fabs(xc[j]) + std::fabs(mc[j]) + std::fabs(vc[j]);
      bad += std::fabs(xg[j] - xc[j]) > 1e-6 * scale;
      bad += std::fabs(mg[j] - mc[j]) > 1e-6 * scale;
      if (kind != ServerOptKind::kAvgM) bad += std::fabs(vg[j] - vc[j]) > 1e-6 * scale;
    }
    CHECK(bad == 0,
          ("server optimizer kind " + std::to_string(static_cast<int>(kind)) + " within 1e-6 of the operands' scale")
              .c_str());
  }
  // An overflowing step leaves everything unchanged on both paths.
  ServerOptConfig c;
  c.lr = 1e38;
  std::vector<float> x(8, 3e38f), a(8, -3e38f), m(8, 0.f), v(8, 0.f);
  const std::vector<float> x0 = x;
  CHECK(code_of([&] { cuda::server_opt_step(0, c, x.data(), a.data(), m.data(), v.data(), 8); }) == kErrNonFinite,
        "an overflowing step: ERR_NON_FINITE");
  CHECK(x == x0, "an overflowing step leaves the model unchanged");
}

// Edge cases through the entry point the bindings call (run.h), on cuda:0 and the CPU.
void check_edges() {
  Request req;
  req.device = kCuda;
  CHECK(code_of([&] { run(req, nullptr); }) == kErrInvalidArg, "no clients: ERR_INVALID_ARG");
  const Data one = random_data(1, 1000, 3);
  req.updates = one.view();
  req.weights = {2.5};
  for (Strategy s : {Strategy::kFedAvg, Strategy::kMedian, Strategy::kTrimmedMean}) {
    req.strategy = s;
    std::vector<float> out(1000);
    run(req, out.data());
    CHECK(out == one.rows[0], "one client: every strategy returns its row");
  }
  Data bad = random_data(5, 700, 4);
  bad.rows[3][600] = std::nanf("");
  bad.rows[1][10] = std::numeric_limits<float>::infinity();
  req.updates = bad.view();
  req.weights.assign(5, 1.0);
  for (Strategy s : {Strategy::kFedAvg, Strategy::kMedian, Strategy::kTrimmedMean}) {
    req.strategy = s;
    std::vector<float> out(700);
    long long client = -2;
    try {
      run(req, out.data());
    } catch (const EngineError& e) {
      client = e.code() == kErrNonFinite ? e.client() : -3;
    }
    CHECK(client == 1, "NaN/Inf input on cuda:0: ERR_NON_FINITE naming the first bad client");
  }
  // Without the check, NaN and Inf propagate to the same coordinates as on the CPU.
  std::vector<float> g(700), c(700);
  cuda::fedavg(0, bad.view(), req.weights, g.data());
  fedavg(bad.view(), req.weights, c.data(), false);
  bool same = true;
  for (size_t j = 0; j < 700; ++j) same &= std::isnan(g[j]) == std::isnan(c[j]) && std::isinf(g[j]) == std::isinf(c[j]);
  CHECK(same && std::isnan(g[600]) && std::isinf(g[10]), "fedavg: NaN/Inf where the CPU path has them");
  // Infinities order like any value in the median and the trimmed mean.
  Data inf = random_data(7, 300, 5);
  for (size_t j = 0; j < 300; j += 3) inf.rows[j % 7][j] = (j % 2 ? 1 : -1) * std::numeric_limits<float>::infinity();
  check_robust(inf, 0.2, "infinities");
  // More clients than the select kernels take: a typed error, not a wrong answer.
  Data many;
  many.rows.assign(cuda::kMaxSelectClients + 1, std::vector<float>(2, 1.f));
  CHECK(code_of([&] { cuda::coordinate_median(0, many.view(), g.data()); }) == kErrUnsupported,
        "median over more than kMaxSelectClients clients: ERR_UNSUPPORTED");
}

}  // namespace

void test_cuda_aggregate() {
  check_fedavg(random_data(1, 777, 1), "one client");
  check_fedavg(random_data(10, 70000, 2), "10 x 70000");
  check_fedavg(random_data(37, 3001, 3), "37 x 3001");
  check_robust(random_data(9, 4000, 6), 0.2, "9 clients (odd)");
  check_robust(random_data(40, 2000, 7), 0.1, "40 clients (kernel <128>)");
  check_robust(random_data(130, 500, 8), 0.25, "130 clients (kernel <512>)");
  check_robust(random_data(600, 64, 9), 0.3, "600 clients (kernel <2048>)");
  Data ties = random_data(12, 500, 10);
  for (auto& r : ties.rows)
    for (float& x : r) x = std::round(x);  // many equal values
  check_robust(ties, 0.25, "ties");
  check_distances(random_data(2, 100, 11), "2 clients");
  check_distances(random_data(21, 9000, 12), "21 x 9000 (two tiles, split columns)");
  check_distances(random_data(33, 37, 13), "33 x 37 (three tiles, a partial depth)");
  check_server_opt();
  check_edges();
  // Krum end to end on cuda:0 (its distances from the kernel) selects what the CPU selects.
  const Data d = random_data(11, 3000, 14);
  Request req;
  req.strategy = Strategy::kKrum;
  req.updates = d.view();
  req.weights.assign(11, 1.0);
  req.f = 2;
  req.m = 3;
  std::vector<float> og(3000), oc(3000);
  req.device = kCuda;
  const Result rg = run(req, og.data());
  req.device = Device{Device::Kind::kCpu, 0};
  const Result rc = run(req, oc.data());
  CHECK(rg.selected == rc.selected, "Krum on cuda:0 selects the CPU's clients");
  CHECK(rg.device.is_cuda(), "Krum ran on the emulated device");
}
