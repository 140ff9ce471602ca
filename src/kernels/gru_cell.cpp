#include "kernels/gru_cell.hpp"

#include <immintrin.h>

#include <cstring>

#include "core/isa_begin.hpp"
#include "kernels/fast_math.hpp"
#include "kernels/gemm.hpp"

namespace seqrec::kernels::SEQREC_ISA_NS {

void gru_cell_forward(int64_t n, const GruCellWeights& w, const float* u, const float* h,
                      float* h_out, float* act, float* ghn, float* gh) {
  const int64_t H = w.hidden, G = 3 * H;
  // act <- u W_ih^T (pre-activations from the input), gh <- h W_hh^T.
  sgemm(false, true, n, G, w.in, 1.0f, u, w.in, w.w_ih, w.in, 0.0f, act, G);
  sgemm(false, true, n, G, H, 1.0f, h, H, w.w_hh, H, 0.0f, gh, G);
  const float* bi = w.b_ih;
  const float* bh = w.b_hh;
  for (int64_t b = 0; b < n; ++b) {
    float* a = act + b * G;
    const float* g = gh + b * G;
    const float* hp = h + b * H;
    float* ho = h_out + b * H;
    float* gn = ghn + b * H;
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) {
      const float r = fast_sigmoid(a[k] + bi[k] + g[k] + bh[k]);
      const float z = fast_sigmoid(a[H + k] + bi[H + k] + g[H + k] + bh[H + k]);
      const float hn = g[2 * H + k] + bh[2 * H + k];
      const float nn = fast_tanh(a[2 * H + k] + bi[2 * H + k] + r * hn);
      a[k] = r;
      a[H + k] = z;
      a[2 * H + k] = nn;
      gn[k] = hn;
      ho[k] = (1.0f - z) * nn + z * hp[k];
    }
  }
}

void gru_cell_backward_rows(int64_t n, const GruCellWeights& w, const float* h, const float* act,
                            const float* ghn, const float* dh_out, float* dgi, float* dgh,
                            float* du, float* dh) {
  const int64_t H = w.hidden, G = 3 * H;
  // With a_n = u W_in^T + b_in + r * ghn (the tanh argument):
  //   dL/dnn  = dh' (1 - z)            dL/da_n = dL/dnn (1 - nn^2)
  //   dL/dz   = dh' (h - nn)           dL/da_z = dL/dz z (1 - z)
  //   dL/dr   = dL/da_n * ghn          dL/da_r = dL/dr r (1 - r)
  //   dgi = (da_r, da_z, da_n);  dgh = (da_r, da_z, da_n * r)
  //   dL/dh (direct) = dh' z
  for (int64_t b = 0; b < n; ++b) {
    const float* a = act + b * G;
    const float* gn = ghn + b * H;
    const float* hp = h + b * H;
    const float* d = dh_out + b * H;
    float* di = dgi + b * G;
    float* dg = dgh + b * G;
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) {
      const float r = a[k], z = a[H + k], nn = a[2 * H + k];
      const float dan = d[k] * (1.0f - z) * (1.0f - nn * nn);
      const float daz = d[k] * (hp[k] - nn) * z * (1.0f - z);
      const float dar = dan * gn[k] * r * (1.0f - r);
      di[k] = dar;
      di[H + k] = daz;
      di[2 * H + k] = dan;
      dg[k] = dar;
      dg[H + k] = daz;
      dg[2 * H + k] = dan * r;
    }
  }
  if (du != nullptr) sgemm(false, false, n, w.in, G, 1.0f, dgi, G, w.w_ih, w.in, 0.0f, du, w.in);
  if (dh != nullptr) {
    sgemm(false, false, n, H, G, 1.0f, dgh, G, w.w_hh, H, 0.0f, dh, H);
    for (int64_t b = 0; b < n; ++b) {
      const float* z = act + b * G + H;
      const float* d = dh_out + b * H;
      float* o = dh + b * H;
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) o[k] += d[k] * z[k];
    }
  }
}

void gru_cell_weight_grads(int64_t n, int64_t in, int64_t hidden, const float* u, const float* h,
                           const float* dgi, const float* dgh, int64_t g0, int64_t g1,
                           const GruCellGrads& g) {
  const int64_t G = 3 * hidden, m = g1 - g0;
  if (m <= 0) return;
  // dW_ih = dgi^T u, dW_hh = dgh^T h, db = column sums (rows g0..g1 of each).
  sgemm(true, false, m, in, n, 1.0f, dgi + g0, G, u, in, 0.0f, g.w_ih, in);
  sgemm(true, false, m, hidden, n, 1.0f, dgh + g0, G, h, hidden, 0.0f, g.w_hh, hidden);
  std::memset(g.b_ih, 0, static_cast<size_t>(m) * sizeof(float));
  std::memset(g.b_hh, 0, static_cast<size_t>(m) * sizeof(float));
  for (int64_t b = 0; b < n; ++b) {
    const float* ri = dgi + b * G + g0;
    const float* rh = dgh + b * G + g0;
    float* bi = g.b_ih;
    float* bh = g.b_hh;
#pragma omp simd
    for (int64_t k = 0; k < m; ++k) {
      bi[k] += ri[k];
      bh[k] += rh[k];
    }
  }
}

