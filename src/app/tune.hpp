// `seqrec tune`: searches a model's parameters on the validation pair of a split (train on
// train_tr, score on valid; the test set is never looked at) with the TPE sampler
// (tune/tpe.hpp) and rung pruning (tune/pruner.hpp), logging every trial as it finishes
// (tune/trials_log.hpp) so that a killed tune continues where it stopped. Writes into the
// output folder: trials.jsonl, best.json (a parameter file for `train --config` and
// `compare --config`), tune_result.json, report.md and its SVG plots. docs/tune.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "seqrec/config.hpp"
#include "tune/space.hpp"
#include "tune/trials_log.hpp"

namespace seqrec {

struct TuneOptions {
  std::string data;         ///< a split folder from `seqrec prepare` (it needs valid.tsv)
  std::string model;        ///< model type
  std::string space_file;   ///< "" = the model's default space (tune/spaces/MODEL.json)
  std::string out_dir;      ///< trials log, best configuration, report
  std::string preset;       ///< the base the trials start from ("" = the model's defaults)
  std::string config_file;  ///< a parameter file applied after the preset ("" = none)
  Config tune_cfg;          ///< tune_option_specs()
  Config stop_cfg;          ///< early_stopping_option_specs() (valid_metric "" = headline)
  Config read_cfg;          ///< read_option_specs()
  int threads = 0;          ///< training and evaluation threads; 0 = all cores
  bool quiet = false;
  std::string command_line;  ///< shown in the report
};

struct TuneResult {
  std::vector<tune::TrialRecord> trials;  ///< every trial of the folder, resumed ones included
  int best = -1;                          ///< index into trials
  nlohmann::json best_params;             ///< the searched parameters of the best trial
  nlohmann::json best_config;             ///< best.json: every parameter of the model
  std::string best_config_path;
  std::string metric;  ///< the validation metric, e.g. "recall@20"
  int resumed = 0;     ///< trials read back from an earlier run
};

/// The default space of a model type (compiled in from tune/spaces/MODEL.json).
tune::SearchSpace default_space(const std::string& model);

/// Runs (or continues) a tuning run. Throws InputError for bad input (no validation split,
/// a bad space file, an output folder holding another tune, a time budget too small for
/// one trial) and Interrupted when interrupted (request_interrupt; the CLI's Ctrl-C): the
/// trials finished so far stay in the log and the report is written for them.
TuneResult run_tune(const TuneOptions& opt);

}  // namespace seqrec
