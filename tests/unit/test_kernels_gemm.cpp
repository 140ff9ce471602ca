#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/gemm.hpp"

using namespace seqrec;

// Every transpose combination against a naive triple loop.
TEST(KernelsGemm, MatchesNaiveForAllTransposes) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  const int m = 7, n = 5, k = 9;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      std::vector<float> a(m * k), b(k * n), c(m * n), ref(m * n);
      for (auto& x : a) x = u(rng);
      for (auto& x : b) x = u(rng);
      for (auto& x : c) x = u(rng);
      ref = c;
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int p = 0; p < k; ++p) {
            const float av = ta ? a[p * m + i] : a[i * k + p];
            const float bv = tb ? b[j * k + p] : b[p * n + j];
            s += av * bv;
          }
          ref[i * n + j] = static_cast<float>(0.5 * s + 2.0 * ref[i * n + j]);
        }
      sgemm(ta, tb, m, n, k, 0.5f, a.data(), ta ? m : k, b.data(), tb ? k : n, 2.0f, c.data(), n);
      for (int i = 0; i < m * n; ++i) EXPECT_NEAR(c[i], ref[i], 1e-4) << ta << tb << i;
    }
}
