#include "masks.h"

#include <string>

#include "../common/error.h"
#include "../common/thread_pool.h"
#include "chacha20.h"

namespace whale::secagg {

uint32_t ring_mask(unsigned bits) {
  if (bits < 1 || bits > 32) throw EngineError(kErrInvalidArg, "bits: must be in [1, 32], got " + std::to_string(bits));
  return bits == 32 ? 0xffffffffu : ((1u << bits) - 1u);
}

namespace {

constexpr size_t kBlockWords = 16;
// Work per task: 4096 blocks = 64 Ki elements (256 KiB of acc), which stays in L2 across seeds.
constexpr size_t kGrainBlocks = 4096;

void masks_range(uint32_t* acc, size_t n, const uint8_t* seeds, const int8_t* signs, size_t count, uint32_t mask,
                 size_t first_block, size_t end_block) {
  const uint32_t nonce[3] = {0, 0, 0};
  uint32_t ks[kBlockWords];
  for (size_t s = 0; s < count; ++s) {
    uint32_t key[8];
    load_key(seeds + 32 * s, key);
    const bool add = signs[s] > 0;
    for (size_t b = first_block; b < end_block; ++b) {
      chacha20_block(key, static_cast<uint32_t>(b), nonce, ks);
      const size_t base = b * kBlockWords;
      const size_t m = n - base < kBlockWords ? n - base : kBlockWords;
      uint32_t* a = acc + base;
      if (add) {
        for (size_t i = 0; i < m; ++i) a[i] += ks[i];
      } else {
        for (size_t i = 0; i < m; ++i) a[i] -= ks[i];
      }
    }
  }
  // Reduction mod 2^bits commutes with + and - on uint32 (2^bits divides 2^32): mask once at the end.
  if (mask != 0xffffffffu) {
    const size_t lo = first_block * kBlockWords, hi = end_block * kBlockWords < n ? end_block * kBlockWords : n;
    for (size_t i = lo; i < hi; ++i) acc[i] &= mask;
  }
}

}  // namespace

void add_masks(uint32_t* acc, size_t n, const uint8_t* seeds, const int8_t* signs, size_t count, unsigned bits,
               bool parallel) {
  const uint32_t mask = ring_mask(bits);
  for (size_t s = 0; s < count; ++s) {
    if (signs[s] != 1 && signs[s] != -1)
      throw EngineError(kErrInvalidArg, "signs[" + std::to_string(s) + "]: must be 1 or -1");
  }
  // The 32-bit block counter covers 2^36 elements.
  if (n > (static_cast<size_t>(1) << 36)) throw EngineError(kErrInvalidArg, "acc: more than 2^36 elements");
  const size_t blocks = (n + kBlockWords - 1) / kBlockWords;
  if (!parallel || blocks <= kGrainBlocks) {
    masks_range(acc, n, seeds, signs, count, mask, 0, blocks);
    return;
  }
  ThreadPool::shared().parallel_for(
      blocks, kGrainBlocks, [&](size_t b0, size_t b1) { masks_range(acc, n, seeds, signs, count, mask, b0, b1); });
}

void sum_rows(uint32_t* out, size_t n, const uint32_t* const* rows, size_t count, unsigned bits, bool parallel) {
  const uint32_t mask = ring_mask(bits);
  auto range = [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) out[i] = 0;
    for (size_t r = 0; r < count; ++r) {
      const uint32_t* row = rows[r];
      for (size_t i = lo; i < hi; ++i) out[i] += row[i];
    }
    if (mask != 0xffffffffu)
      for (size_t i = lo; i < hi; ++i) out[i] &= mask;
  };
  if (!parallel || n <= (1u << 16)) {
    range(0, n);
    return;
  }
  ThreadPool::shared().parallel_for(n, 1u << 16, range);
}

}  // namespace whale::secagg
