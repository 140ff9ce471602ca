#include "models/sasrec_net.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attention.hpp"
#include "kernels/gemm.hpp"
#include "kernels/layernorm.hpp"
#include "kernels/sasrec_elementwise.hpp"

namespace seqrec::sasrec {

using kernels::SasRng;

Layout make_layout(const NetConfig& c) {
  Layout l;
  const int64_t d = c.d;
  int64_t at = 0;
  auto take = [&](int64_t n) {
    const int64_t o = at;
    at += n;
    return o;
  };
  l.item_emb = take(c.n_items * d);
  l.out_emb = c.shared_embedding ? l.item_emb : take(c.n_items * d);
  l.pos_emb = take(c.maxlen * d);
  for (int64_t b = 0; b < c.blocks; ++b) {
    BlockLayout bl{};
    bl.ln_a_g = take(d);
    bl.ln_a_b = take(d);
    bl.wq = take(d * d);
    bl.bq = take(d);
    bl.wk = take(d * d);
    bl.bk = take(d);
    bl.wv = take(d * d);
    bl.bv = take(d);
    bl.wo = take(d * d);
    bl.bo = take(d);
    bl.ln_f_g = take(d);
    bl.ln_f_b = take(d);
    bl.w1 = take(d * d);
    bl.b1 = take(d);
    bl.w2 = take(d * d);
    bl.b2 = take(d);
    l.blocks.push_back(bl);
  }
  l.ln_last_g = take(d);
  l.ln_last_b = take(d);
  if (c.n_features > 0) l.feat_emb = take(c.n_features * d);
  l.total = at;
  return l;
}

std::vector<TensorSlot> tensor_slots(const NetConfig& c, const Layout& l) {
  const int64_t d = c.d;
  std::vector<TensorSlot> s;
  s.push_back({"item_emb", l.item_emb, {c.n_items, d}});
  if (!c.shared_embedding) s.push_back({"out_emb", l.out_emb, {c.n_items, d}});
  s.push_back({"pos_emb", l.pos_emb, {c.maxlen, d}});
  for (int64_t b = 0; b < c.blocks; ++b) {
    const BlockLayout& bl = l.blocks[static_cast<size_t>(b)];
    const std::string p = "block" + std::to_string(b) + ".";
    s.push_back({p + "ln_attn.gamma", bl.ln_a_g, {d}});
    s.push_back({p + "ln_attn.beta", bl.ln_a_b, {d}});
    s.push_back({p + "attn.wq", bl.wq, {d, d}});
    s.push_back({p + "attn.bq", bl.bq, {d}});
    s.push_back({p + "attn.wk", bl.wk, {d, d}});
    s.push_back({p + "attn.bk", bl.bk, {d}});
    s.push_back({p + "attn.wv", bl.wv, {d, d}});
    s.push_back({p + "attn.bv", bl.bv, {d}});
    s.push_back({p + "attn.wo", bl.wo, {d, d}});
    s.push_back({p + "attn.bo", bl.bo, {d}});
    s.push_back({p + "ln_ffn.gamma", bl.ln_f_g, {d}});
    s.push_back({p + "ln_ffn.beta", bl.ln_f_b, {d}});
    s.push_back({p + "ffn.w1", bl.w1, {d, d}});
    s.push_back({p + "ffn.b1", bl.b1, {d}});
    s.push_back({p + "ffn.w2", bl.w2, {d, d}});
    s.push_back({p + "ffn.b2", bl.b2, {d}});
  }
  s.push_back({"ln_last.gamma", l.ln_last_g, {d}});
  s.push_back({"ln_last.beta", l.ln_last_b, {d}});
  if (c.n_features > 0) s.push_back({"feat_emb", l.feat_emb, {c.n_features, d}});
  return s;
}

void init_params(const NetConfig& c, const Layout& l, float* w, uint64_t seed) {
  SasRng rng(seed, 0x5A5, 0x1417);
  const int64_t d = c.d;
  auto normal = [&](float* x, int64_t n, double stddev) {
    for (int64_t i = 0; i < n; i += 2) {
      // Box-Muller
      const double u1 = (static_cast<double>(rng.next() >> 11) + 1.0) * 0x1.0p-53;
      const double u2 = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
      const double r = std::sqrt(-2.0 * std::log(u1)) * stddev;
      x[i] = static_cast<float>(r * std::cos(6.283185307179586 * u2));
      if (i + 1 < n) x[i + 1] = static_cast<float>(r * std::sin(6.283185307179586 * u2));
    }
  };
  auto uniform = [&](float* x, int64_t n, float a) {
    for (int64_t i = 0; i < n; ++i) x[i] = (2.0f * rng.uniform() - 1.0f) * a;
  };
  auto fill = [&](float* x, int64_t n, float v) { std::fill(x, x + n, v); };
  // Two schemes, drawn in the same order:
  //  init_std = 0: Xavier normal, std = sqrt(2 / (fan_in + fan_out)) (the reference tables
  //    have one more row, the padding row 0; Q/K/V count as PyTorch's stacked 3d x d
  //    matrix), FFN biases U(-1/sqrt(d), 1/sqrt(d)).
  //  init_std > 0: N(0, init_std) for tables, W_O and the FFN, zero biases; Q/K/V keep
  //    nn.MultiheadAttention's default, Xavier uniform over the stacked 3d x d matrix.
  const bool small = c.init_std > 0.0f;
  const double s = c.init_std;
  auto table = [&](float* x, int64_t rows) {
    normal(x, rows * d, small ? s : std::sqrt(2.0 / static_cast<double>(rows + 1 + d)));
  };
  auto in_proj = [&](float* x) {
    if (small)
      uniform(x, d * d, static_cast<float>(std::sqrt(6.0 / static_cast<double>(4 * d))));
    else
      normal(x, d * d, std::sqrt(2.0 / static_cast<double>(4 * d)));
  };
  auto square = [&](float* x) {
    normal(x, d * d, small ? s : std::sqrt(1.0 / static_cast<double>(d)));
  };
  auto ffn_bias = [&](float* x) {
    if (small)
      fill(x, d, 0.0f);
    else
      uniform(x, d, 1.0f / std::sqrt(static_cast<float>(d)));
  };
  table(w + l.item_emb, c.n_items);
  if (!c.shared_embedding) table(w + l.out_emb, c.n_items);
  table(w + l.pos_emb, c.maxlen);
  for (const BlockLayout& b : l.blocks) {
    fill(w + b.ln_a_g, d, 1.0f);
    fill(w + b.ln_a_b, d, 0.0f);
    in_proj(w + b.wq);
    in_proj(w + b.wk);
    in_proj(w + b.wv);
    fill(w + b.bq, d, 0.0f);
    fill(w + b.bk, d, 0.0f);
    fill(w + b.bv, d, 0.0f);
    square(w + b.wo);
    fill(w + b.bo, d, 0.0f);
    fill(w + b.ln_f_g, d, 1.0f);
    fill(w + b.ln_f_b, d, 0.0f);
    square(w + b.w1);
    ffn_bias(w + b.b1);
    square(w + b.w2);
    ffn_bias(w + b.b2);
  }
  fill(w + l.ln_last_g, d, 1.0f);
  fill(w + l.ln_last_b, d, 0.0f);
  if (c.n_features > 0)
    normal(w + l.feat_emb, c.n_features * d,
           small ? s : std::sqrt(2.0 / static_cast<double>(c.n_items + 1 + d)));
}

namespace {

template <class T>
T* grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// Y = X W + b (X: rows x din, W: din x dout, b: dout); beta = 1 adds to Y.
void linear(Precision pr, int64_t rows, int64_t din, int64_t dout, const float* x, const float* W,
            const float* b, float* y, float beta = 0.0f) {
  gemm(pr, false, false, rows, dout, din, 1.0f, x, din, W, dout, beta, y, dout);
  if (b != nullptr) kernels::sas_add_bias_rows(y, b, rows, dout);
}

// Backward of Y = X W + b given dY:
//   dL/dW += X^T dY,  dL/db += sum_rows dY,  dL/dX = dY W^T (overwritten, or added when
//   beta_x = 1; skipped when dx is null).
void linear_backward(Precision pr, int64_t rows, int64_t din, int64_t dout, const float* x,
                     const float* W, const float* dy, float* dW, float* db, float* dx,
                     float beta_x = 0.0f) {
  gemm(pr, true, false, din, dout, rows, 1.0f, x, din, dy, dout, 1.0f, dW, dout);
  if (db != nullptr) kernels::sas_sum_rows(db, dy, rows, dout);
  if (dx != nullptr)
    gemm(pr, false, true, rows, din, dout, 1.0f, dy, dout, W, dout, beta_x, dx, din);
}

// Dropout masks for the rows of each sequence, from that sequence's key and `purpose`.
void seq_masks(const Chunk& ch, const Workspace& ws, int64_t d, float p, uint64_t purpose,
               uint8_t* mask) {
  kernels::sas_seq_masks(ws.keys.data(), ch.off, ch.nseq, d, p, purpose, mask);
}

}  // namespace

namespace {

// Inference through the last block for the last position of every sequence only: K and V
// need every row, the query, attention row, output projection, FFN and final LN only the
// last one. Returns nseq x d.
const float* last_block(const NetConfig& c, const Layout& l, const float* w, const Chunk& ch,
                        Workspace& ws, const float* H) {
  const int64_t d = c.d, T = ch.tokens(), Td = T * d, S = ch.nseq, Sd = S * d;
  const int64_t dh = d / c.heads;
  const BlockLayout& bl = l.blocks[static_cast<size_t>(c.blocks - 1)];
  BlockActs& a = ws.blk[static_cast<size_t>(c.blocks - 1)];
  float* xq = grow(a.xq, Td);
  kernels::layernorm_forward(T, d, H, w + bl.ln_a_g, w + bl.ln_a_b, xq, nullptr, nullptr,
                             kernels::kLayerNormEps);
  const float* xkv = c.norm_first ? xq : H;
  float* k = grow(a.k, Td);
  float* v = grow(a.v, Td);
  linear(Precision::Fp32, T, d, d, xkv, w + bl.wk, w + bl.bk, k);
  linear(Precision::Fp32, T, d, d, xkv, w + bl.wv, w + bl.bv, v);
  // Last rows: xq_last (S x d) and the residual base R1_last.
  float* xl = grow(a.xhat_a, Sd);
  float* h1 = grow(a.h1, Sd);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t t = ch.off[s + 1] - 1;
    std::memcpy(xl + s * d, xq + t * d, static_cast<size_t>(d) * sizeof(float));
    std::memcpy(h1 + s * d, (c.norm_first ? H : xq) + t * d,
                static_cast<size_t>(d) * sizeof(float));
  }
  float* q = grow(a.q, Sd);
  linear(Precision::Fp32, S, d, d, xl, w + bl.wq, w + bl.bq, q);
  float* o = grow(a.o, Sd);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  for (int64_t s = 0; s < S; ++s) {
    const int64_t t0 = ch.off[s], n = ch.off[s + 1] - t0;
    float* p = grow(ws.att_scratch, n);
    kernels::sas_attend_last(q + s * d, k + t0 * d, v + t0 * d, n, d, c.heads, dh, scale, p,
                             o + s * d);
  }
  linear(Precision::Fp32, S, d, d, o, w + bl.wo, w + bl.bo, h1, 1.0f);
  float* z = grow(a.z, Sd);
  kernels::layernorm_forward(S, d, h1, w + bl.ln_f_g, w + bl.ln_f_b, z, nullptr, nullptr,
                             kernels::kLayerNormEps);
  float* r = grow(a.r, Sd);
  linear(Precision::Fp32, S, d, d, z, w + bl.w1, w + bl.b1, r);
  kernels::sas_activation(r, r, Sd, c.gelu);
  float* h2 = grow(a.h2, Sd);
  linear(Precision::Fp32, S, d, d, r, w + bl.w2, w + bl.b2, h2);
  kernels::sas_add(h2, c.norm_first ? h1 : z, Sd);
  float* F = grow(ws.F, Sd);
  kernels::layernorm_forward(S, d, h2, w + l.ln_last_g, w + l.ln_last_b, F, nullptr, nullptr,
                             kernels::kLayerNormEps);
  return F;
}

/// The attention problem of sequence s of a chunk (rows of width d, packed).
kernels::AttentionShape attention_shape(const Chunk& ch, int64_t s, int64_t d, int64_t heads) {
  kernels::AttentionShape sh;
  sh.n = ch.off[s + 1] - ch.off[s];
  sh.d = d;
  sh.heads = heads;
  sh.ld = d;
  return sh;
}

}  // namespace

