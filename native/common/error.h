// Typed errors raised by the native core. The code is a stable string that the
// bindings pass through to JS unchanged (e.g. "ERR_INVALID_ARG").
#pragma once
#include <stdexcept>
#include <string>

namespace whale {

class EngineError : public std::runtime_error {
 public:
  EngineError(std::string code, const std::string& message, long long client = -1)
      : std::runtime_error(message), code_(std::move(code)), client_(client) {}
  const std::string& code() const noexcept { return code_; }
  // Index of the client an aggregation error is about, or -1.
  long long client() const noexcept { return client_; }

 private:
  std::string code_;
  long long client_;
};

inline constexpr const char* kErrInvalidArg = "ERR_INVALID_ARG";
inline constexpr const char* kErrNonFinite = "ERR_NON_FINITE";
inline constexpr const char* kErrDeviceUnavailable = "ERR_DEVICE_UNAVAILABLE";
inline constexpr const char* kErrCuda = "ERR_CUDA";
inline constexpr const char* kErrUnsupported = "ERR_UNSUPPORTED";
inline constexpr const char* kErrOutOfMemory = "ERR_OUT_OF_MEMORY";
// Blob decoding (native/quant).
inline constexpr const char* kErrTruncated = "ERR_TRUNCATED";
inline constexpr const char* kErrBadMagic = "ERR_BAD_MAGIC";
inline constexpr const char* kErrUnknownVersion = "ERR_UNKNOWN_VERSION";
inline constexpr const char* kErrUnknownCodec = "ERR_UNKNOWN_CODEC";
inline constexpr const char* kErrCorrupt = "ERR_CORRUPT";
inline constexpr const char* kErrChecksum = "ERR_CHECKSUM";

}  // namespace whale
