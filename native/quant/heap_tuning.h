// Keeping large freed blocks in the process heap (glibc only).
//
// Every encoded blob and decoded array handed to JS is a fresh multi-MiB
// allocation. Under glibc's defaults such a block is mmap()ed and, once JS
// garbage-collects it, unmapped again (or trimmed from the top of the heap), so
// the next one starts as untouched pages and faults on every 4 KiB page as it
// is written: through the Node binding that cost more than the int8 encode
// itself (1 MiB blob: ~0.6 ms of faults next to 0.3 ms of encoding).
#pragma once

namespace whale::quant {

// Once per process: serve blocks up to 32 MiB from the heap and keep up to
// 64 MiB free at its top. This is the state glibc's own adaptive thresholds
// reach after the program frees one 32 MiB mmap()ed block (its maximum); it
// is applied up front instead. Skipped when WHALE_MALLOC_TUNING=off or when
// GLIBC_TUNABLES already sets malloc options; a no-op on other C libraries.
// Returns whether the thresholds were set.
bool keep_large_blocks_in_heap();

}  // namespace whale::quant
