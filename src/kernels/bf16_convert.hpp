// fp32 -> bf16 conversion (round to nearest even) for the bf16 GEMM's operands.
//
// bf16 keeps fp32's sign and 8-bit exponent and the top 7 of its 23 mantissa bits (8 bits of
// precision with the implicit one), so a converted value x' satisfies |x' - x| <= 2^-8 |x|.
// Rounding is to nearest, ties to even; NaN stays NaN (quiet), infinities stay infinite.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/isa.hpp"

namespace seqrec::kernels {

/// One value, scalar round-to-nearest-even (the reference for the vector kernels).
inline uint16_t f32_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

/// dst[r * cols + c] = bf16(src[r * ld + c]) for r < rows, c < cols (dst is contiguous).
/// `hw` asks for the AVX512-BF16 instruction (vcvtne2ps2bf16); the caller passes it only when
/// the CPU has it (isa::cpu().avx512_bf16) and the avx512 variant runs; otherwise the
/// kernel rounds in integer arithmetic (same results).
SEQREC_DISPATCH(void, convert_f32_bf16,
                (int64_t rows, int64_t cols, const float* src, int64_t ld, uint16_t* dst, bool hw));

}  // namespace seqrec::kernels
