// The scoring passes of PackedDotHead, once per instruction-set level
// (dot_head_kernels.hpp; the code is in dot_head_kernels.inc).
#include "serve/dot_head_kernels.hpp"

#include <immintrin.h>

#include <bit>

#include "core/isa_begin.hpp"

namespace seqrec::serve::detail::SEQREC_ISA_NS {

namespace plain {
#define SEQREC_HEAD_VNNI 0
#define SEQREC_HEAD_BF16 0
#include "serve/dot_head_kernels.inc"
#undef SEQREC_HEAD_BF16
#undef SEQREC_HEAD_VNNI
}  // namespace plain

#if SEQREC_ISA_VARIANT == 2
// The int8 pass with vpdpbusd, run at the avx512_vnni level.
#if defined(__clang__)
// Clang applies only the outer of two pushed target attributes: replace the level's (from
// isa_begin.hpp) by the level's features plus VNNI, and put it back after.
#pragma clang attribute pop
SEQREC_ISA_PRAGMA(clang attribute push(__attribute__((target(SEQREC_ISA_TARGET ",avx512vnni"))),
                                       apply_to = function))
#else
#pragma GCC push_options
#pragma GCC target("avx512vnni")
// GCC 12 flags _mm512_cvtepi32_ps's _mm512_undefined_ps() operand (a false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace vnni {
#define SEQREC_HEAD_VNNI 1
#define SEQREC_HEAD_BF16 0
#include "serve/dot_head_kernels.inc"
#undef SEQREC_HEAD_BF16
#undef SEQREC_HEAD_VNNI
}  // namespace vnni
#if defined(__clang__)
#pragma clang attribute pop
SEQREC_ISA_PRAGMA(clang attribute push(__attribute__((target(SEQREC_ISA_TARGET))),
                                       apply_to = function))
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
#endif

#if SEQREC_ISA_VARIANT == 2
// The bf16 pass with vdpbf16ps, run at the highest level where the CPU has AVX512-BF16.
#if defined(__clang__)
#pragma clang attribute pop
SEQREC_ISA_PRAGMA(clang attribute push(__attribute__((target(SEQREC_ISA_TARGET ",avx512bf16"))),
                                       apply_to = function))
#else
#pragma GCC push_options
#pragma GCC target("avx512bf16")
#endif
namespace bf16 {
#define SEQREC_HEAD_VNNI 0
#define SEQREC_HEAD_BF16 1
#include "serve/dot_head_kernels.inc"
#undef SEQREC_HEAD_BF16
#undef SEQREC_HEAD_VNNI
}  // namespace bf16
#if defined(__clang__)
#pragma clang attribute pop
SEQREC_ISA_PRAGMA(clang attribute push(__attribute__((target(SEQREC_ISA_TARGET))),
                                       apply_to = function))
#else
#pragma GCC pop_options
#endif
#endif

void head_pass_bf16(const TileBf16* t, int32_t blocks, int32_t n, const QueryBf16* qb,
                    float* const* out, RowSelect* rows) {
#if SEQREC_ISA_VARIANT == 2
  if (isa::level() >= isa::Level::Avx512Vnni && isa::cpu().avx512_bf16)
    return bf16::run_pass_bf16(t, blocks, n, qb, out, rows);
#endif
  plain::run_pass_bf16(t, blocks, n, qb, out, rows);
}

void head_pass(const TileF32* f32, const TileI8* i8, int32_t blocks, int32_t n,
               const float* const* qf, const QueryI8* qi, float* const* out, RowSelect* rows) {
#if SEQREC_ISA_VARIANT == 2
  if (i8 != nullptr && isa::level() == isa::Level::Avx512Vnni)
    return vnni::run_pass(f32, i8, blocks, n, qf, qi, out, rows);
#endif
  plain::run_pass(f32, i8, blocks, n, qf, qi, out, rows);
}

void head_exact(const float* items, const float* item_bias, int32_t n_items, int32_t dim,
                const float* q, const int32_t* ids, size_t m, float* out) {
  plain::exact_impl(items, item_bias, n_items, dim, q, ids, m, out);
}

}  // namespace seqrec::serve::detail::SEQREC_ISA_NS

#include "core/isa_end.hpp"
