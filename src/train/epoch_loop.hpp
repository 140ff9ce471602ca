// The epoch loop shared by the neural models (GRU4Rec, SASRec): the thread scope, a
// progress bar per epoch with the loss and throughput, NaN/inf detection, validation
// (FitContext::validate), early stopping (FitContext::patience) with best-weight restore,
// checkpoints after every epoch (FitContext::checkpoint) and resume (FitContext::resume).
//
// A model keeps what is its own (the network, its optimiser, its data order and random
// streams) behind the small TrainableNet interface and hands it to EpochLoop::run:
//
//   void MyModel::fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) {
//     train::LoopOptions o;            // model name, epoch budget, units per epoch, ...
//     train::EpochLoop loop(ctx, o);   // sets the thread count first: set up after this
//     MyTrainer t(*this, train, ...);  // a TrainableNet: weights, optimiser, buffers
//     const train::LoopHistory& h = loop.run(t, *this);
//   }
//
// The loop's own bookkeeping (losses, seconds, validation scores, best epoch, epochs since
// the best) is stored in the checkpoint's values under the names of LoopOptions::keys, so
// that each model keeps the field names its checkpoint files have always had.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "seqrec/model.hpp"

namespace seqrec {
class StateReader;  // models/model_base.hpp
}

namespace seqrec::train {

/// What TrainableNet::run_epoch returns.
struct EpochResult {
  double mean_loss = 0.0;  ///< the epoch's training loss, as the model defines its mean
  int64_t units = 0;       ///< units trained (events, sequences): the throughput's numerator
};

/// Handed to TrainableNet::run_epoch: the model reports every optimisation step, and the
/// loop keeps the progress bar (a running mean of the step losses as its note) and stops
/// training with a clear Error when a step's loss or gradient is NaN or infinite.
class EpochProgress {
 public:
  /// `steps_per_epoch` (0 = unknown) only goes into the error message.
  EpochProgress(Progress& bar, std::string model, std::string lr_param, int64_t epoch,
                int64_t steps_per_epoch);
  /// Reports one step: its loss, the units it trained, and whether its gradient is finite
  /// (a model that checks its gradients says so; false counts as a non-finite loss). Call
  /// it before applying the update, so that no NaN reaches the weights. Throws Error
  /// "MODEL: the training loss became NaN at epoch E, step S (try a lower LR_PARAM) ...".
  void step(double loss, int64_t units, bool gradient_finite = true);
  /// Steps reported so far in this epoch.
  int64_t steps() const { return steps_; }

 private:
  Progress& bar_;
  std::string model_, lr_param_;
  int64_t epoch_, steps_per_epoch_, steps_ = 0;
  double loss_sum_ = 0.0;
};

/// A neural model's training, as the epoch loop drives it. Everything the loop does not
/// know about lives here: the weights, the optimiser state, the data order and the
/// random streams. Implementations keep the best weights themselves (keep_best copies
/// them, restore_best puts them back) and write / read their checkpoint state.
class TrainableNet {
 public:
  virtual ~TrainableNet() = default;
  /// Trains one epoch (1-based `epoch`), reporting each step to `progress`.
  virtual EpochResult run_epoch(int64_t epoch, EpochProgress& progress) = 0;
  /// True when every weight is finite (checked after every epoch).
  virtual bool weights_finite() const = 0;
  /// The current weights become the best ones (a validation improved).
  virtual void keep_best() = 0;
  /// Puts the best weights back (called at the end when keep_best or read_state with
  /// `with_best` ran); returns false when they equal the current ones.
  virtual bool restore_best() = 0;
  /// Adds the model's part of the checkpoint after a completed epoch: scalars to `values`
  /// (counters, RNG states), arrays to `tensors` (optimiser moments, data order) and, with
  /// `with_best`, the best weights.
  virtual void write_state(nlohmann::json& values, TensorWriter& tensors, bool with_best) const = 0;
  /// Resumes from a checkpoint: the weights (r.weights()), and whatever write_state wrote
  /// (with the best weights when `with_best`). Everything else must already be set up as
  /// at the start of a fresh run with the same data, configuration and seed.
  virtual void read_state(const StateReader& r, bool with_best) = 0;
};

/// What a model tells the loop.
struct LoopOptions {
  std::string model;            ///< model type, for messages and progress labels
  int64_t epochs = 1;           ///< epoch budget
  std::string epochs_param;     ///< the parameter that set it (resume errors)
  std::string lr_param;         ///< the learning-rate parameter (NaN advice)
  int64_t units_per_epoch = 0;  ///< progress bar total (0 = unknown)
  std::string unit = "events";  ///< what run_epoch counts
  int64_t steps_per_epoch = 0;  ///< for "step S of N" in errors (0 = unknown)
  int64_t validate_every = 1;   ///< validate every this many epochs, and after the last one
};

/// The record of a run (a resumed run includes the epochs before the checkpoint).
struct LoopHistory {
  int epochs_run = 0;  ///< epochs completed
  int best_epoch = 0;  ///< 0 = no validation improved
  double best_score = 0.0;
  bool stopped_early = false;
  std::vector<double> losses, seconds, rates;  ///< per epoch (rates may be short on resume)
  std::vector<double> valid_scores;            ///< per validation
};

/// Runs the epochs of one fit(). Construct it first: the constructor sets the thread
/// count for the rest of fit() (FitContext::threads; 0 = all cores, as for every model).
class EpochLoop {
 public:
  EpochLoop(const FitContext& ctx, LoopOptions options);
  /// Trains `net` (whose weights `model` serves to validate and checkpoint) from epoch 1,
  /// or from where ctx.resume stopped, to the budget or early stopping; then restores the
  /// best weights if a validation chose some. Throws InputError when the checkpoint has
  /// more epochs than the budget, Error when it does not fit or training diverges.
  const LoopHistory& run(TrainableNet& net, const Model& model);
  const LoopHistory& history() const { return h_; }
  /// The options, for values a model knows only after the thread count is set (units and
  /// steps per epoch); change them before run().
  LoopOptions& options() { return o_; }

 private:
  void resume(TrainableNet& net);
  void validate(TrainableNet& net, const Model& model, int64_t epoch);
  void checkpoint(const TrainableNet& net, const Model& model, int64_t epoch) const;

  const FitContext ctx_;  // a copy: the loop may outlive the caller's temporary
  LoopOptions o_;
  ThreadScope threads_;
  LoopHistory h_;
  bool has_best_ = false;
  int since_best_ = 0;
};

}  // namespace seqrec::train
