#include "topk.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../common/error.h"

namespace whale::quant {

size_t topk_feedback(const float* update, float* residual, size_t n, size_t k, uint32_t* indices, float* values) {
  if (n > UINT32_MAX) throw EngineError(kErrInvalidArg, "update: top-k supports at most 2^32 - 1 values");
  // Checked before the residual changes, so a refused update leaves the stream as it was.
  for (size_t j = 0; j < n; ++j) {
    if (!std::isfinite(update[j])) {
      throw EngineError(kErrNonFinite, "update[" + std::to_string(j) + "]: NaN or Infinity");
    }
    if (!std::isfinite(residual[j] + update[j])) {
      throw EngineError(kErrNonFinite, "update[" + std::to_string(j) + "]: added to the residual the stream carries, " +
                                           "it overflows float32; reset() the stream");
    }
  }
  k = std::min(k, n);
  std::vector<float> mag(n);
  for (size_t j = 0; j < n; ++j) {
    residual[j] += update[j];
    mag[j] = std::fabs(residual[j]);
  }
  if (k == 0) return 0;
  std::nth_element(mag.begin(), mag.begin() + (k - 1), mag.end(), std::greater<float>());
  const float threshold = mag[k - 1];
  size_t above = 0;
  for (size_t j = 0; j < n; ++j) above += std::fabs(residual[j]) > threshold;
  size_t ties = k - above, c = 0;
  for (size_t j = 0; j < n && c < k; ++j) {
    const float a = std::fabs(residual[j]);
    if (a > threshold || (a == threshold && ties > 0)) {
      if (a == threshold) --ties;
      indices[c] = static_cast<uint32_t>(j);
      values[c] = residual[j];
      residual[j] = 0.f;
      ++c;
    }
  }
  return c;
}

}  // namespace whale::quant
