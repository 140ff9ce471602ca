// Checkpointed training for `seqrec train --checkpoint/--resume`: writes a checkpoint file
// after every epoch, and resumes from one after checking that it belongs to this run
// (model type, configuration, data, seed and validation settings).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "app/workflow.hpp"
#include "io/output_file.hpp"
#include "seqrec/checkpoint.hpp"

namespace seqrec {

struct CheckpointOptions {
  /// Written atomically after every epoch of an iterative model, or once after training
  /// for a single-pass model ("" = no checkpoints).
  std::string path;
  /// Continue from this checkpoint ("" = start afresh).
  std::string resume;
  /// Settings besides the model configuration that decide the result and so must equal
  /// the checkpoint's on resume (seed, the training part, validation and early stopping).
  nlohmann::json run = nlohmann::json::object();
  /// Threads of this run: a resumed run with another count is bit-identical only where
  /// the model's arithmetic does not depend on it, so a difference gets a note.
  int threads = 0;
  bool progress = true;
};

/// Refuses (InputError) runs that would destroy a file, by the rule of every writer
/// (io::check_output): --out or --checkpoint naming one of `inputs` (the data files, the
/// config file) or --out naming the --resume checkpoint; --out naming the same file as
/// --checkpoint; an existing file of another kind under --out (a checkpoint, a log, ...) or
/// --checkpoint (a final model file, a log, ...) unless `force`; --resume naming a final
/// model file; --checkpoint naming something other than a regular file.
void check_train_paths(const std::string& out, const CheckpointOptions& opt,
                       const std::vector<io::NamedPath>& inputs = {}, bool force = false);

/// Identifies training data: {"n_items", "n_sequences", "n_events", "items_hash",
/// "sequences_hash", "times_hash"} (hashes are FNV-1a 64 in hex over the catalogue's ids,
/// the sequences' offsets and items, and the event times).
nlohmann::json data_fingerprint(const Vocab& items, const SequenceSet& seqs);

/// Throws InputError "--resume PATH: ..." naming the first thing that differs between the
/// checkpoint and this run: model type, a configuration parameter (only the epoch budget,
/// n_epochs or num_epochs, may differ, to train for longer), a data field, a run setting.
void check_resume(const Checkpoint& ck, const std::string& type, const Config& config,
                  const nlohmann::json& data, const nlohmann::json& run);

/// train_model with checkpoints. `ctx` may carry a validate callback that appends to
/// `history` (a JSON array, or null): the history is saved in every checkpoint and
/// restored on resume. The bundle's meta records the total training time over every run
/// and, when resumed, the checkpoint and its epoch.
ModelBundle train_model_checkpointed(const std::string& type, const Config& config,
                                     const TrainData& data, FitContext ctx,
                                     const CheckpointOptions& opt, nlohmann::json* history);

}  // namespace seqrec
