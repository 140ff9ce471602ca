#include "kernels/sampled_losses.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/isa_begin.hpp"
#include "core/parallel.hpp"
#include "kernels/fast_math.hpp"

namespace seqrec::kernels::SEQREC_ISA_NS {

namespace {

constexpr float kLogEps = 1e-24f;  // inside both loss logarithms (spec §6)

inline float elu(float x, float alpha) {
  return x > 0.0f ? x : alpha * (fast_exp(x) - 1.0f);
}
/// d ELU / dx expressed through y = ELU(x): 1 for y > 0, y + alpha otherwise.
inline float elu_grad_from_out(float y, float alpha) {
  return y > 0.0f ? 1.0f : y + alpha;
}

/// Cross-entropy over the row softmax: l = -ln(P_jj + eps), P = softmax(r).
///   dl/dr_k = P_jj / (P_jj + eps) * (P_k - [k == j])
/// max_k r[k]. GCC leaves `#pragma omp simd reduction(max)` over std::max scalar (a chain
/// of dependent maxss, 4 cycles per element: a third of BPR-max's time); a maximum is exact
/// in any order, so 16 running maxima give the same value.
inline float row_max(const float* r, int64_t C) {
  constexpr int kLanes = 16;
  float m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = -std::numeric_limits<float>::infinity();
  int64_t k = 0;
  for (; k + kLanes <= C; k += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) m[l] = m[l] < r[k + l] ? r[k + l] : m[l];
  float mx = -std::numeric_limits<float>::infinity();
  for (; k < C; ++k) mx = mx < r[k] ? r[k] : mx;
  for (int l = 0; l < kLanes; ++l) mx = mx < m[l] ? m[l] : mx;
  return mx;
}

double xe_row(float* r, int64_t C, int64_t j, float scale) {
  const float mx = row_max(r, C);
  float Z = 0.0f;
#pragma omp simd reduction(+ : Z)
  for (int64_t k = 0; k < C; ++k) {
    const float e = fast_exp(r[k] - mx);
    r[k] = e;
    Z += e;
  }
  const float pj = r[j] / Z;
  const double loss = -std::log(static_cast<double>(pj + kLogEps));
  const float w = pj / (pj + kLogEps);
  const float coef = scale * w / Z;
#pragma omp simd
  for (int64_t k = 0; k < C; ++k) r[k] *= coef;
  r[j] -= scale * w;
  return loss;
}

/// Applies the final activation (ELU when alpha > 0) to a row in place; returns r[j].
inline float activate_row(float* r, int64_t C, int64_t j, float alpha) {
  if (alpha > 0.0f) {
#pragma omp simd
    for (int64_t k = 0; k < C; ++k) r[k] = elu(r[k], alpha);
  }
  return r[j];
}

/// max_k r[k] over k != j (the negatives' maximum, for a stable softmax over them).
inline float max_except(float* r, int64_t C, int64_t j) {
  const float saved = r[j];
  r[j] = -std::numeric_limits<float>::infinity();
  const float mx = row_max(r, C);
  r[j] = saved;
  return mx;
}

/// BPR-max with score regularisation (spec §6). With y = ELU(r) (or r), t = y_j, s the
/// softmax of y over k != j, a_k = sigmoid(t - y_k), S = sum_k s_k a_k + eps,
/// Q = sum_k s_k y_k^2:   l = -ln S + bpreg Q. For m != j (A = S - eps):
///   dl/dy_m = -s_m (a_m^2 - A) / S + bpreg s_m (y_m^2 + 2 y_m - Q)
///   dl/dt   = -sum_k s_k a_k (1 - a_k) / S
/// and dl/dr = dl/dy * ELU'(r).
double bprmax_row(float* r, int64_t C, int64_t j, float scale, float bpreg, float alpha, float* s,
                  float* a) {
  const float t = activate_row(r, C, j, alpha);
  const float mx = max_except(r, C, j);
  float Z = 0.0f, SA = 0.0f, SQ = 0.0f, ST = 0.0f;
#pragma omp simd reduction(+ : Z, SA, SQ, ST)
  for (int64_t k = 0; k < C; ++k) {
    const float y = r[k];
    const float e = k == j ? 0.0f : fast_exp(y - mx);
    const float ak = fast_sigmoid(t - y);
    s[k] = e;
    a[k] = ak;
    Z += e;
    SA += e * ak;
    SQ += e * y * y;
    ST += e * ak * (1.0f - ak);
  }
  const float inv = 1.0f / Z;
  const float A = SA * inv, Q = SQ * inv, T = ST * inv;
  const float S = A + kLogEps;
  const double loss = -std::log(static_cast<double>(S)) + static_cast<double>(bpreg) * Q;
  const float invS = 1.0f / S;
#pragma omp simd
  for (int64_t k = 0; k < C; ++k) {
    const float y = r[k];
    const float sk = s[k] * inv;
    const float ak = a[k];
    float g = -sk * (ak * ak - A) * invS + bpreg * sk * (y * y + 2.0f * y - Q);
    if (alpha > 0.0f) g *= elu_grad_from_out(y, alpha);
    r[k] = scale * g;
  }
  // The diagonal entry: s_j = 0, so the loop wrote 0 there; its gradient is dl/dt.
  r[j] = scale * (-T * invS) * (alpha > 0.0f ? elu_grad_from_out(t, alpha) : 1.0f);
  return loss;
}

/// TOP1-max (original Theano): with y, t, s as for BPR-max,
///   b_k = sigmoid(y_k - t) + sigmoid(y_k^2),  l = sum_k s_k b_k = B
///   dl/dy_m = s_m (b_m - B) + s_m (sigma'(y_m - t) + 2 y_m sigma'(y_m^2))   (m != j)
///   dl/dt   = -sum_k s_k sigma'(y_k - t),   sigma'(x) = sigma(x)(1 - sigma(x)).
double top1max_row(float* r, int64_t C, int64_t j, float scale, float alpha, float* s, float* a) {
  const float t = activate_row(r, C, j, alpha);
  const float mx = max_except(r, C, j);
  float Z = 0.0f, SB = 0.0f, SD = 0.0f;
#pragma omp simd reduction(+ : Z, SB, SD)
  for (int64_t k = 0; k < C; ++k) {
    const float y = r[k];
    const float e = k == j ? 0.0f : fast_exp(y - mx);
    const float s1 = fast_sigmoid(y - t);
    const float s2 = fast_sigmoid(y * y);
    s[k] = e;
    a[k] = s1;
    Z += e;
    SB += e * (s1 + s2);
    SD += e * s1 * (1.0f - s1);
  }
  const float inv = 1.0f / Z;
  const float Bv = SB * inv, D = SD * inv;
#pragma omp simd
  for (int64_t k = 0; k < C; ++k) {
    const float y = r[k];
    const float sk = s[k] * inv;
    const float s1 = a[k];
    const float s2 = fast_sigmoid(y * y);
    float g = sk * (s1 + s2 - Bv) + sk * (s1 * (1.0f - s1) + 2.0f * y * s2 * (1.0f - s2));
    if (alpha > 0.0f) g *= elu_grad_from_out(y, alpha);
    r[k] = scale * g;
  }
  r[j] = scale * (-D) * (alpha > 0.0f ? elu_grad_from_out(t, alpha) : 1.0f);
  return Bv;
}

/// BPR (2016, pairwise): l = (1/C) sum_k -ln sigmoid(t - y_k) over all columns (the
/// diagonal adds the constant ln 2).
///   dl/dy_m = (1/C) (1 - sigmoid(t - y_m))   (m != j);   dl/dt = -sum_{k != j} dl/dy_k
double bpr_row(float* r, int64_t C, int64_t j, float scale, float alpha) {
  const float t = activate_row(r, C, j, alpha);
  const float invC = 1.0f / static_cast<float>(C);
  float L = 0.0f, G = 0.0f;
#pragma omp simd reduction(+ : L, G)
  for (int64_t k = 0; k < C; ++k) {
    const float y = r[k];
    const float x = t - y;  // -ln sigmoid(x) = max(-x, 0) + ln(1 + e^-|x|)
    L += std::max(-x, 0.0f) + std::log1p(fast_exp(-std::fabs(x)));
    const float g = k == j ? 0.0f : invC * (1.0f - fast_sigmoid(x));
    G += g;
    float gy = g;
    if (alpha > 0.0f) gy *= elu_grad_from_out(y, alpha);
    r[k] = scale * gy;
  }
  r[j] = scale * (-G) * (alpha > 0.0f ? elu_grad_from_out(t, alpha) : 1.0f);
  return static_cast<double>(L) * invC;
}

/// TOP1 (2016): l = (1/C) [sum_k sigmoid(y_k - t) + sigmoid(y_k^2)] - sigmoid(t^2)/C, the
/// last term cancelling the diagonal's sigmoid(t^2) (Theano's M + K = C):
///   dl/dy_m = (1/C) (sigma'(y_m - t) + 2 y_m sigma'(y_m^2))   (m != j)
///   dl/dt   = -(1/C) sum_{k != j} sigma'(y_k - t)
double top1_row(float* r, int64_t C, int64_t j, float scale, float alpha) {
  const float t = activate_row(r, C, j, alpha);
  const float invC = 1.0f / static_cast<float>(C);
  float L = 0.0f, G = 0.0f;
#pragma omp simd reduction(+ : L, G)
  for (int64_t k = 0; k < C; ++k) {
    const float y = r[k];
    const float s1 = fast_sigmoid(y - t);
    const float s2 = fast_sigmoid(y * y);
    L += s1 + s2;
    const float d1 = k == j ? 0.0f : invC * s1 * (1.0f - s1);
    G += d1;
    float gy = k == j ? 0.0f : d1 + invC * 2.0f * y * s2 * (1.0f - s2);
    if (alpha > 0.0f) gy *= elu_grad_from_out(y, alpha);
    r[k] = scale * gy;
  }
  r[j] = scale * (-G) * (alpha > 0.0f ? elu_grad_from_out(t, alpha) : 1.0f);
  return static_cast<double>(L) * invC - static_cast<double>(fast_sigmoid(t * t)) * invC;
}

}  // namespace

double sampled_loss_row(const LossOptions& opt, float* r, int64_t C, int64_t j, float scale,
                        float* scratch) {
  switch (opt.type) {
    case LossType::CrossEntropy:
      return xe_row(r, C, j, scale);
    case LossType::BprMax:
      return bprmax_row(r, C, j, scale, opt.bpreg, opt.elu_param, scratch, scratch + C);
    case LossType::Top1Max:
      return top1max_row(r, C, j, scale, opt.elu_param, scratch, scratch + C);
    case LossType::Bpr:
      return bpr_row(r, C, j, scale, opt.elu_param);
    case LossType::Top1:
      return top1_row(r, C, j, scale, opt.elu_param);
  }
  return 0.0;
}

double sampled_loss_rows(const LossOptions& opt, int64_t row_begin, int64_t row_end, int64_t C,
                         float* R, int64_t ldr, float scale, float* scratch) {
  double total = 0.0;
  for (int64_t j = row_begin; j < row_end; ++j)
    total += sampled_loss_row(opt, R + j * ldr, C, j, scale, scratch);
  return total;
}

double sampled_loss(const LossOptions& opt, int64_t n, int64_t C, float* R, int64_t ldr,
                    float scale) {
  thread_local std::vector<double> row_loss;
  row_loss.assign(static_cast<size_t>(n), 0.0);
  double* rl = row_loss.data();
  parallel_for(n, [&](int64_t b, int64_t e, int) {
    thread_local std::vector<float> scratch;
    if (scratch.size() < static_cast<size_t>(2 * C)) scratch.resize(static_cast<size_t>(2 * C));
    for (int64_t j = b; j < e; ++j)
      rl[j] = sampled_loss_rows(opt, j, j + 1, C, R, ldr, scale, scratch.data());
  });
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) total += rl[j];
  return total;
}

}  // namespace seqrec::kernels::SEQREC_ISA_NS

#include "core/isa_end.hpp"
