#include <atomic>
#include <cstdlib>

#include "raw_allocator.h"

namespace whale::alloc {
namespace {

constexpr size_t kAlignment = 512;

class HostAllocator final : public RawAllocator {
 public:
  void* allocate(size_t bytes) override {
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (p) outstanding_ += bytes;
    return p;
  }
  void deallocate(void* ptr, size_t bytes) override {
    if (!ptr) return;
    std::free(ptr);
    outstanding_ -= bytes;
  }
  const char* name() const override { return "host"; }
  size_t outstanding() const override { return outstanding_.load(); }

 private:
  std::atomic<size_t> outstanding_{0};
};

}  // namespace

std::unique_ptr<RawAllocator> make_host_allocator() { return std::make_unique<HostAllocator>(); }

}  // namespace whale::alloc
