// The one GEMM entry point of seqrec (oneDNN's dnnl_sgemm underneath; swappable here).
#pragma once

#include <cstdint>

namespace seqrec {

/// C = alpha * op(A) * op(B) + beta * C, row-major. op(X) = X or X^T per trans_*.
/// A is M x K after op, B is K x N after op, C is M x N; lda/ldb/ldc are row strides.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace seqrec
