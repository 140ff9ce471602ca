// The paired significance tests of the compare report against values worked out by hand.
// Every expected number below comes from a closed form written next to it (checked once
// by numerical integration of the t density), never from the code under test.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "eval/significance.hpp"

using namespace seqrec;

namespace {

constexpr double kPi = std::numbers::pi;

/// Pairs (a, b) with a - b = d: b is all zero.
PairedTest t_of(const std::vector<double>& d) {
  const std::vector<double> zero(d.size(), 0.0);
  return paired_t_test(d, zero);
}
PairedTest w_of(const std::vector<double>& d) {
  const std::vector<double> zero(d.size(), 0.0);
  return wilcoxon_signed_rank(d, zero);
}

}  // namespace

TEST(Significance, IncompleteBetaClosedForms) {
  // I_x(a, 1) = x^a, I_x(1, b) = 1 - (1 - x)^b, I_0.5(a, a) = 1/2 by symmetry.
  EXPECT_NEAR(incomplete_beta(3.0, 1.0, 0.4), std::pow(0.4, 3.0), 1e-14);
  EXPECT_NEAR(incomplete_beta(1.0, 2.5, 0.7), 1.0 - std::pow(0.3, 2.5), 1e-14);
  EXPECT_NEAR(incomplete_beta(7.5, 7.5, 0.5), 0.5, 1e-14);
  EXPECT_EQ(incomplete_beta(2.0, 3.0, 0.0), 0.0);
  EXPECT_EQ(incomplete_beta(2.0, 3.0, 1.0), 1.0);
  EXPECT_TRUE(std::isnan(incomplete_beta(-1.0, 3.0, 0.5)));
}

TEST(Significance, StudentTailClosedForms) {
  // df = 1 (Cauchy): P(|T| >= t) = 1 - 2 atan(t) / pi.
  EXPECT_NEAR(student_t_two_sided(2.0, 1.0), 1.0 - 2.0 * std::atan(2.0) / kPi, 1e-13);
  // df = 2: P(|T| >= t) = 1 - t / sqrt(2 + t^2).
  EXPECT_NEAR(student_t_two_sided(1.5, 2.0), 1.0 - 1.5 / std::sqrt(2.0 + 2.25), 1e-13);
  // Symmetric in t; t = 0 gives 1; a huge df approaches the normal tail erfc(t / sqrt 2).
  EXPECT_NEAR(student_t_two_sided(-1.5, 2.0), student_t_two_sided(1.5, 2.0), 1e-15);
  EXPECT_NEAR(student_t_two_sided(0.0, 5.0), 1.0, 1e-15);
  EXPECT_NEAR(student_t_two_sided(1.96, 1e7), std::erfc(1.96 / std::sqrt(2.0)), 1e-6);
}

TEST(Significance, PairedTTestKnownValues) {
  // d = 1, 2, 3, 4: mean 2.5, sd = sqrt(5/3), t = 2.5 / (sqrt(5/3) / 2) = sqrt(15), df = 3.
  // df = 3: P(|T| >= t) = 1 - (2/pi) (u / (1 + u^2) + atan(u)), u = t / sqrt(3) = sqrt(5),
  // so p = 1 - (2/pi) (sqrt(5)/6 + atan(sqrt(5))) = 0.030466291662171.
  PairedTest a = t_of({1, 2, 3, 4});
  EXPECT_EQ(a.n, 4);
  EXPECT_DOUBLE_EQ(a.df, 3.0);
  EXPECT_NEAR(a.mean_diff, 2.5, 1e-15);
  EXPECT_NEAR(a.statistic, 3.872983346207417, 1e-12);
  EXPECT_NEAR(a.p_value, 0.030466291662171, 1e-12);

  // d = 1, 3: mean 2, sd sqrt(2), t = 2, df = 1: p = 1 - 2 atan(2) / pi = 0.295167235300867.
  PairedTest b = t_of({1, 3});
  EXPECT_NEAR(b.statistic, 2.0, 1e-14);
  EXPECT_NEAR(b.p_value, 0.295167235300867, 1e-12);

  // d = 1, 2, 6: mean 3, squared deviations 4 + 1 + 9 = 14, sd = sqrt(7),
  // t = 3 / sqrt(7/3) = 3 sqrt(3/7), df = 2: p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(27/41).
  PairedTest c = t_of({1, 2, 6});
  EXPECT_NEAR(c.statistic, 1.963961012123931, 1e-12);
  EXPECT_NEAR(c.p_value, 0.188497328799311, 1e-12);

  // d = 1, 2, 3, 4, 7: mean 3.4, sd^2 = 22 / 4 = 5.5, t = 3.4 / sqrt(5.5 / 5) = 3.30237193,
  // df = 4: P(|T| >= t) = 1 - x (3 - x^2) / 2 with x = t / sqrt(4 + t^2) = 0.029866968372355.
  PairedTest d = t_of({1, 2, 3, 4, 7});
  EXPECT_NEAR(d.statistic, 3.302371932014698, 1e-12);
  EXPECT_NEAR(d.p_value, 0.029866968372355, 1e-12);

  // The sign of the difference flips t, not p; pairs are a - b, not |a - b|.
  const std::vector<double> x{5, 1, 2}, y{4, 3, 0};  // d = 1, -2, 2
  PairedTest e = paired_t_test(x, y), f = paired_t_test(y, x);
  EXPECT_NEAR(e.statistic, -f.statistic, 1e-15);
  EXPECT_NEAR(e.p_value, f.p_value, 1e-15);
}

