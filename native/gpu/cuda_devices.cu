#include <cuda_runtime.h>

#include <string>

#include "cuda_devices.h"

namespace whale::gpu {

const CudaProbe& cuda_probe() {
  static const CudaProbe probe = [] {
    CudaProbe p;
    p.compiled = true;
    int rt = 0;
    if (cudaRuntimeGetVersion(&rt) == cudaSuccess) {
      p.runtime_version = std::to_string(rt / 1000) + "." + std::to_string((rt % 1000) / 10);
    }
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      p.unavailable_reason =
          std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
      cudaGetLastError();  // clear the sticky error so later calls start clean
      return p;
    }
    if (count == 0) {
      p.unavailable_reason = "the CUDA driver reports no devices";
      return p;
    }
    for (int i = 0; i < count; ++i) {
      cudaDeviceProp prop{};
      if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
      CudaDeviceInfo d;
      d.index = i;
      d.name = prop.name;
      d.total_memory = prop.totalGlobalMem;
      d.compute_major = prop.major;
      d.compute_minor = prop.minor;
      d.multiprocessors = prop.multiProcessorCount;
      p.devices.push_back(d);
    }
    if (p.devices.empty()) p.unavailable_reason = "cudaGetDeviceProperties failed for every device";
    return p;
  }();
  return probe;
}

}  // namespace whale::gpu
