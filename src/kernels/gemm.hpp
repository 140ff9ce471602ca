// The GEMM entry points of seqrec (oneDNN underneath; swappable here): fp32 (dnnl_sgemm) and
// bf16 mixed precision (oneDNN's matmul primitive with bf16 inputs and fp32 output).
#pragma once

#include <cstdint>
#include <string>

namespace seqrec {

/// C = alpha * op(A) * op(B) + beta * C, row-major. op(X) = X or X^T per trans_*.
/// A is M x K after op, B is K x N after op, C is M x N; lda/ldb/ldc are row strides.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

/// The same product with A and B rounded to bf16 (round to nearest even, 8 significant bits)
/// and the products accumulated in fp32: C = alpha * op(bf16(A)) op(bf16(B)) + beta * C, C in
/// fp32. Per element, |C - C_fp32| <= ~2 * 2^-8 * |alpha| * sum_k |a_ik| |b_kj| plus fp32
/// accumulation error. Where bf16_gemm_available() is false it runs sgemm (and says so once
/// on stderr). The operands are converted into per-thread scratch buffers; the oneDNN
/// primitives are created once per thread and shape class (transposes, beta != 0) with
/// run-time dimensions, so a training loop creates none after its first steps.
void sgemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc);

/// dst[r * ld_dst + c] = bf16(src[r * ld + c]) (round to nearest even) for r < rows, c < cols,
/// with vcvtne2ps2bf16 where the CPU has it: for operands converted once and used by several
/// gemm_bf16_pre calls.
void to_bf16(int64_t rows, int64_t cols, const float* src, int64_t ld, uint16_t* dst,
             int64_t ld_dst);

/// C = alpha * op(A) op(B) + beta * C on operands already in bf16 (row-major, row strides
/// lda/ldb; each row contiguous), fp32 accumulation and C. Only where bf16_gemm_available().
void gemm_bf16_pre(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                   float* c, int64_t ldc);

/// Whether sgemm_bf16 really runs in bf16: the CPU has AVX512-BF16 or AMX-BF16, SEQREC_ISA
/// does not cap the instruction set below the CPU's (which would cap oneDNN too), oneDNN's
/// effective ISA has bf16 units and its bf16 matmul is not the reference implementation.
/// Decided once.
bool bf16_gemm_available();
/// Why bf16_gemm_available() is false ("" when it is true), for messages.
const std::string& bf16_gemm_unavailable_reason();

/// Tests only: with `on`, sgemm_bf16 behaves as on a CPU without bf16 units (fp32 fallback)
/// and bf16_gemm_available() returns false.
void bf16_gemm_force_fallback_for_testing(bool on);

/// Precision of a model's large GEMMs (the parameter `precision`). Master weights, optimiser
/// state, losses, softmax and layer norm are fp32 in every case.
enum class Precision : uint8_t {
  Fp32,  ///< every GEMM in fp32
  Bf16,  ///< the large GEMMs in bf16 with fp32 accumulation (fp32 where the CPU has no bf16)
  Auto,  ///< bf16 where bf16_gemm_available(), fp32 otherwise
};

/// The precision a training run uses for `requested`: Fp32 or Bf16, never Auto. Bf16 is
/// returned only when bf16_gemm_available(); a requested bf16 that is not available is
/// reported on stderr (naming `who`) and runs in fp32.
Precision resolve_precision(Precision requested, const char* who);
/// "fp32", "bf16" or "auto".
const char* precision_name(Precision p);

/// sgemm or sgemm_bf16 per `p` (Fp32 or Bf16, as returned by resolve_precision).
inline void gemm(Precision p, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                 float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                 float* c, int64_t ldc) {
  if (p == Precision::Bf16)
    sgemm_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace seqrec
