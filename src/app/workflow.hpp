// The steps the CLI (and later the compare report and the server) chain together:
// load a prepared split or a plain file, train a model on it, evaluate a model on it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "seqrec/data.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/model.hpp"

namespace seqrec {

/// Reads items.tsv (header "ItemId", one id per line, index order).
Vocab read_item_list(const std::string& path);

/// Which part of a prepared split to use: the final run (train_full -> test) or the
/// validation run (train_tr -> valid).
enum class SplitPart { Test, Valid };

/// Training sequences over a catalogue.
struct TrainData {
  Vocab items;
  SequenceSet train;
  std::string protocol;   ///< from split.json, "" for a plain file
  std::string source;     ///< the file the sequences came from
  nlohmann::json split;   ///< split.json contents (empty for a plain file)
};

/// `path` is a folder written by `seqrec prepare` (items.tsv + train_full.tsv or
/// train_tr.tsv) or a log file (its items form the catalogue).
TrainData load_train_data(const std::string& path, SplitPart part, const ReadOptions& opt);

/// Test sequences mapped onto a model's catalogue.
struct TestData {
  SequenceSet test;
  int64_t dropped_events = 0;  ///< events whose item the model does not know
  std::string protocol;        ///< from split.json, "" for a plain file
  std::string source;
};

/// `path` is a prepared folder (test.tsv or valid.tsv) or a log file.
TestData load_test_data(const std::string& path, SplitPart part, const Vocab& items,
                        const ReadOptions& opt);

/// Trains a model of `type` with `config` and bundles it with its catalogue and metadata.
ModelBundle train_model(const std::string& type, const Config& config, const TrainData& data,
                        const FitContext& ctx);

/// Evaluates a bundle on test data; fills n_skipped_unknown and picks the protocol default
/// from the split when `protocol_set` is false.
EvalResult evaluate_bundle(const ModelBundle& bundle, const TestData& data, EvalOptions opt);

}  // namespace seqrec
