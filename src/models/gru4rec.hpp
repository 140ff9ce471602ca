// GRU4Rec (Hidasi et al. 2016, Hidasi & Karatzoglou 2018), faithful to the official
// PyTorch implementation: see docs/gru4rec.md and ../shared/specs/GRU4REC.md.
//
// Besides the Model interface, the class offers an incremental API for serving: a session
// state advanced one event at a time (O(1) per event) and scored on demand.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "models/gru4rec_net.hpp"
#include "models/model_base.hpp"

namespace seqrec {

/// The parameter table of the gru4rec type (names and meaning as the official code), each
/// entry bound to its member of Gru4recParams.
const ParamTable<Gru4recParams>& gru4rec_table();
/// Its specs (what `seqrec models` lists and the CLI turns into flags).
std::vector<ParamSpec> gru4rec_params();
/// Every parameter at its default.
Gru4recParams gru4rec_defaults();
/// The official best settings (spec §11) as presets.
std::vector<Preset> gru4rec_presets();
/// The typed parameters of a gru4rec Config (ranges were checked when values were set).
Gru4recParams parse_gru4rec_config(const Config& c);

class Gru4recModel final : public ModelBase {
 public:
  explicit Gru4recModel(const Config& config);
  std::string type() const override { return "gru4rec"; }
  void fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) override;
  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override;
  void save(TensorWriter& w) const override;
  void load(const TensorReader& r) override;

  /// Running state of one session: the hidden state of every layer.
  struct State {
    std::vector<std::vector<float>> h;
    int64_t length = 0;  ///< events consumed
  };
  /// The state of an empty session (all zeros).
  State init_state() const;
  /// Consumes one event (item index in [0, n_items)); throws InputError otherwise.
  void step(State& s, int32_t item) const;
  /// Scores of every item (n_items floats) for the next event of the session.
  void score_state(const State& s, float* out) const;

  /// The generic incremental interface of Model (used by the server): the same state
  /// wrapped in a SessionState.
  std::unique_ptr<SessionState> new_state() const override;
  void step(SessionState& state, int32_t item) const override;
  void score_state(const SessionState& state, float* out) const override;
  /// The output layer: scores = By + h Wy^T, h the last layer's hidden state.
  DotProductHead dot_product_head() const override;
  void query_vectors(std::span<const std::span<const int32_t>> seqs,
                     std::span<const PrefixQuery> queries, float* out) const override;
  void state_query(const SessionState& state, float* out) const override;
  /// The state as bytes: "G4RS", format version (u32), number of layers (u32), each layer's
  /// size (u32), events consumed (i64), then every layer's hidden vector (float32), all
  /// little-endian. decode_state() refuses another version, another layer count or size,
  /// a wrong length and non-finite values (nullptr).
  std::string encode_state(const SessionState& state) const override;
  std::unique_ptr<SessionState> decode_state(std::string_view bytes) const override;

  const Gru4recParams& params() const { return params_; }
  const Gru4recNet& net() const { return net_; }
  /// Statistics of the last fit (epochs run, best epoch, loss per epoch, events/s).
  struct FitStats {
    int epochs_run = 0, best_epoch = 0;
    std::vector<double> epoch_loss, epoch_seconds, epoch_events_per_s, valid_score;
  };
  const FitStats& fit_stats() const { return stats_; }
  std::string training_precision() const override { return trained_precision_; }

 private:
  Gru4recParams params_;
  Gru4recNet net_;
  FitStats stats_;
  std::string trained_precision_;  // "fp32"/"bf16" once fit() ran in this process
};

}  // namespace seqrec
