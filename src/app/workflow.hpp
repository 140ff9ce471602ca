// The steps the CLI and `seqrec compare` chain together: train a model on data loaded by
// load_train_data (seqrec/data.hpp), evaluate a model on data from load_test_data.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "seqrec/data.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/model.hpp"

namespace seqrec {

/// A folder as the user named it, with exactly one trailing slash ("split/" -> "split/",
/// "split" -> "split/"), for messages that print it as a folder.
std::string folder_display(std::string dir);

/// Trains a model of `type` with `config` and bundles it with its catalogue and metadata.
ModelBundle train_model(const std::string& type, const Config& config, const TrainData& data,
                        const FitContext& ctx);

/// Evaluates a bundle on test data; fills n_skipped_unknown and picks the protocol default
/// from the split when `protocol_set` is false.
EvalResult evaluate_bundle(const ModelBundle& bundle, const TestData& data, EvalOptions opt);

}  // namespace seqrec
