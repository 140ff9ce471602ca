// Approximate top-K retrieval through an ANN index (hnswlib's HNSW graph) for models with a
// dot-product output layer (GRU4Rec, SASRec, DSSM): `seqrec serve --retrieval ann` and
// `seqrec eval --retrieval ann`. docs/performance.md#approximate-retrieval-ann describes the
// method, the parameters and the measured recall.
//
// Method. score(i) = <q, v_i> + b_i is a maximum inner product: with u_i = [v_i, b_i] and
// q' = [q, 1], score(i) = <q', u_i>, so the bias is part of the search. The index is an HNSW
// graph searched with the inner product itself as the similarity (hnswlib's
// InnerProductSpace, distance 1 - <.,.>), but built as an L2 graph: each item is linked to
// its Euclidean neighbours after the reduction of inner product to L2 search, x_i = [u_i,
// sqrt(R^2 - |u_i|^2)] with R the largest |u_i| (for the query [q', 0], |y - x_i|^2 =
// |q'|^2 + R^2 - 2 score(i): the same order as the inner product). A graph linked by the
// inner product itself is better on unstructured random vectors (recall@20 0.98 against
// 0.83, 20k items, d = 32) but fails on the output layers of trained models, whose item
// norms vary: items of large norm become everyone's nearest neighbours and the others hard
// to reach (GRU4Rec on rsc15-100k: recall@20 0.92, and 0.95 at ef_search 512); see
// docs/performance.md#approximate-retrieval-ann.
// The index returns candidates, every candidate is rescored exactly (the exact score of the
// int8/fp32 head), and the request's filters and K are applied to them exactly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "seqrec/config.hpp"
#include "seqrec/dataset.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/model.hpp"

namespace seqrec {

/// How top-K lists are retrieved, and the ANN index's parameters. The ranges are those of
/// ann_option_specs().
struct AnnOptions {
  /// false: every item scored (exact). true: candidates from the index, rescored exactly.
  bool enabled = false;
  /// HNSW graph degree (links per node; level 0 has 2M).
  int32_t m = 16;
  /// Candidate list size while building: higher = better graph, slower build.
  int32_t ef_construction = 200;
  /// Candidate list size while searching (at least the candidates asked for).
  int32_t ef_search = 128;
  /// Candidates asked of the index per request: this many times (K + excluded + forbidden
  /// items), at least ef_search; all rescored exactly.
  int32_t candidates = 4;
  /// A catalogue with fewer items is scored exactly (with a notice): the index would not
  /// be faster than one pass over it.
  int32_t min_items = 10000;
  /// "" = build the index at load and keep it in memory only. A path: read the index from
  /// it when it exists (refused with InputError when it is damaged, truncated, of another
  /// format version, of another model or built with other M / ef_construction), else build
  /// it and write it there.
  std::string index_file;
};

/// The parameter table of AnnOptions (flags of `seqrec serve` and `seqrec eval`): retrieval
/// ("exact" or "ann"), ann_m, ann_ef_construction, ann_ef_search, ann_candidates,
/// ann_min_items, ann_index.
std::vector<ParamSpec> ann_option_specs();
/// AnnOptions with the values of `c` (a Config holding ann_option_specs()).
AnnOptions to_ann_options(const Config& c);
/// InputError naming `where` and the field when a value is out of the table's range.
void check_ann_options(const AnnOptions& o, const std::string& where);

/// What `seqrec eval --retrieval ann` measures: for every prediction of the protocol, the
/// top-`cutoff` list by exact scoring (every item) and through the index (candidates
/// rescored exactly), with the protocol's exclusions applied to both.
struct AnnEvalResult {
  int32_t cutoff = 20;
  int64_t predictions = 0;
  /// Mean over predictions of |ANN top-N ∩ exact top-N| / |exact top-N|.
  double list_recall = 0.0;
  /// Recall@N and MRR@N of the target in each list (list position = rank).
  double recall_exact = 0.0, mrr_exact = 0.0, recall_ann = 0.0, mrr_ann = 0.0;
  /// Whether the index was used (false: the catalogue is below min_items; both lists exact).
  bool used_index = false;
  std::string notice;  ///< why not, when not
  double build_seconds = 0.0, exact_seconds = 0.0, ann_seconds = 0.0;
  int64_t index_bytes = 0;
  nlohmann::json to_json() const;
};

/// Runs the measurement on `test` (session protocol: every next event from its prefix;
/// sequential: each sequence's last item from the rest). `exclude_seen` is an ExcludeSeen
/// value after the protocol's default. InputError when the model has no dot-product
/// output layer.
AnnEvalResult evaluate_ann(const ModelBundle& bundle, const SequenceSet& test, Protocol protocol,
                           int exclude_seen, const AnnOptions& ann, int32_t cutoff = 20,
                           bool progress = false);

}  // namespace seqrec
