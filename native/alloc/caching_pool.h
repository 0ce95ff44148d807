// CachingPool: a caching memory pool over a RawAllocator (cudaMalloc or host
// memory). Requests are rounded up to 512 bytes; small ones (<= 1 MiB) are
// carved out of 2 MiB segments, large ones out of segments rounded to 2 MiB.
// Freed blocks stay cached (best fit by size, split on reuse, coalesced with
// free neighbours of the same segment), so steady-state allocation never calls
// the backend. Caps: one for the whole pool (reserved bytes) and one per owner
// (allocated bytes). Thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "raw_allocator.h"

namespace whale::alloc {

inline constexpr const char* kErrQuotaExceeded = "ERR_QUOTA_EXCEEDED";
inline constexpr size_t kNoCap = SIZE_MAX;

struct PoolOptions {
  size_t cap = kNoCap;                   // reserved bytes of the whole pool (e.g. a device's share)
  size_t round = 512;                    // every block is a multiple of this
  size_t small_limit = 1 << 20;          // requests up to here use the small pool
  size_t small_segment = 2 << 20;        // segment size of the small pool
  size_t large_segment_round = 2 << 20;  // large segments are rounded to this
};

struct PoolStats {
  size_t reserved = 0;   // bytes held from the backend
  size_t allocated = 0;  // bytes in live blocks
  size_t peak_reserved = 0;
  size_t peak_allocated = 0;
  size_t largest_free = 0;  // biggest cached block
  size_t segments = 0;
  size_t live_blocks = 0;
  size_t free_blocks = 0;
  uint64_t allocations = 0;
  uint64_t frees = 0;
  uint64_t cache_hits = 0;    // served from cached blocks
  uint64_t cache_misses = 0;  // needed a new segment from the backend
  uint64_t segments_released = 0;
  // 1 - largest_free / (reserved - allocated): 0 when the cached memory is one block.
  double fragmentation = 0;
};

struct OwnerStats {
  size_t allocated = 0;
  size_t peak = 0;
  size_t cap = kNoCap;
  size_t blocks = 0;
};

class CachingPool {
 public:
  CachingPool(std::unique_ptr<RawAllocator> backend, PoolOptions options = {});
  ~CachingPool();
  CachingPool(const CachingPool&) = delete;
  CachingPool& operator=(const CachingPool&) = delete;

  // Address of a block of at least `bytes` owned by `owner`. Throws
  // EngineError: ERR_INVALID_ARG (0 bytes), ERR_QUOTA_EXCEEDED (owner cap),
  // ERR_OUT_OF_MEMORY (pool cap or backend exhausted, after releasing the cache).
  uintptr_t allocate(uint32_t owner, size_t bytes);
  // Throws ERR_INVALID_ARG for an address this pool did not hand out (or a double free).
  void free(uintptr_t ptr);
  // Size of the live block at ptr (the rounded size), or 0.
  size_t block_size(uintptr_t ptr) const;

  void set_owner_cap(uint32_t owner, size_t cap);
  // Frees every live block of the owner; returns the bytes freed.
  size_t free_owner(uint32_t owner);
  // Gives fully free segments back to the backend; returns the bytes released.
  size_t release_cached();

  PoolStats stats() const;
  OwnerStats owner(uint32_t owner) const;
  std::vector<uint32_t> owners() const;
  const PoolOptions& options() const { return options_; }
  const RawAllocator& backend() const { return *backend_; }

 private:
  struct Block {
    uintptr_t ptr = 0;
    size_t size = 0;
    bool small = false;
    bool live = false;
    uint32_t owner = 0;
    Block* prev = nullptr;  // neighbours inside the same segment
    Block* next = nullptr;
  };
  struct BySize {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using FreeSet = std::set<Block*, BySize>;

  size_t round_up(size_t bytes) const;
  Block* take_cached(FreeSet& set, size_t size);
  Block* new_segment(size_t size, bool small);
  void split(Block* b, size_t size);
  size_t release_locked();
  void free_locked(Block* b);
  FreeSet& set_of(const Block* b) { return b->small ? small_free_ : large_free_; }

  std::unique_ptr<RawAllocator> backend_;
  PoolOptions options_;
  mutable std::mutex mu_;
  FreeSet small_free_, large_free_;
  std::unordered_map<uintptr_t, Block*> live_;
  std::map<uint32_t, OwnerStats> owners_;
  PoolStats stats_;
};

}  // namespace whale::alloc
