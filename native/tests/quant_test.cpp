// Native codec tests: AVX2 and portable kernels agree bit for bit, blobs
// round-trip, and damaged blobs raise the right error code.
#include <cmath>
#include <cstdio>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "check.h"

#include "../common/error.h"
#include "../quant/codec.h"
#include "../quant/crc32c.h"
#include "../quant/heap_tuning.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include "../quant/kernels_avx2.h"

using namespace whale;
using namespace whale::quant;

static std::vector<float> normals(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng) * 3.f;
  return x;
}

static std::string code_of(const std::vector<uint8_t>& blob) {
  std::vector<float> out(1 << 12);
  try {
    BlobInfo i = inspect(blob.data(), blob.size());
    out.resize(i.length);
    decode(blob.data(), blob.size(), out.data());
  } catch (const EngineError& e) {
    return e.code();
  }
  return "";
}

int main() {
  // CRC-32C check value from RFC 3720: "123456789" -> 0xE3069283.
  CHECK(crc32c("123456789", 9) == 0xE3069283u, "crc32c check value");

#if WHALE_HAVE_AVX2_KERNELS
  if (kernels::avx2::available()) {
    for (size_t n : {1u, 31u, 64u, 1000u, 4099u}) {
      auto x = normals(n, static_cast<unsigned>(n));
      const size_t bs = 64, nb = (n + bs - 1) / bs;
      std::vector<float> s1(nb), s2(nb), d1(n), d2(n);
      std::vector<int8_t> q1(n), q2(n);
      kernels::encode_int8(x.data(), n, bs, 0, nb, false, s1.data(), q1.data());
      kernels::avx2::encode_int8(x.data(), n, bs, 0, nb, false, s2.data(), q2.data());
      CHECK(s1 == s2 && q1 == q2, ("avx2 int8 encode == portable, n=" + std::to_string(n)).c_str());
      kernels::decode_int8(s1.data(), q1.data(), n, bs, 0, nb, d1.data());
      kernels::avx2::decode_int8(s1.data(), q1.data(), n, bs, 0, nb, d2.data());
      CHECK(std::memcmp(d1.data(), d2.data(), n * 4) == 0, "avx2 int8 decode == portable");
      std::vector<uint16_t> h1(n), h2(n);
      kernels::encode_fp16(x.data(), 0, n, false, h1.data());
      kernels::avx2::encode_fp16(x.data(), 0, n, false, h2.data());
      CHECK(h1 == h2, "avx2 fp16 encode == portable");
      for (size_t b4 : {24u, 32u, 64u, 4096u}) {  // int4: same scale search, same nibbles (AVX-512 too)
        const size_t nb4 = (n + b4 - 1) / b4;
        std::vector<float> t1(nb4), t2(nb4);
        std::vector<uint8_t> p1((n + 1) / 2), p2((n + 1) / 2);
        kernels::encode_int4(x.data(), n, b4, 0, nb4, false, t1.data(), p1.data());
        kernels::avx2::encode_int4(x.data(), n, b4, 0, nb4, false, t2.data(), p2.data());
        CHECK(t1 == t2 && p1 == p2,
              ("avx2 int4 encode == portable, n=" + std::to_string(n) + " bs=" + std::to_string(b4)).c_str());
      }
    }
  }
#endif

  auto x = normals(300, 1);
  for (Codec c : {Codec::kF32, Codec::kInt8, Codec::kInt4, Codec::kFp16, Codec::kBf16}) {
    EncodeOptions o;
    o.codec = c;
    std::vector<uint8_t> blob(encoded_size(o, x.size()));
    encode(o, x.data(), x.size(), blob.data());
    std::vector<float> y(x.size());
    decode(blob.data(), blob.size(), y.data());
    double e = 0, s = 0;
    for (size_t j = 0; j < x.size(); ++j) e += (y[j] - x[j]) * (y[j] - x[j]), s += x[j] * x[j];
    CHECK(std::sqrt(e / s) < 0.11, "round trip error");
    CHECK(code_of(blob).empty(), "intact blob decodes");
    auto truncated = blob;
    truncated.pop_back();
    CHECK(code_of(truncated) == kErrTruncated, "truncated");
    auto flipped = blob;
    flipped[blob.size() / 2] ^= 0x10;
    CHECK(code_of(flipped) == kErrChecksum, "flipped payload byte");
    auto magic = blob;
    magic[0] = 'X';
    CHECK(code_of(magic) == kErrBadMagic, "bad magic");
  }

  EncodeOptions bad;
  bad.block_size = 33;
  bool threw = false;
  try {
    encoded_size(bad, 10);
  } catch (const EngineError& e) {
    threw = e.code() == kErrInvalidArg;
  }
  CHECK(threw, "odd block size rejected");

  // Extremes: FLT_MAX through int8/int4 stays finite; blobs the encoder cannot
  // write (NaN scale, int8 -128, unknown flags) are ERR_CORRUPT even with a valid CRC.
  for (Codec c : {Codec::kInt8, Codec::kInt4}) {
    std::vector<float> big = {3.4028235e38f, -3.4028235e38f, 1e38f, 0.f};
    EncodeOptions o;
    o.codec = c;
    o.block_size = 32;
    std::vector<uint8_t> blob(encoded_size(o, big.size()));
    encode(o, big.data(), big.size(), blob.data());
    std::vector<float> y(big.size());
    decode(blob.data(), blob.size(), y.data());
    CHECK(std::isfinite(y[0]) && std::isfinite(y[1]) && y[0] > 3e38f && y[1] < -3e38f, "FLT_MAX round trip is finite");
  }
  EncodeOptions o8;
  o8.block_size = 32;
  std::vector<uint8_t> blob(encoded_size(o8, x.size()));
  encode(o8, x.data(), x.size(), blob.data());
  auto resealed = [&](size_t at, std::vector<uint8_t> bytes) {
    auto b = blob;
    std::memcpy(b.data() + at, bytes.data(), bytes.size());
    seal(b.data(), b.size());
    return code_of(b);
  };
  CHECK(resealed(24, {0x00, 0x00, 0xC0, 0x7F}) == kErrCorrupt, "NaN scale");
  CHECK(resealed(24, {0x00, 0x00, 0x80, 0xBF}) == kErrCorrupt, "negative scale");
  CHECK(resealed(24 + 10 * 4, {0x80}) == kErrCorrupt, "int8 -128");
  CHECK(resealed(6, {0x08, 0x00}) == kErrCorrupt, "unknown flag bit");
  CHECK(resealed(6, {0x02, 0x00}) == kErrCorrupt, "fp16 flag on an int8 blob");
  CHECK(resealed(12, {0x01}) == kErrCorrupt, "reserved field");

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
  // After the tuning, an 8 MiB block comes from the heap, not its own mmap()
  // (which free() would unmap), and once freed it is reused in place.
  if (keep_large_blocks_in_heap()) {
    const size_t bytes = size_t{8} << 20, mapped = mallinfo2().hblkhd;
    void* a = std::malloc(bytes);
    CHECK(mallinfo2().hblkhd == mapped, "an 8 MiB block is not mmap()ed");
    std::memset(a, 1, bytes);
    std::free(a);
    void* b = std::malloc(bytes);
    CHECK(b == a, "a freed 8 MiB block is reused in place");
    std::free(b);
  } else {
    CHECK(std::getenv("WHALE_MALLOC_TUNING") != nullptr || std::getenv("GLIBC_TUNABLES") != nullptr,
          "the heap tuning applies unless turned off");
  }
#endif

  return report();
}
