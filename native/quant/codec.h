// Quantized tensor codecs and their self-describing blob format.
//
// Blob layout (little-endian):
//   0  magic "SWQT"       4  version u8 (1)   5  codec u8   6  flags u16
//   8  block_size u32     12 reserved u32     16 length u64 (float count)
//   24 scales: f32 x ceil(length / block_size)   (int8 / int4 only)
//   .. payload: int8 1 B, int4 1/2 B, fp16/bf16 2 B, f32 4 B per value
//   end-4  CRC-32C of every byte before it
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace whale::quant {

enum class Codec : uint8_t { kF32 = 0, kInt8 = 1, kInt4 = 2, kFp16 = 3, kBf16 = 4 };

enum class NonFinite : uint8_t { kError = 0, kZero = 1 };  // NaN/Inf: typed error, or encode as 0
// fp16 values beyond +-65504 or so small they become 0: clamp/flush and flag
// the blob, or refuse with ERR_INVALID_ARG naming the value.
enum class OutOfRange : uint8_t { kClamp = 0, kError = 1 };

struct EncodeOptions {
  Codec codec = Codec::kInt8;
  uint32_t block_size = 64;  // int8 / int4: 32..4096
  NonFinite non_finite = NonFinite::kError;
  OutOfRange out_of_range = OutOfRange::kClamp;  // fp16 only
  bool parallel = true;                          // use the thread pool for large inputs
};

inline constexpr uint32_t kMinBlock = 32, kMaxBlock = 4096;
inline constexpr size_t kHeaderBytes = 24, kTrailerBytes = 4;
inline constexpr uint8_t kFormatVersion = 1;
inline constexpr uint16_t kFlagNonFiniteZeroed = 1;
inline constexpr uint16_t kFlagSaturated = 2;      // fp16: some |value| > 65504 was clamped
inline constexpr uint16_t kFlagFlushedToZero = 4;  // fp16: some value != 0 became 0
inline constexpr uint16_t kKnownFlags = kFlagNonFiniteZeroed | kFlagSaturated | kFlagFlushedToZero;

struct BlobInfo {
  Codec codec;
  uint32_t block_size;
  uint64_t length;
  uint16_t flags;
};

// Exact blob size for `length` floats; validates the options (ERR_INVALID_ARG).
size_t encoded_size(const EncodeOptions& o, uint64_t length);

// Encodes x[0..length) into out (encoded_size bytes).
void encode(const EncodeOptions& o, const float* x, uint64_t length, uint8_t* out);

// Validates a blob completely (size, magic, version, codec, flags, checksum,
// and that every scale and value is one the encoder can write) and returns
// its header; throws EngineError with ERR_TRUNCATED, ERR_BAD_MAGIC,
// ERR_UNKNOWN_VERSION, ERR_UNKNOWN_CODEC, ERR_CORRUPT or ERR_CHECKSUM.
BlobInfo inspect(const uint8_t* blob, size_t size, bool parallel = true);

// The header checks of inspect() and the size they imply, without reading the
// body: enough to size an output buffer.
BlobInfo inspect_header(const uint8_t* blob, size_t size);

// Decodes a blob into out (info.length floats).
void decode(const uint8_t* blob, size_t size, float* out, bool parallel = true);

// Where each part of a blob lies (shared by the CPU and CUDA encoders).
struct Layout {
  uint64_t blocks = 0;  // scale count (blockwise codecs), else 0
  size_t payload_offset = 0;
  size_t size = 0;  // whole blob, trailer included
};
Layout layout_of(const EncodeOptions& o, uint64_t length);  // validates like encoded_size
void write_header(const EncodeOptions& o, uint64_t length, uint8_t* out);
void seal(uint8_t* blob, size_t size);               // writes the CRC trailer
[[noreturn]] void throw_non_finite(uint64_t index);  // ERR_NON_FINITE naming values[index]
// fp16 range outcome: throws for OutOfRange::kError, else returns the flags.
uint16_t fp16_range_flags(const EncodeOptions& o, const float* x, uint64_t saturated, uint64_t flushed);

}  // namespace whale::quant
