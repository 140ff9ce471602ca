// GRU building blocks of GRU4Rec with hand-written backward passes: the PyTorch GRUCell
// (spec §3.2), the one-hot "GRU embedding" layer (spec §3.3) and inverted dropout (§3.4).
//
// Row-major batches: n rows, H hidden units. Every GEMM goes through kernels/gemm.hpp.
// Gradients are written (not accumulated) into the caller's buffers.
#pragma once

#include <cstdint>

#include "core/isa.hpp"

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
SEQREC_DISPATCH(void, gru_cell_forward,
                (int64_t n, const GruCellWeights& w, const float* u, const float* h, float* h_out,
                 float* act, float* ghn, float* gh));

/// Backward for n rows given dL/dh' (`dh_out`, n x H). `dgi`, `dgh` are n x 3H scratch
/// (the gradients of the input and hidden pre-activations). Writes the weight and bias
/// gradients, and dL/du (n x in) and dL/dh (n x H) when those pointers are non-null.
/// Equals gru_cell_backward_rows followed by gru_cell_weight_grads over all 3H gate rows.
SEQREC_DISPATCH(void, gru_cell_backward,
                (int64_t n, const GruCellWeights& w, const float* u, const float* h,
                 const float* act, const float* ghn, const float* dh_out, float* dgi, float* dgh,
                 const GruCellGrads& g, float* du, float* dh));

/// The part of the backward that is local to each row (so a batch can be split by rows):
/// writes dgi, dgh (n x 3H) and dL/du (n x in), dL/dh (n x H) when non-null. Reads W_ih
/// and W_hh only for du and dh.
SEQREC_DISPATCH(void, gru_cell_backward_rows,
                (int64_t n, const GruCellWeights& w, const float* h, const float* act,
                 const float* ghn, const float* dh_out, float* dgi, float* dgh, float* du,
                 float* dh));

/// The weight and bias gradients of gate rows [g0, g1) of the 3H (rows of W_ih, W_hh,
/// entries of b_ih, b_hh) from all n rows' u, h, dgi, dgh. `g` points at the first of
/// those rows: g.w_ih is (g1 - g0) x in, g.w_hh (g1 - g0) x H, the biases g1 - g0 long.
SEQREC_DISPATCH(void, gru_cell_weight_grads,
                (int64_t n, int64_t in, int64_t hidden, const float* u, const float* h,
                 const float* dgi, const float* dgh, int64_t g0, int64_t g1,
                 const GruCellGrads& g));

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
SEQREC_DISPATCH(void, gru_emb_forward,
                (int64_t n, const GruEmbWeights& w, const int32_t* x, const float* h, float* h_out,
                 float* cache, float* tmp));

/// Writes dv (n x 3H: the gradient of row x_b of Wx0, and summed over rows, of Bh0),
/// d_wrz0 (H x 2H), d_wh0 (H x H) and dh (n x H, when non-null). `tmp` is n x 3H scratch.
/// Equals gru_emb_backward_rows followed by gru_emb_weight_grads over all H rows.
SEQREC_DISPATCH(void, gru_emb_backward,
                (int64_t n, const GruEmbWeights& w, const float* h, const float* cache,
                 const float* dh_out, float* dv, float* d_wrz0, float* d_wh0, float* dh,
                 float* tmp));

/// The row-local part: dv (n x 3H) and dh (n x H, when non-null); `tmp` is n x H scratch.
SEQREC_DISPATCH(void, gru_emb_backward_rows,
                (int64_t n, const GruEmbWeights& w, const float* h, const float* cache,
                 const float* dh_out, float* dv, float* dh, float* tmp));

/// Rows [r0, r1) of d_wrz0 (H x 2H) and d_wh0 (H x H) from all n rows' h, cache and dv;
/// the pointers address row r0 of each.
SEQREC_DISPATCH(void, gru_emb_weight_grads,
                (int64_t n, int64_t hidden, const float* h, const float* cache, const float* dv,
                 int64_t r0, int64_t r1, float* d_wrz0, float* d_wh0));

// ---------------------------------------------------------------------------------------
// Inverted dropout: mask entries are 0 (probability p) or 1/(1-p). y = x * mask and
// dL/dx = dL/dy * mask.

/// The key of the next mask: one draw of the xoshiro256** stream `state` (4 words, advanced).
SEQREC_DISPATCH(uint64_t, gru_dropout_key, (uint64_t * state));
/// Entries [begin, end) of the mask with key `key` (mask points at entry 0). Entry i
/// depends only on (key, i): 24 bits of the i-th 32-bit half of the SplitMix64 sequence
/// started at `key`, so a mask split over threads by any ranges is the same mask.
SEQREC_DISPATCH(void, gru_dropout_mask_range,
                (float* mask, int64_t begin, int64_t end, float p, uint64_t key));
/// Fills `mask` (count entries) with the mask of key gru_dropout_key(state).
SEQREC_DISPATCH(void, gru_dropout_mask, (float* mask, int64_t count, float p, uint64_t* state));
/// y[i] = x[i] * mask[i] (y may alias x).
SEQREC_DISPATCH(void, gru_apply_mask, (float* y, const float* x, const float* mask, int64_t count));

/// Sum over rows of an n x cols matrix into `out` (cols).
SEQREC_DISPATCH(void, gru_column_sums, (const float* a, int64_t n, int64_t cols, float* out));

}  // namespace seqrec::kernels
