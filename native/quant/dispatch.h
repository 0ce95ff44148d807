// Codec entry points on any device (what the bindings call).
#pragma once
#include "../common/device.h"
#include "codec.h"

namespace whale::quant {

Device encode_on(Device device, const EncodeOptions& o, const float* x, uint64_t length, uint8_t* out);
Device decode_on(Device device, const uint8_t* blob, size_t size, float* out, bool parallel);

}  // namespace whale::quant
