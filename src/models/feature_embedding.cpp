#include "models/feature_embedding.hpp"

#include <cmath>

#include "core/parallel.hpp"

namespace seqrec::featemb {

void mean_weights(std::span<const float> value, std::vector<float>& weight) {
  double s = 0;
  for (float v : value) s += std::fabs(static_cast<double>(v));
  weight.resize(value.size());
  for (size_t j = 0; j < value.size(); ++j)
    weight[j] = s > 0 ? static_cast<float>(static_cast<double>(value[j]) / s) : 0.0f;
}

MeanRows mean_rows(const SparseFeatures& x) {
  MeanRows m;
  m.n_features = x.n_features;
  m.off = x.offsets;
  m.index = x.index;
  m.weight.reserve(x.value.size());
  std::vector<float> w;
  for (int32_t i = 0; i < x.rows(); ++i) {
    mean_weights(x.row_value(i), w);
    m.weight.insert(m.weight.end(), w.begin(), w.end());
  }
  return m;
}

// G_i = sum_j w_ij Phi[f_ij]: a row of the sparse matrix times the dense token table.
void gather(const MeanRows& x, const float* phi, int64_t d, std::span<const int32_t> items,
            const float* base, float* out) {
  parallel_for(
      static_cast<int64_t>(items.size()),
      [&](int64_t a, int64_t b, int) {
        for (int64_t k = a; k < b; ++k) {
          const int32_t i = items[static_cast<size_t>(k)];
          float* o = out + static_cast<int64_t>(i) * d;
          if (base) {
            const float* e = base + static_cast<int64_t>(i) * d;
            if (e != o)
              for (int64_t c = 0; c < d; ++c) o[c] = e[c];
          } else {
            for (int64_t c = 0; c < d; ++c) o[c] = 0.0f;
          }
          for (int64_t j = x.off[static_cast<size_t>(i)]; j < x.off[static_cast<size_t>(i) + 1];
               ++j) {
            const float w = x.weight[static_cast<size_t>(j)];
            const float* p = phi + static_cast<int64_t>(x.index[static_cast<size_t>(j)]) * d;
            for (int64_t c = 0; c < d; ++c) o[c] += w * p[c];
          }
        }
      },
      64);
}

// G = W Phi (W the sparse mean weights)  =>  dL/dPhi = W^T dL/dG: each entry (i, j) adds
// w_ij dL/dG_i to row f_ij of dPhi.
void scatter(const MeanRows& x, const float* dg, int64_t d, std::span<const int32_t> items,
             float* dphi) {
  for (int32_t i : items) {
    const float* g = dg + static_cast<int64_t>(i) * d;
    for (int64_t j = x.off[static_cast<size_t>(i)]; j < x.off[static_cast<size_t>(i) + 1]; ++j) {
      const float w = x.weight[static_cast<size_t>(j)];
      float* p = dphi + static_cast<int64_t>(x.index[static_cast<size_t>(j)]) * d;
      for (int64_t c = 0; c < d; ++c) p[c] += w * g[c];
    }
  }
}

}  // namespace seqrec::featemb
