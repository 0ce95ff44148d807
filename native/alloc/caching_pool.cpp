#include "caching_pool.h"

#include <algorithm>
#include <string>

#include "../common/error.h"

namespace whale::alloc {
namespace {

constexpr size_t kMaxRequest = size_t{1} << 48;  // 256 TiB: beyond any device, and no overflow when rounding

std::string mib(size_t bytes) { return std::to_string(bytes / (1024.0 * 1024.0)).substr(0, 8) + " MiB"; }

}  // namespace

CachingPool::CachingPool(std::unique_ptr<RawAllocator> backend, PoolOptions options)
    : backend_(std::move(backend)), options_(options) {
  if (!backend_) throw EngineError(kErrInvalidArg, "backend: a raw allocator is required");
  const size_t r = options_.round;
  if (r == 0 || (r & (r - 1)) != 0) throw EngineError(kErrInvalidArg, "round: must be a power of two");
  if (options_.small_limit == 0 || options_.small_segment < options_.small_limit || options_.small_segment % r != 0) {
    throw EngineError(kErrInvalidArg, "small_segment: must be a multiple of round and at least small_limit");
  }
  if (options_.large_segment_round == 0 || options_.large_segment_round % r != 0) {
    throw EngineError(kErrInvalidArg, "large_segment_round: must be a nonzero multiple of round");
  }
}

CachingPool::~CachingPool() {
  std::lock_guard<std::mutex> lock(mu_);
  // Live blocks at destruction are their owners' leaks; every segment goes back regardless.
  std::vector<Block*> heads;
  for (FreeSet* set : {&small_free_, &large_free_})
    for (Block* b : *set)
      if (!b->prev) heads.push_back(b);
  for (auto& [ptr, b] : live_)
    if (!b->prev) heads.push_back(b);
  for (Block* head : heads) {
    const uintptr_t base = head->ptr;
    size_t size = 0;
    for (Block* b = head; b;) {
      Block* next = b->next;
      size += b->size;
      delete b;
      b = next;
    }
    backend_->deallocate(reinterpret_cast<void*>(base), size);
  }
}

size_t CachingPool::round_up(size_t bytes) const {
  const size_t r = options_.round;
  return (bytes + r - 1) / r * r;
}

CachingPool::Block* CachingPool::take_cached(FreeSet& set, size_t size) {
  Block key;
  key.size = size;
  key.ptr = 0;
  auto it = set.lower_bound(&key);
  if (it == set.end()) return nullptr;
  Block* b = *it;
  set.erase(it);
  return b;
}

CachingPool::Block* CachingPool::new_segment(size_t size, bool small) {
  const size_t seg =
      small ? options_.small_segment
            : (size + options_.large_segment_round - 1) / options_.large_segment_round * options_.large_segment_round;
  if (options_.cap != kNoCap && stats_.reserved + seg > options_.cap) {
    release_locked();
    if (stats_.reserved + seg > options_.cap) {
      throw EngineError(kErrOutOfMemory, "pool cap reached: " + mib(stats_.reserved) + " reserved + a " + mib(seg) +
                                             " segment exceeds the cap of " + mib(options_.cap));
    }
  }
  void* p = backend_->allocate(seg);
  if (!p) {
    release_locked();
    p = backend_->allocate(seg);
    if (!p)
      throw EngineError(kErrOutOfMemory,
                        std::string(backend_->name()) + " backend out of memory for a " + mib(seg) + " segment");
  }
  Block* b = new Block;
  b->ptr = reinterpret_cast<uintptr_t>(p);
  b->size = seg;
  b->small = small;
  stats_.reserved += seg;
  stats_.segments++;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  return b;
}

void CachingPool::split(Block* b, size_t size) {
  if (b->size == size) return;  // sizes are multiples of round: the rest is 0 or a usable block
  Block* rest = new Block;
  rest->ptr = b->ptr + size;
  rest->size = b->size - size;
  rest->small = b->small;
  rest->prev = b;
  rest->next = b->next;
  if (b->next) b->next->prev = rest;
  b->next = rest;
  b->size = size;
  set_of(rest).insert(rest);
}

uintptr_t CachingPool::allocate(uint32_t owner, size_t bytes) {
  if (bytes == 0) throw EngineError(kErrInvalidArg, "bytes: must be > 0");
  if (bytes > kMaxRequest) throw EngineError(kErrInvalidArg, "bytes: larger than 2^48");
  const size_t size = round_up(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  OwnerStats& o = owners_[owner];
  if (o.cap != kNoCap && o.allocated + size > o.cap) {
    throw EngineError(kErrQuotaExceeded, "owner " + std::to_string(owner) + " would hold " +
                                             std::to_string(o.allocated + size) + " bytes, over its cap of " +
                                             std::to_string(o.cap));
  }
  const bool small = size <= options_.small_limit;
  Block* b = take_cached(small ? small_free_ : large_free_, size);
  if (b) {
    stats_.cache_hits++;
  } else {
    b = new_segment(size, small);
    stats_.cache_misses++;
  }
  split(b, size);
  b->live = true;
  b->owner = owner;
  live_.emplace(b->ptr, b);
  stats_.allocated += size;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  stats_.allocations++;
  o.allocated += size;
  o.peak = std::max(o.peak, o.allocated);
  o.blocks++;
  return b->ptr;
}

void CachingPool::free_locked(Block* b) {
  OwnerStats& o = owners_[b->owner];
  o.allocated -= b->size;
  o.blocks--;
  stats_.allocated -= b->size;
  stats_.frees++;
  b->live = false;
  FreeSet& set = set_of(b);
  if (b->prev && !b->prev->live) {  // merge into the free block before
    Block* p = b->prev;
    set.erase(p);
    p->size += b->size;
    p->next = b->next;
    if (b->next) b->next->prev = p;
    delete b;
    b = p;
  }
  if (b->next && !b->next->live) {  // absorb the free block after
    Block* n = b->next;
    set.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (n->next) n->next->prev = b;
    delete n;
  }
  set.insert(b);
}

void CachingPool::free(uintptr_t ptr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  if (it == live_.end())
    throw EngineError(kErrInvalidArg, "ptr: not a live block of this pool (freed twice, or never allocated here)");
  Block* b = it->second;
  live_.erase(it);
  free_locked(b);
}

size_t CachingPool::block_size(uintptr_t ptr) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  return it == live_.end() ? 0 : it->second->size;
}

void CachingPool::set_owner_cap(uint32_t owner, size_t cap) {
  std::lock_guard<std::mutex> lock(mu_);
  owners_[owner].cap = cap;
}

size_t CachingPool::free_owner(uint32_t owner) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Block*> mine;
  for (auto& [ptr, b] : live_)
    if (b->owner == owner) mine.push_back(b);
  size_t bytes = 0;
  for (Block* b : mine) {
    bytes += b->size;
    live_.erase(b->ptr);
    free_locked(b);
  }
  return bytes;
}

