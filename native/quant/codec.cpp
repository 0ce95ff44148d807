#include "codec.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../common/error.h"
#include "../common/thread_pool.h"
#include "crc32c.h"
#include "float_bits.h"
#include "kernels.h"
#include "kernels_avx2.h"

namespace whale::quant {
namespace {

constexpr char kMagic[4] = {'S', 'W', 'Q', 'T'};
constexpr uint64_t kMaxLength = uint64_t{1} << 40;
constexpr size_t kParallelMin = size_t{1} << 16;  // floats; below this one thread is faster

bool blockwise(Codec c) { return c == Codec::kInt8 || c == Codec::kInt4; }

bool known_codec(uint8_t c) { return c <= static_cast<uint8_t>(Codec::kBf16); }

uint64_t blocks_of(uint64_t length, uint32_t bs) { return (length + bs - 1) / bs; }

uint64_t payload_bytes(Codec c, uint64_t length) {
  switch (c) {
    case Codec::kF32: return length * 4;
    case Codec::kInt8: return length;
    case Codec::kInt4: return (length + 1) / 2;
    case Codec::kFp16:
    case Codec::kBf16: return length * 2;
  }
  return 0;
}

uint64_t total_size(Codec c, uint32_t bs, uint64_t length) {
  const uint64_t scales = blockwise(c) ? blocks_of(length, bs) * 4 : 0;
  return kHeaderBytes + scales + payload_bytes(c, length) + kTrailerBytes;
}

template <typename T>
void put(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);  // the format is little-endian, like every target we build for
}
template <typename T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Runs fn(lo, hi) over [0, count) on the pool when worthwhile.
template <typename Fn>
void split(size_t count, size_t grain, bool parallel, Fn fn) {
  if (!parallel) return fn(size_t{0}, count);
  ThreadPool::shared().parallel_for(count, grain, fn);
}

// The kernel table: AVX2/F16C when the CPU has it, the portable kernels otherwise.
struct Kernels {
  decltype(&kernels::encode_int8) enc_int8 = kernels::encode_int8;
  decltype(&kernels::decode_int8) dec_int8 = kernels::decode_int8;
  decltype(&kernels::encode_int4) enc_int4 = kernels::encode_int4;
  decltype(&kernels::encode_fp16) enc_fp16 = kernels::encode_fp16;
  decltype(&kernels::decode_fp16) dec_fp16 = kernels::decode_fp16;
};

const Kernels& pick() {
  static const Kernels k = [] {
    Kernels t;
#if WHALE_HAVE_AVX2_KERNELS
    if (kernels::avx2::available() && !std::getenv("WHALE_NO_AVX2")) {
      t.enc_int8 = kernels::avx2::encode_int8;
      t.dec_int8 = kernels::avx2::decode_int8;
      t.enc_int4 = kernels::avx2::encode_int4;
      t.enc_fp16 = kernels::avx2::encode_fp16;
      t.dec_fp16 = kernels::avx2::decode_fp16;
    }
#endif
    return t;
  }();
  return k;
}

void note_min(std::atomic<size_t>& slot, size_t value) {
  size_t cur = slot.load();
  while (value < cur && !slot.compare_exchange_weak(cur, value)) {
  }
}

std::string value_text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
  return buf;
}

// Whether pred(j) holds for some j in [0, count), scanning in parallel when large.
template <typename Pred>
bool any_of_range(size_t count, bool parallel, Pred pred) {
  std::atomic<bool> found{false};
  split(count, size_t{1} << 16, parallel && count >= kParallelMin, [&](size_t lo, size_t hi) {
    bool any = false;
    for (size_t j = lo; j < hi; ++j) any |= pred(j);
    if (any) found = true;
  });
  return found.load();
}

[[noreturn]] void corrupt(const std::string& what) {
  throw EngineError(kErrCorrupt, "blob: " + what + ", which the encoder never writes");
}

