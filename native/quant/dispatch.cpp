#include "dispatch.h"

#include "codec_cuda.h"

namespace whale::quant {

Device encode_on(Device device, const EncodeOptions& o, const float* x, uint64_t length, uint8_t* out) {
  Device d = resolve_device(device, static_cast<size_t>(length) * 4);
  if (d.is_cuda() && o.codec != Codec::kF32) cuda::encode(d.index, o, x, length, out);
  else encode(o, x, length, out), d = Device{Device::Kind::kCpu, 0};
  return d;
}

Device decode_on(Device device, const uint8_t* blob, size_t size, float* out, bool parallel) {
  Device d = resolve_device(device, size);
  if (d.is_cuda()) cuda::decode(d.index, blob, size, out);
  else decode(blob, size, out, parallel);
  return d;
}

}  // namespace whale::quant
