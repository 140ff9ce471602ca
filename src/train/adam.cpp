#include "train/adam.hpp"

#include <cmath>
#include <string>

#include "core/parallel.hpp"
#include "seqrec/error.hpp"

namespace seqrec::train {

void Adam::restore(std::span<const float> m, std::span<const float> v, int64_t steps) {
  if (m.size() != m_.size() || v.size() != v_.size() || steps < 0)
    throw Error("adam: a state of " + std::to_string(m.size()) + " parameters at step " +
                std::to_string(steps) + " does not fit an optimiser of " +
                std::to_string(m_.size()) + " parameters");
  m_.assign(m.begin(), m.end());
  v_.assign(v.begin(), v.end());
  t_ = steps;
}

void Adam::step(float* w, const float* g) {
  ++t_;
  const double bc1 = 1.0 - std::pow(static_cast<double>(opt_.beta1), static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(static_cast<double>(opt_.beta2), static_cast<double>(t_));
  const float step_size = static_cast<float>(opt_.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps;
  float* m = m_.data();
  float* v = v_.data();
  const int64_t n = static_cast<int64_t>(m_.size());
  auto run = [&](int64_t begin, int64_t end, int) {
    adam_update(w, m, v, g, begin, end, b1, b2, step_size, inv_sqrt_bc2, eps);
  };
  if (n >= (1 << 18))
    parallel_for(n, run);
  else
    run(0, n, 0);
}

}  // namespace seqrec::train
