#include "../common/error.h"
#include "codec_cuda.h"

namespace whale::quant::cuda {

void encode(int, const EncodeOptions&, const float*, uint64_t, uint8_t*) {
  throw EngineError(kErrDeviceUnavailable, "device: this build has no CUDA kernels");
}
void decode(int, const uint8_t*, size_t, float*) {
  throw EngineError(kErrDeviceUnavailable, "device: this build has no CUDA kernels");
}

}  // namespace whale::quant::cuda
