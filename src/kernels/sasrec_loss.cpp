#include "kernels/sasrec_loss.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/isa_begin.hpp"
#include "kernels/gemm.hpp"
#include "kernels/sasrec_ops.hpp"

namespace seqrec::kernels::SEQREC_ISA_NS {

namespace {

inline float dot(const float* a, const float* b, int64_t d) {
  return sas_dot(a, b, d);
}

inline void axpy(float a, const float* x, float* y, int64_t d) {
  for (int64_t j = 0; j < d; ++j) y[j] += a * x[j];
}

}  // namespace

double sasrec_bce(int64_t T, int64_t d, const float* F, const float* Eo, const int32_t* pos,
                  const int32_t* neg, float scale, float* dF, float* dEo) {
  double loss = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float* f = F + t * d;
    const float* ep = Eo + static_cast<int64_t>(pos[t]) * d;
    const float* en = Eo + static_cast<int64_t>(neg[t]) * d;
    const float r = dot(f, ep, d), s = dot(f, en, d);
    loss += sas_softplus(-static_cast<double>(r)) + sas_softplus(static_cast<double>(s));
    // dl/dr = sigma(r) - 1 = -sigma(-r), dl/ds = sigma(s)
    const float gr = -scale / (1.0f + std::exp(r));
    const float gs = scale / (1.0f + std::exp(-s));
    float* df = dF + t * d;
    for (int64_t j = 0; j < d; ++j) df[j] = gr * ep[j] + gs * en[j];
    // dl/dEo[pos] += gr F_t, dl/dEo[neg] += gs F_t
    axpy(gr, f, dEo + static_cast<int64_t>(pos[t]) * d, d);
    axpy(gs, f, dEo + static_cast<int64_t>(neg[t]) * d, d);
  }
  return loss;
}

double sasrec_full_ce(int64_t T, int64_t d, int64_t n_items, const float* F, const float* Eo,
                      const int32_t* pos, float scale, float* dF, float* dEo,
                      std::vector<float>& scratch, Precision prec) {
  const int64_t rb =
      std::clamp<int64_t>((int64_t{1} << 22) / std::max<int64_t>(1, n_items), 1, 512);
  if (static_cast<int64_t>(scratch.size()) < rb * n_items)
    scratch.resize(static_cast<size_t>(rb * n_items));
  float* Z = scratch.data();
  // bf16 copies (per thread): Eo once per call, each block of F and of G = dl/dz once.
  const bool bf = prec == Precision::Bf16 && bf16_gemm_available();
  thread_local std::vector<uint16_t> e16, f16, z16;
  if (bf) {
    e16.resize(static_cast<size_t>(n_items * d));
    f16.resize(static_cast<size_t>(rb * d));
    z16.resize(static_cast<size_t>(rb * n_items));
    to_bf16(n_items, d, Eo, d, e16.data(), d);
  }
  double loss = 0;
  for (int64_t r0 = 0; r0 < T; r0 += rb) {
    const int64_t rows = std::min(rb, T - r0);
    const float* Fb = F + r0 * d;
    // Z = F_b Eo^T
    if (bf) {
      to_bf16(rows, d, Fb, d, f16.data(), d);
      gemm_bf16_pre(false, true, rows, n_items, d, 1.0f, f16.data(), d, e16.data(), d, 0.0f, Z,
                    n_items);
    } else {
      sgemm(false, true, rows, n_items, d, 1.0f, Fb, d, Eo, d, 0.0f, Z, n_items);
    }
    for (int64_t i = 0; i < rows; ++i) {
      float* z = Z + i * n_items;
      const int32_t y = pos[r0 + i];
      const float zy = z[y];
      const float mx = sas_max(z, n_items);
      const float sum = sas_exp_inplace_sum(z, n_items, mx);
      loss += static_cast<double>(mx) + std::log(static_cast<double>(sum)) - zy;
      // dl/dz = softmax(z) - onehot(y)
      const float inv = scale / sum;
      for (int64_t j = 0; j < n_items; ++j) z[j] *= inv;
      z[y] -= scale;
    }
    // dF_b = G Eo, dEo += G^T F_b
    if (bf) {
      to_bf16(rows, n_items, Z, n_items, z16.data(), n_items);
      gemm_bf16_pre(false, false, rows, d, n_items, 1.0f, z16.data(), n_items, e16.data(), d, 0.0f,
                    dF + r0 * d, d);
      gemm_bf16_pre(true, false, n_items, d, rows, 1.0f, z16.data(), n_items, f16.data(), d, 1.0f,
                    dEo, d);
    } else {
      sgemm(false, false, rows, d, n_items, 1.0f, Z, n_items, Eo, d, 0.0f, dF + r0 * d, d);
      sgemm(true, false, n_items, d, rows, 1.0f, Z, n_items, Fb, d, 1.0f, dEo, d);
    }
  }
  return loss;
}

