// Evaluation protocols and ranking metrics.
//
// Session-based: every next event of every test session is predicted from its prefix,
// the whole catalogue is ranked. Sequential: the last item of each sequence is predicted
// from the rest; full ranking with the user's seen items (other than the target) excluded
// by default, or the papers' sampled variant (always labelled "sampled").
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "seqrec/dataset.hpp"
#include "seqrec/model.hpp"

namespace seqrec {

enum class Protocol { Session, Sequential };
/// How an item scored equal to the target counts. Conservative: rank = #{score >= target}
/// (the target below all ties); standard: 1 + #{score > target}; median: the middle.
enum class TieMode { Conservative, Standard, Median };

/// Which of a sequence's earlier items (the prefix a prediction is made from) leave the
/// ranking: the values of EvalOptions::exclude_seen.
enum ExcludeSeen : int {
  kExcludeSeenDefault = -1,      ///< the protocol's: session none, sequential except-target
  kExcludeSeenNone = 0,          ///< nothing: repeats of earlier items can be predicted
  kExcludeSeenExceptTarget = 1,  ///< every earlier item but the target, which stays rankable
  /// Every earlier item, the target too when it repeats one: such a prediction is a miss
  /// (rank +inf). S3-Rec's released evaluation removes the whole history this way.
  kExcludeSeenAll = 2,
};
/// "auto" -> -1, "none"/"false" -> 0, "except-target"/"true" -> 1, "all" -> 2; else InputError.
int parse_exclude_seen(const std::string& s);
/// "none", "except-target" or "all" for 0, 1, 2 (the mode after the protocol default).
const char* exclude_seen_name(int mode);

Protocol parse_protocol(const std::string& s);
TieMode parse_ties(const std::string& s);
const char* protocol_name(Protocol p);
const char* ties_name(TieMode t);

struct EvalOptions {
  Protocol protocol = Protocol::Session;
  std::vector<int> cutoffs{1, 5, 10, 20};
  TieMode ties = TieMode::Conservative;
  int exclude_seen = kExcludeSeenDefault;  ///< an ExcludeSeen value
  int sampled_negatives = 0;  ///< > 0: rank among this many sampled negatives (sequential)
  uint64_t seed = 42;
  int threads = 0;       ///< 0 = all cores
  int batch_size = 256;  ///< predictions scored per model call
  bool progress = true;
  /// The split's cold items (TestData::cold_items, model indices): with the breakdown, the
  /// metrics of warm and cold targets are reported apart.
  std::vector<int32_t> cold_items;
  /// Metrics by target group (EvalResult::groups): 1 on, 0 off, -1 auto (on when
  /// cold_items is not empty).
  int breakdown = -1;
  /// Also return every prediction's rank (EvalResult::ranks), for per-query analyses such
  /// as paired significance tests. Off by default: the default path stores nothing.
  bool keep_ranks = false;
};

/// Rank of the target among `scores` (size n) under `ties`; entries with mask[i] != 0
/// are ignored (the target itself is never ignored). Returned rank is >= 1; fractional
/// only for the median mode.
double target_rank(std::span<const float> scores, int32_t target, TieMode ties,
                   std::span<const uint8_t> mask = {});

/// Metric sums accumulated over predictions.
struct MetricAccumulator {
  explicit MetricAccumulator(std::vector<int> cutoffs = {});
  void add_rank(double rank);
  void merge(const MetricAccumulator& o);
  std::vector<int> cutoffs;
  int64_t n = 0;
  std::vector<double> hits, rr, ndcg;
};

/// One prediction of a protocol and the rank its target got.
struct QueryRank {
  int32_t seq = 0;     ///< index of the test sequence
  int32_t len = 0;     ///< prefix length the prediction was made from (the history length)
  int32_t target = 0;  ///< the item to predict (model index)
  double rank = 0;     ///< >= 1; fractional only under median ties
};

/// The metrics of one prediction from its rank (one relevant item): Recall/HR@K = [rank <= K],
/// MRR@K = 1/rank, NDCG@K = 1/log2(rank + 1) (both 0 when rank > K). Averaged over
/// predictions they are the metrics of EvalResult.
enum class RankMetric { Recall, Mrr, Ndcg };
double rank_metric(RankMetric m, double rank, int k);
/// "recall", "hr" (= recall), "mrr" or "ndcg"; throws InputError for anything else.
RankMetric parse_rank_metric(const std::string& name);

/// A metric at a cutoff as the user writes it: "recall@20", "hr@10", "mrr@20", "ndcg@10".
struct MetricAtK {
  std::string name;  ///< as written before the '@' ("hr", "recall", ...)
  RankMetric metric = RankMetric::Recall;
  int k = 0;  ///< >= 1
  /// The key of EvalResult::metrics holding it: "recall@K" for hr@K (with one target the
  /// two are equal, and the session protocol reports only recall@K), else "NAME@K".
  std::string result_key() const;
};
/// Parses NAME@K (NAME as parse_rank_metric, K a positive integer); throws InputError
/// whose message starts with `what` (e.g. "--valid-metric") and shows the rule.
MetricAtK parse_metric_at_k(const std::string& text, const std::string& what);

/// The training-frequency groups of the breakdown: a target item with c training events
/// falls in the last group whose lower bound is <= c: 0, 1-4, 5-19, 20-99, 100+.
inline constexpr int64_t kFrequencyGroupStarts[] = {0, 1, 5, 20, 100};
/// "0", "1-4", "5-19", "20-99" or "100+" for group g of kFrequencyGroupStarts.
std::string frequency_group_name(size_t g);

/// The metrics of the predictions whose target belongs to one group.
struct TargetGroup {
  /// "cold_split" (names "warm" and "cold": the split's cold items, prepare --cold-items)
  /// or "train_frequency" (names of frequency_group_name: the target's training events).
  std::string kind;
  std::string name;
  int64_t n_predictions = 0;
  /// Targets without a training event that the model cannot score (an id-only model; see
  /// Model::scores_untrained_item). Their ranks are still counted in the overall metrics.
  int64_t n_unscorable = 0;
  /// False when the group has predictions and the model can score none of their targets:
  /// `metrics` is then empty and reports say "cannot score".
  bool scorable = true;
  std::map<std::string, double> metrics;  ///< recall@K (hr@K), mrr@K, ndcg@K
  /// The expected recall@K and ndcg@K of a uniformly random ranking of the same candidates
  /// (each prediction's catalogue after exclusion, or its sampled negatives): the chance level.
  std::map<std::string, double> chance;
  nlohmann::json to_json() const;
};

struct EvalResult {
  std::string protocol;  ///< "session", "sequential" or "sequential-sampled-100"
  std::string ties;
  bool exclude_seen = false;      ///< some earlier items were excluded (mode not "none")
  std::string exclude_seen_mode;  ///< "none", "except-target" or "all" (exclude_seen_name)
  /// Predictions whose target repeats an item of its own prefix: what except-target keeps
  /// rankable and all turns into misses (counted under every mode).
  int64_t n_repeated_targets = 0;
  int sampled_negatives = 0;
  int64_t n_sequences = 0;
  int64_t n_predictions = 0;
  int64_t n_skipped_unknown = 0;  ///< test events dropped because their item is not known
  double seconds = 0;
  std::map<std::string, double> metrics;  ///< "recall@20", "mrr@20", "ndcg@10", "hr@10",
                                          ///< "coverage@20", "avg_pop@20", ...
  /// With EvalOptions::keep_ranks: one entry per prediction, in a fixed order (test
  /// sequences in order, then prefixes by length), the same for every model evaluated on
  /// the same test set. Not part of to_json().
  std::vector<QueryRank> ranks;
  /// With the breakdown (EvalOptions::breakdown): warm and cold targets (when the split has
  /// cold items), then the training-frequency groups (when training counts were given).
  std::vector<TargetGroup> groups;
  nlohmann::json to_json() const;
};

/// The number of predictions `protocol` makes on `test`: session, every next event (the sum
/// of length - 1); sequential, one per sequence of 2 or more events. evaluate() throws
/// InputError when it is 0.
int64_t count_predictions(const SequenceSet& test, Protocol protocol);

/// Evaluates `model` on `test` (items already mapped to the model's indices).
/// `train_counts` (item -> training events) feeds the average-popularity metric.
EvalResult evaluate(const Model& model, const SequenceSet& test, const EvalOptions& opt,
                    std::span<const int64_t> train_counts);

/// A readable table of several named results, one row per model.
std::string format_results_table(const std::vector<std::pair<std::string, EvalResult>>& rows,
                                 const std::vector<int>& cutoffs);

/// The breakdown of several named results (EvalResult::groups) as a table, one row per
/// model and group: predictions, recall/HR@K and NDCG@K, the chance level, and "cannot
/// score" for a group the model cannot score. "" when no result has groups.
std::string format_groups_table(const std::vector<std::pair<std::string, EvalResult>>& rows,
                                const std::vector<int>& cutoffs);

}  // namespace seqrec
