// Built when nvcc was not found: the pool runs on host memory only.
#include "../common/error.h"
#include "raw_allocator.h"

namespace whale::alloc {

static const char* kNoCuda = "this build has no CUDA (nvcc was not found when the addon was built)";

std::unique_ptr<RawAllocator> make_cuda_allocator(int) { throw EngineError(kErrDeviceUnavailable, kNoCuda); }

bool cuda_allocator_available(int, std::string* why) {
  if (why) *why = kNoCuda;
  return false;
}

}  // namespace whale::alloc
