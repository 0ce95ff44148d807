// Top-k sparsification with error feedback (Stich et al., 2018; Lin et al.,
// "Deep Gradient Compression"): the residual a stream did not send is added
// to its next update before selection.
#pragma once
#include <cstddef>
#include <cstdint>

namespace whale::quant {

// residual += update; selects the k largest |residual| (ties: lower index
// first), writes their indices (ascending) and values, and zeroes them in the
// residual. Returns the number selected (min(k, n)). Non-finite input is
// ERR_NON_FINITE; the residual is left unchanged then.
size_t topk_feedback(const float* update, float* residual, size_t n, size_t k, uint32_t* indices, float* values);

}  // namespace whale::quant
