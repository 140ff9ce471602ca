// The ANN index behind `--retrieval ann` (seqrec/ann.hpp describes the method): hnswlib's
// HNSW graph over the items' augmented vectors, searched for candidates that the caller
// rescores exactly. Why hnswlib rather than faiss: docs/performance.md#approximate-retrieval-ann.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "seqrec/ann.hpp"
#include "serve/dot_head.hpp"
#include "serve/topk.hpp"

namespace seqrec::serve {

class AnnIndex {
 public:
  /// Builds the index over n items: items is n x dim row-major, bias n floats or nullptr.
  /// InputError for options out of range, n < 1 or dim < 1, or a non-finite weight.
  /// `threads` builders insert in parallel (0 = OpenMP's default).
  AnnIndex(const float* items, const float* bias, int32_t n, int32_t dim, const AnnOptions& o,
           int threads = 0);
  ~AnnIndex();
  AnnIndex(const AnnIndex&) = delete;
  AnnIndex& operator=(const AnnIndex&) = delete;

  /// Reads an index written by save() for the model with fingerprint `model_fp`, whose
  /// head has n items of `dim`. InputError naming the file for a damaged, truncated or
  /// foreign file, another format version, another model (fingerprint), another catalogue
  /// size or dimension, or another graph / M / ef_construction than `o` asks for. IoError when it
  /// cannot be read. ef_search and candidates come from `o`.
  static std::unique_ptr<AnnIndex> load(const std::string& path, uint64_t model_fp, int32_t n,
                                        int32_t dim, const AnnOptions& o);
  /// Writes the index to `path` atomically, tied to `model_fp`. Layout (little-endian):
  /// "SQRCANN\0", version u32 (2), reserved u32, model fingerprint u64, items u64, dim u32,
  /// M u32, ef_construction u32, graph u32 (0 ip, 1 l2), R = the largest |[v_i, b_i]| (f64),
  /// payload size u64, payload (hnswlib's own serialisation), FNV-1a 64 of everything before,
  /// "SQRCEND\0".
  void save(const std::string& path, uint64_t model_fp) const;

  /// Up to `count` candidate item indices for query q (dim floats), best first by the
  /// index's approximate order, into `out`. Thread-safe (shared with other searches).
  void search(const float* q, int32_t count, std::vector<int32_t>& out) const;

  /// Adds one item (the next index, n_items()) with its output vector (dim floats) and bias,
  /// for items added to the catalogue at run time (POST /v1/items): the caller appends the
  /// item to the head first, then here (until then, ann_top_k() skips indices the head does
  /// not have). Takes the index's exclusive lock (waits for searches in flight); the graph
  /// grows by 1/8 when full. InputError when the vector or bias is not finite.
  void add(const float* vec, float bias);

  /// Changes the search-time parameters (ef_search, candidates) of a built or loaded index,
  /// for tuning sweeps (bench/ann_bench_main.cc) without a rebuild. InputError when out of
  /// the table's range. Call it while no search runs: ann_top_k() reads options() unlocked.
  void set_search_options(int32_t ef_search, int32_t candidates);

  int32_t n_items() const;
  int32_t dim() const { return dim_; }
  /// Approximate bytes held (vectors and links).
  int64_t bytes() const;
  const AnnOptions& options() const { return opt_; }

 private:
  AnnIndex() = default;
  void augment(const float* v, float b, float* out) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  AnnOptions opt_;
  int32_t dim_ = 0, padded_ = 0;
  bool l2_ = false;     // the graph links L2 neighbours of [v, b, sqrt(R^2 - |[v, b]|^2)]
  double bound_ = 0.0;  // R
  mutable std::shared_mutex mu_;
};

/// The index for a model's head per `o`: read from o.index_file when that exists (InputError
/// when it does not match, see AnnIndex::load), else built (and written to o.index_file when
/// that is set). A file that holds the index of the model `replaced_fp` (non-zero: the model
/// this one replaces at a reload) is stale, not foreign: it is rebuilt for this model and
/// written over. `source` (optional) receives "file", "built" or "rebuilt".
std::unique_ptr<AnnIndex> obtain_ann_index(const DotProductHead& head, int32_t n, uint64_t model_fp,
                                           const AnnOptions& o, std::string* source = nullptr,
                                           uint64_t replaced_fp = 0);

/// The model fingerprint stored in an ANN index file; nullopt when the file cannot be read
/// or is not a complete, intact index of this format.
std::optional<uint64_t> ann_index_file_fingerprint(const std::string& path);

/// Buffers of ann_top_k(), reused across calls.
struct AnnScratch {
  std::vector<int32_t> cand, excl;
  std::vector<float> scores;
  std::vector<int32_t> local;  // candidates among the added items, local indices
};

/// The top k of query q as the ANN path finds it: candidates from `index` (o.candidates x
/// (k + excluded + forbidden), at least o.ef_search), rescored exactly through `head`, the
/// filter applied exactly (its allow-list is not supported: score an allow-list with
/// PackedDotHead::top_k_among), best first, equal scores by ascending index. When fewer than
/// k eligible candidates remain, more are asked for (x4, twice); if still fewer, returns
/// false and `out` is unspecified (the caller scores exactly). Also false for a non-finite
/// query. `rescored` (optional) is increased by the items scored exactly.
/// `added` (optional): the head of the items added at run time, whose indices follow
/// head's (head.n_items() + j is its item j); index items beyond both are skipped.
bool ann_top_k(const AnnIndex& index, const PackedDotHead& head, const float* q, int32_t k,
               const TopKFilter& filter, AnnScratch& sc,
               std::vector<std::pair<int32_t, float>>& out, int64_t* rescored = nullptr,
               const PackedDotHead* added = nullptr);

}  // namespace seqrec::serve
