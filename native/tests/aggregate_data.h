// Test data shared by the aggregation tests (aggregate_test.cpp,
// krum_distance_test.cpp): client rows and a relative/absolute comparison.
#pragma once
#include <cmath>
#include <random>
#include <vector>

#include "../aggregate/client_updates.h"

namespace whale::aggregate::testing {

struct Data {
  std::vector<std::vector<float>> rows;
  ClientUpdates view() const {
    ClientUpdates u;
    u.params = rows.empty() ? 0 : rows[0].size();
    for (auto& r : rows) u.rows.push_back(r.data());
    return u;
  }
};

inline Data random_data(size_t n, size_t p, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  Data d;
  d.rows.assign(n, std::vector<float>(p));
  for (auto& r : d.rows)
    for (auto& x : r) x = g(rng);
  return d;
}

inline bool close(double a, double b, double rel, double abs_tol) {
  return std::fabs(a - b) <= abs_tol + rel * std::fabs(b);
}

// The Krum distance tests (krum_distance_test.cpp).
void test_krum_distances();

}  // namespace whale::aggregate::testing
