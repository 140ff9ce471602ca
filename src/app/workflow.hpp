// The steps the CLI and `seqrec compare` chain together: train a model on data loaded by
// load_train_data (seqrec/data.hpp), evaluate a model on data from load_test_data.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "seqrec/data.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/features.hpp"
#include "seqrec/model.hpp"

namespace seqrec {

/// A folder as the user named it, with exactly one trailing slash ("split/" -> "split/",
/// "split" -> "split/"), for messages that print it as a folder.
std::string folder_display(std::string dir);

/// Trains a model of `type` with `config` and bundles it with its catalogue and metadata.
ModelBundle train_model(const std::string& type, const Config& config, const TrainData& data,
                        const FitContext& ctx);

/// A feature file read and aligned to a catalogue.
struct ItemFeatures {
  FeatureTable table;
  SparseFeatures rows;  ///< one row per item of the catalogue
  FeatureAlignment alignment;
  /// What a model file's metadata keeps about them: table.describe() and the alignment.
  nlohmann::json describe() const;
};

/// Whether models of `type` train on item features (--item-features): dssm, and sasrec as
/// its feature-aware option.
bool model_uses_item_features(const std::string& type);

/// Reads `path` and aligns it to `items`; prints the counts (items without features, ids
/// of the file the data lacks) on stderr unless `quiet`. InputError when no id is shared.
ItemFeatures load_item_features(const std::string& path, const FeatureReadOptions& opt,
                                const Vocab& items, bool quiet);

/// Validation after every epoch while a model trains (`seqrec train --monitor`): the
/// valid part of a prepared split, evaluated at one metric and cutoff. Never the test set.
class EpochValidation {
 public:
  /// Reads valid.tsv of the split folder `data` over the catalogue of `train` (the
  /// validation run's training data); `threads` as EvalOptions::threads.
  EpochValidation(const std::string& data, const TrainData& train, MetricAtK metric,
                  const ReadOptions& read, int threads);
  /// The same on validation sequences already over the catalogue of `train`.
  EpochValidation(TestData valid, const TrainData& train, MetricAtK metric, int threads);
  /// Sets ctx.validate: each epoch is evaluated, "epoch N: validation KEY = V" printed on
  /// stderr and {"epoch", "metrics"} appended to `*history`. This object and `*history`
  /// must outlive the training.
  void attach(FitContext& ctx, nlohmann::json* history) const;
  const TestData& data() const { return valid_; }

 private:
  MetricAtK metric_;
  TestData valid_;
  std::vector<int64_t> counts_;
  EvalOptions options_;
};

/// Evaluates a bundle on test data; fills n_skipped_unknown and picks the protocol default
/// from the split when `protocol_set` is false.
EvalResult evaluate_bundle(const ModelBundle& bundle, const TestData& data, EvalOptions opt);

}  // namespace seqrec
