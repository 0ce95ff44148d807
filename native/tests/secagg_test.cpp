// native/secagg: the ChaCha20 block against RFC 8439, mask expansion (serial =
// parallel, +mask then -mask restores, reduction mod 2^k) and the modular sum.
#include <cstdint>
#include <vector>

#include "../common/error.h"
#include "../secagg/chacha20.h"
#include "../secagg/masks.h"
#include "check.h"

using namespace whale::secagg;

static void rfc8439_block() {
  // RFC 8439 section 2.3.2: key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, counter 1.
  uint8_t kb[32];
  for (int i = 0; i < 32; ++i) kb[i] = static_cast<uint8_t>(i);
  uint32_t key[8];
  load_key(kb, key);
  const uint32_t nonce[3] = {0x09000000u, 0x4a000000u, 0x00000000u};
  uint32_t out[16];
  chacha20_block(key, 1, nonce, out);
  const uint32_t expected[16] = {0xe4e7f110, 0x15593bd1, 0x1fdd0f50, 0xc47120a3, 0xc7f4d1c7, 0x0368c033,
                                 0x9aaa2204, 0x4e6cd4c3, 0x466482d2, 0x09aa9f07, 0x05d7c214, 0xa2028bd9,
                                 0xd19c12b5, 0xb94e16de, 0xe883d0cb, 0x4e3c50a2};
  bool same = true;
  for (int i = 0; i < 16; ++i) same = same && out[i] == expected[i];
  CHECK(same, "ChaCha20 block equals RFC 8439 2.3.2");
}

static std::vector<uint8_t> seeds_for(size_t count) {
  std::vector<uint8_t> s(32 * count);
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<uint8_t>(i * 131 + 7);
  return s;
}

static void masks_roundtrip() {
  const size_t n = 1'000'003, count = 5;  // not a multiple of a block, several parallel tasks
  std::vector<uint8_t> seeds = seeds_for(count);
  std::vector<int8_t> plus = {1, -1, 1, 1, -1}, minus = {-1, 1, -1, -1, 1};
  std::vector<uint32_t> x(n), a(n), b(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<uint32_t>(i * 2654435761u) & 0xfffffu;
  a = x;
  b = x;
  add_masks(a.data(), n, seeds.data(), plus.data(), count, 20, true);
  add_masks(b.data(), n, seeds.data(), plus.data(), count, 20, false);
  CHECK(a == b, "parallel expansion equals serial");
  size_t changed = 0, in_ring = 0;
  for (size_t i = 0; i < n; ++i) {
    changed += a[i] != x[i];
    in_ring += a[i] < (1u << 20);
  }
  CHECK(changed > n - n / 1000, "masking changes almost every element");
  CHECK(in_ring == n, "results are reduced mod 2^20");
  add_masks(a.data(), n, seeds.data(), minus.data(), count, 20, true);
  CHECK(a == x, "adding the opposite masks restores the input");
}

static void mask_is_keystream() {
  // With one seed and sign +1 on zeros, element i is keystream word i: block i/16, word i%16.
  std::vector<uint8_t> seed = seeds_for(1);
  std::vector<int8_t> sign = {1};
  std::vector<uint32_t> acc(40, 0);
  add_masks(acc.data(), acc.size(), seed.data(), sign.data(), 1, 32, false);
  uint32_t key[8], block[16];
  load_key(seed.data(), key);
  const uint32_t nonce[3] = {0, 0, 0};
  chacha20_block(key, 2, nonce, block);
  bool same = true;
  for (int i = 0; i < 8; ++i) same = same && acc[32 + i] == block[i];
  CHECK(same, "element i is keystream word i (block counter from 0, zero nonce)");
}

static void modular_sum() {
  const size_t n = 200'000;
  std::vector<std::vector<uint32_t>> rows(7, std::vector<uint32_t>(n));
  std::vector<const uint32_t*> ptrs;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t i = 0; i < n; ++i) rows[r][i] = static_cast<uint32_t>((i + 1) * (r + 3) * 40503u) & 0xffffu;
    ptrs.push_back(rows[r].data());
  }
  std::vector<uint32_t> out(n), serial(n);
  sum_rows(out.data(), n, ptrs.data(), ptrs.size(), 16, true);
  sum_rows(serial.data(), n, ptrs.data(), ptrs.size(), 16, false);
  bool ok = out == serial;
  for (size_t i = 0; i < n && ok; ++i) {
    uint64_t s = 0;
    for (auto& r : rows) s += r[i];
    ok = out[i] == static_cast<uint32_t>(s % 65536);
  }
  CHECK(ok, "sum_rows is the sum mod 2^16, serial = parallel");
}

static void bad_arguments() {
  bool threw = false;
  try {
    ring_mask(33);
  } catch (const whale::EngineError& e) {
    threw = e.code() == whale::kErrInvalidArg;
  }
  CHECK(threw, "bits 33 refused with ERR_INVALID_ARG");
  std::vector<uint8_t> seed = seeds_for(1);
  std::vector<int8_t> sign = {0};
  std::vector<uint32_t> acc(4);
  threw = false;
  try {
    add_masks(acc.data(), acc.size(), seed.data(), sign.data(), 1, 32, false);
  } catch (const whale::EngineError& e) {
    threw = e.code() == whale::kErrInvalidArg;
  }
  CHECK(threw, "sign 0 refused with ERR_INVALID_ARG");
}

int main() {
  rfc8439_block();
  masks_roundtrip();
  mask_is_keystream();
  modular_sum();
  bad_arguments();
  return report();
}
