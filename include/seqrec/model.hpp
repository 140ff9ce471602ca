// The model interface every recommender implements (baselines, GRU4Rec, SASRec), the
// registry of model types, and the trained-model bundle that a model file holds. What
// training may use and the state it checkpoints are in seqrec/training.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "seqrec/config.hpp"
#include "seqrec/dataset.hpp"
#include "seqrec/tensor_io.hpp"
#include "seqrec/training.hpp"

namespace seqrec {

/// "Score the next item after the first `len` events of sequence `seq`".
struct PrefixQuery {
  int32_t seq = 0;  ///< index into the span of sequences passed to Model::score
  int32_t len = 0;  ///< prefix length, >= 1
};

/// Per-session inference state of a model with incremental inference (GRU4Rec's hidden
/// state). Owned by the caller (the server), one per live session.
class SessionState {
 public:
  virtual ~SessionState() = default;
  virtual std::unique_ptr<SessionState> clone() const = 0;
  /// Memory held, for the server's memory bound.
  virtual size_t bytes() const = 0;
};

/// The output layer of a model whose scores are a dot product of a query vector with one
/// vector per item, plus an optional per-item bias:
///   score(i) = bias[i] + sum_k q[k] * items[i * dim + k]
/// (GRU4Rec: q = the last layer's hidden state, items = Wy, bias = by; SASRec: q = the last
/// position's output, items = the output item embeddings, no bias). A server uses it to score
/// many concurrent requests in one pass over `items` (see src/serve/dot_head.hpp).
struct DotProductHead {
  int32_t dim = 0;               ///< query length; 0 = the model has no such head
  const float* items = nullptr;  ///< n_items() x dim, row-major; owned by the model
  const float* bias = nullptr;   ///< n_items() floats, or nullptr for none
};

/// A next-item recommender over a catalogue of n_items dense item indices.
class Model {
 public:
  virtual ~Model() = default;
  /// Registry name, e.g. "pop", "sr", "vsknn".
  virtual std::string type() const = 0;
  /// The configuration the model was created with (its ParamSpec table filled in).
  virtual const Config& config() const = 0;
  virtual int32_t n_items() const = 0;
  /// Learns from training sequences whose items lie in [0, n_items).
  virtual void fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) = 0;
  /// The arithmetic precision fit() used for its large GEMMs ("fp32" or "bf16"; stored in the
  /// model file's metadata as "precision"), or "" when the model has no such choice or was
  /// not trained in this process.
  virtual std::string training_precision() const { return {}; }
  /// Scores every item for every query: `out` is queries.size() x n_items(), row-major.
  /// Higher is better. Must be thread-safe: the evaluator calls it from several threads.
  virtual void score(std::span<const std::span<const int32_t>> seqs,
                     std::span<const PrefixQuery> queries, float* out) const = 0;
  /// Whether the model can score `item` although it had no training event (a cold item):
  /// from its features (dssm with item features). An id-only model cannot (the default);
  /// the evaluator then reports such targets as "cannot score" instead of metrics.
  virtual bool scores_untrained_item(int32_t item) const {
    (void)item;
    return false;
  }
  /// How many of a session's most recent items the model looks at (0 = all of them). A
  /// caller that keeps session histories may keep only this many.
  virtual int32_t context_length() const { return 0; }
  // Serving capabilities. A model offers incremental inference when new_state() returns a
  // state, and a dot-product output layer when dot_product_head().dim > 0; it then
  // overrides the methods of that capability. The base versions of those methods throw
  // Error naming the model and the missing method: a model that announces a capability
  // and forgets one of its methods fails loudly, never leaves `out` unwritten.

