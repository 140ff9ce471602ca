#include "kernels/gemm.hpp"

#include <oneapi/dnnl/dnnl.h>

#include <string>

#include "core/isa.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  // The instruction-set level is decided before oneDNN's first use, so that SEQREC_ISA caps
  // oneDNN's kernels too (core/isa.hpp).
  static const isa::Level level = isa::level();
  (void)level;
  const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                      lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success)
    throw Error("internal: dnnl_sgemm failed with status " + std::to_string(static_cast<int>(st)));
}

}  // namespace seqrec
