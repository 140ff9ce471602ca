// The bf16 mixed-precision GEMM (kernels/gemm.hpp) and its fp32 -> bf16 conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/isa.hpp"
#include "kernels/bf16_convert.hpp"
#include "kernels/gemm.hpp"

using namespace seqrec;

namespace {

float round_bf16(float x) {
  return kernels::bf16_to_f32(kernels::f32_to_bf16(x));
}

// C = alpha op(A) op(B) + beta C in double, optionally on bf16-rounded inputs; `absdot`
// receives |alpha| sum_k |a||b| per element (the scale of the bf16 error bound).
void reference(bool ta, bool tb, int m, int n, int k, float alpha, const std::vector<float>& a,
               int lda, const std::vector<float>& b, int ldb, float beta, std::vector<float>& c,
               int ldc, bool rounded, std::vector<double>* absdot) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0, sa = 0;
      for (int p = 0; p < k; ++p) {
        float av = ta ? a[p * lda + i] : a[i * lda + p];
        float bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        if (rounded) av = round_bf16(av), bv = round_bf16(bv);
        s += static_cast<double>(av) * bv;
        sa += std::fabs(static_cast<double>(av) * bv);
      }
      if (absdot) (*absdot)[i * n + j] = std::fabs(alpha) * sa;
      c[i * ldc + j] = static_cast<float>(alpha * s + beta * c[i * ldc + j]);
    }
}

struct Case {
  int m, n, k;
};

}  // namespace

TEST(KernelsBf16, ScalarConversionRoundsToNearestEven) {
  EXPECT_EQ(kernels::f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even mantissa (1.0)
  EXPECT_EQ(kernels::f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: rounds up to even
  EXPECT_EQ(kernels::f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(kernels::f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);  // above half: up
  EXPECT_EQ(kernels::f32_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(kernels::f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(round_bf16(std::numeric_limits<float>::quiet_NaN())));
  // the relative error bound 2^-8 on random values
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-100, 100);
  for (int i = 0; i < 10000; ++i) {
    const float x = u(rng);
    EXPECT_LE(std::fabs(round_bf16(x) - x), 0x1p-8f * std::fabs(x)) << x;
  }
}

// Every compiled variant this CPU can run (and the AVX512-BF16 instruction where present)
// converts exactly as the scalar reference, on strided rows with tails of every length.
TEST(KernelsBf16, VectorConversionMatchesScalar) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-3, 3);
  const int rows = 3, cols = 77, ld = 80;
  std::vector<float> src(rows * ld);
  for (auto& x : src) x = u(rng);
  src[5] = 1.0f + 0x1p-8f;  // a tie
  src[6] = std::numeric_limits<float>::infinity();
  src[7] = -0.0f;
  std::vector<uint16_t> want(rows * cols);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) want[r * cols + c] = kernels::f32_to_bf16(src[r * ld + c]);
  const isa::Level have = isa::cpu_level();
  using Fn = void(int64_t, int64_t, const float*, int64_t, uint16_t*, bool);
  std::vector<std::pair<Fn*, bool>> runs = {{&kernels::isa_baseline::convert_f32_bf16, false}};
  if (have >= isa::Level::Avx2) runs.push_back({&kernels::isa_avx2::convert_f32_bf16, false});
  if (have >= isa::Level::Avx512) runs.push_back({&kernels::isa_avx512::convert_f32_bf16, false});
  if (have >= isa::Level::Avx512 && isa::cpu().avx512_bf16)
    runs.push_back({&kernels::isa_avx512::convert_f32_bf16, true});
  else
    std::printf("[ SKIPPED  ] vcvtne2ps2bf16 path: this CPU has no AVX512-BF16\n");
  for (size_t v = 0; v < runs.size(); ++v) {
    for (int len : {cols, 1, 15, 16, 17, 31, 32, 33, 64}) {
      std::vector<uint16_t> got(rows * len, 0xffff);
      runs[v].first(rows, len, src.data(), ld, got.data(), runs[v].second);
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < len; ++c)
          ASSERT_EQ(got[r * len + c], want[r * cols + c]) << "variant " << v << " len " << len;
    }
  }
}

