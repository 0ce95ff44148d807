#include "robust_lanes.h"

#include <cstring>

#include "../common/simd.h"

namespace whale::aggregate::lanes {
namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

static_assert(sizeof(v8f) == kLanes * sizeof(float), "one network wire is one 8-float vector");

// Gathers coordinates [j, j + len) of every row into v (lanes >= len are 0),
// prefetching the part of each row the next call will read.
WHALE_SIMD_CLONES
void load(const float* const* rows, size_t n, size_t j, size_t len, v8f* v) {
  for (size_t i = 0; i < n; ++i) {
    __builtin_prefetch(rows[i] + j + 64);
    if (len == kLanes) {
      std::memcpy(&v[i], rows[i] + j, sizeof(v8f));
    } else {
      v8f t = {};
      std::memcpy(&t, rows[i] + j, len * sizeof(float));
      v[i] = t;
    }
  }
}

// Compare-exchange on all lanes: min to wire lo, max to wire hi. Equal values
// (including -0 and +0) stay where they are.
WHALE_SIMD_CLONES
void apply(v8f* v, const Comparator* net, size_t count) {
  for (size_t q = 0; q < count; ++q) {
    const v8f a = v[net[q].lo], b = v[net[q].hi];
    const v8i swap = b < a;
    v[net[q].lo] = swap ? b : a;
    v[net[q].hi] = swap ? a : b;
  }
}

// With lo = v[k] and hi = v[n - k - 1] on each lane: the sum (in double) of
// the values strictly between them, and how many values are <= lo and < hi.
WHALE_SIMD_CLONES
void middle_sums(const v8f* v, size_t n, size_t k, double* sum, int* le_lo, int* lt_hi) {
  const v8f lo = v[k], hi = v[n - k - 1];
  v8i c_le = {}, c_lt = {};
  double s[kLanes] = {};
  for (size_t i = 0; i < n; ++i) {
    const v8f x = v[i];
    const v8i inside = (x > lo) & (x < hi);
    c_le -= x <= lo;  // a true comparison is -1
    c_lt -= x < hi;
    const v8f kept = inside ? x : v8f{};
    for (size_t l = 0; l < kLanes; ++l) s[l] += static_cast<double>(kept[l]);
  }
  for (size_t l = 0; l < kLanes; ++l) {
    sum[l] = s[l];
    le_lo[l] = c_le[l];
    lt_hi[l] = c_lt[l];
  }
}

}  // namespace

void median(const float* const* rows, size_t n, size_t j, size_t len, const std::vector<Comparator>& net,
            Scratch s, float* out) {
  v8f* v = reinterpret_cast<v8f*>(s.values);
  load(rows, n, j, len, v);
  apply(v, net.data(), net.size());
  const size_t hi = n / 2, lo = (n - 1) / 2;
  for (size_t l = 0; l < len; ++l) {
    out[j + l] = lo == hi ? v[hi][l]
                          : static_cast<float>((static_cast<double>(v[lo][l]) + v[hi][l]) * 0.5);
  }
}

void trimmed_mean(const float* const* rows, size_t n, size_t k, size_t j, size_t len,
                  const std::vector<Comparator>& net, Scratch s, float* out) {
  v8f* v = reinterpret_cast<v8f*>(s.values);
  load(rows, n, j, len, v);
  apply(v, net.data(), net.size());
  const v8f lo = v[k], hi = v[n - k - 1];
  double sum[kLanes];
  int le_lo[kLanes], lt_hi[kLanes];
  middle_sums(v, n, k, sum, le_lo, lt_hi);
  const double kept = static_cast<double>(n - 2 * k);
  for (size_t l = 0; l < len; ++l) {
    double total;
    if (lo[l] == hi[l]) {
      total = static_cast<double>(lo[l]) * kept;  // every kept value equals it
    } else {
      // The kept ranks k..n-k-1 are the values strictly inside, plus copies of
      // the two thresholds: ranks k..le_lo-1 equal lo, ranks lt_hi..n-k-1 equal hi.
      total = sum[l] + static_cast<double>(lo[l]) * static_cast<double>(le_lo[l] - static_cast<int>(k)) +
              static_cast<double>(hi[l]) * static_cast<double>(static_cast<int>(n - k) - lt_hi[l]);
    }
    out[j + l] = static_cast<float>(total / kept);
  }
}

}  // namespace whale::aggregate::lanes