TEST(Significance, PairedTTestDegenerateCases) {
  // Identical systems: every difference 0, no evidence at all.
  PairedTest same = t_of({0, 0, 0});
  EXPECT_EQ(same.p_value, 1.0);
  EXPECT_EQ(same.statistic, 0.0);
  // A constant non-zero difference: infinitely strong evidence.
  PairedTest constant = t_of({0.5, 0.5, 0.5});
  EXPECT_EQ(constant.p_value, 0.0);
  EXPECT_TRUE(std::isinf(constant.statistic));
  // One pair: no variance estimate, no p-value.
  EXPECT_TRUE(std::isnan(t_of({1.0}).p_value));
  EXPECT_TRUE(std::isnan(t_of({}).p_value));
  EXPECT_THROW(paired_t_test(std::vector<double>{1, 2}, std::vector<double>{1}), std::exception);
}

TEST(Significance, WilcoxonExactKnownValues) {
  // d = 1..5 all positive: W+ = 15, the largest of 2^5 = 32 equally likely sign patterns;
  // two-sided p = 2 / 32.
  PairedTest a = w_of({1, 2, 3, 4, 5});
  EXPECT_EQ(a.method, "Wilcoxon signed-rank (exact)");
  EXPECT_DOUBLE_EQ(a.statistic, 15.0);
  EXPECT_DOUBLE_EQ(a.p_value, 2.0 / 32.0);

  // d = -1, 2, 3, 4, 5: W+ = 14; P(W+ >= 14) = P(W- <= 1) = |{{}, {1}}| / 32 = 2/32, so the
  // two-sided p = 4 / 32.
  PairedTest b = w_of({-1, 2, 3, 4, 5});
  EXPECT_DOUBLE_EQ(b.statistic, 14.0);
  EXPECT_DOUBLE_EQ(b.p_value, 4.0 / 32.0);

  // Zeros are dropped: d = 0, 0, 1, -2, 3, 4 leaves n = 4 with W+ = 1 + 3 + 4 = 8. Subsets
  // of {1, 2, 3, 4} with sum >= 8 are the complements of those with sum <= 2 ({}, {1}, {2}):
  // 3 of 16, two-sided p = 6 / 16.
  PairedTest c = w_of({0, 0, 1, -2, 3, 4});
  EXPECT_EQ(c.n, 6);
  EXPECT_EQ(c.n_used, 4);
  EXPECT_DOUBLE_EQ(c.statistic, 8.0);
  EXPECT_DOUBLE_EQ(c.p_value, 6.0 / 16.0);

  // No non-zero difference: p = 1.
  EXPECT_DOUBLE_EQ(w_of({0, 0, 0}).p_value, 1.0);
}

TEST(Significance, WilcoxonNormalApproximationWithTies) {
  // d = eight 1s, two -1s, five 2s: n = 15, |d| = 1 takes ranks 1..10 (average 5.5),
  // |d| = 2 ranks 11..15 (average 13). W+ = 8 * 5.5 + 5 * 13 = 109. Under H0:
  // E = 15 * 16 / 4 = 60, Var = 15 * 16 * 31 / 24 - ((10^3 - 10) + (5^3 - 5)) / 48
  // = 310 - 23.125 = 286.875; z = (109 - 60 - 0.5) / sqrt(286.875) = 2.863488129913,
  // p = erfc(z / sqrt 2) = 0.004190045131287.
  std::vector<double> d(8, 1.0);
  d.insert(d.end(), 2, -1.0);
  d.insert(d.end(), 5, 2.0);
  PairedTest w = w_of(d);
  EXPECT_EQ(w.method, "Wilcoxon signed-rank (normal)");
  EXPECT_DOUBLE_EQ(w.statistic, 109.0);
  EXPECT_NEAR(w.z, 2.863488129912975, 1e-12);
  EXPECT_NEAR(w.p_value, 0.004190045131287, 1e-12);
}

TEST(Significance, HolmAdjustment) {
  // Sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> kept at
  // the running maximum 0.06. NaN stays out of the family.
  const std::vector<double> p{0.01, 0.04, 0.03, 0.005};
  const auto h = holm_adjust(p);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_NEAR(h[0], 0.03, 1e-15);
  EXPECT_NEAR(h[1], 0.06, 1e-15);
  EXPECT_NEAR(h[2], 0.06, 1e-15);
  EXPECT_NEAR(h[3], 0.02, 1e-15);
  const std::vector<double> q{0.2, std::nan(""), 0.9};
  const auto g = holm_adjust(q);
  EXPECT_NEAR(g[0], 0.4, 1e-15);
  EXPECT_TRUE(std::isnan(g[1]));
  EXPECT_NEAR(g[2], 0.9, 1e-15);
}