void gru_cell_backward(int64_t n, const GruCellWeights& w, const float* u, const float* h,
                       const float* act, const float* ghn, const float* dh_out, float* dgi,
                       float* dgh, const GruCellGrads& g, float* du, float* dh) {
  gru_cell_backward_rows(n, w, h, act, ghn, dh_out, dgi, dgh, du, dh);
  gru_cell_weight_grads(n, w.in, w.hidden, u, h, dgi, dgh, 0, 3 * w.hidden, g);
}

void gru_emb_forward(int64_t n, const GruEmbWeights& w, const int32_t* x, const float* h,
                     float* h_out, float* cache, float* tmp) {
  const int64_t H = w.hidden;
  // tmp (n x 2H) <- h Wrz0
  sgemm(false, false, n, 2 * H, H, 1.0f, h, H, w.wrz0, 2 * H, 0.0f, tmp, 2 * H);
  for (int64_t b = 0; b < n; ++b) {
    const float* v = w.wx0 + static_cast<int64_t>(x[b]) * 3 * H;
    const float* t = tmp + b * 2 * H;
    const float* hp = h + b * H;
    float* c = cache + b * 4 * H;
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) {
      const float r = fast_sigmoid(v[H + k] + w.bh0[H + k] + t[k]);
      const float z = fast_sigmoid(v[2 * H + k] + w.bh0[2 * H + k] + t[H + k]);
      c[k] = r;
      c[H + k] = z;
      c[3 * H + k] = r * hp[k];
    }
  }
  // tmp (n x H, reusing the buffer with row stride H) <- (r * h) Wh0
  sgemm(false, false, n, H, H, 1.0f, cache + 3 * H, 4 * H, w.wh0, H, 0.0f, tmp, H);
  for (int64_t b = 0; b < n; ++b) {
    const float* v = w.wx0 + static_cast<int64_t>(x[b]) * 3 * H;
    const float* t = tmp + b * H;
    const float* hp = h + b * H;
    float* c = cache + b * 4 * H;
    float* ho = h_out + b * H;
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) {
      const float hc = fast_tanh(t[k] + v[k] + w.bh0[k]);
      const float z = c[H + k];
      c[2 * H + k] = hc;
      ho[k] = (1.0f - z) * hp[k] + z * hc;
    }
  }
}

void gru_emb_backward_rows(int64_t n, const GruEmbWeights& w, const float* h, const float* cache,
                           const float* dh_out, float* dv, float* dh, float* tmp) {
  const int64_t H = w.hidden;
  // dL/da_c = dh' z (1 - hc^2)             -> dv_c
  // dL/d(rh) = da_c Wh0^T;  dL/dWh0 = (r h)^T da_c
  // dL/dr = d(rh) h;  da_r = dr r (1 - r)  -> dv_r
  // dL/dz = dh' (hc - h); da_z = dz z (1 - z) -> dv_z
  // dL/dWrz0 = h^T (da_r, da_z)
  // dL/dh = dh' (1 - z) + d(rh) r + (da_r, da_z) Wrz0^T
  for (int64_t b = 0; b < n; ++b) {
    const float* c = cache + b * 4 * H;
    const float* d = dh_out + b * H;
    float* o = dv + b * 3 * H;
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) {
      const float z = c[H + k], hc = c[2 * H + k];
      o[k] = d[k] * z * (1.0f - hc * hc);
    }
  }
  float* drh = tmp;  // n x H
  sgemm(false, true, n, H, H, 1.0f, dv, 3 * H, w.wh0, H, 0.0f, drh, H);
  for (int64_t b = 0; b < n; ++b) {
    const float* c = cache + b * 4 * H;
    const float* d = dh_out + b * H;
    const float* hp = h + b * H;
    const float* q = drh + b * H;
    float* o = dv + b * 3 * H;
#pragma omp simd
    for (int64_t k = 0; k < H; ++k) {
      const float r = c[k], z = c[H + k], hc = c[2 * H + k];
      o[H + k] = q[k] * hp[k] * r * (1.0f - r);
      o[2 * H + k] = d[k] * (hc - hp[k]) * z * (1.0f - z);
    }
  }
  if (dh != nullptr) {
    sgemm(false, true, n, H, 2 * H, 1.0f, dv + H, 3 * H, w.wrz0, 2 * H, 0.0f, dh, H);
    for (int64_t b = 0; b < n; ++b) {
      const float* c = cache + b * 4 * H;
      const float* d = dh_out + b * H;
      const float* q = drh + b * H;
      float* o = dh + b * H;
#pragma omp simd
      for (int64_t k = 0; k < H; ++k) o[k] += d[k] * (1.0f - c[H + k]) + q[k] * c[k];
    }
  }
}

