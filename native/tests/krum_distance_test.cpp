// Krum's pairwise distances: the double Gram path on near-duplicates, and
// krum()'s float path (gram_f32.h) against the double path.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../aggregate/aggregate.h"
#include "../aggregate/gram_f32_kernels.h"
#include "../common/error.h"
#include "aggregate_data.h"
#include "check.h"

namespace whale::aggregate::testing {
namespace {

// Whether krum() (the float path when it is certain) selects the same clients
// in the same order as the double path, with scores within 4e-6 relative.
bool same_as_double_path(const Data& d, size_t f, size_t m) {
  const size_t n = d.rows.size();
  std::vector<double> dist(n * n);
  pairwise_sq_distances(d.view(), dist.data(), true);
  const KrumResult ref = krum_select(dist.data(), n, f, m), r = krum(d.view(), f, m, true);
  bool ok = r.selected == ref.selected;
  for (size_t i = 0; i < n; ++i) ok &= close(r.scores[i], ref.scores[i], 4e-6, 0);
  return ok;
}

// n clients around one point, scaled: six within 1e-5 of it, the rest 0.5.
Data near_duplicates(size_t n, size_t p, float scale) {
  Data base = random_data(1, p, 5), noise = random_data(n, p, 6);
  Data d;
  d.rows.assign(n, std::vector<float>(p));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < p; ++j) d.rows[i][j] = (base.rows[0][j] + (i < 6 ? 1e-5f : 0.5f) * noise.rows[i][j]) * scale;
  return d;
}

// Near-duplicate clients: the Gram formulation cancels, so those pairs must be
// recomputed from their differences (relative 1e-9 of the direct double sum).
void test_gram_near_duplicates() {
  for (float scale : {1e-30f, 1.f, 1e19f, 1e30f}) {
    const size_t n = 12, p = 3001;
    const Data d = near_duplicates(n, p, scale);
    std::vector<double> dist(n * n);
    pairwise_sq_distances(d.view(), dist.data(), true);
    bool ok = true;
    for (size_t i = 0; i < n; ++i)
      for (size_t k = 0; k < n; ++k) {
        double ref = 0;
        for (size_t j = 0; j < p; ++j) {
          const double diff = double(d.rows[i][j]) - d.rows[k][j];
          ref += diff * diff;
        }
        ok &= close(dist[i * n + k], ref, 1e-9, 0) && dist[i * n + k] == dist[k * n + i];
      }
    CHECK(ok, ("gram distances of near-duplicates at scale " + std::to_string(scale)).c_str());
  }
}

// krum() (float-speed Gram matrix, gram_f32.h) against the double path: the
// same selection in the same order, scores within its 4e-6 relative tolerance;
// NaN rejected with the client named; float overflow and near-duplicates fall
// back to double accuracy.
void test_krum_float_path() {
  for (auto [n, p] :
       std::vector<std::pair<size_t, size_t>>{{3, 300}, {4, 1000}, {5, 257}, {10, 5000}, {23, 3001}, {50, 20000}}) {
    Data d = random_data(n, p, static_cast<unsigned>(n + p));
    for (size_t i = 0; i < n; ++i)
      for (auto& x : d.rows[i]) x = x * (1.f + 0.05f * static_cast<float>(i % 7)) + 0.1f * static_cast<float>(i % 3);
    const size_t f = (n - 3) / 4;
    for (size_t m : {size_t{1}, n - f}) {
      CHECK(same_as_double_path(d, f, m),
            ("krum() float path n=" + std::to_string(n) + " m=" + std::to_string(m)).c_str());
    }
    d.rows[n / 2][p - 1] = NAN;
    std::string message;
    try {
      krum(d.view(), f, 1, true);
    } catch (const EngineError& e) {
      message = std::string(e.code()) + " " + e.what();
    }
    CHECK(
        message.find(kErrNonFinite) == 0 && message.find("clients[" + std::to_string(n / 2) + "]") != std::string::npos,
        "krum() names the client holding a NaN");
  }
  for (float scale : {1e-30f, 1.f, 1e19f, 1e30f}) {
    const size_t n = 12, p = 3001;
    CHECK(same_as_double_path(near_duplicates(n, p, scale), 2, 3),
          ("krum() near-duplicates at scale " + std::to_string(scale)).c_str());
  }
}

// Honest clients close together around a large shared vector, the first or
// the sampled rows (which set the float path's center) far off and Byzantine:
// same selection and order as the double path, scores within 4e-6.
void test_krum_float_path_clusters() {
  for (auto [n, p] : std::vector<std::pair<size_t, size_t>>{{12, 5000}, {50, 20000}}) {
    const Data shared = random_data(1, p, 7), noise = random_data(n, p, 8);
    const size_t f = (n - 3) / 4;
    size_t pick[5] = {};
    gram_f32::kernels::sample_rows(n, pick);
    for (int layout = 0; layout < 2; ++layout) {
      Data d;
      d.rows.assign(n, std::vector<float>(p));
      for (size_t i = 0; i < n; ++i) {
        // layout 0: the last f clients attack; layout 1: the sampled rows do.
        const bool byzantine = layout == 0 ? i >= n - f : std::find(pick, pick + 5, i) != pick + 5;
        for (size_t j = 0; j < p; ++j)
          d.rows[i][j] =
              10.f * shared.rows[0][j] + (byzantine ? 3.f : 0.01f) * noise.rows[i][j] + (byzantine ? 2.f : 0.f);
      }
      for (size_t m : {size_t{1}, n - f}) {
        CHECK(same_as_double_path(d, f, m), ("krum() clustered clients n=" + std::to_string(n) + " layout " +
                                             std::to_string(layout) + " m=" + std::to_string(m))
                                                .c_str());
      }
    }
  }
}

}  // namespace

void test_krum_distances() {
  test_gram_near_duplicates();
  test_krum_float_path();
  test_krum_float_path_clusters();
}

}  // namespace whale::aggregate::testing
