// Coordinate-wise robust statistics: median and trimmed mean. Up to
// kNetworkMaxClients clients, one selection network across SIMD lanes (eight
// coordinates at once, robust_lanes.cpp); beyond, std::nth_element on columns
// transposed a tile at a time. Both are exact order statistics.
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../common/error.h"
#include "../common/thread_pool.h"
#include "aggregate.h"
#include "robust_lanes.h"
#include "select_network.h"

namespace whale::aggregate {

size_t trim_count(double beta, size_t clients) {
  if (!(beta >= 0.0 && beta < 0.5)) {
    throw EngineError(kErrInvalidArg, "beta: trimmed mean needs 0 <= beta < 0.5, got " + std::to_string(beta));
  }
  size_t k = static_cast<size_t>(std::floor(beta * static_cast<double>(clients)));
  if (2 * k >= clients) {
    throw EngineError(kErrInvalidArg, "beta: trimming " + std::to_string(k) + " from each side leaves no value of " +
                                          std::to_string(clients) + " clients");
  }
  return k;
}

namespace {

constexpr size_t kColumnsPerTask = 1024;
constexpr size_t kTile = 16;  // coordinates transposed at once in the selection fallback

// Bytes of client rows read into L2 at once before the networks run on them: a
// quarter of the L2 (what glibc reports; 1 MiB assumed where it does not), at
// most 256 KiB (measured on a 2 MiB L2: 512 KiB was no better).
size_t staged_bytes() {
  static const size_t bytes = [] {
    long l2 = -1;
#if defined(_SC_LEVEL2_CACHE_SIZE)
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    const size_t cache = l2 > 0 ? static_cast<size_t>(l2) : size_t{1} << 20;
    return std::clamp(cache / 4, size_t{32} * 1024, size_t{256} * 1024);
  }();
  return bytes;
}
// Up to this many rows, read coordinate-wise with software prefetches; more
// are staged (the streams an L2 hardware prefetcher tracks: 32 on Intel's).
constexpr size_t kPrefetchedRows = 32;

// Staging is for Intel cores, where it was measured to win past kPrefetchedRows
// rows (median at N = 100: 131 -> 93 ms). On AMD Zen 4 it was slower or no
// faster in every paired one-thread run (median N = 50: 95 against 67 ms) and
// in a same-binary A/B at N = 100 (median 59-60 against 46-47 ms), so other CPUs keep the
// prefetching reads. WHALE_ROBUST_STAGING (on/off, 1/0, true/false, yes/no)
// overrides; any other value leaves the CPU's default.
bool staging_pays() {
  static const bool pays = [] {
    if (const char* forced = std::getenv("WHALE_ROBUST_STAGING")) {
      const std::string v(forced);
      if (v == "1" || v == "on" || v == "true" || v == "yes") return true;
      if (v == "0" || v == "off" || v == "false" || v == "no") return false;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_is("intel") != 0;
#else
    return false;
#endif
  }();
  return pays;
}

// Reads coordinates [j, end) of every row, a row at a time, so that the
// hardware prefetchers see one sequential stream each (read coordinate by
// coordinate, a hundred rows are a hundred streams, more than they track, and
// software prefetches of each stall on the core's few line-fill buffers).
std::atomic<uint32_t> staged_sink{0};  // where stage() leaves what it read, so the reads are kept
void stage(const ClientUpdates& u, size_t j, size_t end) {
  constexpr size_t kLine = 64 / sizeof(float);
  uint32_t touched = 0;
  for (const float* row : u.rows) {
    for (size_t c = j; c < end; c += kLine) {
      uint32_t bits;
      std::memcpy(&bits, row + c, sizeof bits);
      touched ^= bits;
    }
  }
  staged_sink.store(touched, std::memory_order_relaxed);
}

// Up to kNetworkMaxClients clients: fn(rows, j, len, scratch) on groups of
// lanes::kLanes coordinates, each task with its own aligned L1 scratch. Past
// kPrefetchedRows clients, each task's columns are staged into L2 first,
// staged_bytes() at a time (stage()); up to it, fn prefetches as it reads.
template <typename Fn>
void for_each_lane_group(const ClientUpdates& u, Fn fn) {
  const size_t n = u.clients(), p = u.params;
  const bool staging = n > kPrefetchedRows && staging_pays();
  const size_t staged =
      staging ? std::max(lanes::kLanes, staged_bytes() / (n * sizeof(float)) / lanes::kLanes * lanes::kLanes)
              : kColumnsPerTask;
  const size_t tasks = (p + kColumnsPerTask - 1) / kColumnsPerTask;
  ThreadPool::shared().parallel_for(tasks, 1, [&](size_t tb, size_t te) {
    std::vector<float> buffer(n * lanes::kLanes + 16);
    float* aligned = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buffer.data()) + 63) & ~uintptr_t{63});
    const lanes::Scratch scratch{aligned, !staging};
    const size_t end = std::min(p, te * kColumnsPerTask);
    for (size_t j0 = tb * kColumnsPerTask; j0 < end; j0 += staged) {
      const size_t stop = std::min(end, j0 + staged);
      if (staging) stage(u, j0, stop);
      for (size_t j = j0; j < stop; j += lanes::kLanes)
        fn(u.rows.data(), j, std::min(lanes::kLanes, stop - j), scratch);
    }
  });
}

