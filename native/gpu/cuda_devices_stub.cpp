#include "cuda_devices.h"

namespace whale::gpu {

const CudaProbe& cuda_probe() {
  static const CudaProbe probe = [] {
    CudaProbe p;
    p.compiled = false;
    p.unavailable_reason = "this build has no CUDA kernels (nvcc was not found when the addon was built)";
    return p;
  }();
  return probe;
}

}  // namespace whale::gpu
