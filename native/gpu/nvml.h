// NVML, loaded at run time with dlopen("libnvidia-ml.so.1") and never linked:
// a machine without the NVIDIA driver simply reports no GPUs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace whale::gpu {

struct NvmlDeviceInfo {
  unsigned index = 0;
  std::string name;
  std::string uuid;
  uint64_t memory_total = 0;
  uint64_t memory_used = 0;
  uint64_t memory_free = 0;
  unsigned utilization_gpu = 0;     // percent
  unsigned utilization_memory = 0;  // percent
};

struct NvmlReport {
  bool loaded = false;        // the library was found and initialised
  std::string driver_version;
  std::string error;          // why not, when !loaded (or a per-call failure)
  std::vector<NvmlDeviceInfo> devices;
};

// Queries NVML now (memory and utilization change over time). Thread-safe.
NvmlReport nvml_query();

}  // namespace whale::gpu
