// Paired t-test, Wilcoxon signed-rank test, Holm adjustment, and the special functions
// they need.
#include "eval/significance.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "seqrec/error.hpp"

namespace seqrec {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The continued fraction of I_x(a, b) (converges fast for x < (a + 1) / (a + b + 2)):
/// I_x(a, b) = x^a (1 - x)^b / (a B(a, b)) * 1 / (1 + d1 / (1 + d2 / (1 + ...))) with
/// d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)),
/// d_{2m}   = m (b - m) x / ((a + 2m - 1)(a + 2m)),
/// evaluated by the modified Lentz method.
double beta_fraction(double a, double b, double x) {
  constexpr double tiny = 1e-300, eps = 1e-15;
  double f = 1.0, c = 1.0, d = 0.0;
  for (int i = 0; i <= 2000; ++i) {
    const int m = i / 2;
    double num;
    if (i == 0)
      num = 1.0;
    else if (i % 2 == 0)
      num = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
    else
      num = -((a + m) * (a + b + m) * x) / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
    d = 1.0 + num * d;
    if (std::fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    c = 1.0 + num / c;
    if (std::fabs(c) < tiny) c = tiny;
    const double cd = c * d;
    f *= cd;
    if (std::fabs(1.0 - cd) < eps) return f - 1.0;
  }
  return f - 1.0;  // not converged to 1e-15; still accurate far beyond what p-values need
}

void check_pairs(std::span<const double> a, std::span<const double> b) {
  if (a.size() != b.size())
    throw Error("paired test: " + std::to_string(a.size()) + " values against " +
                std::to_string(b.size()));
}

}  // namespace

double incomplete_beta(double a, double b, double x) {
  if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1)) return kNaN;
  if (x == 0 || x == 1) return x;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0)) return std::exp(log_front) * beta_fraction(a, b, x) / a;
  // Symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges faster.
  return 1.0 - std::exp(log_front) * beta_fraction(b, a, 1.0 - x) / b;
}

double student_t_two_sided(double t, double df) {
  if (std::isnan(t) || !(df > 0)) return kNaN;
  if (std::isinf(t)) return 0.0;
  // P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2).
  return incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
}

PairedTest paired_t_test(std::span<const double> a, std::span<const double> b) {
  check_pairs(a, b);
  PairedTest r;
  r.method = "paired t-test";
  r.n = r.n_used = static_cast<int64_t>(a.size());
  if (r.n == 0) {
    r.p_value = kNaN;
    return r;
  }
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] - b[i];
  const double mean = sum / static_cast<double>(r.n);
  r.mean_diff = mean;
  if (r.n < 2) {
    r.p_value = kNaN;
    return r;
  }
  double ss = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = (a[i] - b[i]) - mean;
    ss += e * e;
  }
  r.df = static_cast<double>(r.n - 1);
  const double sd = std::sqrt(ss / r.df);
  if (sd == 0) {
    r.statistic = mean == 0 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), mean);
    r.p_value = mean == 0 ? 1.0 : 0.0;
    return r;
  }
  r.statistic = mean / (sd / std::sqrt(static_cast<double>(r.n)));
  r.p_value = student_t_two_sided(r.statistic, r.df);
  return r;
}

PairedTest wilcoxon_signed_rank(std::span<const double> a, std::span<const double> b) {
  check_pairs(a, b);
  PairedTest r;
  r.n = static_cast<int64_t>(a.size());
  std::vector<double> d;
  d.reserve(a.size());
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i] - b[i];
    sum += x;
    if (x != 0) d.push_back(x);
  }
  r.mean_diff = r.n > 0 ? sum / static_cast<double>(r.n) : 0.0;
  const int64_t n = static_cast<int64_t>(d.size());
  r.n_used = n;
  if (n == 0) {
    r.method = "Wilcoxon signed-rank (exact)";
    r.p_value = 1.0;
    return r;
  }
  // Average ranks of |d|; tie groups feed the variance correction.
  std::vector<size_t> order(d.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t i, size_t j) { return std::fabs(d[i]) < std::fabs(d[j]); });
  double w_plus = 0, tie_term = 0;
  bool ties = false;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && std::fabs(d[order[j + 1]]) == std::fabs(d[order[i]])) ++j;
    const double t = static_cast<double>(j - i + 1);
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j + 1)) / 2.0;
    if (t > 1) {
      ties = true;
      tie_term += t * t * t - t;
    }
    for (size_t k = i; k <= j; ++k)
      if (d[order[k]] > 0) w_plus += avg_rank;
    i = j + 1;
  }
  r.statistic = w_plus;
  const double nn = static_cast<double>(n);
  if (!ties && n <= 50) {
    // Exact: under H0 every subset of the ranks 1..n is the positive set with probability
    // 2^-n; count(s) = number of subsets with rank sum s (a subset-sum count).
    r.method = "Wilcoxon signed-rank (exact)";
    const int64_t max_sum = n * (n + 1) / 2;
    std::vector<double> count(static_cast<size_t>(max_sum + 1), 0.0);
    count[0] = 1.0;
    for (int64_t k = 1; k <= n; ++k)
      for (int64_t s = max_sum; s >= k; --s)
        count[static_cast<size_t>(s)] += count[static_cast<size_t>(s - k)];
    const int64_t w = static_cast<int64_t>(std::llround(w_plus));
    double le = 0, ge = 0;
    for (int64_t s = 0; s <= max_sum; ++s) {
      if (s <= w) le += count[static_cast<size_t>(s)];
      if (s >= w) ge += count[static_cast<size_t>(s)];
    }
    const double total = std::ldexp(1.0, static_cast<int>(n));
    r.p_value = std::min(1.0, 2.0 * std::min(le, ge) / total);
    return r;
  }
  r.method = "Wilcoxon signed-rank (normal)";
  const double mean = nn * (nn + 1.0) / 4.0;
  const double var = nn * (nn + 1.0) * (2.0 * nn + 1.0) / 24.0 - tie_term / 48.0;
  if (!(var > 0)) {
    r.p_value = 1.0;
    return r;
  }
  const double dev = std::max(0.0, std::fabs(w_plus - mean) - 0.5);
  r.z = std::copysign(dev / std::sqrt(var), w_plus - mean);
  r.p_value = std::erfc(dev / std::sqrt(var) / std::sqrt(2.0));
  return r;
}

std::vector<double> holm_adjust(std::span<const double> p) {
  std::vector<double> out(p.size(), kNaN);
  std::vector<size_t> idx;
  for (size_t i = 0; i < p.size(); ++i)
    if (!std::isnan(p[i])) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t i, size_t j) { return p[i] < p[j]; });
  const double m = static_cast<double>(idx.size());
  double running = 0;
  for (size_t r = 0; r < idx.size(); ++r) {
    const double adj = std::min(1.0, (m - static_cast<double>(r)) * p[idx[r]]);
    running = std::max(running, adj);
    out[idx[r]] = running;
  }
  return out;
}

}  // namespace seqrec
