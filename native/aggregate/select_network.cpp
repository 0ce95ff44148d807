#include "select_network.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

namespace whale::aggregate {
namespace {

// Batcher's network on the next power of two m >= n. The wires n..m-1 would
// hold +Infinity, so every comparator touching them is a no-op and is dropped.
std::vector<Comparator> odd_even_merge_sort(size_t n) {
  size_t m = 1;
  while (m < n) m <<= 1;
  std::vector<Comparator> net;
  for (size_t p = 1; p < m; p <<= 1) {
    for (size_t k = p; k >= 1; k >>= 1) {
      for (size_t j = k % p; j + k < m; j += 2 * k) {
        for (size_t i = 0; i < std::min(k, m - j - k); ++i) {
          const size_t lo = i + j, hi = i + j + k;
          if (lo / (2 * p) == hi / (2 * p) && hi < n) {
            net.push_back({static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)});
          }
        }
      }
    }
  }
  return net;
}

// Keeps, walking backwards, only comparators whose outputs reach a wanted wire.
std::vector<Comparator> prune_to(const std::vector<Comparator>& net, size_t n, size_t a, size_t b) {
  std::vector<char> needed(n, 0);
  needed[a] = needed[b] = 1;
  std::vector<Comparator> kept;
  for (size_t q = net.size(); q-- > 0;) {
    const Comparator c = net[q];
    if (!needed[c.lo] && !needed[c.hi]) continue;
    kept.push_back(c);
    needed[c.lo] = needed[c.hi] = 1;
  }
  std::reverse(kept.begin(), kept.end());
  return kept;
}

}  // namespace

std::shared_ptr<const std::vector<Comparator>> selection_network(size_t n, size_t a, size_t b) {
  constexpr size_t kMaxCached = 64;  // a few MiB at most, whatever mix of N and beta callers use
  static std::mutex mutex;
  static std::map<std::tuple<size_t, size_t, size_t>, std::shared_ptr<const std::vector<Comparator>>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find({n, a, b});
  if (it != cache.end()) return it->second;
  if (cache.size() >= kMaxCached) cache.clear();
  auto net = std::make_shared<const std::vector<Comparator>>(prune_to(odd_even_merge_sort(n), n, a, b));
  cache.emplace(std::make_tuple(n, a, b), net);
  return net;
}

}  // namespace whale::aggregate
