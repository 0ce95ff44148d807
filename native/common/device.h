// Which device a kernel runs on. "auto" becomes a CUDA device when one is
// usable and the work is large enough to pay for the transfers, else the CPU.
#pragma once
#include <cstddef>
#include <string>

namespace whale {

struct Device {
  enum class Kind { kAuto, kCpu, kCuda };
  Kind kind = Kind::kAuto;
  int index = 0;  // CUDA ordinal when kind == kCuda

  bool is_cuda() const noexcept { return kind == Kind::kCuda; }
  std::string name() const;
};

// Resolves kAuto and checks that a requested CUDA device exists; throws
// EngineError(ERR_DEVICE_UNAVAILABLE) saying why when it does not.
Device resolve_device(Device requested, size_t work_bytes);

// Inputs smaller than this stay on the CPU under "auto".
inline constexpr size_t kAutoCudaMinBytes = size_t{64} << 20;

}  // namespace whale
