// SASRec (Kang & McAuley, ICDM 2018): self-attentive sequential recommendation, faithful to
// the original (pmixer/SASRec.pytorch, kang205/SASRec; see ../shared/specs/SASREC.md) with
// the stronger losses of later work: full softmax cross-entropy (SASRec+, Klenitskiy &
// Vasilev 2023), sampled softmax with logQ correction, and gBCE (gSASRec, Petrov &
// Macdonald 2023). Documentation: docs/sasrec.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/model_base.hpp"
#include "models/sasrec_net.hpp"
#include "models/sasrec_params.hpp"

namespace seqrec {

class SasrecModel final : public ModelBase {
 public:
  /// Throws InputError for inconsistent hyperparameters (hidden_units % num_heads, ...).
  explicit SasrecModel(const Config& config);
  std::string type() const override { return "sasrec"; }
  void fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) override;
  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override;
  /// Only the last maxlen items of a history are looked at.
  int32_t context_length() const override { return static_cast<int32_t>(net_.maxlen); }
  /// The output layer: scores = F Eo^T, F the last position's output of the last block.
  DotProductHead dot_product_head() const override;
  void query_vectors(std::span<const std::span<const int32_t>> seqs,
                     std::span<const PrefixQuery> queries, float* out) const override;
  void save(TensorWriter& w) const override;
  void load(const TensorReader& r) override;

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
  std::vector<double> epoch_losses_, epoch_seconds_;
  int64_t positions_per_epoch_ = 0;
};

ModelInfo sasrec_model_info();

}  // namespace seqrec
