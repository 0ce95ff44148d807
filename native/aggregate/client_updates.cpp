#include "client_updates.h"

#include <cmath>
#include <string>

#include "../common/error.h"
#include "../common/thread_pool.h"

namespace whale::aggregate {

void require_non_empty(const ClientUpdates& u) {
  if (u.clients() == 0) throw EngineError(kErrInvalidArg, "clients: at least one client update is required");
  if (u.params == 0) throw EngineError(kErrInvalidArg, "clients: updates must have at least one parameter");
}

namespace {
size_t count_non_finite(const float* x, size_t n) {
  size_t bad = 0;
  for (size_t j = 0; j < n; ++j) bad += !std::isfinite(x[j]);
  return bad;
}
}  // namespace

bool all_finite(const float* x, size_t n) { return count_non_finite(x, n) == 0; }

std::vector<size_t> non_finite_counts(const ClientUpdates& u) {
  const size_t n = u.clients(), p = u.params;
  std::vector<size_t> counts(n, 0);
  // One task per (client, slice) so a few huge clients still use every core.
  const size_t slice = 1 << 18;
  const size_t slices = (p + slice - 1) / slice;
  std::vector<size_t> partial(n * slices, 0);
  ThreadPool::shared().parallel_for(n * slices, 1, [&](size_t b, size_t e) {
    for (size_t t = b; t < e; ++t) {
      size_t i = t / slices, s = t % slices;
      size_t lo = s * slice, len = std::min(slice, p - lo);
      partial[t] = count_non_finite(u.rows[i] + lo, len);
    }
  });
  for (size_t t = 0; t < partial.size(); ++t) counts[t / slices] += partial[t];
  return counts;
}

void require_finite(const ClientUpdates& u) {
  auto counts = non_finite_counts(u);
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    size_t first = 0;
    while (first < u.params && std::isfinite(u.rows[i][first])) ++first;
    throw EngineError(kErrNonFinite,
                      "clients[" + std::to_string(i) + "]: " + std::to_string(counts[i]) +
                          " non-finite value(s), first at index " + std::to_string(first),
                      static_cast<long long>(i));
  }
}

}  // namespace whale::aggregate
