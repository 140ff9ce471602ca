// Closes core/isa_begin.hpp. No include guard: once per source.
#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#undef SEQREC_ISA_PRAGMA
#undef SEQREC_ISA_PRAGMA_
