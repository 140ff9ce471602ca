// Run-time choice of the instruction set for seqrec's own hot kernels.
//
// The default build targets a portable x86-64 baseline (x86-64-v2: SSE4.2, POPCNT), so one
// binary (or Python wheel, or container image) runs on any x86-64 machine made since 2009.
// The hot kernels (GRU cells, losses, optimisers, attention, layer norm, the serving head)
// are compiled a further time per instruction-set level and chosen when first called, by
// what the CPU has:
//
//   level        compiled with                                    CPUs (examples)
//   baseline     x86-64-v2 (SSE4.2)                               any x86-64 since 2009
//   avx2         + AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE (x86-64-v3)  Haswell+, Zen 1+
//   avx512       + AVX512F/BW/CD/DQ/VL (x86-64-v4)                Skylake-SP+, Zen 4+
//   avx512_vnni  avx512 + VNNI for the int8 serving head          Cascade Lake+, Zen 4+
//
// oneDNN (the GEMMs) dispatches by itself, including AVX512-BF16 and AMX where present;
// seqrec caps it at the same level when SEQREC_ISA asks for a lower one.
//
// SEQREC_ISA=baseline|avx2|avx512|avx512_vnni|auto caps the level (for tests of the fallback
// paths, and to compare paths on one machine); a level above what the CPU has is lowered to
// what it has, with a warning on stderr. An unknown value is an error.
#pragma once

#include <string>
#include <string_view>

namespace seqrec::isa {

enum class Level : int { Baseline = 0, Avx2 = 1, Avx512 = 2, Avx512Vnni = 3 };

/// What the CPU reports (CPUID), independent of SEQREC_ISA.
struct CpuFeatures {
  bool sse42 = false, avx2 = false, fma = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512cd = false, avx512dq = false, avx512vl = false;
  bool avx512_vnni = false, avx512_bf16 = false;
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
};
const CpuFeatures& cpu();

/// The highest level the CPU supports.
Level cpu_level();

/// The level the dispatched kernels use: cpu_level(), capped by SEQREC_ISA. Decided once, on
/// the first call (which also caps oneDNN when SEQREC_ISA lowers the level).
Level level();

/// Index of the compiled kernel variant for the active level (0 baseline, 1 avx2, 2 avx512;
/// avx512_vnni runs the avx512 variant with its VNNI int8 path switched on).
inline int variant() {
  static const int v = level() >= Level::Avx512 ? 2 : static_cast<int>(level());
  return v;
}

/// The name used by SEQREC_ISA and in messages ("baseline", "avx2", ...).
const char* level_name(Level l);
/// Parses a SEQREC_ISA value; throws InputError for an unknown one. "auto" is cpu_level().
Level parse_level(std::string_view s);

/// One line for logs and `seqrec --version`: the active level, the CPU's relevant features, and
/// what oneDNN uses for the GEMMs, e.g. "kernels avx512_vnni; cpu avx2 avx512 vnni bf16, no
/// amx; oneDNN avx512_core_bf16".
std::string describe();

/// Calls fn with the kernel variant chosen for the active level. Declared through
/// SEQREC_DISPATCH below; the parameter types are the declared ones, so call sites convert
/// arguments exactly as for an ordinary function.
template <class Sig, Sig* F0, Sig* F1, Sig* F2>
struct Dispatch;
template <class R, class... A, R (*F0)(A...), R (*F1)(A...), R (*F2)(A...)>
struct Dispatch<R(A...), F0, F1, F2> {
  R operator()(A... a) const {
    switch (variant()) {
      case 2:
        return F2(static_cast<A&&>(a)...);
      case 1:
        return F1(static_cast<A&&>(a)...);
      default:
        return F0(static_cast<A&&>(a)...);
    }
  }
};

}  // namespace seqrec::isa

/// Declares a kernel compiled once per level (in the current namespace NS): the variants
/// NS::isa_baseline::name, NS::isa_avx2::name, NS::isa_avx512::name, and NS::name, a function
/// object that calls the variant of the active level. The definitions live in a source
/// compiled once per level between core/isa_begin.hpp and core/isa_end.hpp (see there).
#define SEQREC_DISPATCH(ret, name, params)                                                    \
  namespace isa_baseline {                                                                    \
  ret name params;                                                                            \
  }                                                                                           \
  namespace isa_avx2 {                                                                        \
  ret name params;                                                                            \
  }                                                                                           \
  namespace isa_avx512 {                                                                      \
  ret name params;                                                                            \
  }                                                                                           \
  inline constexpr ::seqrec::isa::Dispatch<decltype(isa_baseline::name), &isa_baseline::name, \
                                           &isa_avx2::name, &isa_avx512::name>                \
      name {}
