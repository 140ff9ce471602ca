// GRU building blocks of GRU4Rec with hand-written backward passes: the PyTorch GRUCell
// (spec §3.2), the one-hot "GRU embedding" layer (spec §3.3) and inverted dropout (§3.4).
//
// Row-major batches: n rows, H hidden units. Every GEMM goes through kernels/gemm.hpp.
// Gradients are written (not accumulated) into the caller's buffers.
#pragma once

#include <cstdint>

namespace seqrec::kernels {

// ---------------------------------------------------------------------------------------
// PyTorch GRUCell. W_ih is 3H x in, W_hh is 3H x H, row blocks in gate order (r, z, n):
//   r  = sigmoid(u W_ir^T + b_ir + h W_hr^T + b_hr)
//   z  = sigmoid(u W_iz^T + b_iz + h W_hz^T + b_hz)
//   nn = tanh(u W_in^T + b_in + r * (h W_hn^T + b_hn))
//   h' = (1 - z) * nn + z * h
struct GruCellWeights {
  const float* w_ih = nullptr;  ///< 3H x in
  const float* w_hh = nullptr;  ///< 3H x H
  const float* b_ih = nullptr;  ///< 3H
  const float* b_hh = nullptr;  ///< 3H
  int64_t in = 0, hidden = 0;
};

struct GruCellGrads {
  float* w_ih = nullptr;  ///< 3H x in (written)
  float* w_hh = nullptr;  ///< 3H x H (written)
  float* b_ih = nullptr;  ///< 3H (written)
  float* b_hh = nullptr;  ///< 3H (written)
};

/// Forward for n rows. `act` (n x 3H) receives the activations (r, z, nn) and `ghn`
/// (n x H) the term h W_hn^T + b_hn, both needed by the backward pass; `gh` is n x 3H
/// scratch. h_out may not alias h.
void gru_cell_forward(int64_t n, const GruCellWeights& w, const float* u, const float* h,
                      float* h_out, float* act, float* ghn, float* gh);

/// Backward for n rows given dL/dh' (`dh_out`, n x H). `dgi`, `dgh` are n x 3H scratch
/// (the gradients of the input and hidden pre-activations). Writes the weight and bias
/// gradients, and dL/du (n x in) and dL/dh (n x H) when those pointers are non-null.
void gru_cell_backward(int64_t n, const GruCellWeights& w, const float* u, const float* h,
                       const float* act, const float* ghn, const float* dh_out, float* dgi,
                       float* dgh, const GruCellGrads& g, float* du, float* dh);

// ---------------------------------------------------------------------------------------
// GRU embedding layer (one-hot input, spec §3.3), row-vector convention, H hidden units:
//   v  = Wx0[x] + Bh0 = (v_c, v_r, v_z)      Wx0: I x 3H, Bh0: 3H
//   r  = sigmoid(v_r + h Wrz0_r)              Wrz0: H x 2H = (reset, update) columns
//   z  = sigmoid(v_z + h Wrz0_z)
//   hc = tanh((r * h) Wh0 + v_c)              Wh0: H x H (no hidden bias)
//   h' = (1 - z) * h + z * hc                 (z weights the candidate here)
struct GruEmbWeights {
  const float* wx0 = nullptr;
  const float* wrz0 = nullptr;
  const float* wh0 = nullptr;
  const float* bh0 = nullptr;
  int64_t hidden = 0;
};

/// `cache` is n x 4H: (r, z, hc, r*h). `tmp` is n x 2H scratch.
void gru_emb_forward(int64_t n, const GruEmbWeights& w, const int32_t* x, const float* h,
                     float* h_out, float* cache, float* tmp);

/// Writes dv (n x 3H: the gradient of row x_b of Wx0, and summed over rows, of Bh0),
/// d_wrz0 (H x 2H), d_wh0 (H x H) and dh (n x H, when non-null). `tmp` is n x 3H scratch.
void gru_emb_backward(int64_t n, const GruEmbWeights& w, const float* h, const float* cache,
                      const float* dh_out, float* dv, float* d_wrz0, float* d_wh0, float* dh,
                      float* tmp);

// ---------------------------------------------------------------------------------------
// Inverted dropout: mask entries are 0 (probability p) or 1/(1-p). y = x * mask and
// dL/dx = dL/dy * mask.

/// Fills `mask` (count entries) from a xoshiro256** stream `state` (4 words, advanced).
void gru_dropout_mask(float* mask, int64_t count, float p, uint64_t* state);
/// y[i] = x[i] * mask[i] (y may alias x).
void gru_apply_mask(float* y, const float* x, const float* mask, int64_t count);

/// Sum over rows of an n x cols matrix into `out` (cols).
void gru_column_sums(const float* a, int64_t n, int64_t cols, float* out);

}  // namespace seqrec::kernels
