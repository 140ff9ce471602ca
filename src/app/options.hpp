// The option tables of the CLI's subcommands. Each option is declared once here (name,
// check, help; the defaults of the data options are those of the structs in seqrec/data.hpp);
// flags, config files and split.json are read through them. The server's table is in
// app/serve_options.hpp.
#pragma once

#include <string>
#include <vector>

#include "seqrec/config.hpp"
#include "seqrec/data.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/features.hpp"

namespace seqrec {

std::vector<ParamSpec> read_option_specs();      ///< how to read a log file
std::vector<ParamSpec> generate_option_specs();  ///< the synthetic data generator
std::vector<ParamSpec> prepare_option_specs();   ///< preprocessing and splitting
std::vector<ParamSpec> eval_option_specs();      ///< evaluation protocol and metrics
std::vector<ParamSpec> feature_option_specs();   ///< item feature files (train)
/// Validation while an iterative model trains: the watched metric (valid_metric) and the
/// early-stopping patience; one declaration for train, compare and tune, each with its own
/// defaults (train: recall@20, 0 = never stop; compare and tune: the protocol's headline
/// metric, written "", and a patience that stops).
std::vector<ParamSpec> early_stopping_option_specs(const std::string& default_metric = "recall@20",
                                                   int default_patience = 0);
/// `seqrec tune` and `compare --tune`: trials, budget, seed, the sampler and the pruning.
std::vector<ParamSpec> tune_option_specs();

ReadOptions to_read_options(const Config& c);
GenerateOptions to_generate_options(const Config& c);
SessionSplitOptions to_session_split_options(const Config& c);
SequentialSplitOptions to_sequential_split_options(const Config& c);
/// The whole prepare table (protocol, both pipelines); `force` is left false.
PrepareOptions to_prepare_options(const Config& c);
/// `split_protocol` ("session"/"sequential"/"") is used when the option says "auto".
EvalOptions to_eval_options(const Config& c, const std::string& split_protocol);

/// How to read the file of the item_features option (the path itself is not in it).
FeatureReadOptions to_feature_read_options(const Config& c);

/// Appends the specs of `b` to `a` (names must not clash).
std::vector<ParamSpec> concat_specs(std::vector<ParamSpec> a, const std::vector<ParamSpec>& b);

}  // namespace seqrec
