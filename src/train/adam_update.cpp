// The element-wise Adam update (train/adam.hpp), compiled once per instruction-set level.
#include <cmath>

#include "core/isa_begin.hpp"
#include "train/adam.hpp"

namespace seqrec::train::SEQREC_ISA_NS {

void adam_update(float* w, float* m, float* v, const float* g, int64_t begin, int64_t end, float b1,
                 float b2, float step_size, float inv_sqrt_bc2, float eps) {
  const float c1 = 1.0f - b1, c2 = 1.0f - b2;
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    const float mi = b1 * m[i] + c1 * gi;
    const float vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] -= step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace seqrec::train::SEQREC_ISA_NS

#include "core/isa_end.hpp"
