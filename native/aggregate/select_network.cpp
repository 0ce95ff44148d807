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
// opening: set to how many of them come from the stages whose merges stay
// within blocks of kSortedBlock wires.
std::vector<Comparator> odd_even_merge_sort(size_t n, size_t* opening = nullptr) {
  size_t m = 1;
  while (m < n) m <<= 1;
  std::vector<Comparator> net;
  if (opening) *opening = 0;
  for (size_t p = 1; p < m; p <<= 1) {
    if (opening && p <= kSortedBlock) *opening = net.size();  // before the stage of merge size p
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
  if (opening && m <= kSortedBlock) *opening = net.size();
  return net;
}

// Keeps, walking backwards, only comparators whose outputs reach a wanted
// wire, and of the first `opening` ones only those outside full sorted blocks.
std::vector<Comparator> prune_to(const std::vector<Comparator>& net, size_t n, size_t a, size_t b, size_t opening = 0) {
  std::vector<char> needed(n, 0);
  needed[a] = needed[b] = 1;
  const size_t sorted_wires = n / kSortedBlock * kSortedBlock;
  std::vector<Comparator> kept;
  for (size_t q = net.size(); q-- > 0;) {
    const Comparator c = net[q];
    if (!needed[c.lo] && !needed[c.hi]) continue;
    needed[c.lo] = needed[c.hi] = 1;
    if (q < opening && c.hi < sorted_wires) continue;  // done by sort16() on its block
    kept.push_back(c);
  }
  std::reverse(kept.begin(), kept.end());
  return kept;
}

// A bounded cache of networks by (n, a, b), built by make on a miss.
template <typename Make>
std::shared_ptr<const std::vector<Comparator>> cached(size_t n, size_t a, size_t b, Make make) {
  constexpr size_t kMaxCached = 64;  // a few MiB at most, whatever mix of N and beta callers use
  static std::mutex mutex;
  static std::map<std::tuple<size_t, size_t, size_t>, std::shared_ptr<const std::vector<Comparator>>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find({n, a, b});
  if (it != cache.end()) return it->second;
  if (cache.size() >= kMaxCached) cache.clear();
  auto net = std::make_shared<const std::vector<Comparator>>(make());
  cache.emplace(std::make_tuple(n, a, b), net);
  return net;
}

}  // namespace

std::shared_ptr<const std::vector<Comparator>> selection_network(size_t n, size_t a, size_t b) {
  return cached(n, a, b, [&] { return prune_to(odd_even_merge_sort(n), n, a, b); });
}

std::shared_ptr<const std::vector<Comparator>> network_after_sorted_blocks(size_t n, size_t a, size_t b) {
  // Keyed apart from selection_network's entries by an n no caller uses.
  return cached(n + (size_t{1} << 40), a, b, [&] {
    size_t opening = 0;
    const std::vector<Comparator> net = odd_even_merge_sort(n, &opening);
    return prune_to(net, n, a, b, opening);
  });
}

const std::vector<Comparator>& sort16() {
  static const std::vector<Comparator> net = odd_even_merge_sort(kSortedBlock);
  return net;
}

}  // namespace whale::aggregate
