// CRC-32C (Castagnoli): SSE4.2 instruction when the CPU has it (checked at
// run time), a table otherwise. Detects every single-byte change of a blob.
#pragma once
#include <cstddef>
#include <cstdint>

namespace whale::quant {

uint32_t crc32c(const void* data, size_t size, uint32_t seed = 0);

}  // namespace whale::quant
