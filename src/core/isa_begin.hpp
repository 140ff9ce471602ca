// Opens the code of one instruction-set level in a source compiled once per level.
//
// Such a source (listed in SEQREC_ISA_SOURCES in CMakeLists.txt) is compiled three times
// with SEQREC_ISA_VARIANT = 0, 1, 2 and the portable baseline flags. Its layout:
//
//   #include ...                  // every include first: shared inline code stays baseline
//   #include "core/isa_begin.hpp" // from here functions are compiled for the level
//   namespace seqrec::kernels::SEQREC_ISA_NS {
//   void gru_cell_forward(...) { ... }   // the variant declared by SEQREC_DISPATCH
//   }
//   #include "core/isa_end.hpp"
//
// The level is applied per function (GCC's target pragma), not per file: inline functions
// and templates from headers included above keep the baseline code, so the linker can never
// pick an AVX-512 copy of, say, std::vector<float>::resize for a baseline caller. Small
// inline helpers (fast_exp, ...) are still inlined into the kernels and vectorised for the
// level.
// No include guard: opened once per source.
#if !defined(SEQREC_ISA_VARIANT)
#error "core/isa_begin.hpp: compile this source through SEQREC_ISA_SOURCES (CMakeLists.txt)"
#endif

#if SEQREC_ISA_VARIANT == 0
#define SEQREC_ISA_NS isa_baseline
#define SEQREC_ISA_TARGET "sse4.2,popcnt"
#elif SEQREC_ISA_VARIANT == 1
#define SEQREC_ISA_NS isa_avx2
#define SEQREC_ISA_TARGET "sse4.2,popcnt,avx,avx2,fma,bmi,bmi2,f16c,lzcnt,movbe"
#elif SEQREC_ISA_VARIANT == 2
#define SEQREC_ISA_NS isa_avx512
#define SEQREC_ISA_TARGET \
  "sse4.2,popcnt,avx,avx2,fma,bmi,bmi2,f16c,lzcnt,movbe,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
#else
#error "SEQREC_ISA_VARIANT must be 0, 1 or 2"
#endif

#define SEQREC_ISA_PRAGMA_(x) _Pragma(#x)
#define SEQREC_ISA_PRAGMA(x) SEQREC_ISA_PRAGMA_(x)
#if defined(__clang__)
SEQREC_ISA_PRAGMA(clang attribute push(__attribute__((target(SEQREC_ISA_TARGET))),
                                       apply_to = function))
#elif defined(__GNUC__)
#pragma GCC push_options
SEQREC_ISA_PRAGMA(GCC target(SEQREC_ISA_TARGET))
#endif

/// The avx512 variant's VNNI code (int8 dot products) is compiled with this attribute and
/// run only when isa::level() is avx512_vnni.
#define SEQREC_ISA_VNNI_TARGET __attribute__((target("avx512vnni")))