// More clients: fn(column, j) with the N values of coordinate j gathered into a
// scratch column it may reorder; kTile coordinates are transposed at once so
// each row is read in contiguous runs.
template <typename Fn>
void for_each_column(const ClientUpdates& u, Fn fn) {
  const size_t n = u.clients(), p = u.params;
  const size_t blocks = (p + kColumnsPerTask - 1) / kColumnsPerTask;
  ThreadPool::shared().parallel_for(blocks, 1, [&](size_t bb, size_t be) {
    std::vector<float> tile(n * kTile);
    for (size_t lo = bb * kColumnsPerTask, end = std::min(p, be * kColumnsPerTask); lo < end; lo += kTile) {
      const size_t len = std::min(kTile, end - lo);
      for (size_t i = 0; i < n; ++i)
        for (size_t l = 0; l < len; ++l) tile[l * n + i] = u.rows[i][lo + l];
      for (size_t l = 0; l < len; ++l) fn(tile.data() + l * n, lo + l);
    }
  });
}

}  // namespace

void coordinate_median(const ClientUpdates& u, float* out, bool check_finite) {
  require_non_empty(u);
  const size_t n = u.clients(), mid = n / 2;
  if (n <= kNetworkMaxClients) {
    // The lanes see every value: they note NaN/Infinity, and only then are the
    // inputs scanned for the error (out is the binding's own array until then).
    const auto net = network_after_sorted_blocks(n, (n - 1) / 2, mid);
    std::atomic<bool> all_finite{true};
    for_each_lane_group(u, [&](const float* const* rows, size_t j, size_t len, lanes::Scratch s) {
      if (!lanes::median(rows, n, j, len, *net, s, out)) all_finite = false;
    });
    if (check_finite && !all_finite) require_finite(u);
    return;
  }
  if (check_finite) require_finite(u);
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
  if (n <= kNetworkMaxClients) {
    const auto net = network_after_sorted_blocks(n, k, n - k - 1);
    std::atomic<bool> all_finite{true};
    for_each_lane_group(u, [&](const float* const* rows, size_t j, size_t len, lanes::Scratch s) {
      if (!lanes::trimmed_mean(rows, n, k, j, len, *net, s, out)) all_finite = false;
    });
    if (check_finite && !all_finite) require_finite(u);  // as in coordinate_median
    return;
  }
  if (check_finite) require_finite(u);
  const double kept = static_cast<double>(n - 2 * k);
  for_each_column(u, [&](float* col, size_t j) {
    if (k > 0) {
      std::nth_element(col, col + k, col + n);            // k smallest to the left
      std::nth_element(col + k, col + (n - k), col + n);  // k largest to the right
    }
    double sum = 0;
    for (size_t i = k; i < n - k; ++i) sum += col[i];
    out[j] = static_cast<float>(sum / kept);
  });
}

}  // namespace whale::aggregate
