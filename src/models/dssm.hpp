// DSSM two-tower retrieval (Huang et al., CIKM 2013) for next-item recommendation: an item
// tower maps an item's features (and an optional id embedding) through a tanh MLP to a
// unit vector; a query tower pools the session's or user's item vectors with recency
// weights and maps them through its own MLP; relevance is gamma times the cosine; training
// is a softmax over the positive, the batch's other targets and sampled negatives with
// logQ correction, with Adam. Documentation: docs/dssm.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/dssm_net.hpp"
#include "models/model_base.hpp"
#include "seqrec/features.hpp"

namespace seqrec {

/// Parsed, validated hyperparameters (defaults in dssm_table()).
struct DssmParams {
  std::vector<int64_t> layers, query_layers;
  bool relu = false;  ///< the parameter "activation": tanh (false) or relu (true)
  double gamma = 0;
  double decay = 0;
  int64_t maxlen = 0;
  bool id_embedding = false;
  double learning_rate = 0;
  double beta1 = 0, beta2 = 0;
  int64_t batch_size = 0;
  int64_t epochs = 0;
  int64_t n_negatives = 0;
  bool pop_sampling = false;
  bool in_batch = false;
  double logq = 0;
  int64_t eval_every = 0;
};

const ParamTable<DssmParams>& dssm_table();
DssmParams dssm_defaults();
std::vector<Preset> dssm_presets();

class DssmModel final : public ModelBase {
 public:
  /// Throws InputError for inconsistent widths (query_layers must end at layers' width).
  explicit DssmModel(const Config& config);
  std::string type() const override { return "dssm"; }
  /// Uses ctx.item_features when given (copied into the model); without them the item
  /// tower has only the id embedding (an InputError when id_embedding is off).
  void fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) override;
  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override;
  int32_t context_length() const override { return static_cast<int32_t>(params_.maxlen); }
  /// True for an item with features: the item tower maps them to a vector (a cold item
  /// has no id embedding of its own, it starts at zero and gets no gradient).
  bool scores_untrained_item(int32_t item) const override;
  /// items = gamma * the unit item vectors; the query vector is the unit query vector.
  DotProductHead dot_product_head() const override;
  void query_vectors(std::span<const std::span<const int32_t>> seqs,
                     std::span<const PrefixQuery> queries, float* out) const override;
  /// A trained model adds items by their features (the server also needs the feature
  /// encoder of the model file's metadata, which an id-only model lacks).
  bool adds_items() const override { return !head_.empty(); }
  /// gamma times the item tower's unit vector of the features, without id embedding; no bias.
  void encode_item(std::span<const int32_t> index, std::span<const float> value, float* row,
                   float* bias) const override;
  void query_vectors_with(std::span<const std::span<const int32_t>> seqs,
                          std::span<const PrefixQuery> queries, const float* extra_rows,
                          int32_t n_extra, float* out) const override;
  void save(TensorWriter& w) const override;
  void load(const TensorReader& r) override;

  const dssm::NetConfig& net() const { return net_; }
  const dssm::Layout& layout() const { return layout_; }
  std::vector<float>& weights() { return w_; }
  const SparseFeatures& features() const { return X_; }
  /// Recomputes the item vectors and the head from the weights (after changing them).
  void refresh();
  const std::vector<double>& epoch_losses() const { return epoch_losses_; }

 private:
  class Trainer;
  void setup(int32_t n_items, int32_t n_features);
  DssmParams params_;
  dssm::NetConfig net_;
  dssm::Layout layout_;
  std::vector<float> w_;
  SparseFeatures X_;
  std::vector<float> vecs_, head_;  ///< unit item vectors; gamma times them
  std::vector<double> epoch_losses_;
};

ModelInfo dssm_model_info();

}  // namespace seqrec