// Scales and values must be ones the encoder can write: finite, scales >= 0
// (and small enough that 127 * scale, or 7 * scale for int4, is finite: the
// encoder's scales are at most absmax / 127 and absmax / 7.5), no int8 -128, no
// int4 level -8 where -8 * scale overflows, no fp16/bf16/f32 NaN or Infinity.
void check_values(const BlobInfo& info, const uint8_t* body, bool parallel) {
  const size_t n = static_cast<size_t>(info.length);
  auto f32_at = [&](size_t j) { return float_bits(get<float>(body + 4 * j)); };
  auto u16_at = [&](size_t j) { return get<uint16_t>(body + 2 * j); };
  switch (info.codec) {
    case Codec::kF32:
      if (any_of_range(n, parallel, [&](size_t j) { return (f32_at(j) & kExpMask) == kExpMask; }))
        corrupt("a NaN or Infinity value");
      return;
    case Codec::kFp16:
      if (any_of_range(n, parallel, [&](size_t j) { return (u16_at(j) & 0x7C00u) == 0x7C00u; }))
        corrupt("a NaN or Infinity fp16 value");
      return;
    case Codec::kBf16:
      if (any_of_range(n, parallel, [&](size_t j) { return (u16_at(j) & 0x7F80u) == 0x7F80u; }))
        corrupt("a NaN or Infinity bf16 value");
      return;
    case Codec::kInt8:
    case Codec::kInt4: break;
  }
  const size_t blocks = static_cast<size_t>(blocks_of(info.length, info.block_size));
  const bool int8 = info.codec == Codec::kInt8;
  const uint8_t* payload = body + blocks * 4;
  auto bad_scale = [&](size_t b) {
    const float s = get<float>(body + 4 * b);
    return (float_bits(s) >> 31) != 0 || !std::isfinite(s) || std::isinf(s * (int8 ? 127.f : 7.f));
  };
  if (any_of_range(blocks, parallel, bad_scale)) corrupt("a negative, NaN or out-of-range scale");
  if (int8) {
    if (any_of_range(n, parallel, [&](size_t j) { return payload[j] == 0x80; })) corrupt("an int8 value of -128");
    return;
  }
  if (n % 2 == 1 && (payload[n / 2] >> 4) != 0) corrupt("a nonzero padding nibble");
  const size_t bs = info.block_size;
  auto bad_low = [&](size_t b) {
    if (!std::isinf(-8.f * get<float>(body + 4 * b))) return false;
    for (size_t j = b * bs; j < std::min(n, (b + 1) * bs); ++j) {
      if (((j & 1 ? payload[j / 2] >> 4 : payload[j / 2]) & 0xF) == 0x8) return true;
    }
    return false;
  };
  if (any_of_range(blocks, parallel, bad_low)) corrupt("an int4 level -8 whose value overflows");
}

}  // namespace

uint16_t fp16_range_flags(const EncodeOptions& o, const float* x, uint64_t saturated, uint64_t flushed) {
  if (o.out_of_range == OutOfRange::kError) {
    if (saturated != kernels::kNone && (flushed == kernels::kNone || saturated < flushed)) {
      throw EngineError(kErrInvalidArg,
                        "values[" + std::to_string(saturated) + "]: " + value_text(x[saturated]) +
                            " is beyond fp16's range (+-65504); use codec 'bf16' or 'int8', or outOfRange: 'clamp'");
    }
    if (flushed != kernels::kNone) {
      throw EngineError(
          kErrInvalidArg,
          "values[" + std::to_string(flushed) + "]: " + value_text(x[flushed]) +
              " would become 0 in fp16 (|x| <= 2^-25); use codec 'bf16' or 'int8', or outOfRange: 'clamp'");
    }
    return 0;
  }
  return static_cast<uint16_t>((saturated != kernels::kNone ? kFlagSaturated : 0) |
                               (flushed != kernels::kNone ? kFlagFlushedToZero : 0));
}

size_t encoded_size(const EncodeOptions& o, uint64_t length) {
  if (!known_codec(static_cast<uint8_t>(o.codec))) throw EngineError(kErrInvalidArg, "codec: unknown codec");
  if (blockwise(o.codec) && (o.block_size < kMinBlock || o.block_size > kMaxBlock || o.block_size % 2)) {
    throw EngineError(kErrInvalidArg,
                      "blockSize: must be an even number in [32, 4096], got " + std::to_string(o.block_size));
  }
  if (length > kMaxLength) throw EngineError(kErrInvalidArg, "values: more than 2^40 values");
  return static_cast<size_t>(total_size(o.codec, o.block_size, length));
}

