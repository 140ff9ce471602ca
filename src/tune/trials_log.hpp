// The trials log of `seqrec tune` (OUT/trials.jsonl): one JSON object per line and per
// finished trial, appended (and flushed to disk) as each trial ends, so that a tuning run
// killed at any moment keeps every trial it finished and continues from them when run
// again. docs/tune.md lists the fields.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tune/space.hpp"

namespace seqrec::tune {

/// One finished trial.
struct TrialRecord {
  int number = 0;                             ///< 0-based, in the order the trials ran
  nlohmann::json params;                      ///< {"name": value} of the searched parameters
  std::vector<double> x;                      ///< the same as coordinates of the space
  std::vector<std::pair<int, double>> curve;  ///< (epoch, validation score); epoch 0 = one pass
  double value = 0;    ///< best validation score (NaN when none: a failed trial)
  int best_epoch = 0;  ///< its epoch (0 for a one-pass model)
  int epochs = 0;      ///< epochs trained
  /// "complete" (ran to its epoch budget or early stopping), "pruned" (stopped at a rung),
  /// "stopped" (cut by the time budget) or "failed" (training threw; `error` says why).
  std::string state = "complete";
  double seconds = 0;  ///< wall time of the trial
  std::string error;

  bool pruned() const { return state == "pruned"; }
  bool has_value() const;
  nlohmann::json to_json() const;
  /// Reads a line written by to_json; the coordinates come from the params and `space`.
  /// Throws InputError naming `origin` when it does not fit the space.
  static TrialRecord from_json(const nlohmann::json& j, const SearchSpace& space,
                               const std::string& origin);
};

/// The trials of a log, in order; a last line cut short (a kill while writing) is ignored,
/// any other bad line is an InputError naming the file and line. A missing file: none.
std::vector<TrialRecord> read_trials(const std::string& path, const SearchSpace& space);
/// Appends one trial as a line and flushes it to disk.
void append_trial(const std::string& path, const TrialRecord& t);
/// The index of the best trial: the best complete one, else the best with a value; -1 when
/// no trial has a value.
int best_trial(const std::vector<TrialRecord>& trials);

}  // namespace seqrec::tune
