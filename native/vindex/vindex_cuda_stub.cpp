#include "../common/error.h"
#include "vindex_cuda.h"

namespace whale::vindex::cuda {

void exact_search(int, const HostRows&, const Queries&, Metric, uint32_t, uint32_t*, float*) {
  throw EngineError(kErrDeviceUnavailable, "device: this build has no CUDA kernels");
}

}  // namespace whale::vindex::cuda
