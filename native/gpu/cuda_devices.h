// CUDA runtime probe. Implemented in cuda_devices.cu when the addon is built
// with nvcc, and in cuda_devices_stub.cpp otherwise; callers never need to know.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace whale::gpu {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  size_t total_memory = 0;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
};

struct CudaProbe {
  bool compiled = false;        // CUDA kernels are in this build
  std::string runtime_version;  // e.g. "13.0" (static cudart), empty without CUDA
  std::vector<CudaDeviceInfo> devices;
  std::string unavailable_reason;  // why no device is usable; empty when some are
};

// Cached after the first call: device presence does not change under a process.
const CudaProbe& cuda_probe();

}  // namespace whale::gpu
