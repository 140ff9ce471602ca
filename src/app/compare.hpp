// `seqrec compare`: prepares a data set once, trains every chosen model over several seeds
// (each training in its own child process, so that its peak memory can be measured), and
// evaluates all of them with one protocol on one split. The numbers go to the report
// writer (report/report.hpp).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "seqrec/config.hpp"
#include "seqrec/eval.hpp"

namespace seqrec {

struct CompareOptions {
  /// A log file (prepared here), a folder written by `seqrec prepare`, or a folder holding
  /// an already split data set in GRU4Rec's file naming (*train_full*, *test*, and
  /// optionally *train_tr* and *train_valid*).
  std::string data;
  std::string test_file;          ///< with `data` a training file: its test file (already split)
  std::string out_dir;            ///< the report goes here
  std::string work_dir;           ///< split, model files, configs, logs ("" = out_dir/work)
  std::string protocol = "auto";  ///< auto, session or sequential
  /// Entries "TYPE" or "LABEL=TYPE" (the same type twice with different settings); empty =
  /// the protocol's defaults.
  std::vector<std::string> models;
  std::vector<std::string> presets;  ///< "LABEL=PRESET" ("LABEL=none": no preset)
  std::vector<std::string> configs;  ///< "LABEL=FILE": a model parameter file
  std::vector<std::string> sets;     ///< "LABEL.PARAM=VALUE" (applied last)
  int epochs = 0;                    ///< > 0: the epoch count of every model that has one
  int seeds = 3;                     ///< seeds 1..seeds
  bool curves = true;                ///< learning curves (a validation run per model)
  /// Early stopping (early_stopping_option_specs("", 3)): with patience > 0 every model
  /// that trains in epochs first runs on the validation pair (train_tr -> valid) until its
  /// valid_metric ("" = the headline metric) stopped improving for `patience` validations
  /// or its epoch budget ends; its seed runs then train the full training data for the best
  /// epoch count (docs/compare.md, "Convergence"). patience 0: every seed trains the whole
  /// epoch budget, as before.
  Config stop_cfg;
  /// `--tune N`: every model with parameters to search is tuned first with `seqrec tune`'s
  /// machinery (its default space, N trials; tune_cfg holds the sampler and pruning
  /// settings) on the validation pair, and compared with the best configuration found.
  int tune_trials = 0;
  double tune_seconds = 0;  ///< `--tune-time S`: a wall-time budget per model instead (or too)
  Config tune_cfg;          ///< tune_option_specs() (its trials and time_budget are set here)
  std::string metric;       ///< headline metric NAME@K ("" = protocol default)
  Config read_cfg;          ///< read_option_specs()
  Config prepare_cfg;       ///< prepare_option_specs() (its "protocol" is ignored)
  Config eval_cfg;          ///< eval_option_specs() (its "protocol" is ignored)
  /// feature_option_specs(): with item_features set, the feature file and its reading
  /// options are passed to the training of every model in `feature_models`, or (that empty)
  /// of every model whose type uses item features (dssm, sasrec).
  Config feature_cfg;
  std::vector<std::string> feature_models;  ///< labels (`--features-for`)
  std::string seqrec_binary;  ///< the seqrec executable that trains in child processes
  int threads = 0;            ///< for training (children) and evaluation; 0 = all
  bool quiet = false;
  /// Write into an existing, non-empty out_dir that holds no compare with these arguments
  /// (by default that is refused; a re-run of the same compare continues it), and compare on
  /// a degenerate test set (by default refused before anything trains, as `seqrec prepare`
  /// refuses to write one).
  bool force = false;
  std::string command_line;  ///< shown in the report
};

/// The models compared by default under a protocol ("session" or "sequential").
std::vector<std::string> default_compare_models(const std::string& protocol);
/// The preset a model type is trained with by default under a protocol ("" = none).
std::string default_compare_preset(const std::string& type, const std::string& protocol);
/// The epoch-count parameter a model type declares (ModelInfo::epochs_param; set by
/// --epochs), "" for a one-pass model or an unknown type.
std::string epochs_param(const std::string& type);

/// One training + evaluation of a model.
struct CompareRun {
  int seed = 0;
  EvalResult eval;                   ///< with per-prediction ranks
  double fit_seconds = 0;            ///< Model::fit alone (from the model file's metadata)
  double process_seconds = 0;        ///< the training process: reading, fitting, saving
  int64_t peak_rss_bytes = 0;        ///< the training process's peak RSS (wait4 ru_maxrss)
  int64_t model_bytes = 0;           ///< size of the model file
  std::vector<std::string> command;  ///< the training command line
};

/// Everything measured for one model.
struct CompareModelResult {
  std::string label, type, preset, config_file;
  nlohmann::json config;          ///< every parameter
  nlohmann::json config_changes;  ///< parameters that differ from the type's defaults
  std::vector<CompareRun> runs;
  /// Learning curve: [{"epoch": E, "metrics": {...}}] from a validation run, or null.
  nlohmann::json curve;
  std::string curve_note;  ///< why there is no curve, or how it was made
  std::vector<std::string> curve_command;
  /// How long the model trained and why: {"policy", "epoch_budget", "epochs_run",
  /// "best_epoch", "stopped_early", "still_improving", "final_epochs", "note"}; null for a
  /// one-pass model.
  nlohmann::json convergence;
  /// With --tune: {"trials", "metric", "best_value", "params", "folder"}; null otherwise.
  nlohmann::json tuning;
};

/// The data and the evaluation settings shared by every model.
struct CompareSetup {
  std::string protocol;  ///< "session" or "sequential"
  /// How the protocol was chosen and why, one clause (e.g. "chosen by --protocol auto: 32%
  /// of the 943 sequences ... span more than a day, so they look like user histories").
  std::string protocol_choice;
  /// What preparing the data noticed (split.json stats.detected: the protocol, the time
  /// unit, a forced split), each a sentence naming the flag that changes it.
  nlohmann::json detected = nlohmann::json::array();
  std::string data_name;  ///< short name of the data (the DATA argument's file name)
  std::string data_note;  ///< how the split was obtained, in words
  nlohmann::json split;   ///< split.json of the split used
  std::string split_dir;
  nlohmann::json stats;  ///< per part: sequence_stats
  int32_t n_items = 0;
  EvalOptions eval;                 ///< the protocol every model was evaluated with
  int64_t test_dropped_events = 0;  ///< test events whose item is not in the catalogue
  std::string metric;               ///< headline metric, e.g. "recall@20"
  int seeds = 0;
  int epochs_override = 0;
  int threads = 0;
  std::string command_line;
  std::string seqrec_version;
  /// CPU, its instruction-set level (isa::describe()), logical cores, load average at the start
  nlohmann::json machine;
};

/// Runs the whole comparison and writes the report into opt.out_dir; returns results.json.
nlohmann::json run_compare(const CompareOptions& opt);

}  // namespace seqrec
