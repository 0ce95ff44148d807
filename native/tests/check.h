// A minimal check macro for the native unit tests; main() prints the
// "N passed, N failed" line and returns non-zero on any failure.
#pragma once
#include <cstdio>

inline int g_failed = 0, g_passed = 0;

#define CHECK(cond, what)                                                                 \
  do {                                                                                    \
    if (cond) {                                                                           \
      ++g_passed;                                                                         \
    } else {                                                                              \
      ++g_failed;                                                                         \
      std::printf("FAIL %s:%d %s\n", __FILE__, __LINE__, static_cast<const char*>(what)); \
    }                                                                                     \
  } while (0)

inline int report() {
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
