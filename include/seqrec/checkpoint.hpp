// Training checkpoints: a model file (docs/file-formats.md) that also carries the training
// state of an iterative model after a completed epoch, so that `seqrec train --resume`
// continues a killed run and reaches the same weights as an uninterrupted one.
//
// A checkpoint is a valid model file: its model tensors are the weights at the end of the
// checkpoint's epoch (not the best-so-far ones early stopping keeps), so `seqrec info`,
// `eval` and `recommend` accept it. On top it has a "checkpoint" header object and tensors
// named "train.*" (the TrainingState's arrays), which load_model ignores.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "seqrec/dataset.hpp"
#include "seqrec/model.hpp"

namespace seqrec {

/// A checkpoint read back by load_checkpoint.
struct Checkpoint {
  ModelBundle bundle;   ///< the model at the end of state.epoch, its catalogue and metadata
  TrainingState state;  ///< tensors and weights point into bundle.storage; source = path
  /// The header's "checkpoint" object: "epoch", "stopped_early", "state" (= state.values)
  /// and whatever the writer added (data fingerprint, run settings, elapsed time, ...).
  nlohmann::json info;
};

/// Writes a checkpoint atomically (temporary name, fsync, rename, as save_model): the
/// model's current weights (Model::save), the catalogue, item counts and metadata as in a
/// model file, plus `state` and the caller's `info` object (its keys "epoch",
/// "stopped_early" and "state" are overwritten from `state`).
void save_checkpoint(const std::string& path, const Model& model, const Vocab& items,
                     std::span<const int64_t> item_counts, const nlohmann::json& meta,
                     const TrainingState& state, const nlohmann::json& info);

/// Reads and validates a checkpoint (every check of load_model, then the checkpoint
/// object); throws InputError naming the file when it is a final model file rather than a
/// checkpoint, or when the checkpoint object is malformed.
Checkpoint load_checkpoint(const std::string& path);

/// What the file at `path` is, judged from its header alone (cheap, no checksum):
/// "checkpoint", "model" (a final model file), "" when it is absent, unreadable or not a
/// seqrec model file. For refusing to overwrite one kind with the other.
std::string model_file_kind(const std::string& path);

}  // namespace seqrec