size_t CachingPool::release_locked() {
  size_t released = 0;
  for (FreeSet* set : {&small_free_, &large_free_}) {
    for (auto it = set->begin(); it != set->end();) {
      Block* b = *it;
      if (b->prev || b->next) {
        ++it;
        continue;
      }
      it = set->erase(it);
      backend_->deallocate(reinterpret_cast<void*>(b->ptr), b->size);
      stats_.reserved -= b->size;
      stats_.segments--;
      stats_.segments_released++;
      released += b->size;
      delete b;
    }
  }
  return released;
}

size_t CachingPool::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  return release_locked();
}

PoolStats CachingPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  PoolStats s = stats_;
  s.live_blocks = live_.size();
  s.free_blocks = small_free_.size() + large_free_.size();
  s.largest_free = 0;
  if (!small_free_.empty()) s.largest_free = (*small_free_.rbegin())->size;
  if (!large_free_.empty()) s.largest_free = std::max(s.largest_free, (*large_free_.rbegin())->size);
  const size_t cached = s.reserved - s.allocated;
  s.fragmentation = cached == 0 ? 0.0 : 1.0 - static_cast<double>(s.largest_free) / static_cast<double>(cached);
  return s;
}

OwnerStats CachingPool::owner(uint32_t owner) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = owners_.find(owner);
  return it == owners_.end() ? OwnerStats{} : it->second;
}

std::vector<uint32_t> CachingPool::owners() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint32_t> ids;
  for (auto& [id, o] : owners_) ids.push_back(id);
  return ids;
}

}  // namespace whale::alloc
