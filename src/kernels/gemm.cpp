#include "kernels/gemm.hpp"

#include <oneapi/dnnl/dnnl.h>

#include <atomic>
#include <cstdio>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/isa.hpp"
#include "kernels/bf16_convert.hpp"
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

namespace {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// One matmul primitive for a shape class: every dimension and C's row stride are given at
// run time (DNNL_RUNTIME_DIM_VAL), alpha through run-time output scales, beta (fixed per
// primitive) through the sum post-op. A and B are the dense bf16 copies, in their stored
// layout (a transposed operand is a column-major view).
dnnl::matmul::primitive_desc make_matmul_pd(bool ta, bool tb, float beta) {
  const dnnl::memory::dim R = DNNL_RUNTIME_DIM_VAL;
  const dnnl::memory::desc a_md({R, R}, dt::bf16, ta ? dims{1, R} : dims{R, 1});
  const dnnl::memory::desc b_md({R, R}, dt::bf16, tb ? dims{1, R} : dims{R, 1});
  const dnnl::memory::desc c_md({R, R}, dt::f32, dims{R, 1});
  dnnl::primitive_attr attr;
  attr.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
  if (beta != 0.0f) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  const dnnl::matmul::desc d(a_md, b_md, c_md);
  return dnnl::matmul::primitive_desc(d, attr, cpu_engine());
}

dnnl::matmul make_matmul(bool ta, bool tb, float beta) {
  return dnnl::matmul(make_matmul_pd(ta, tb, beta));
}

struct Bf16State {
  bool ok = false;
  std::string reason;
};

const Bf16State& bf16_state() {
  static const Bf16State s = [] {
    Bf16State r;
    const isa::Level lv = isa::level();  // applies SEQREC_ISA's cap to oneDNN first
    const isa::CpuFeatures& f = isa::cpu();
    if (!f.avx512_bf16 && !f.amx_bf16) {
      r.reason = "the CPU has neither AVX512-BF16 nor AMX-BF16";
      return r;
    }
    if (lv != isa::cpu_level()) {
      r.reason = std::string("SEQREC_ISA caps the instruction set at ") + isa::level_name(lv) +
                 ", below the CPU's bf16 units";
      return r;
    }
    const dnnl_cpu_isa_t g = dnnl_get_effective_cpu_isa();
    if (g == dnnl_cpu_isa_sse41 || g == dnnl_cpu_isa_avx || g == dnnl_cpu_isa_avx2 ||
        g == dnnl_cpu_isa_avx2_vnni || g == dnnl_cpu_isa_avx512_core ||
        g == dnnl_cpu_isa_avx512_core_vnni) {
      r.reason = "oneDNN's instruction set has no bf16 units";
      return r;
    }
    try {
      const std::string impl = make_matmul_pd(false, true, 0.0f).impl_info_str();
      if (impl.find("ref") != std::string::npos) {
        r.reason = "oneDNN has only its reference bf16 matmul (" + impl + ")";
        return r;
      }
    } catch (const dnnl::error& e) {
      r.reason = std::string("oneDNN's bf16 matmul is not available: ") + e.what();
      return r;
    }
    r.ok = true;
    return r;
  }();
  return s;
}

std::atomic<bool> g_force_fallback{false};

struct CachedMatmul {
  bool ta, tb;
  float beta;
  dnnl::matmul prim;
};

// Per-thread state: the primitives (each thread executes its own, so no primitive or its
// library-managed scratchpad is ever shared between threads), a stream, and the bf16 copies.
struct ThreadState {
  std::vector<CachedMatmul> prims;
  std::vector<uint16_t> a, b;
  dnnl::stream stream{cpu_engine()};
  const dnnl::matmul& get(bool ta, bool tb, float beta) {
    for (const CachedMatmul& c : prims)
      if (c.ta == ta && c.tb == tb && c.beta == beta) return c.prim;
    prims.push_back({ta, tb, beta, make_matmul(ta, tb, beta)});
    return prims.back().prim;
  }
};

ThreadState& thread_state() {
  thread_local ThreadState t;
  return t;
}

}  // namespace

