// GRU4Rec's losses over a score matrix with sampled negatives, forward and backward fused.
//
// R is n x C (n mini-batch rows, C = n + K columns): column j of row j is the row's
// positive (the target), every other column a negative (spec §4, §6). The caller applies
// the logQ correction to R beforehand (cross-entropy only). Each function returns the sum
// over rows of the per-row loss l_j and overwrites R with scale * dl_j/dR (the caller
// passes scale = 1/batch_size, the official step loss).
#pragma once

#include <cstdint>

#include "core/isa.hpp"

namespace seqrec::kernels {

enum class LossType { CrossEntropy, BprMax, Top1Max, Bpr, Top1 };

struct LossOptions {
  LossType type = LossType::CrossEntropy;
  float bpreg = 1.0f;      ///< BPR-max score regularisation
  float elu_param = 0.0f;  ///< ranking losses: ELU(alpha) final activation when > 0
};

/// Loss and gradient of one row r (C entries) whose positive is column j; r is overwritten
/// by scale * dl/dr. `scratch` holds 2*C floats. Returns l.
SEQREC_DISPATCH(double, sampled_loss_row,
                (const LossOptions& opt, float* r, int64_t C, int64_t j, float scale,
                 float* scratch));

/// Loss and gradient of rows [row_begin, row_end) (rows of R relative to row 0; the
/// positive of row j is column j). `scratch` holds 2*C floats. Returns sum of l_j.
SEQREC_DISPATCH(double, sampled_loss_rows,
                (const LossOptions& opt, int64_t row_begin, int64_t row_end, int64_t C, float* R,
                 int64_t ldr, float scale, float* scratch));

/// All n rows, in parallel over rows (parallel_for); deterministic whatever the number of
/// threads (each row is computed independently, the row losses are added in row order).
SEQREC_DISPATCH(double, sampled_loss,
                (const LossOptions& opt, int64_t n, int64_t C, float* R, int64_t ldr, float scale));

}  // namespace seqrec::kernels