void gru_emb_weight_grads(int64_t n, int64_t hidden, const float* h, const float* cache,
                          const float* dv, int64_t r0, int64_t r1, float* d_wrz0, float* d_wh0) {
  const int64_t H = hidden, m = r1 - r0;
  if (m <= 0) return;
  sgemm(true, false, m, H, n, 1.0f, cache + 3 * H + r0, 4 * H, dv, 3 * H, 0.0f, d_wh0, H);
  sgemm(true, false, m, 2 * H, n, 1.0f, h + r0, H, dv + H, 3 * H, 0.0f, d_wrz0, 2 * H);
}

void gru_emb_backward(int64_t n, const GruEmbWeights& w, const float* h, const float* cache,
                      const float* dh_out, float* dv, float* d_wrz0, float* d_wh0, float* dh,
                      float* tmp) {
  gru_emb_backward_rows(n, w, h, cache, dh_out, dv, dh, tmp);
  gru_emb_weight_grads(n, w.hidden, h, cache, dv, 0, w.hidden, d_wrz0, d_wh0);
}

uint64_t gru_dropout_key(uint64_t* s) {
  // xoshiro256**
  const uint64_t r = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = (s[3] << 45) | (s[3] >> 19);
  return r;
}

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

/// Output m of the SplitMix64 sequence started at key (m = 0 is the first).
inline uint64_t splitmix_at(uint64_t key, uint64_t m) {
  uint64_t z = key + (m + 1) * kGolden;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Entry i: keep when the top 24 bits of the i-th 32-bit half are >= threshold.
inline float mask_entry(uint64_t key, int64_t i, uint32_t threshold, float keep) {
  const uint64_t z = splitmix_at(key, static_cast<uint64_t>(i) >> 1);
  const uint32_t half = static_cast<uint32_t>(z >> (32 * (i & 1)));
  return (half >> 8) >= threshold ? keep : 0.0f;
}

}  // namespace

// GCC 12 reports its own AVX-512 headers' `__Y = __Y` (an intentionally undefined vector)
// as maybe-uninitialised once inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
void gru_dropout_mask_range(float* mask, int64_t begin, int64_t end, float p, uint64_t key) {
  const float keep = 1.0f / (1.0f - p);
  // Keep when u >= p, u uniform in [0, 1) with 24 bits.
  const uint32_t threshold = static_cast<uint32_t>(static_cast<double>(p) * 16777216.0);
  int64_t i = begin;
  if (i < end && (i & 1)) {
    mask[i] = mask_entry(key, i, threshold, keep);
    ++i;
  }
#if SEQREC_ISA_VARIANT == 2
  // 8 SplitMix64 outputs = 16 entries per iteration: as 32-bit lanes, lane 2j holds the low
  // half of output j (entry 2j) and lane 2j + 1 its high half (entry 2j + 1).
  if (i + 16 <= end) {
    const __m512i step = _mm512_set1_epi64(static_cast<long long>(8 * kGolden));
    const __m512i c1 = _mm512_set1_epi64(static_cast<long long>(0xbf58476d1ce4e5b9ULL));
    const __m512i c2 = _mm512_set1_epi64(static_cast<long long>(0x94d049bb133111ebULL));
    const __m512i thr = _mm512_set1_epi32(static_cast<int>(threshold));
    const __m512 kv = _mm512_set1_ps(keep);
    const uint64_t m0 = static_cast<uint64_t>(i) >> 1;
    __m512i x = _mm512_set_epi64(static_cast<long long>(key + (m0 + 8) * kGolden),
                                 static_cast<long long>(key + (m0 + 7) * kGolden),
                                 static_cast<long long>(key + (m0 + 6) * kGolden),
                                 static_cast<long long>(key + (m0 + 5) * kGolden),
                                 static_cast<long long>(key + (m0 + 4) * kGolden),
                                 static_cast<long long>(key + (m0 + 3) * kGolden),
                                 static_cast<long long>(key + (m0 + 2) * kGolden),
                                 static_cast<long long>(key + (m0 + 1) * kGolden));
    for (; i + 16 <= end; i += 16) {
      __m512i z = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 30)), c1);
      z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), c2);
      z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
      const __mmask16 k = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(z, 8), thr);
      _mm512_storeu_ps(mask + i, _mm512_maskz_mov_ps(k, kv));
      x = _mm512_add_epi64(x, step);
    }
  }
#endif
  for (; i < end; ++i) mask[i] = mask_entry(key, i, threshold, keep);
}
#pragma GCC diagnostic pop

void gru_dropout_mask(float* mask, int64_t count, float p, uint64_t* s) {
  gru_dropout_mask_range(mask, 0, count, p, gru_dropout_key(s));
}

void gru_apply_mask(float* y, const float* x, const float* mask, int64_t count) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) y[i] = x[i] * mask[i];
}

void gru_column_sums(const float* a, int64_t n, int64_t cols, float* out) {
  std::memset(out, 0, static_cast<size_t>(cols) * sizeof(float));
  for (int64_t b = 0; b < n; ++b) {
    const float* row = a + b * cols;
#pragma omp simd
    for (int64_t k = 0; k < cols; ++k) out[k] += row[k];
  }
}

}  // namespace seqrec::kernels::SEQREC_ISA_NS

#include "core/isa_end.hpp"
