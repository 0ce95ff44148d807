#include "nvml.h"

#include <dlfcn.h>

#include <mutex>

namespace whale::gpu {
namespace {

// The subset of nvml.h we use, declared here so no NVIDIA header is needed.
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
struct nvmlUtilization_t {
  unsigned int gpu, memory;
};
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_INSUFFICIENT_SIZE = 7;
constexpr int NVML_TEMPERATURE_GPU = 0;
struct nvmlProcessInfo_t {  // the _v2/_v3 layout
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
};

struct NvmlApi {
  void* handle = nullptr;
  std::string error;
  nvmlReturn_t (*init)() = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*driver_version)(char*, unsigned) = nullptr;
  nvmlReturn_t (*count)(unsigned*) = nullptr;
  nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*uuid)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  // Optional: bound when present, never a reason to report "no NVML".
  nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned*) = nullptr;
  nvmlReturn_t (*power)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*power_limit)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*processes)(nvmlDevice_t, unsigned*, nvmlProcessInfo_t*) = nullptr;
};

template <typename Fn>
bool bind(void* h, const char* sym, Fn& out, std::string& error) {
  out = reinterpret_cast<Fn>(dlsym(h, sym));
  if (!out && error.empty()) error = std::string("libnvidia-ml.so.1 lacks ") + sym;
  return out != nullptr;
}

const NvmlApi& api() {
  static const NvmlApi loaded = [] {
    NvmlApi a;
    a.handle = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!a.handle) {
      const char* why = dlerror();
      a.error = std::string("libnvidia-ml.so.1 not loadable (no NVIDIA driver?): ") + (why ? why : "unknown");
      return a;
    }
    bool ok =
        bind(a.handle, "nvmlInit_v2", a.init, a.error) && bind(a.handle, "nvmlErrorString", a.error_string, a.error) &&
        bind(a.handle, "nvmlSystemGetDriverVersion", a.driver_version, a.error) &&
        bind(a.handle, "nvmlDeviceGetCount_v2", a.count, a.error) &&
        bind(a.handle, "nvmlDeviceGetHandleByIndex_v2", a.by_index, a.error) &&
        bind(a.handle, "nvmlDeviceGetName", a.name, a.error) && bind(a.handle, "nvmlDeviceGetUUID", a.uuid, a.error) &&
        bind(a.handle, "nvmlDeviceGetMemoryInfo", a.memory, a.error) &&
        bind(a.handle, "nvmlDeviceGetUtilizationRates", a.utilization, a.error);
    if (!ok) return a;
    a.temperature = reinterpret_cast<decltype(a.temperature)>(dlsym(a.handle, "nvmlDeviceGetTemperature"));
    a.power = reinterpret_cast<decltype(a.power)>(dlsym(a.handle, "nvmlDeviceGetPowerUsage"));
    a.power_limit = reinterpret_cast<decltype(a.power_limit)>(dlsym(a.handle, "nvmlDeviceGetEnforcedPowerLimit"));
    a.processes = reinterpret_cast<decltype(a.processes)>(dlsym(a.handle, "nvmlDeviceGetComputeRunningProcesses_v3"));
    if (!a.processes)
      a.processes = reinterpret_cast<decltype(a.processes)>(dlsym(a.handle, "nvmlDeviceGetComputeRunningProcesses_v2"));
    nvmlReturn_t rc = a.init();
    if (rc != NVML_SUCCESS) {
      a.error = std::string("nvmlInit_v2 failed: ") + a.error_string(rc);
      a.init = nullptr;
    }
    return a;
  }();
  return loaded;
}

}  // namespace

NvmlReport nvml_query() {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  NvmlReport r;
  const NvmlApi& a = api();
  if (!a.handle || !a.init) {
    r.error = a.error;
    return r;
  }
  r.loaded = true;
  char buf[96] = {0};
  if (a.driver_version(buf, sizeof buf) == NVML_SUCCESS) r.driver_version = buf;
  unsigned count = 0;
  nvmlReturn_t rc = a.count(&count);
  if (rc != NVML_SUCCESS) {
    r.error = std::string("nvmlDeviceGetCount_v2 failed: ") + a.error_string(rc);
    return r;
  }
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    if (a.by_index(i, &dev) != NVML_SUCCESS) continue;
    NvmlDeviceInfo d;
    d.index = i;
    if (a.name(dev, buf, sizeof buf) == NVML_SUCCESS) d.name = buf;
    if (a.uuid(dev, buf, sizeof buf) == NVML_SUCCESS) d.uuid = buf;
    nvmlMemory_t mem{};
    if (a.memory(dev, &mem) == NVML_SUCCESS) {
      d.memory_total = mem.total;
      d.memory_used = mem.used;
      d.memory_free = mem.free;
    }
    nvmlUtilization_t util{};
    if (a.utilization(dev, &util) == NVML_SUCCESS) {
      d.utilization_gpu = util.gpu;
      d.utilization_memory = util.memory;
    }
    r.devices.push_back(d);
  }
  return r;
}

NvmlTelemetryReport nvml_telemetry() {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  NvmlTelemetryReport r;
  const NvmlApi& a = api();
  if (!a.handle || !a.init) {
    r.error = a.error;
    return r;
  }
  r.loaded = true;
  unsigned count = 0;
  if (a.count(&count) != NVML_SUCCESS) return r;
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    if (a.by_index(i, &dev) != NVML_SUCCESS) continue;
    NvmlTelemetry t;
    t.index = i;
    if (a.temperature) t.has_temperature = a.temperature(dev, NVML_TEMPERATURE_GPU, &t.temperature_c) == NVML_SUCCESS;
    if (a.power) t.has_power = a.power(dev, &t.power_mw) == NVML_SUCCESS;
    if (a.power_limit) t.has_power_limit = a.power_limit(dev, &t.power_limit_mw) == NVML_SUCCESS;
    if (a.processes) {
      // The list can grow between the size query and the fetch: retry a few times.
      for (int attempt = 0; attempt < 3; ++attempt) {
        unsigned n = 0;
        nvmlReturn_t rc = a.processes(dev, &n, nullptr);
        if (rc == NVML_SUCCESS) {
          t.has_processes = true;
          break;
        }
        if (rc != NVML_ERROR_INSUFFICIENT_SIZE) break;
        std::vector<nvmlProcessInfo_t> infos(n + 8);
        unsigned cap = static_cast<unsigned>(infos.size());
        rc = a.processes(dev, &cap, infos.data());
        if (rc == NVML_SUCCESS) {
          t.has_processes = true;
          for (unsigned k = 0; k < cap; ++k) {
            // NVML_VALUE_NOT_AVAILABLE (all ones) when the memory cannot be attributed.
            const unsigned long long used = infos[k].usedGpuMemory == ~0ULL ? 0 : infos[k].usedGpuMemory;
            t.processes.push_back({infos[k].pid, used});
          }
          break;
        }
        if (rc != NVML_ERROR_INSUFFICIENT_SIZE) break;
      }
    }
    r.devices.push_back(t);
  }
  return r;
}

}  // namespace whale::gpu
