// CUDA path of the codecs (codec.cu): the same blobs, byte for byte, as the
// CPU path (header and CRC are written on the host).
#pragma once
#include <cstddef>
#include <cstdint>

#include "codec.h"

namespace whale::quant::cuda {

void encode(int device, const EncodeOptions& o, const float* x, uint64_t length, uint8_t* out);
void decode(int device, const uint8_t* blob, size_t size, float* out);

}  // namespace whale::quant::cuda
