// SASRec (Kang & McAuley, ICDM 2018): self-attentive sequential recommendation, faithful to
// the original (pmixer/SASRec.pytorch, kang205/SASRec; see ../shared/specs/SASREC.md) with
// the stronger losses of later work: full softmax cross-entropy (SASRec+, Klenitskiy &
// Vasilev 2023), sampled softmax with logQ correction, and gBCE (gSASRec, Petrov &
// Macdonald 2023). Documentation: docs/sasrec.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/feature_embedding.hpp"
#include "models/model_base.hpp"
#include "models/sasrec_net.hpp"
#include "models/sasrec_params.hpp"

namespace seqrec {

class SasrecModel final : public ModelBase {
 public:
  /// Throws InputError for inconsistent hyperparameters (hidden_units % num_heads, ...).
  explicit SasrecModel(const Config& config);
  std::string type() const override { return "sasrec"; }
  /// With ctx.item_features (copied into the model) the model is feature-aware: every item
  /// table row the network uses (input, and output when scoring) is
  ///   E_i = m_i Eid_i + G_i,  G_i = mean feature embedding (models/feature_embedding.hpp),
  /// m_i = 0 for an item without training events (a cold item: its features alone) or for
  /// every item with id_embedding = false, else 1. Docs: docs/sasrec.md#item-features.
  void fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) override;
  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override;
  /// Only the last maxlen items of a history are looked at.
  int32_t context_length() const override { return static_cast<int32_t>(net_.maxlen); }
  /// The output layer: scores = F Eo^T, F the last position's output of the last block.
  DotProductHead dot_product_head() const override;
  void query_vectors(std::span<const std::span<const int32_t>> seqs,
                     std::span<const PrefixQuery> queries, float* out) const override;
  /// Feature-aware: true for an item with features (a cold one is scored by them alone).
  bool scores_untrained_item(int32_t item) const override;
  /// A trained feature-aware model adds items by their features (POST /v1/items).
  bool adds_items() const override { return has_features() && !w_.empty(); }
  /// The item's feature embedding G (its input and output row; it has no id embedding).
  void encode_item(std::span<const int32_t> index, std::span<const float> value, float* row,
                   float* bias) const override;
  void query_vectors_with(std::span<const std::span<const int32_t>> seqs,
                          std::span<const PrefixQuery> queries, const float* extra_rows,
                          int32_t n_extra, float* out) const override;
  void save(TensorWriter& w) const override;
  void load(const TensorReader& r) override;

  /// Whether the model was trained with item features.
  bool has_features() const { return net_.n_features > 0; }
  /// The weights the network runs on: w_ itself for an id-only model; for a feature-aware
  /// one a copy whose item tables hold the effective rows m_i Eid_i + G_i.
  const float* net_weights() const { return has_features() ? eff_.data() : w_.data(); }
  const sasrec::Layout& layout() const { return layout_; }
  /// Recomputes every effective item row from w_ (after changing the weights).
  void refresh_effective();

  /// Mean training loss of every epoch run by the last fit().
  const std::vector<double>& epoch_losses() const { return epoch_losses_; }
  /// Seconds of every epoch of the last fit() (training only, validation excluded).
  const std::vector<double>& epoch_seconds() const { return epoch_seconds_; }
  /// Training positions (target items) of every epoch of the last fit().
  int64_t positions_per_epoch() const { return positions_per_epoch_; }
  const sasrec::NetConfig& net() const { return net_; }
  std::string training_precision() const override { return trained_precision_; }
  const std::vector<float>& weights() const { return w_; }

 private:
  class Trainer;  // its training, behind train::TrainableNet (sasrec.cpp)
  void setup(int32_t n_items);
  /// First position row of a window of n items (n <= maxlen L): L - n for `from_end`
  /// (the newest item on row L-1), 0 for `from_start`.
  int64_t pos_base(int64_t L, int64_t n) const { return positions_from_start_ ? 0 : L - n; }
  bool positions_from_start_ = false;
  SasrecParams params_;  ///< the configuration, typed (read through sasrec_table())
  sasrec::NetConfig net_;
  std::string trained_precision_;  // "fp32"/"bf16" once fit() ran in this process
  sasrec::Layout layout_;
  std::vector<float> w_;
  SparseFeatures X_;        ///< item features as given (saved in the model file)
  featemb::MeanRows fx_;    ///< their mean weights
  std::vector<float> eff_;  ///< net_weights() of a feature-aware model
  std::vector<double> epoch_losses_, epoch_seconds_;
  int64_t positions_per_epoch_ = 0;
};

ModelInfo sasrec_model_info();

}  // namespace seqrec
