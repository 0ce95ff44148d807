#include "device.h"

#include "../gpu/cuda_devices.h"
#include "error.h"

namespace whale {

std::string Device::name() const {
  switch (kind) {
    case Kind::kAuto: return "auto";
    case Kind::kCpu: return "cpu";
    case Kind::kCuda: return "cuda:" + std::to_string(index);
  }
  return "unknown";
}

Device resolve_device(Device requested, size_t work_bytes) {
  const gpu::CudaProbe& probe = gpu::cuda_probe();
  const int count = static_cast<int>(probe.devices.size());
  switch (requested.kind) {
    case Device::Kind::kCpu: return requested;
    case Device::Kind::kAuto:
      if (count > 0 && work_bytes >= kAutoCudaMinBytes) return Device{Device::Kind::kCuda, 0};
      return Device{Device::Kind::kCpu, 0};
    case Device::Kind::kCuda:
      if (count == 0) {
        throw EngineError(
            kErrDeviceUnavailable,
            "device: " + requested.name() + " requested but no CUDA device is usable: " + probe.unavailable_reason);
      }
      if (requested.index < 0 || requested.index >= count) {
        throw EngineError(kErrDeviceUnavailable, "device: " + requested.name() + " does not exist; " +
                                                     std::to_string(count) + " CUDA device(s) found");
      }
      return requested;
  }
  return Device{Device::Kind::kCpu, 0};
}

}  // namespace whale
