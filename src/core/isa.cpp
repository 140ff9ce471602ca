#include "core/isa.hpp"

#include <cpuid.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "seqrec/error.hpp"

namespace seqrec::isa {

namespace {

bool bit(uint32_t reg, int b) {
  return (reg >> b) & 1u;
}

uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

CpuFeatures detect() {
  CpuFeatures f;
  uint32_t a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.sse42 = bit(c, 20);
  const bool osxsave = bit(c, 27), avx = bit(c, 28), fma = bit(c, 12);
  // The OS must save the vector registers: XCR0 bits 1-2 (SSE, AVX state), 5-7 (AVX-512).
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const uint32_t ebx7 = b, ecx7 = c, edx7 = d;
  f.avx2 = os_avx && avx && bit(ebx7, 5);
  f.fma = os_avx && fma;
  f.bmi2 = bit(ebx7, 3) && bit(ebx7, 8);
  f.avx512f = os_avx512 && bit(ebx7, 16);
  f.avx512dq = f.avx512f && bit(ebx7, 17);
  f.avx512cd = f.avx512f && bit(ebx7, 28);
  f.avx512bw = f.avx512f && bit(ebx7, 30);
  f.avx512vl = f.avx512f && bit(ebx7, 31);
  f.avx512_vnni = f.avx512f && bit(ecx7, 11);
  f.amx_bf16 = bit(edx7, 22);
  f.amx_tile = bit(edx7, 24);
  f.amx_int8 = bit(edx7, 25);
  __cpuid_count(7, 1, a, b, c, d);
  f.avx512_bf16 = f.avx512f && bit(a, 5);
  return f;
}

Level choose() {
  const Level have = cpu_level();
  const char* env = std::getenv("SEQREC_ISA");
  if (env == nullptr || *env == '\0') return have;
  const Level want = parse_level(env);
  Level use = want;
  if (static_cast<int>(want) > static_cast<int>(have)) {
    std::fprintf(stderr,
                 "seqrec: warning: SEQREC_ISA=%s, but this CPU supports at most %s; using %s\n",
                 env, level_name(have), level_name(have));
    use = have;
  }
  if (use != have) {
    // Keep oneDNN's GEMMs within the same instruction set (it must be set before oneDNN's
    // first use; a later call is refused and changes nothing).
    const dnnl_cpu_isa_t cap = use == Level::Baseline ? dnnl_cpu_isa_sse41
                               : use == Level::Avx2   ? dnnl_cpu_isa_avx2
                               : use == Level::Avx512 ? dnnl_cpu_isa_avx512_core
                                                      : dnnl_cpu_isa_avx512_core_vnni;
    dnnl_set_max_cpu_isa(cap);
  }
  return use;
}

}  // namespace

const CpuFeatures& cpu() {
  static const CpuFeatures f = detect();
  return f;
}

Level cpu_level() {
  const CpuFeatures& f = cpu();
  const bool v4 = f.avx512f && f.avx512bw && f.avx512cd && f.avx512dq && f.avx512vl;
  const bool v3 = f.avx2 && f.fma && f.bmi2;
  if (v3 && v4) return f.avx512_vnni ? Level::Avx512Vnni : Level::Avx512;
  if (v3) return Level::Avx2;
  return Level::Baseline;
}

Level level() {
  static const Level l = choose();
  return l;
}

const char* level_name(Level l) {
  switch (l) {
    case Level::Baseline:
      return "baseline";
    case Level::Avx2:
      return "avx2";
    case Level::Avx512:
      return "avx512";
    case Level::Avx512Vnni:
      return "avx512_vnni";
  }
  return "?";
}

Level parse_level(std::string_view s) {
  if (s == "auto") return cpu_level();
  for (Level l : {Level::Baseline, Level::Avx2, Level::Avx512, Level::Avx512Vnni})
    if (s == level_name(l)) return l;
  throw InputError("SEQREC_ISA=" + std::string(s) +
                   ": unknown instruction-set level; use baseline, avx2, avx512, avx512_vnni "
                   "or auto");
}

std::string describe() {
  const CpuFeatures& f = cpu();
  std::string s = std::string("kernels ") + level_name(level()) + "; cpu";
  auto add = [&](bool on, const char* name) {
    if (on) s += std::string(" ") + name;
  };
  add(f.sse42, "sse4.2");
  add(f.avx2 && f.fma, "avx2");
  add(f.avx512f, "avx512");
  add(f.avx512_vnni, "vnni");
  add(f.avx512_bf16, "avx512_bf16");
  add(f.amx_tile, "amx");
  if (!f.amx_tile) s += ", no amx";
  const dnnl_cpu_isa_t g = dnnl_get_effective_cpu_isa();
  const char* gemm = g == dnnl_cpu_isa_sse41              ? "sse41"
                     : g == dnnl_cpu_isa_avx              ? "avx"
                     : g == dnnl_cpu_isa_avx2             ? "avx2"
                     : g == dnnl_cpu_isa_avx2_vnni        ? "avx2_vnni"
                     : g == dnnl_cpu_isa_avx512_core      ? "avx512_core"
                     : g == dnnl_cpu_isa_avx512_core_vnni ? "avx512_core_vnni"
                     : g == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16"
                     : g == dnnl_cpu_isa_avx512_core_amx  ? "avx512_core_amx"
                                                          : "other";
  s += std::string("; oneDNN ") + gemm;
  return s;
}

}  // namespace seqrec::isa
