// SASRec's element-wise and row-wise steps (the work between the GEMMs of src/models/
// sasrec_net.cpp): bias rows, residual adds, dropout masks and their application, the FFN
// activation and its derivative, the embedding sum and its gradient, and the attention of
// the last position at inference. Compiled once per instruction-set level (core/isa.hpp).
#pragma once

#include <cstdint>

#include "core/isa.hpp"

namespace seqrec::kernels {

/// y[r][j] += b[j] for rows x d.
SEQREC_DISPATCH(void, sas_add_bias_rows, (float* y, const float* b, int64_t rows, int64_t d));

/// db[j] += sum_r g[r][j] for rows x d.
SEQREC_DISPATCH(void, sas_sum_rows, (float* db, const float* g, int64_t rows, int64_t d));

/// y += x (n floats).
SEQREC_DISPATCH(void, sas_add, (float* y, const float* x, int64_t n));

/// The dropout masks of the rows of nseq sequences (sequence s holds tokens off[s] ..
/// off[s+1], d entries each): sequence s's entries from sas_dropout_mask(
/// sas_derive_key(keys[s], purpose), p, ...).
SEQREC_DISPATCH(void, sas_seq_masks,
                (const uint64_t* keys, const int64_t* off, int64_t nseq, int64_t d, float p,
                 uint64_t purpose, uint8_t* mask));

/// x[i] = mask[i] ? x[i] * scale : 0 (inverted dropout, in place).
SEQREC_DISPATCH(void, sas_apply_mask_n, (float* x, const uint8_t* mask, int64_t n, float scale));

/// y[i] = mask[i] ? x[i] * scale : 0 (the backward of the above; y may equal x).
SEQREC_DISPATCH(void, sas_mask_scale,
                (float* y, const float* x, const uint8_t* mask, int64_t n, float scale));

/// r[i] = act(f[i]): GELU (erf form, sas_gelu) or ReLU. r may equal f.
SEQREC_DISPATCH(void, sas_activation, (float* r, const float* f, int64_t n, bool gelu));

/// g[i] *= act'(f[i]) * (mask ? (mask[i] ? keep : 0) : 1): the FFN's activation and
/// first dropout, backwards.
SEQREC_DISPATCH(void, sas_activation_backward,
                (float* g, const float* f, const uint8_t* mask, float keep, int64_t n, bool gelu));

/// x[t] = sd * E[items[t]] + P[pos[t]] (T rows of d).
SEQREC_DISPATCH(void, sas_embed,
                (float* x, const float* E, const float* P, const int32_t* items, const int32_t* pos,
                 int64_t T, int64_t d, float sd));

/// dE[items[t]] += sd * g[t], dP[pos[t]] += g[t] (rows in order: duplicates add up).
SEQREC_DISPATCH(void, sas_embed_backward,
                (float* dE, float* dP, const float* g, const int32_t* items, const int32_t* pos,
                 int64_t T, int64_t d, float sd));

/// Causal attention of one query row over n key/value rows (stride ld), all heads:
///   o_h = softmax(q_h k_h^T * scale) v_h, with p (n floats) as scratch.
SEQREC_DISPATCH(void, sas_attend_last,
                (const float* q, const float* k, const float* v, int64_t n, int64_t ld,
                 int64_t heads, int64_t dh, float scale, float* p, float* o));

}  // namespace seqrec::kernels
