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
  bool loaded = false;  // the library was found and initialised
  std::string driver_version;
  std::string error;  // why not, when !loaded (or a per-call failure)
  std::vector<NvmlDeviceInfo> devices;
};

// Queries NVML now (memory and utilization change over time). Thread-safe.
NvmlReport nvml_query();

// Per-device figures the resource monitor samples beyond nvml_query(); each
// is optional (older drivers or some boards lack them): `has_*` says which came.
struct NvmlProcessMemory {
  unsigned pid = 0;
  uint64_t used_memory = 0;  // bytes; 0 when NVML cannot attribute it
};

struct NvmlTelemetry {
  unsigned index = 0;
  bool has_temperature = false;
  unsigned temperature_c = 0;
  bool has_power = false;
  unsigned power_mw = 0;
  bool has_power_limit = false;
  unsigned power_limit_mw = 0;
  bool has_processes = false;
  std::vector<NvmlProcessMemory> processes;  // compute processes on the device
};

struct NvmlTelemetryReport {
  bool loaded = false;
  std::string error;
  std::vector<NvmlTelemetry> devices;
};

NvmlTelemetryReport nvml_telemetry();

}  // namespace whale::gpu
