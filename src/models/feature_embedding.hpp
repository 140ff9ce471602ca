// Feature embeddings of items for the id-based sequence models (feature-aware SASRec): an
// item's feature embedding is the weighted mean of learned embeddings of its feature tokens,
//   G_i = sum_j w_ij Phi[f_ij],   w_ij = v_ij / sum_k |v_ik|,
// with (f_ij, v_ij) the item's sparse features (SparseFeatures, from align_features) and Phi
// the n_features x d token table. The mean (not the sum) keeps G at one scale whatever the
// number of tokens of an item (a long hashed title has dozens of trigrams, a genre one), so
// that it adds to the id embedding on equal terms and a cold item's vector (G alone) is on
// the scale of the trained ones. Gather and scatter are a sparse-times-dense product and its
// transpose, run once per training step over the distinct items involved.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "seqrec/features.hpp"

namespace seqrec::featemb {

/// Row-normalised features: row i has entries [off[i], off[i+1]) of (index, weight), the
/// weights v_ij / sum_k |v_ik| (a row whose values are all 0 keeps weights 0).
struct MeanRows {
  int32_t n_features = 0;
  std::vector<int64_t> off{0};
  std::vector<int32_t> index;
  std::vector<float> weight;
  int32_t rows() const { return static_cast<int32_t>(off.size()) - 1; }
  bool empty_row(int32_t i) const { return off[static_cast<size_t>(i) + 1] == off[i]; }
};

/// The mean weights of `x` (same sparsity pattern).
MeanRows mean_rows(const SparseFeatures& x);

/// The weights of one sparse row (index, value) as mean_rows() gives them.
void mean_weights(std::span<const float> value, std::vector<float>& weight);

/// out[i] = base[i] + sum_j w_ij Phi[f_ij] for every item i of `items` (rows of d floats at
/// out + i d; base may be null for 0, and may alias out only when it equals out). Items
/// outside `items` are not touched. Parallel over the items.
void gather(const MeanRows& x, const float* phi, int64_t d, std::span<const int32_t> items,
            const float* base, float* out);

/// Backward of gather() with respect to Phi: dPhi[f_ij] += w_ij dG[i] for every i of `items`
/// (dG rows at dG + i d). Serial: repeated tokens accumulate into shared rows.
void scatter(const MeanRows& x, const float* dg, int64_t d, std::span<const int32_t> items,
             float* dphi);

}  // namespace seqrec::featemb