const float* forward(const NetConfig& c, const Layout& l, const float* w, const Chunk& ch,
                     Workspace& ws, bool train, uint64_t seed, uint64_t step, bool last_only) {
  last_only = last_only && !train;
  const int64_t d = c.d, T = ch.tokens(), Td = T * d;
  const float p = c.dropout;
  const bool drop = train && p > 0.0f;
  const Precision lp = train ? c.precision : Precision::Fp32;  // inference stays fp32
  const float keep = drop ? 1.0f / (1.0f - p) : 1.0f;
  ws.dropped = drop;
  if (drop) {
    // Counter-based keys: the masks of a sequence depend on (seed, step, stream) only.
    const uint64_t step_key = kernels::sas_derive_key(kernels::sas_hash64(seed), step);
    ws.keys.resize(static_cast<size_t>(ch.nseq));
    for (int64_t s = 0; s < ch.nseq; ++s)
      ws.keys[static_cast<size_t>(s)] = kernels::sas_derive_key(step_key, ch.stream[s]);
  }
  if (static_cast<int64_t>(ws.blk.size()) < c.blocks) ws.blk.resize(static_cast<size_t>(c.blocks));

  // e_t = sqrt(d) E[x_t] + P[pos_t];  H0 = dropout(e)
  float* x0 = grow(ws.x0, Td);
  const float sd = std::sqrt(static_cast<float>(d));
  const float* E = w + l.item_emb;
  const float* P = w + l.pos_emb;
  if (ch.extra_rows && !train) {
    // Added items: embedded as item 0, then their rows replaced by sqrt(d) X[x_t] + P[pos_t].
    int32_t* it = grow(ws.items, T);
    for (int64_t t = 0; t < T; ++t) it[t] = ch.items[t] >= ch.extra_base ? 0 : ch.items[t];
    kernels::sas_embed(x0, E, P, it, ch.pos, T, d, sd);
    for (int64_t t = 0; t < T; ++t) {
      if (ch.items[t] < ch.extra_base) continue;
      const float* x = ch.extra_rows + static_cast<int64_t>(ch.items[t] - ch.extra_base) * d;
      const float* pr = P + static_cast<int64_t>(ch.pos[t]) * d;
      for (int64_t k = 0; k < d; ++k) x0[t * d + k] = sd * x[k] + pr[k];
    }
  } else {
    kernels::sas_embed(x0, E, P, ch.items, ch.pos, T, d, sd);
  }
  const float* H = x0;
  if (drop) {
    uint8_t* m0 = grow(ws.m0, Td);
    seq_masks(ch, ws, d, p, 1, m0);
    float* h0 = grow(ws.h0, Td);
    std::memcpy(h0, x0, static_cast<size_t>(Td) * sizeof(float));
    kernels::sas_apply_mask_n(h0, m0, Td, keep);
    H = h0;
  }

  const int64_t full_blocks = last_only ? c.blocks - 1 : c.blocks;
  for (int64_t b = 0; b < full_blocks; ++b) {
    const BlockLayout& bl = l.blocks[static_cast<size_t>(b)];
    BlockActs& a = ws.blk[static_cast<size_t>(b)];
    // Xq = LN_a(H); original layout: K, V from H and the residual adds Xq; Pre-LN: K, V
    // from Xq and the residual adds H.
    float* xq = grow(a.xq, Td);
    kernels::layernorm_forward(T, d, H, w + bl.ln_a_g, w + bl.ln_a_b, xq, grow(a.xhat_a, Td),
                               grow(a.rstd_a, T), kernels::kLayerNormEps);
    const float* xkv = c.norm_first ? xq : H;
    const float* R1 = c.norm_first ? H : xq;
    float* q = grow(a.q, Td);
    float* k = grow(a.k, Td);
    float* v = grow(a.v, Td);
    linear(lp, T, d, d, xq, w + bl.wq, w + bl.bq, q);
    linear(lp, T, d, d, xkv, w + bl.wk, w + bl.bk, k);
    linear(lp, T, d, d, xkv, w + bl.wv, w + bl.bv, v);
    // Attention probabilities of every sequence.
    a.aoff.resize(static_cast<size_t>(ch.nseq) + 1);
    a.aoff[0] = 0;
    for (int64_t s = 0; s < ch.nseq; ++s) {
      const int64_t n = ch.off[s + 1] - ch.off[s];
      a.aoff[static_cast<size_t>(s) + 1] = a.aoff[static_cast<size_t>(s)] + c.heads * n * n;
    }
    float* A = grow(a.A, a.aoff.back());
    float* Ad = drop ? grow(a.Ad, a.aoff.back()) : A;
    float* o = grow(a.o, Td);
    for (int64_t s = 0; s < ch.nseq; ++s) {
      kernels::AttentionShape sh = attention_shape(ch, s, d, c.heads);
      const int64_t r0 = ch.off[s] * d;
      const int64_t ao = a.aoff[static_cast<size_t>(s)];
      const uint64_t key = drop ? kernels::sas_derive_key(ws.keys[static_cast<size_t>(s)],
                                                          16 + 4 * static_cast<uint64_t>(b))
                                : 0;
      sh.precision = lp;
      kernels::causal_attention_forward(sh, q + r0, k + r0, v + r0, A + ao, Ad + ao, p,
                                        drop ? &key : nullptr, o + r0);
    }
    // H1 = R1 + O Wo + bo
    float* h1 = grow(a.h1, Td);
    std::memcpy(h1, R1, static_cast<size_t>(Td) * sizeof(float));
    linear(lp, T, d, d, o, w + bl.wo, w + bl.bo, h1, 1.0f);
    // Z = LN_f(H1); H2 = R2 + dropout(act(dropout(Z W1 + b1)) W2 + b2)
    float* z = grow(a.z, Td);
    kernels::layernorm_forward(T, d, h1, w + bl.ln_f_g, w + bl.ln_f_b, z, grow(a.xhat_f, Td),
                               grow(a.rstd_f, T), kernels::kLayerNormEps);
    float* f1 = grow(a.f1, Td);
    float* r = grow(a.r, Td);
    linear(lp, T, d, d, z, w + bl.w1, w + bl.b1, f1);
    kernels::sas_activation(r, f1, Td, c.gelu);
    float* h2 = grow(a.h2, Td);
    if (drop) {
      uint8_t* m1 = grow(a.m1, Td);
      seq_masks(ch, ws, d, p, 16 + 4 * static_cast<uint64_t>(b) + 1, m1);
      kernels::sas_apply_mask_n(r, m1, Td, keep);
    }
    linear(lp, T, d, d, r, w + bl.w2, w + bl.b2, h2);
    if (drop) {
      uint8_t* m2 = grow(a.m2, Td);
      seq_masks(ch, ws, d, p, 16 + 4 * static_cast<uint64_t>(b) + 2, m2);
      kernels::sas_apply_mask_n(h2, m2, Td, keep);
    }
    kernels::sas_add(h2, c.norm_first ? h1 : z, Td);
    H = h2;
  }
  if (last_only) return last_block(c, l, w, ch, ws, H);
  // F = LN_last(H)
  float* F = grow(ws.F, Td);
  kernels::layernorm_forward(T, d, H, w + l.ln_last_g, w + l.ln_last_b, F, grow(ws.xhat_l, Td),
                             grow(ws.rstd_l, T), kernels::kLayerNormEps);
  return F;
}

