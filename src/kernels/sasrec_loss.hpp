// SASRec's output losses over the final hidden states F (T x d) and an output item table
// Eo (n_items x d), forward and backward fused. Each returns the sum over the T positions
// of the per-position loss, writes dF = scale * dl/dF (T x d, overwritten) and adds
// scale * dl/dEo to dEo. The caller passes scale = 1 / (positions in the batch), the mean
// over non-padding positions of the reference.
#pragma once

#include <cstdint>
#include <vector>

#include "core/isa.hpp"
#include "kernels/gemm.hpp"

namespace seqrec::kernels {

/// Binary cross-entropy with one negative per position (the original SASRec):
///   r = F_t . Eo[pos_t],  s = F_t . Eo[neg_t],  l = log(1 + e^-r) + log(1 + e^s)
///   dl/dr = sigma(r) - 1,  dl/ds = sigma(s)
SEQREC_DISPATCH(double, sasrec_bce,
                (int64_t T, int64_t d, const float* F, const float* Eo, const int32_t* pos,
                 const int32_t* neg, float scale, float* dF, float* dEo));

/// Full softmax cross-entropy over the catalogue (SASRec+ / "CE"):
///   z = F_t Eo^T,  l = logsumexp(z) - z_pos,  dl/dz = softmax(z) - onehot(pos)
/// Computed in blocks of rows so that the logits never exceed `scratch` (grown as needed;
/// at most max(1, 4M / n_items) rows at a time, capped at 512). With `prec` Bf16 the three
/// GEMMs (z = F Eo^T, dF = G Eo, dEo += G^T F, G = dl/dz) take bf16-rounded operands (Eo and
/// each block of F and G converted once) with fp32 accumulation; the softmax is fp32.
SEQREC_DISPATCH(double, sasrec_full_ce,
                (int64_t T, int64_t d, int64_t n_items, const float* F, const float* Eo,
                 const int32_t* pos, float scale, float* dF, float* dEo,
                 std::vector<float>& scratch, Precision prec));

enum class SampledLoss { Softmax, GBCE };

/// Losses over K negatives shared by all positions of the batch (Eneg = their K x d rows of
/// Eo, neg their ids). A negative equal to the position's target is left out (an
/// "accidental hit"). dEneg (K x d) receives scale * dl/dEneg (overwritten); the caller
/// scatters it into the table.
///   Softmax: logits u_0 = r - lq(pos), u_k = z_k - lq(neg_k)  (logQ correction, lq = 0
///            when `logq` is null);  l = logsumexp(u) - u_0
///            dl/du = softmax(u) - onehot(0)
///   GBCE:    l = beta log(1 + e^-r) + sum_k log(1 + e^{z_k})   (Petrov & Macdonald 2023)
///            dl/dr = -beta sigma(-r),  dl/dz_k = sigma(z_k)
SEQREC_DISPATCH(double, sasrec_sampled,
                (SampledLoss kind, int64_t T, int64_t d, const float* F, const float* Eo,
                 const int32_t* pos, int64_t K, const int32_t* neg, const float* Eneg,
                 const float* logq, float beta, float scale, float* dF, float* dEo, float* dEneg,
                 std::vector<float>& scratch));

}  // namespace seqrec::kernels
