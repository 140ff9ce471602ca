// Adam (Kingma & Ba), exactly as torch.optim.Adam without weight decay or amsgrad:
//   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,   t <- t + 1
//   w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Dense: every parameter is updated at every step (rows without gradient still move by
// their momentum), as in the reference SASRec implementations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/isa.hpp"

namespace seqrec::train {

/// The element-wise Adam update of entries [begin, end): m, v and w as above, with
/// step_size = lr / (1 - b1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - b2^t) precomputed.
SEQREC_DISPATCH(void, adam_update,
                (float* w, float* m, float* v, const float* g, int64_t begin, int64_t end, float b1,
                 float b2, float step_size, float inv_sqrt_bc2, float eps));

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
};

class Adam {
 public:
  Adam() = default;
  Adam(int64_t n, AdamOptions opt) : opt_(opt), m_(static_cast<size_t>(n), 0.0f), v_(m_) {}
  /// One step over the n parameters w with gradient g (parallel over threads for large n).
  void step(float* w, const float* g);
  int64_t steps() const { return t_; }
  const AdamOptions& options() const { return opt_; }
  /// The first and second moments (checkpoints).
  const std::vector<float>& first_moment() const { return m_; }
  const std::vector<float>& second_moment() const { return v_; }
  /// Restores moments and step count saved by a checkpoint; throws Error on a size mismatch.
  void restore(std::span<const float> m, std::span<const float> v, int64_t steps);

 private:
  AdamOptions opt_;
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

}  // namespace seqrec::train
