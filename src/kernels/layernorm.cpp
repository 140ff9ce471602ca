#include "kernels/layernorm.hpp"

#include <cmath>

#include "core/isa_begin.hpp"

namespace seqrec::kernels::SEQREC_ISA_NS {

void layernorm_forward(int64_t rows, int64_t d, const float* x, const float* gamma,
                       const float* beta, float* y, float* xhat, float* rstd, float eps) {
  const float inv_d = 1.0f / static_cast<float>(d);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float mu = 0;
#pragma omp simd reduction(+ : mu)
    for (int64_t j = 0; j < d; ++j) mu += xr[j];
    mu *= inv_d;
    float var = 0;
#pragma omp simd reduction(+ : var)
    for (int64_t j = 0; j < d; ++j) {
      const float c = xr[j] - mu;
      var += c * c;
    }
    var *= inv_d;
    const float rs = 1.0f / std::sqrt(var + eps);
    float* yr = y + r * d;
    if (xhat != nullptr) {
      float* hr = xhat + r * d;
      for (int64_t j = 0; j < d; ++j) {
        const float h = (xr[j] - mu) * rs;
        hr[j] = h;
        yr[j] = gamma[j] * h + beta[j];
      }
    } else {
      for (int64_t j = 0; j < d; ++j) yr[j] = gamma[j] * ((xr[j] - mu) * rs) + beta[j];
    }
    if (rstd != nullptr) rstd[r] = rs;
  }
}

// y = gamma * xhat + beta, xhat = (x - mu) * rstd.
// dL/dxhat_j = dy_j gamma_j =: g_j.
// dxhat_j/dx_k = rstd (delta_jk - 1/d - xhat_j xhat_k / d), hence
// dL/dx_k = rstd (g_k - mean_j g_j - xhat_k mean_j (g_j xhat_j)).
void layernorm_backward(int64_t rows, int64_t d, const float* dy, const float* xhat,
                        const float* rstd, const float* gamma, float* dx, float* dgamma,
                        float* dbeta, bool accumulate) {
  const float inv_d = 1.0f / static_cast<float>(d);
  for (int64_t r = 0; r < rows; ++r) {
    const float* dyr = dy + r * d;
    const float* hr = xhat + r * d;
    float sg = 0, sgh = 0;
#pragma omp simd reduction(+ : sg, sgh)
    for (int64_t j = 0; j < d; ++j) {
      const float g = dyr[j] * gamma[j];
      sg += g;
      sgh += g * hr[j];
      dgamma[j] += dyr[j] * hr[j];
      dbeta[j] += dyr[j];
    }
    sg *= inv_d;
    sgh *= inv_d;
    const float rs = rstd[r];
    float* dxr = dx + r * d;
    if (accumulate) {
      for (int64_t j = 0; j < d; ++j) dxr[j] += rs * (dyr[j] * gamma[j] - sg - hr[j] * sgh);
    } else {
      for (int64_t j = 0; j < d; ++j) dxr[j] = rs * (dyr[j] * gamma[j] - sg - hr[j] * sgh);
    }
  }
}

}  // namespace seqrec::kernels::SEQREC_ISA_NS

#include "core/isa_end.hpp"