// The bf16 GEMM against fp32 for every transpose, strided operands, alpha and beta: within
// the bf16 bound 2 * 2^-8 * |alpha| sum |a||b| (+ fp32 accumulation); where bf16 really runs,
// also equal (to fp32 accumulation error) to the exact product of the rounded inputs.
TEST(KernelsBf16, GemmWithinBf16BoundOfFp32) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  const bool real = bf16_gemm_available();
  if (!real)
    std::printf("[ SKIPPED  ] bf16 units: %s (checking the fp32 fallback only)\n",
                bf16_gemm_unavailable_reason().c_str());
  for (Case cs : {Case{7, 5, 9}, Case{33, 70, 129}, Case{1, 300, 64}, Case{130, 17, 1}}) {
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (float beta : {0.0f, 1.0f, 0.5f}) {
          const int m = cs.m, n = cs.n, k = cs.k;
          const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
          const float alpha = ta ? 0.75f : 1.0f;
          std::vector<float> a((ta ? k : m) * lda), b((tb ? n : k) * ldb), c(m * ldc);
          for (auto& x : a) x = u(rng);
          for (auto& x : b) x = u(rng);
          for (auto& x : c) x = u(rng);
          std::vector<float> want = c, exact = c;
          std::vector<double> absdot(m * n);
          reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc, false, &absdot);
          reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, exact, ldc, true, nullptr);
          std::vector<float> c0 = c;
          sgemm_bf16(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
          if (real) {
            // the same on operands converted beforehand, kept at their row strides
            std::vector<uint16_t> a16(a.size()), b16(b.size());
            to_bf16((ta ? k : m), lda, a.data(), lda, a16.data(), lda);
            to_bf16((tb ? n : k), ldb, b.data(), ldb, b16.data(), ldb);
            gemm_bf16_pre(ta, tb, m, n, k, alpha, a16.data(), lda, b16.data(), ldb, beta, c0.data(),
                          ldc);
            for (int i = 0; i < m; ++i)
              for (int j = 0; j < n; ++j)
                ASSERT_NEAR(c0[i * ldc + j], c[i * ldc + j],
                            1e-6 * (absdot[i * n + j] + std::fabs(want[i * ldc + j])) + 1e-7);
          }
          for (int i = 0; i < m; ++i) {
            for (int j = 0; j < n; ++j) {
              const double acc = 1e-6 * (absdot[i * n + j] + std::fabs(want[i * ldc + j])) + 1e-7;
              const double tol = 2 * 0x1p-8 * absdot[i * n + j] + acc;
              ASSERT_NEAR(c[i * ldc + j], want[i * ldc + j], tol)
                  << m << "x" << n << "x" << k << " ta " << ta << " tb " << tb << " beta " << beta;
              if (real)
                ASSERT_NEAR(c[i * ldc + j], exact[i * ldc + j], acc)
                    << m << "x" << n << "x" << k << " ta " << ta << " tb " << tb;
            }
            // the padding of C is never written
            for (int j = n; j < ldc; ++j)
              ASSERT_EQ(std::memcmp(&c[i * ldc + j], &want[i * ldc + j], 4), 0);
          }
        }
  }
}

// Without bf16 units (forced here; SEQREC_ISA=baseline/avx2 in the suite's capped runs,
// or a CPU without them) the bf16 GEMM is sgemm, and bf16/auto resolve to fp32.
TEST(KernelsBf16, FallbackIsFp32) {
  bf16_gemm_force_fallback_for_testing(true);
  EXPECT_FALSE(bf16_gemm_available());
  EXPECT_FALSE(bf16_gemm_unavailable_reason().empty());
  EXPECT_EQ(resolve_precision(Precision::Bf16, "test"), Precision::Fp32);
  EXPECT_EQ(resolve_precision(Precision::Auto, "test"), Precision::Fp32);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1, 1);
  const int m = 20, n = 30, k = 40;
  std::vector<float> a(m * k), b(k * n), c1(m * n), c2;
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  for (auto& x : c1) x = u(rng);
  c2 = c1;
  sgemm_bf16(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 1.0f, c1.data(), n);
  sgemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 1.0f, c2.data(), n);
  for (int i = 0; i < m * n; ++i) EXPECT_NEAR(c1[i], c2[i], 1e-5f * (1 + std::fabs(c2[i])));
  bf16_gemm_force_fallback_for_testing(false);
  EXPECT_EQ(resolve_precision(Precision::Fp32, "test"), Precision::Fp32);
  if (isa::level() != isa::cpu_level()) {
    // SEQREC_ISA caps below the CPU: never bf16 (oneDNN is capped too)
    EXPECT_FALSE(bf16_gemm_available());
    EXPECT_EQ(resolve_precision(Precision::Auto, "test"), Precision::Fp32);
  }
  if (bf16_gemm_available()) {
    EXPECT_EQ(resolve_precision(Precision::Auto, "test"), Precision::Bf16);
    EXPECT_EQ(resolve_precision(Precision::Bf16, "test"), Precision::Bf16);
  } else {
    std::printf("[ SKIPPED  ] bf16 resolution: %s\n", bf16_gemm_unavailable_reason().c_str());
  }
}
