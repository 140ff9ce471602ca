#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/isa_begin.hpp"
#include "kernels/gemm.hpp"

namespace seqrec::kernels::SEQREC_ISA_NS {

namespace {

void zero_rows(float* x, int64_t rows, int64_t d, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r)
    std::memset(x + r * ld, 0, static_cast<size_t>(d) * sizeof(float));
}

// A per-thread byte buffer for one row of dropout mask.
uint8_t* scratch_mask(int64_t m) {
  thread_local std::vector<uint8_t> buf;
  if (static_cast<int64_t>(buf.size()) < m) buf.resize(static_cast<size_t>(m));
  return buf.data();
}

}  // namespace

void causal_attention_forward(const AttentionShape& s, const float* q, const float* k,
                              const float* v, float* A, float* Ad, float dropout,
                              const uint64_t* dropout_key, float* out) {
  const int64_t m = s.real(), d = s.d, ld = s.ld, dh = d / s.heads;
  zero_rows(out, s.pad, d, ld);
  if (m <= 0) return;
  const int64_t off = s.pad * ld;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const bool drop = dropout > 0 && dropout_key != nullptr && Ad != nullptr && Ad != A;
  const float keep_scale = drop ? 1.0f / (1.0f - dropout) : 1.0f;
  for (int64_t h = 0; h < s.heads; ++h) {
    float* Ah = A + h * m * m;
    const float* qh = q + off + h * dh;
    const float* kh = k + off + h * dh;
    const float* vh = v + off + h * dh;
    // S = q_h k_h^T * scale. Rows below m/2 only need the left half of the columns.
    const int64_t top = m / 2;
    if (top > 0) gemm(s.precision, false, true, top, top, dh, scale, qh, ld, kh, ld, 0.0f, Ah, m);
    gemm(s.precision, false, true, m - top, m, dh, scale, qh + top * ld, ld, kh, ld, 0.0f,
         Ah + top * m, m);
    for (int64_t i = 0; i < m; ++i) {
      float* row = Ah + i * m;
      const float mx = sas_max(row, i + 1);
      const float sum = sas_exp_inplace_sum(row, i + 1, mx);
      const float inv = 1.0f / sum;
#pragma omp simd
      for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
      std::fill(row + i + 1, row + m, 0.0f);
    }
    const float* P = Ah;
    if (drop) {
      float* Adh = Ad + h * m * m;
      uint8_t* mask = reinterpret_cast<uint8_t*>(scratch_mask(m));
      for (int64_t i = 0; i < m; ++i) {
        const float* row = Ah + i * m;
        float* drow = Adh + i * m;
        sas_dropout_mask(sas_derive_key(*dropout_key, (static_cast<uint64_t>(h) << 32) +
                                                          static_cast<uint64_t>(i)),
                         dropout, i + 1, mask);
#pragma omp simd
        for (int64_t j = 0; j <= i; ++j) drow[j] = mask[j] ? row[j] * keep_scale : 0.0f;
        std::fill(drow + i + 1, drow + m, 0.0f);
      }
      P = Adh;
    }
    // out_h = A' v_h
    gemm(s.precision, false, false, m, dh, m, 1.0f, P, m, vh, ld, 0.0f, out + off + h * dh, ld);
  }
}

void causal_attention_backward(const AttentionShape& s, const float* q, const float* k,
                               const float* v, const float* A, const float* Ad, float dropout,
                               const float* dout, float* dq, float* dk, float* dv, float* scratch) {
  const int64_t m = s.real(), d = s.d, ld = s.ld, dh = d / s.heads;
  zero_rows(dq, s.pad, d, ld);
  zero_rows(dk, s.pad, d, ld);
  zero_rows(dv, s.pad, d, ld);
  if (m <= 0) return;
  const int64_t off = s.pad * ld;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const bool drop = dropout > 0 && Ad != nullptr && Ad != A;
  const float keep_scale = drop ? 1.0f / (1.0f - dropout) : 1.0f;
  for (int64_t h = 0; h < s.heads; ++h) {
    const float* Ah = A + h * m * m;
    const float* P = drop ? Ad + h * m * m : Ah;
    const float* qh = q + off + h * dh;
    const float* kh = k + off + h * dh;
    const float* vh = v + off + h * dh;
    const float* doh = dout + off + h * dh;
    // dA' = dout_h v_h^T (only j <= i is needed: the top half of the rows needs the left
    // half of the columns).
    const int64_t top = m / 2;
    if (top > 0)
      gemm(s.precision, false, true, top, top, dh, 1.0f, doh, ld, vh, ld, 0.0f, scratch, m);
    gemm(s.precision, false, true, m - top, m, dh, 1.0f, doh + top * ld, ld, vh, ld, 0.0f,
         scratch + top * m, m);
    // dv_h = A'^T dout_h
    gemm(s.precision, true, false, m, dh, m, 1.0f, P, m, doh, ld, 0.0f, dv + off + h * dh, ld);
    // dS = A * (dA - rowsum(dA * A)), dA = dA' * [A' != 0] / (1 - p)
    for (int64_t i = 0; i < m; ++i) {
      float* g = scratch + i * m;
      const float* a = Ah + i * m;
      if (drop) {
        const float* pa = P + i * m;
#pragma omp simd
        for (int64_t j = 0; j <= i; ++j) g[j] = pa[j] != 0.0f ? g[j] * keep_scale : 0.0f;
      }
      const float c = sas_dot(g, a, i + 1);
#pragma omp simd
      for (int64_t j = 0; j <= i; ++j) g[j] = a[j] * (g[j] - c);
      std::fill(g + i + 1, g + m, 0.0f);
    }
    // dq_h = dS k_h * scale,  dk_h = dS^T q_h * scale
    gemm(s.precision, false, false, m, dh, m, scale, scratch, m, kh, ld, 0.0f, dq + off + h * dh,
         ld);
    gemm(s.precision, true, false, m, dh, m, scale, scratch, m, qh, ld, 0.0f, dk + off + h * dh,
         ld);
  }
}

}  // namespace seqrec::kernels::SEQREC_ISA_NS

#include "core/isa_end.hpp"
