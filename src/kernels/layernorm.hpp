// Layer normalisation over the last dimension (rows of d features), forward and backward.
//
//   mu = mean(x), var = mean((x - mu)^2) (biased), rstd = 1 / sqrt(var + eps)
//   xhat = (x - mu) * rstd,  y = gamma * xhat + beta
#pragma once

#include <cstdint>

#include "core/isa.hpp"

namespace seqrec::kernels {

/// SASRec's epsilon (the reference uses 1e-8, in PyTorch and in TensorFlow).
inline constexpr float kLayerNormEps = 1e-8f;

/// y = LN(x) for `rows` rows of d features (row stride d). When `xhat` / `rstd` are not
/// null, the normalised input (rows x d) and 1/sigma (rows) are stored for the backward.
SEQREC_DISPATCH(void, layernorm_forward,
                (int64_t rows, int64_t d, const float* x, const float* gamma, const float* beta,
                 float* y, float* xhat, float* rstd, float eps));

/// Backward of layernorm_forward. With g = dy * gamma:
///   dL/dx     = rstd * (g - mean(g) - xhat * mean(g * xhat))
///   dL/dgamma = sum_rows dy * xhat,  dL/dbeta = sum_rows dy
/// dx is overwritten (accumulate = false) or added to (accumulate = true); dgamma and
/// dbeta are always accumulated. dx may alias dy only when accumulate is false.
SEQREC_DISPATCH(void, layernorm_backward,
                (int64_t rows, int64_t d, const float* dy, const float* xhat, const float* rstd,
                 const float* gamma, float* dx, float* dgamma, float* dbeta, bool accumulate));

}  // namespace seqrec::kernels
