// cudaMalloc/cudaFree backend of the caching pool. Every call first selects
// the pool's device, so pools of different devices can share a thread.
#include <atomic>

#include "../gpu/cuda_devices.h"
#include "../gpu/cuda_util.cuh"
#include "raw_allocator.h"

namespace whale::alloc {
namespace {

class CudaAllocator final : public RawAllocator {
 public:
  explicit CudaAllocator(int device) : device_(device) {}
  void* allocate(size_t bytes) override {
    gpu::check(cudaSetDevice(device_), "cudaSetDevice");
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return nullptr;
    }
    gpu::check(err, "cudaMalloc");
    outstanding_ += bytes;
    return p;
  }
  void deallocate(void* ptr, size_t bytes) override {
    if (!ptr) return;
    cudaSetDevice(device_);
    cudaFree(ptr);  // errors here (e.g. a context torn down at exit) cannot be acted on
    outstanding_ -= bytes;
  }
  const char* name() const override { return "cuda"; }
  size_t outstanding() const override { return outstanding_.load(); }

 private:
  int device_;
  std::atomic<size_t> outstanding_{0};
};

}  // namespace

bool cuda_allocator_available(int device, std::string* why) {
  const gpu::CudaProbe& probe = gpu::cuda_probe();
  if (probe.devices.empty()) {
    if (why) *why = probe.unavailable_reason.empty() ? "no CUDA device" : probe.unavailable_reason;
    return false;
  }
  if (device < 0 || device >= static_cast<int>(probe.devices.size())) {
    if (why)
      *why = "device " + std::to_string(device) + " does not exist (" + std::to_string(probe.devices.size()) +
             " CUDA devices)";
    return false;
  }
  return true;
}

std::unique_ptr<RawAllocator> make_cuda_allocator(int device) {
  std::string why;
  if (!cuda_allocator_available(device, &why)) throw EngineError(kErrDeviceUnavailable, why);
  return std::make_unique<CudaAllocator>(device);
}

}  // namespace whale::alloc
