// Finite-difference gradient checks shared by the kernel and model tests: one central
// difference, and one comparison of an analytic gradient entry with it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

namespace seqrec::test {

/// Central difference of f with respect to v: (f(v + h) - f(v - h)) / 2h. The perturbed value
/// is a float (as the network stores it), the difference is taken in double, and v is restored.
inline double central_difference(const std::function<double()>& f, float& v, double h) {
  const float old = v;
  v = old + static_cast<float>(h);
  const double fp = f();
  v = old - static_cast<float>(h);
  const double fm = f();
  v = old;
  return (fp - fm) / (2.0 * h);
}

/// How far an analytic gradient may be from its central difference `num`:
/// max(floor, abs + rel |num|).
struct GradTolerance {
  double abs = 0;
  double rel = 0;
  double floor = 0;
  /// abs + rel |num|.
  static GradTolerance sum(double abs, double rel) { return {abs, rel, 0}; }
  /// tol max(1, |num|): absolute below 1, relative above.
  static GradTolerance scaled(double tol) { return {0, tol, tol}; }
  double bound(double num) const { return std::max(floor, abs + rel * std::fabs(num)); }
};

/// Whether `analytic` is within `tol` of the central difference `num`.
inline ::testing::AssertionResult grad_close(double analytic, double num, GradTolerance tol) {
  const double bound = tol.bound(num);
  if (std::fabs(analytic - num) <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "analytic " << analytic << " vs finite difference " << num << ": off by "
         << std::fabs(analytic - num) << " > " << bound;
}

}  // namespace seqrec::test