Layout layout_of(const EncodeOptions& o, uint64_t length) {
  Layout l;
  l.size = encoded_size(o, length);
  l.blocks = blockwise(o.codec) ? blocks_of(length, o.block_size) : 0;
  l.payload_offset = kHeaderBytes + static_cast<size_t>(l.blocks) * 4;
  return l;
}

void write_header(const EncodeOptions& o, uint64_t length, uint8_t* out) {
  std::memcpy(out, kMagic, 4);
  out[4] = kFormatVersion;
  out[5] = static_cast<uint8_t>(o.codec);
  put<uint16_t>(out + 6, o.non_finite == NonFinite::kZero ? kFlagNonFiniteZeroed : 0);
  put<uint32_t>(out + 8, blockwise(o.codec) ? o.block_size : 0);
  put<uint32_t>(out + 12, 0);
  put<uint64_t>(out + 16, length);
}

void throw_non_finite(uint64_t index) {
  throw EngineError(kErrNonFinite, "values[" + std::to_string(index) +
                                       "]: NaN or Infinity cannot be encoded (use nonFinite: 'zero' to map them to 0)");
}

void seal(uint8_t* blob, size_t size) {
  put<uint32_t>(blob + size - kTrailerBytes, crc32c(blob, size - kTrailerBytes));
}

void encode(const EncodeOptions& o, const float* x, uint64_t length, uint8_t* out) {
  const size_t size = encoded_size(o, length);
  const uint32_t bs = blockwise(o.codec) ? o.block_size : 0;
  const size_t n = static_cast<size_t>(length);
  write_header(o, length, out);
  uint8_t* body = out + kHeaderBytes;
  const bool zero = o.non_finite == NonFinite::kZero;
  const bool par = o.parallel && n >= kParallelMin;
  std::atomic<size_t> first_bad{kernels::kNone}, first_saturated{kernels::kNone}, first_flushed{kernels::kNone};
  auto note = [&](size_t bad) { note_min(first_bad, bad); };
  switch (o.codec) {
    case Codec::kF32: {
      float* f = reinterpret_cast<float*>(body);
      for (size_t j = 0; j < n; ++j) {
        if (std::isfinite(x[j])) f[j] = x[j];
        else if (zero) f[j] = 0.f;
        else throw_non_finite(j);
      }
      break;
    }
    case Codec::kInt8:
    case Codec::kInt4: {
      float* scales = reinterpret_cast<float*>(body);
      const size_t nb = static_cast<size_t>(blocks_of(length, bs));
      uint8_t* payload = body + nb * 4;
      split(nb, std::max<size_t>(1, 16384 / bs), par, [&](size_t b0, size_t b1) {
        size_t bad = o.codec == Codec::kInt8
                         ? pick().enc_int8(x, n, bs, b0, b1, zero, scales, reinterpret_cast<int8_t*>(payload))
                         : pick().enc_int4(x, n, bs, b0, b1, zero, scales, payload);
        if (bad != kernels::kNone) note(bad);
      });
      break;
    }
    case Codec::kFp16:
    case Codec::kBf16: {
      uint16_t* h = reinterpret_cast<uint16_t*>(body);
      split(n, 16384, par, [&](size_t lo, size_t hi) {
        size_t bad =
            o.codec == Codec::kFp16 ? pick().enc_fp16(x, lo, hi, zero, h) : kernels::encode_bf16(x, lo, hi, zero, h);
        if (bad != kernels::kNone) note(bad);
        if (o.codec != Codec::kFp16) return;
        size_t sat, flush;
        kernels::fp16_range(x, lo, hi, sat, flush);
        if (sat != kernels::kNone) note_min(first_saturated, sat);
        if (flush != kernels::kNone) note_min(first_flushed, flush);
      });
      break;
    }
  }
  if (first_bad.load() != kernels::kNone) throw_non_finite(first_bad.load());
  if (o.codec == Codec::kFp16) {
    const uint16_t flags =
        get<uint16_t>(out + 6) | fp16_range_flags(o, x, first_saturated.load(), first_flushed.load());
    put<uint16_t>(out + 6, flags);
  }
  seal(out, size);
}

