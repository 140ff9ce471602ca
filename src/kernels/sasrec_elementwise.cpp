// SASRec's element-wise steps (sasrec_elementwise.hpp), once per instruction-set level.
// The loops are those that were written inline in sasrec_net.cpp, unchanged in order.
#include "kernels/sasrec_elementwise.hpp"

#include <algorithm>
#include <cmath>

#include "core/isa_begin.hpp"
#include "kernels/sasrec_ops.hpp"

namespace seqrec::kernels::SEQREC_ISA_NS {

void sas_add_bias_rows(float* y, const float* b, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    float* yr = y + r * d;
    for (int64_t j = 0; j < d; ++j) yr[j] += b[j];
  }
}

void sas_sum_rows(float* db, const float* g, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* gr = g + r * d;
    for (int64_t j = 0; j < d; ++j) db[j] += gr[j];
  }
}

void sas_add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void sas_seq_masks(const uint64_t* keys, const int64_t* off, int64_t nseq, int64_t d, float p,
                   uint64_t purpose, uint8_t* mask) {
  for (int64_t s = 0; s < nseq; ++s) {
    const int64_t b = off[s] * d, e = off[s + 1] * d;
    sas_dropout_mask(sas_derive_key(keys[s], purpose), p, e - b, mask + b);
  }
}

void sas_apply_mask_n(float* x, const uint8_t* mask, int64_t n, float scale) {
  sas_apply_mask(x, mask, n, scale);
}

void sas_mask_scale(float* y, const float* x, const uint8_t* mask, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) y[i] = mask[i] ? x[i] * scale : 0.0f;
}

void sas_activation(float* r, const float* f, int64_t n, bool gelu) {
  if (gelu)
    for (int64_t i = 0; i < n; ++i) r[i] = sas_gelu(f[i]);
  else
    for (int64_t i = 0; i < n; ++i) r[i] = f[i] > 0.0f ? f[i] : 0.0f;
}

void sas_activation_backward(float* g, const float* f, const uint8_t* mask, float keep, int64_t n,
                             bool gelu) {
  for (int64_t i = 0; i < n; ++i) {
    const float dm = mask == nullptr ? 1.0f : (mask[i] ? keep : 0.0f);
    const float da = gelu ? sas_gelu_grad(f[i]) : (f[i] > 0.0f ? 1.0f : 0.0f);
    g[i] *= dm * da;
  }
}

void sas_embed(float* x, const float* E, const float* P, const int32_t* items, const int32_t* pos,
               int64_t T, int64_t d, float sd) {
  for (int64_t t = 0; t < T; ++t) {
    const float* e = E + static_cast<int64_t>(items[t]) * d;
    const float* pp = P + static_cast<int64_t>(pos[t]) * d;
    float* xt = x + t * d;
    for (int64_t j = 0; j < d; ++j) xt[j] = sd * e[j] + pp[j];
  }
}

void sas_embed_backward(float* dE, float* dP, const float* g, const int32_t* items,
                        const int32_t* pos, int64_t T, int64_t d, float sd) {
  for (int64_t t = 0; t < T; ++t) {
    float* de = dE + static_cast<int64_t>(items[t]) * d;
    float* dp = dP + static_cast<int64_t>(pos[t]) * d;
    const float* gt = g + t * d;
    for (int64_t j = 0; j < d; ++j) {
      de[j] += sd * gt[j];
      dp[j] += gt[j];
    }
  }
}

void sas_attend_last(const float* q, const float* k, const float* v, int64_t n, int64_t ld,
                     int64_t heads, int64_t dh, float scale, float* p, float* o) {
  for (int64_t h = 0; h < heads; ++h) {
    const float* qh = q + h * dh;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      const float* kj = k + j * ld + h * dh;
      float acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t x = 0; x < dh; ++x) acc += qh[x] * kj[x];
      p[j] = acc * scale;
      mx = p[j] > mx ? p[j] : mx;
    }
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      p[j] = sas_exp(p[j] - mx);
      sum += p[j];
    }
    float* oh = o + h * dh;
    std::fill(oh, oh + dh, 0.0f);
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; ++j) {
      const float* vj = v + j * ld + h * dh;
      const float pj = p[j] * inv;
#pragma omp simd
      for (int64_t x = 0; x < dh; ++x) oh[x] += pj * vj[x];
    }
  }
}

}  // namespace seqrec::kernels::SEQREC_ISA_NS

#include "core/isa_end.hpp"
