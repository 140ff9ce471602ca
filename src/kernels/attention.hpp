// Causal multi-head scaled dot-product attention over one sequence, forward and backward
// (SASRec's self-attention core, without the Q/K/V/output projections).
//
// The sequence has n rows of which the first `pad` are left padding: padding rows are
// masked as keys for every query, their output rows are zero and they receive no gradient.
// Head h uses columns [h*dh, (h+1)*dh) of q, k, v and out (dh = d / heads). For the
// m = n - pad real rows (indices relative to the first real row):
//   S = q_h k_h^T / sqrt(dh) + M,  M_ij = -inf for j > i (causal)
//   A = softmax_rows(S),  A' = dropout_p(A) (inverted),  out_h = A' v_h
#pragma once

#include <cstdint>

#include "core/isa.hpp"
#include "kernels/gemm.hpp"
#include "kernels/sasrec_ops.hpp"

namespace seqrec::kernels {

struct AttentionShape {
  int64_t n = 0;      ///< rows, padding included
  int64_t pad = 0;    ///< leading padding rows (0 <= pad <= n)
  int64_t d = 0;      ///< model width (all heads)
  int64_t heads = 1;  ///< d % heads == 0
  int64_t ld = 0;     ///< row stride of q, k, v, out and of the gradients (>= d)
  /// Precision of the per-head GEMMs (QK^T, PV and their backward); softmax stays fp32.
  Precision precision = Precision::Fp32;
  int64_t real() const { return n - pad; }
  /// Floats of one A (or A') buffer: heads * m * m.
  int64_t probs_size() const { return heads * real() * real(); }
};

/// Forward. `A` receives the softmax probabilities (heads x m x m, row-major, zero above the
/// diagonal). With dropout > 0 and `dropout_key` != nullptr, `Ad` receives A' (the dropped
/// and rescaled probabilities, the ones multiplied with V; row i of head h draws its mask
/// from sas_derive_key(*dropout_key, h * 2^32 + i)); otherwise Ad may be null or equal to A.
/// `out` rows of padding are zeroed.
SEQREC_DISPATCH(void, causal_attention_forward,
                (const AttentionShape& s, const float* q, const float* k, const float* v, float* A,
                 float* Ad, float dropout, const uint64_t* dropout_key, float* out));

/// Backward of the forward above (A and Ad as it left them; Ad == A or null without
/// dropout). dq, dk, dv are overwritten; padding rows get zero. `scratch` holds m*m floats.
///   dA'  = dout_h v_h^T,        dv_h = A'^T dout_h
///   dA   = dA' * [A' != 0] / (1 - p)             (dropout)
///   dS_ij = A_ij (dA_ij - sum_k dA_ik A_ik)      (softmax, j <= i)
///   dq_h = dS k_h / sqrt(dh),   dk_h = dS^T q_h / sqrt(dh)
SEQREC_DISPATCH(void, causal_attention_backward,
                (const AttentionShape& s, const float* q, const float* k, const float* v,
                 const float* A, const float* Ad, float dropout, const float* dout, float* dq,
                 float* dk, float* dv, float* scratch));

}  // namespace seqrec::kernels