double sasrec_sampled(SampledLoss kind, int64_t T, int64_t d, const float* F, const float* Eo,
                      const int32_t* pos, int64_t K, const int32_t* neg, const float* Eneg,
                      const float* logq, float beta, float scale, float* dF, float* dEo,
                      float* dEneg, std::vector<float>& scratch) {
  if (static_cast<int64_t>(scratch.size()) < T * K + T)
    scratch.resize(static_cast<size_t>(T * K + T));
  float* Z = scratch.data();
  float* gpos = Z + T * K;
  // Z = F Eneg^T  (T x K)
  sgemm(false, true, T, K, d, 1.0f, F, d, Eneg, d, 0.0f, Z, K);
  double loss = 0;
  for (int64_t t = 0; t < T; ++t) {
    float* z = Z + t * K;
    const int32_t y = pos[t];
    const float r = dot(F + t * d, Eo + static_cast<int64_t>(y) * d, d);
    if (kind == SampledLoss::Softmax) {
      const float u0 = r - (logq != nullptr ? logq[y] : 0.0f);
      // u_k = z_k - lq(neg_k); accidental hits get -inf (weight 0).
      if (logq != nullptr)
        for (int64_t k = 0; k < K; ++k) z[k] -= logq[neg[k]];
      for (int64_t k = 0; k < K; ++k) z[k] = neg[k] == y ? -INFINITY : z[k];
      const float mz = sas_max(z, K);
      const float mx = mz > u0 ? mz : u0;
      const float e0 = sas_exp(u0 - mx);
      const float sum = e0 + sas_exp_inplace_sum(z, K, mx);
      loss += static_cast<double>(mx) + std::log(static_cast<double>(sum)) - u0;
      // dl/du = softmax(u) - onehot(0); hits: e^(-inf) is clamped, so zero them.
      const float inv = scale / sum;
      for (int64_t k = 0; k < K; ++k) z[k] = neg[k] == y ? 0.0f : z[k] * inv;
      gpos[t] = e0 * inv - scale;
    } else {
      loss += beta * sas_softplus(-static_cast<double>(r));
      gpos[t] = -scale * beta / (1.0f + std::exp(r));
      float l = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float zk = z[k];
        const bool hit = neg[k] == y;
        l += hit ? 0.0f : sas_softplus(zk);
        z[k] = hit ? 0.0f : scale / (1.0f + sas_exp(-zk));
      }
      loss += l;
    }
  }
  // dF = G Eneg + gpos Eo[pos];  dEneg = G^T F;  dEo[pos] += gpos F
  sgemm(false, false, T, d, K, 1.0f, Z, K, Eneg, d, 0.0f, dF, d);
  sgemm(true, false, K, d, T, 1.0f, Z, K, F, d, 0.0f, dEneg, d);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t y = pos[t];
    axpy(gpos[t], Eo + y * d, dF + t * d, d);
    axpy(gpos[t], F + t * d, dEo + y * d, d);
  }
  return loss;
}

}  // namespace seqrec::kernels::SEQREC_ISA_NS

#include "core/isa_end.hpp"