bool bf16_gemm_available() {
  return !g_force_fallback.load(std::memory_order_relaxed) && bf16_state().ok;
}

const std::string& bf16_gemm_unavailable_reason() {
  static const std::string forced = "bf16 switched off for a test";
  if (g_force_fallback.load(std::memory_order_relaxed)) return forced;
  return bf16_state().reason;
}

void bf16_gemm_force_fallback_for_testing(bool on) {
  g_force_fallback.store(on, std::memory_order_relaxed);
}

void sgemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0 || !bf16_gemm_available()) {
    static std::atomic<bool> said{false};
    if (k != 0 && !said.exchange(true))
      std::fprintf(stderr, "seqrec: bf16 GEMMs not available (%s); using fp32\n",
                   bf16_gemm_unavailable_reason().c_str());
    sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  ThreadState& t = thread_state();
  // Stored shapes: A is (ta ? k x m : m x k) with row stride lda, B (tb ? n x k : k x n).
  const int64_t ar = trans_a ? k : m, ac = trans_a ? m : k;
  const int64_t br = trans_b ? n : k, bc = trans_b ? k : n;
  if (t.a.size() < static_cast<size_t>(ar * ac)) t.a.resize(static_cast<size_t>(ar * ac));
  if (t.b.size() < static_cast<size_t>(br * bc)) t.b.resize(static_cast<size_t>(br * bc));
  to_bf16(ar, ac, a, lda, t.a.data(), ac);
  to_bf16(br, bc, b, ldb, t.b.data(), bc);
  gemm_bf16_pre(trans_a, trans_b, m, n, k, alpha, t.a.data(), ac, t.b.data(), bc, beta, c, ldc);
}

void to_bf16(int64_t rows, int64_t cols, const float* src, int64_t ld, uint16_t* dst,
             int64_t ld_dst) {
  static const bool hw = isa::cpu().avx512_bf16 && isa::variant() == 2;
  if (ld_dst == cols) {
    kernels::convert_f32_bf16(rows, cols, src, ld, dst, hw);
  } else {
    for (int64_t r = 0; r < rows; ++r)
      kernels::convert_f32_bf16(1, cols, src + r * ld, cols, dst + r * ld_dst, hw);
  }
}

void gemm_bf16_pre(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                   float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta C
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  ThreadState& t = thread_state();
  const dnnl::matmul& prim = t.get(trans_a, trans_b, beta);
  dnnl::engine& e = cpu_engine();
  const dnnl::memory::desc a_md({m, k}, dt::bf16, trans_a ? dims{1, lda} : dims{lda, 1});
  const dnnl::memory::desc b_md({k, n}, dt::bf16, trans_b ? dims{1, ldb} : dims{ldb, 1});
  const dnnl::memory::desc c_md({m, n}, dt::f32, dims{ldc, 1});
  const dnnl::memory::desc s_md({1}, dt::f32, dims{1});
  dnnl::memory am(a_md, e, const_cast<uint16_t*>(a)), bm(b_md, e, const_cast<uint16_t*>(b)),
      cm(c_md, e, c), sm(s_md, e, &alpha);
  prim.execute(t.stream, {{DNNL_ARG_SRC, am},
                          {DNNL_ARG_WEIGHTS, bm},
                          {DNNL_ARG_DST, cm},
                          {DNNL_ARG_ATTR_OUTPUT_SCALES, sm}});
  t.stream.wait();
}

Precision resolve_precision(Precision requested, const char* who) {
  if (requested == Precision::Fp32) return Precision::Fp32;
  if (bf16_gemm_available()) return Precision::Bf16;
  if (requested == Precision::Bf16)
    std::fprintf(stderr, "seqrec: %s: precision bf16 requested, but %s; training in fp32\n", who,
                 bf16_gemm_unavailable_reason().c_str());
  return Precision::Fp32;
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::Fp32:
      return "fp32";
    case Precision::Bf16:
      return "bf16";
    case Precision::Auto:
      return "auto";
  }
  return "?";
}

}  // namespace seqrec
