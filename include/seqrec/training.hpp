// What training a model may use besides the data (FitContext: threads, seed, validation,
// early stopping, checkpoint and resume hooks), and the state an iterative model hands to a
// checkpoint (TrainingState). Kept apart from the serving side of the Model interface
// (seqrec/model.hpp), which includes this header for Model::fit.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "seqrec/dataset.hpp"
#include "seqrec/tensor_io.hpp"

namespace seqrec {

class Model;
struct SparseFeatures;  // seqrec/features.hpp

/// The training state of an iterative model (GRU4Rec, SASRec) after a completed epoch,
/// apart from its current weights (which Model::save writes): everything fit() needs to
/// continue exactly where it stopped, so that training E1 epochs, stopping, and resuming
/// for the rest gives the same weights as one uninterrupted run with the same seed (bit
/// for bit with the same number of threads). Written to and read from checkpoint files
/// (include/seqrec/checkpoint.hpp).
struct TrainingState {
  int64_t epoch = 0;           ///< epochs completed
  bool stopped_early = false;  ///< early stopping ended training after `epoch`
  nlohmann::json values;  ///< the model's scalars: counters, RNG states, validation bookkeeping
  /// The model's arrays (optimiser moments, best-so-far weights, data order). The data
  /// pointers belong to whoever made the state: the model while FitContext::checkpoint
  /// runs, the loaded checkpoint file on resume.
  std::vector<TensorEntry> tensors;
  /// On resume only: the weights at the end of `epoch`, as Model::save wrote them.
  std::vector<TensorEntry> weights;
  std::string source;  ///< where the state came from (a checkpoint path), for messages
};

/// What training may use besides the data.
struct FitContext {
  int threads = 0;  ///< 0 = all cores
  uint64_t seed = 42;
  bool progress = true;                ///< show progress on stderr
  const SequenceSet* valid = nullptr;  ///< optional validation sequences (same vocabulary)
  /// Called by iterative models after every epoch (when set) with the model in its current
  /// state; returns the validation score to maximise (e.g. recall@20), or NaN for none.
  /// The caller (the app layer) owns the protocol, so models stay free of evaluation code.
  std::function<double(const Model&, int epoch)> validate;
  int patience = 0;  ///< stop after this many epochs without improvement (0 = never)
  /// Called by iterative models after every completed epoch (after its validation and the
  /// early-stopping decision) with the model holding the epoch's weights (not the best
  /// ones) and the rest of the training state. The caller persists them (the app layer
  /// writes a checkpoint file); an exception thrown here ends fit() with that exception.
  /// Single-pass models (the baselines) never call it.
  std::function<void(const Model&, const TrainingState&)> checkpoint;
  /// When set, an iterative model continues the training that produced this state
  /// (written by `checkpoint` of a run with the same data, configuration and seed; only
  /// the epoch budget may be larger) instead of starting afresh. Throws Error when the
  /// state does not fit the model. Single-pass models ignore it.
  const TrainingState* resume = nullptr;
  /// Called by iterative models after every completed epoch (after its validation and
  /// checkpoint) with the epoch number and its mean training loss; returning false ends
  /// training after this epoch as if the epoch budget were reached (the best weights are
  /// restored as usual when validation kept some). Single-pass models never call it.
  std::function<bool(int epoch, double mean_loss)> after_epoch;
  /// Item features (seqrec/features.hpp), one row per item index of the training data
  /// (align_features over its Vocab), or null. A model that uses features (dssm) copies
  /// them into itself, so that its model file is self-contained; the others ignore them.
  const SparseFeatures* item_features = nullptr;
};

}  // namespace seqrec
