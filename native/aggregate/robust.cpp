// Coordinate-wise robust statistics: median and trimmed mean, by selection
// (std::nth_element) on one gathered column at a time, never a full sort.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../common/error.h"
#include "../common/thread_pool.h"
#include "aggregate.h"

namespace whale::aggregate {

size_t trim_count(double beta, size_t clients) {
  if (!(beta >= 0.0 && beta < 0.5)) {
    throw EngineError(kErrInvalidArg,
                      "beta: trimmed mean needs 0 <= beta < 0.5, got " + std::to_string(beta));
  }
  size_t k = static_cast<size_t>(std::floor(beta * static_cast<double>(clients)));
  if (2 * k >= clients) {
    throw EngineError(kErrInvalidArg, "beta: trimming " + std::to_string(k) +
                                          " from each side leaves no value of " +
                                          std::to_string(clients) + " clients");
  }
  return k;
}

namespace {

constexpr size_t kColumnsPerTask = 1024;

// Runs fn(column, j) over every coordinate j with the N client values of that
// coordinate gathered into a scratch column the function may reorder.
template <typename Fn>
void for_each_column(const ClientUpdates& u, Fn fn) {
  const size_t n = u.clients(), p = u.params;
  const size_t blocks = (p + kColumnsPerTask - 1) / kColumnsPerTask;
  ThreadPool::shared().parallel_for(blocks, 1, [&](size_t bb, size_t be) {
    std::vector<float> column(n);
    for (size_t b = bb; b < be; ++b) {
      const size_t lo = b * kColumnsPerTask, hi = std::min(p, lo + kColumnsPerTask);
      for (size_t j = lo; j < hi; ++j) {
        for (size_t i = 0; i < n; ++i) column[i] = u.rows[i][j];
        fn(column.data(), j);
      }
    }
  });
}

}  // namespace

void coordinate_median(const ClientUpdates& u, float* out, bool check_finite) {
  require_non_empty(u);
  if (check_finite) require_finite(u);
  const size_t n = u.clients(), mid = n / 2;
  for_each_column(u, [&](float* col, size_t j) {
    std::nth_element(col, col + mid, col + n);
    if (n % 2 == 1) {
      out[j] = col[mid];
    } else {
      // The lower middle is the largest of the values left of mid.
      const float lower = *std::max_element(col, col + mid);
      out[j] = static_cast<float>((static_cast<double>(lower) + col[mid]) * 0.5);
    }
  });
}

void trimmed_mean(const ClientUpdates& u, double beta, float* out, bool check_finite) {
  require_non_empty(u);
  const size_t n = u.clients();
  const size_t k = trim_count(beta, n);
  if (check_finite) require_finite(u);
  const double kept = static_cast<double>(n - 2 * k);
  for_each_column(u, [&](float* col, size_t j) {
    if (k > 0) {
      std::nth_element(col, col + k, col + n);             // k smallest to the left
      std::nth_element(col + k, col + (n - k), col + n);  // k largest to the right
    }
    double sum = 0;
    for (size_t i = k; i < n - k; ++i) sum += col[i];
    out[j] = static_cast<float>(sum / kept);
  });
}

}  // namespace whale::aggregate