BlobInfo inspect_header(const uint8_t* blob, size_t size) {
  const size_t min_size = kHeaderBytes + kTrailerBytes;
  // A prefix of the magic is a truncated blob; anything else is not ours.
  if (std::memcmp(blob, kMagic, std::min<size_t>(size, 4)) != 0) {
    throw EngineError(kErrBadMagic, "blob: not a Smart Whale tensor blob (bad magic)");
  }
  if (size < min_size) {
    throw EngineError(kErrTruncated, "blob: truncated: " + std::to_string(size) + " bytes, the header alone is " +
                                         std::to_string(min_size));
  }
  if (blob[4] != kFormatVersion) {
    throw EngineError(kErrUnknownVersion, "blob: format version " + std::to_string(blob[4]) +
                                              " is not supported (this build reads version " +
                                              std::to_string(kFormatVersion) + ")");
  }
  if (!known_codec(blob[5])) throw EngineError(kErrUnknownCodec, "blob: unknown codec id " + std::to_string(blob[5]));
  BlobInfo info{static_cast<Codec>(blob[5]), get<uint32_t>(blob + 8), get<uint64_t>(blob + 16),
                get<uint16_t>(blob + 6)};
  if (blockwise(info.codec) ? (info.block_size < kMinBlock || info.block_size > kMaxBlock || info.block_size % 2)
                            : info.block_size != 0) {
    throw EngineError(kErrCorrupt, "blob: invalid block size " + std::to_string(info.block_size));
  }
  if (info.length > kMaxLength) throw EngineError(kErrCorrupt, "blob: invalid length " + std::to_string(info.length));
  const uint64_t expected = total_size(info.codec, info.block_size, info.length);
  if (size < expected) {
    throw EngineError(kErrTruncated,
                      "blob: truncated: " + std::to_string(size) + " of " + std::to_string(expected) + " bytes");
  }
  if (size > expected) {
    throw EngineError(kErrCorrupt, "blob: " + std::to_string(size - expected) + " unexpected trailing bytes");
  }
  const uint16_t fp16_only = kFlagSaturated | kFlagFlushedToZero;
  if ((info.flags & ~kKnownFlags) || ((info.flags & fp16_only) && info.codec != Codec::kFp16)) {
    throw EngineError(kErrCorrupt, "blob: flag bits " + std::to_string(info.flags) + " are not valid for this codec");
  }
  if (get<uint32_t>(blob + 12) != 0) throw EngineError(kErrCorrupt, "blob: the reserved header field is not 0");
  return info;
}

BlobInfo inspect(const uint8_t* blob, size_t size, bool parallel) {
  const BlobInfo info = inspect_header(blob, size);
  if (crc32c(blob, size - kTrailerBytes) != get<uint32_t>(blob + size - kTrailerBytes)) {
    throw EngineError(kErrChecksum, "blob: checksum mismatch (the data is corrupted)");
  }
  check_values(info, blob + kHeaderBytes, parallel);
  return info;
}

void decode(const uint8_t* blob, size_t size, float* out, bool parallel) {
  const BlobInfo info = inspect(blob, size, parallel);
  std::vector<uint8_t> aligned;
  if (reinterpret_cast<uintptr_t>(blob) % 4 != 0) {  // e.g. a Buffer sliced from a pool
    aligned.assign(blob, blob + size);
    blob = aligned.data();
  }
  const size_t n = static_cast<size_t>(info.length), bs = info.block_size;
  const uint8_t* body = blob + kHeaderBytes;
  const bool par = parallel && n >= kParallelMin;
  switch (info.codec) {
    case Codec::kF32: std::memcpy(out, body, n * 4); break;
    case Codec::kInt8:
    case Codec::kInt4: {
      const size_t nb = static_cast<size_t>(blocks_of(info.length, info.block_size));
      const float* scales = reinterpret_cast<const float*>(body);
      const uint8_t* payload = body + nb * 4;
      split(nb, std::max<size_t>(1, 16384 / bs), par, [&](size_t b0, size_t b1) {
        if (info.codec == Codec::kInt8) {
          pick().dec_int8(scales, reinterpret_cast<const int8_t*>(payload), n, bs, b0, b1, out);
        } else {
          kernels::decode_int4(scales, payload, n, bs, b0, b1, out);
        }
      });
      break;
    }
    case Codec::kFp16:
    case Codec::kBf16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(body);
      split(n, 16384, par, [&](size_t lo, size_t hi) {
        if (info.codec == Codec::kFp16) pick().dec_fp16(h, lo, hi, out);
        else kernels::decode_bf16(h, lo, hi, out);
      });
      break;
    }
  }
}

}  // namespace whale::quant
