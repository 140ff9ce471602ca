// Paired significance tests over per-query metric values (internal to seqrec; used by the
// compare report). Both tests are two-sided and take the pairs (a_q, b_q) of two systems
// evaluated on the same queries.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace seqrec {

/// Outcome of a paired test of a against b.
struct PairedTest {
  std::string method;    ///< "paired t-test" or "Wilcoxon signed-rank (exact|normal)"
  int64_t n = 0;         ///< pairs
  int64_t n_used = 0;    ///< pairs the statistic used (Wilcoxon drops zero differences)
  double mean_diff = 0;  ///< mean of a_q - b_q
  double statistic = 0;  ///< t (t-test) or W+ (Wilcoxon: sum of ranks of positive diffs)
  double z = 0;          ///< Wilcoxon's normal approximation z (0 for exact and t-test)
  double df = 0;         ///< degrees of freedom (t-test)
  double p_value = 1;    ///< two-sided; NaN when fewer than two pairs (t-test)
};

/// Student's paired t-test: t = mean(d) / (sd(d) / sqrt(n)), d = a - b, sd with n - 1,
/// df = n - 1, p = P(|T_df| >= |t|). All differences equal: p = 1 when they are 0, else 0.
PairedTest paired_t_test(std::span<const double> a, std::span<const double> b);

/// Wilcoxon's signed-rank test: zero differences are dropped, |d| ranked with average ranks
/// for ties, W+ = sum of the ranks of positive d. Exact null distribution when at most 50
/// differences remain and none tie in |d|; otherwise the normal approximation with the tie
/// correction of the variance and a continuity correction of 0.5.
PairedTest wilcoxon_signed_rank(std::span<const double> a, std::span<const double> b);

/// Holm's step-down adjustment of a family of p-values (NaN entries are left out of the
/// family and stay NaN). Returns adjusted p-values in the input order.
std::vector<double> holm_adjust(std::span<const double> p);

/// Two-sided tail of Student's t: P(|T_df| >= |t|).
double student_t_two_sided(double t, double df);

/// The regularised incomplete beta function I_x(a, b) (a, b > 0, 0 <= x <= 1).
double incomplete_beta(double a, double b, double x);

}  // namespace seqrec
