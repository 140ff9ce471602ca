#include "kernels/bf16_convert.hpp"

#include <immintrin.h>

#include "core/isa_begin.hpp"

namespace seqrec::kernels::SEQREC_ISA_NS {

namespace {

// Integer round to nearest even on one row; the compiler vectorises it for the level.
void row_rne(const float* s, uint16_t* d, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, s + i, 4);
    const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    d[i] = static_cast<uint16_t>(nan ? ((u >> 16) | 0x40u) : r);
  }
}

#if SEQREC_ISA_VARIANT == 2
// vcvtne2ps2bf16: 32 floats to 32 bf16 per instruction, round to nearest even.
// The level's features plus BF16, spelled out: clang lets a function's own target attribute
// replace the one pushed by isa_begin.hpp rather than add to it.
__attribute__((target(SEQREC_ISA_TARGET ",avx512bf16"))) void row_hw(const float* s, uint16_t* d,
                                                                     int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 lo = _mm512_loadu_ps(s + i), hi = _mm512_loadu_ps(s + i + 16);
    _mm512_storeu_si512(d + i, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
  if (i + 16 <= n) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i),
                        (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(s + i)));
    i += 16;
  }
  if (i < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm256_mask_storeu_epi16(d + i, k,
                             (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, s + i)));
  }
}
#endif

}  // namespace

void convert_f32_bf16(int64_t rows, int64_t cols, const float* src, int64_t ld, uint16_t* dst,
                      bool hw) {
#if SEQREC_ISA_VARIANT == 2
  if (hw) {
    for (int64_t r = 0; r < rows; ++r) row_hw(src + r * ld, dst + r * cols, cols);
    return;
  }
#endif
  (void)hw;
  for (int64_t r = 0; r < rows; ++r) row_rne(src + r * ld, dst + r * cols, cols);
}

}  // namespace seqrec::kernels::SEQREC_ISA_NS

#include "core/isa_end.hpp"