void backward(const NetConfig& c, const Layout& l, const float* w, const Chunk& ch, Workspace& ws,
              float* dF, float* grad) {
  const int64_t d = c.d, T = ch.tokens(), Td = T * d;
  const float p = c.dropout;
  const bool drop = ws.dropped;
  const float keep = drop ? 1.0f / (1.0f - p) : 1.0f;
  float* g1 = grow(ws.g1, Td);
  float* g2 = grow(ws.g2, Td);
  float* g3 = grow(ws.g3, Td);
  float* g4 = grow(ws.g4, Td);
  float* dq = grow(ws.dq, Td);
  float* dk = grow(ws.dk, Td);
  float* dv = grow(ws.dv, Td);

  // g1 = dL/dH_last
  kernels::layernorm_backward(T, d, dF, ws.xhat_l.data(), ws.rstd_l.data(), w + l.ln_last_g, g1,
                              grad + l.ln_last_g, grad + l.ln_last_b, false);
  for (int64_t b = c.blocks - 1; b >= 0; --b) {
    const BlockLayout& bl = l.blocks[static_cast<size_t>(b)];
    BlockActs& a = ws.blk[static_cast<size_t>(b)];
    const float* H = b == 0 ? (drop ? ws.h0.data() : ws.x0.data())
                            : ws.blk[static_cast<size_t>(b) - 1].h2.data();
    const float* xkv = c.norm_first ? a.xq.data() : H;
    // --- FFN: H2 = R2 + D2(act(D1(Z W1 + b1)) W2 + b2), g1 = dL/dH2.
    // dL/d(FFN out before D2) = g1 * m2 / (1-p)
    if (drop) {
      kernels::sas_mask_scale(g2, g1, a.m2.data(), Td, keep);
    } else {
      std::memcpy(g2, g1, static_cast<size_t>(Td) * sizeof(float));
    }
    // dW2 += r^T g2, db2 += sum g2, g3 = dL/dr = g2 W2^T
    linear_backward(c.precision, T, d, d, a.r.data(), w + bl.w2, g2, grad + bl.w2, grad + bl.b2,
                    g3);
    // dL/df1 = dL/dr * m1 / (1-p) * act'(f1)
    kernels::sas_activation_backward(g3, a.f1.data(), drop ? a.m1.data() : nullptr, keep, Td,
                                     c.gelu);
    // dW1 += Z^T g3, db1 += sum g3, g2 = dL/dZ = g3 W1^T (+ g1 when R2 = Z)
    linear_backward(c.precision, T, d, d, a.z.data(), w + bl.w1, g3, grad + bl.w1, grad + bl.b1,
                    g2);
    if (!c.norm_first) kernels::sas_add(g2, g1, Td);
    // g3 = dL/dH1 = LN_f backward (+ g1 when R2 = H1)
    kernels::layernorm_backward(T, d, g2, a.xhat_f.data(), a.rstd_f.data(), w + bl.ln_f_g, g3,
                                grad + bl.ln_f_g, grad + bl.ln_f_b, false);
    if (c.norm_first) kernels::sas_add(g3, g1, Td);
    // --- Attention: H1 = R1 + O Wo + bo. dWo += O^T g3, dbo += sum g3, g2 = dL/dO.
    linear_backward(c.precision, T, d, d, a.o.data(), w + bl.wo, g3, grad + bl.wo, grad + bl.bo,
                    g2);
    for (int64_t s = 0; s < ch.nseq; ++s) {
      kernels::AttentionShape sh = attention_shape(ch, s, d, c.heads);
      const int64_t r0 = ch.off[s] * d;
      const int64_t ao = a.aoff[static_cast<size_t>(s)];
      sh.precision = c.precision;
      float* scratch = grow(ws.att_scratch, sh.n * sh.n);
      kernels::causal_attention_backward(sh, a.q.data() + r0, a.k.data() + r0, a.v.data() + r0,
                                         a.A.data() + ao, drop ? a.Ad.data() + ao : nullptr, p,
                                         g2 + r0, dq + r0, dk + r0, dv + r0, scratch);
    }
    // Q = Xq Wq + bq, K = Xkv Wk + bk, V = Xkv Wv + bv:
    // g2 = dL/dXq = dq Wq^T, g4 = dL/dXkv = dk Wk^T + dv Wv^T
    linear_backward(c.precision, T, d, d, a.xq.data(), w + bl.wq, dq, grad + bl.wq, grad + bl.bq,
                    g2);
    linear_backward(c.precision, T, d, d, xkv, w + bl.wk, dk, grad + bl.wk, grad + bl.bk, g4);
    linear_backward(c.precision, T, d, d, xkv, w + bl.wv, dv, grad + bl.wv, grad + bl.bv, g4, 1.0f);
    if (c.norm_first) {
      // Xq = Xkv = LN_a(H), R1 = H: dL/dH = LN_a backward(g2 + g4) + g3
      kernels::sas_add(g2, g4, Td);
      kernels::layernorm_backward(T, d, g2, a.xhat_a.data(), a.rstd_a.data(), w + bl.ln_a_g, g1,
                                  grad + bl.ln_a_g, grad + bl.ln_a_b, false);
      kernels::sas_add(g1, g3, Td);
    } else {
      // Xq = LN_a(H), R1 = Xq, Xkv = H: dL/dH = LN_a backward(g2 + g3) + g4
      kernels::sas_add(g2, g3, Td);
      kernels::layernorm_backward(T, d, g2, a.xhat_a.data(), a.rstd_a.data(), w + bl.ln_a_g, g1,
                                  grad + bl.ln_a_g, grad + bl.ln_a_b, false);
      kernels::sas_add(g1, g4, Td);
    }
  }
  // H0 = dropout(e): dL/de = g1 * m0 / (1-p);  e = sqrt(d) E[x] + P[pos]:
  // dL/dE[x_t] += sqrt(d) dL/de_t,  dL/dP[pos_t] += dL/de_t
  if (drop) {
    kernels::sas_mask_scale(g1, g1, ws.m0.data(), Td, keep);
  }
  const float sd = std::sqrt(static_cast<float>(d));
  float* dE = grad + l.item_emb;
  float* dP = grad + l.pos_emb;
  kernels::sas_embed_backward(dE, dP, g1, ch.items, ch.pos, T, d, sd);
}

}  // namespace seqrec::sasrec