  /// Incremental inference: a fresh state for a new session, or nullptr when the model has
  /// none (callers then keep the item list and call score()).
  virtual std::unique_ptr<SessionState> new_state() const { return nullptr; }
  /// Advances `state` by one event (O(1) in the session length). Thread-safe for distinct
  /// states. Required with new_state().
  virtual void step(SessionState& state, int32_t item) const;
  /// Scores every item after the events stepped so far into out[n_items()]. Required with
  /// new_state().
  virtual void score_state(const SessionState& state, float* out) const;
  /// The model's dot-product output layer, or dim == 0 when it has none. The pointers stay
  /// valid (and the values unchanged) until the model is modified (fit, load).
  virtual DotProductHead dot_product_head() const { return {}; }
  /// For a model with a dot-product head: the query vector of every query into out
  /// (queries.size() x dim, row-major), such that score() equals the head applied to it up
  /// to floating-point rounding. Thread-safe like score(). Required with a head.
  virtual void query_vectors(std::span<const std::span<const int32_t>> seqs,
                             std::span<const PrefixQuery> queries, float* out) const;
  /// For a model with a dot-product head and incremental inference: the query vector
  /// (dim floats) after the events stepped into `state`, consistent with score_state().
  virtual void state_query(const SessionState& state, float* out) const;
  /// Incremental inference: the state as bytes, so that it can be kept outside the process
  /// (a shared session store such as Redis, a snapshot file) and handed to another process
  /// that loaded the same model. The encoding is the model's own, versioned, and holds what
  /// decode_state() needs to refuse a state of another shape. Required with new_state().
  virtual std::string encode_state(const SessionState& state) const;
  /// The state encoded by encode_state(), or nullptr when `bytes` is not a state this model
  /// can continue (another format version, another shape such as a changed hidden size or
  /// number of layers, truncated or non-finite data): the caller then starts a fresh state
  /// (from the session's kept history). Never throws for bad bytes. Encoding and decoding
  /// are exact: a decoded state gives the same scores and next steps as the original.
  /// Required with new_state().
  virtual std::unique_ptr<SessionState> decode_state(std::string_view bytes) const;
  // Items added at run time (POST /v1/items). A model that can map an item's features to
  // its row of the dot-product head returns true from adds_items(); it then overrides the
  // two methods below. Added items get the indices n_items(), n_items() + 1, ... of a
  // server's catalogue; they are never part of score() or the model's own head.
  virtual bool adds_items() const { return false; }
  /// The head row (dot_product_head().dim floats) and bias of a new item described by the
  /// sparse features (index, value) of the model's feature space (sorted by index; indices
  /// outside it are an InputError). The item has no id embedding or other learned
  /// per-item parameter: its features alone decide its vector. Thread-safe.
  virtual void encode_item(std::span<const int32_t> index, std::span<const float> value, float* row,
                           float* bias) const;
  /// query_vectors() for sequences that may hold added items: index n_items() + j is the
  /// item whose head row (from encode_item()) is extra_rows[j * dim, (j + 1) * dim).
  /// Thread-safe like query_vectors().
  virtual void query_vectors_with(std::span<const std::span<const int32_t>> seqs,
                                  std::span<const PrefixQuery> queries, const float* extra_rows,
                                  int32_t n_extra, float* out) const;
  /// Writes the learned state as named tensors (the config travels separately).
  virtual void save(TensorWriter& w) const = 0;
  /// Restores the state written by save(); throws Error on missing/mis-shaped tensors.
  virtual void load(const TensorReader& r) = 0;
};

/// A named set of parameter values (e.g. the official best settings for a data set).
struct Preset {
  std::string name;
  std::string description;
  std::vector<std::pair<std::string, std::string>> values;  ///< (parameter, value)
};

/// A model type known to seqrec.
struct ModelInfo {
  std::string type;         ///< name used on the command line and in model files
  std::string description;  ///< one line for --help
  std::vector<ParamSpec> params;
  std::function<std::unique_ptr<Model>(const Config&)> create;
  std::vector<Preset> presets = {};  ///< applied with `seqrec train --preset NAME`
  /// The parameter that counts training epochs (set by `compare --epochs`); "" for a model
  /// that fits in one pass over the data.
  std::string epochs_param = {};
};

/// Every registered model type, in display order.
const std::vector<ModelInfo>& model_registry();
/// Throws InputError listing the known types when `type` is unknown.
const ModelInfo& find_model(std::string_view type);
/// A Config over the type's ParamSpecs with defaults.
Config default_config(std::string_view type);
/// The type's preset called `name`; throws InputError listing the known ones when absent.
const Preset& find_preset(const ModelInfo& info, const std::string& name);
/// Sets the values of the type's preset `name` in `cfg` (origin "preset NAME"); an unknown
/// name is an InputError listing the type's presets.
void apply_preset(Config& cfg, const ModelInfo& info, const std::string& name);
/// The configuration a user asks for, in this order (later wins): the type's defaults, the
/// preset `preset` (none when empty), the config file `config_file` (none when empty).
/// Flags are applied by the caller afterwards.
Config model_config(const ModelInfo& info, const std::string& preset,
                    const std::string& config_file);
std::unique_ptr<Model> create_model(std::string_view type, const Config& config);

/// A trained model with everything needed to use it on original ids.
struct ModelBundle {
  std::unique_ptr<Model> model;
  Vocab items;                       ///< dense index -> the user's item id
  nlohmann::json meta;               ///< training data statistics, timings, seqrec version, ...
  std::vector<int64_t> item_counts;  ///< training events per item (popularity metrics)
  /// The loaded file's bytes when the bundle came from load_model(): TensorEntry data
  /// pointers point into them (models copy what they need in load(), so this only matters
  /// to code that keeps a TensorReader, and later to memory-mapped loading).
  std::shared_ptr<const void> storage;
};

/// Writes `bundle` to `path` atomically (temporary file + rename).
void save_model(const std::string& path, const ModelBundle& bundle);
/// Reads and validates a model file; throws Error naming the file and the problem.
ModelBundle load_model(const std::string& path);

}  // namespace seqrec
