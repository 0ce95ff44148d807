// The memory a CachingPool carves up comes from a RawAllocator: host memory
// (aligned_alloc) everywhere, device memory (cudaMalloc) when a GPU is present.
// Keeping the pool's bookkeeping behind this interface lets it be tested
// without a GPU.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace whale::alloc {

class RawAllocator {
 public:
  virtual ~RawAllocator() = default;
  // nullptr when the backend is out of memory; throws EngineError on other failures.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual const char* name() const = 0;
  // Bytes handed out and not yet given back (leak checks in tests).
  virtual size_t outstanding() const = 0;
};

// 512-byte aligned host memory.
std::unique_ptr<RawAllocator> make_host_allocator();

// cudaMalloc/cudaFree on `device`. Throws EngineError(ERR_DEVICE_UNAVAILABLE)
// when this build has no CUDA or the device cannot be used.
std::unique_ptr<RawAllocator> make_cuda_allocator(int device);

// Whether make_cuda_allocator(device) can succeed; `why` says why not.
bool cuda_allocator_available(int device, std::string* why);

}  // namespace whale::alloc
