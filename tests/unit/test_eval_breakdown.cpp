// The evaluator's breakdown by target (EvalOptions::breakdown): warm and cold targets of a
// cold-start split, training-frequency groups, "cannot score" for a model that knows items
// by id only, and the chance level, on a hand-made example with known ranks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"

using namespace seqrec;

namespace {

/// 5 items scored [0.5, 0.4, 0.3, 0.2, 0.1] whatever the prefix: item i has rank i + 1
/// before any exclusion.
class FixedModel : public Model {
 public:
  explicit FixedModel(bool untrained) : untrained_(untrained) {}
  std::string type() const override { return "fixed"; }
  const Config& config() const override { return config_; }
  int32_t n_items() const override { return 5; }
  void fit(const SequenceSet&, int32_t, const FitContext&) override {}
  void score(std::span<const std::span<const int32_t>>, std::span<const PrefixQuery> queries,
             float* out) const override {
    for (size_t q = 0; q < queries.size(); ++q)
      for (int i = 0; i < 5; ++i) out[q * 5 + static_cast<size_t>(i)] = 0.5f - 0.1f * i;
  }
  bool scores_untrained_item(int32_t) const override { return untrained_; }
  void save(TensorWriter&) const override {}
  void load(const TensorReader&) override {}

 private:
  bool untrained_;
  Config config_;
};

/// Sequences (target last): 1->0 (rank 1), 0->2 (rank 3), 0->4 (rank 5), 0->3 (rank 4).
SequenceSet test_set() {
  SequenceSet s;
  const std::vector<std::vector<int32_t>> seqs{{1, 0}, {0, 2}, {0, 4}, {0, 3}};
  for (size_t i = 0; i < seqs.size(); ++i) s.push("u" + std::to_string(i), seqs[i]);
  return s;
}

// Training events per item: item 2 is warm but never trained on, item 4 is cold.
const std::vector<int64_t> kCounts{120, 7, 0, 2, 0};

EvalOptions options() {
  EvalOptions o;
  o.protocol = Protocol::Sequential;
  o.exclude_seen = kExcludeSeenNone;
  o.cutoffs = {1, 5};
  o.cold_items = {4};
  o.progress = false;
  o.threads = 1;
  return o;
}

const TargetGroup& group(const EvalResult& r, const std::string& name) {
  for (const auto& g : r.groups)
    if (g.name == name) return g;
  throw Error("no group " + name);
}

double ndcg(double rank) {
  return 1.0 / std::log2(rank + 1.0);
}

}  // namespace

TEST(EvalBreakdown, WarmColdAndFrequencyGroupsOfAnIdOnlyModel) {
  const EvalResult r = evaluate(FixedModel(false), test_set(), options(), kCounts);
  ASSERT_EQ(r.groups.size(), 2u + std::size(kFrequencyGroupStarts));
  EXPECT_EQ(r.groups[0].kind, "cold_split");
  EXPECT_EQ(r.groups[2].kind, "train_frequency");
  // Warm: targets 0, 2, 3 at ranks 1, 3, 4; item 2 has no training event.
  const TargetGroup& warm = group(r, "warm");
  EXPECT_EQ(warm.n_predictions, 3);
  EXPECT_EQ(warm.n_unscorable, 1);
  EXPECT_TRUE(warm.scorable);
  EXPECT_NEAR(warm.metrics.at("recall@1"), 1.0 / 3, 1e-12);
  EXPECT_NEAR(warm.metrics.at("hr@5"), 1.0, 1e-12);
  EXPECT_NEAR(warm.metrics.at("ndcg@5"), (ndcg(1) + ndcg(3) + ndcg(4)) / 3, 1e-12);
  EXPECT_NEAR(warm.metrics.at("mrr@5"), (1 + 1.0 / 3 + 1.0 / 4) / 3, 1e-12);
  // Cold: the id-only model cannot score item 4: no metrics, only the chance level.
  const TargetGroup& cold = group(r, "cold");
  EXPECT_EQ(cold.n_predictions, 1);
  EXPECT_FALSE(cold.scorable);
  EXPECT_TRUE(cold.metrics.empty());
  EXPECT_NEAR(cold.chance.at("recall@1"), 1.0 / 5, 1e-12);
  EXPECT_NEAR(cold.chance.at("recall@5"), 1.0, 1e-12);
  EXPECT_NEAR(cold.chance.at("ndcg@1"), 1.0 / 5, 1e-12);
  // Frequency: "0" holds targets 2 and 4 (neither scorable), "1-4" target 3 (rank 4),
  // "100+" target 0 (rank 1), the others nothing.
  EXPECT_EQ(group(r, "0").n_predictions, 2);
  EXPECT_FALSE(group(r, "0").scorable);
  EXPECT_EQ(group(r, "1-4").n_predictions, 1);
  EXPECT_NEAR(group(r, "1-4").metrics.at("recall@1"), 0.0, 1e-12);
  EXPECT_NEAR(group(r, "1-4").metrics.at("ndcg@5"), ndcg(4), 1e-12);
  EXPECT_EQ(group(r, "5-19").n_predictions, 0);
  EXPECT_EQ(group(r, "20-99").n_predictions, 0);
  EXPECT_NEAR(group(r, "100+").metrics.at("recall@1"), 1.0, 1e-12);
  // The overall metrics still count every prediction.
  EXPECT_EQ(r.n_predictions, 4);
  EXPECT_NEAR(r.metrics.at("recall@1"), 0.25, 1e-12);
  // JSON and table say "cannot score".
  const auto j = r.to_json();
  ASSERT_TRUE(j.contains("groups"));
  EXPECT_TRUE(j["groups"][1]["metrics"].is_null());
  EXPECT_TRUE(j["groups"][1].contains("cannot_score"));
  const std::string table = format_groups_table({{"fixed", r}}, {1, 5});
  EXPECT_NE(table.find("cannot score"), std::string::npos) << table;
  EXPECT_NE(table.find("train events 1-4"), std::string::npos) << table;
}

TEST(EvalBreakdown, AFeatureModelScoresColdTargets) {
  const EvalResult r = evaluate(FixedModel(true), test_set(), options(), kCounts);
  const TargetGroup& cold = group(r, "cold");
  EXPECT_TRUE(cold.scorable);
  EXPECT_EQ(cold.n_unscorable, 0);
  EXPECT_NEAR(cold.metrics.at("recall@1"), 0.0, 1e-12);
  EXPECT_NEAR(cold.metrics.at("ndcg@5"), ndcg(5), 1e-12);
  EXPECT_TRUE(group(r, "0").scorable);
}

TEST(EvalBreakdown, ChanceCountsTheCandidatesLeftAfterExclusion) {
  EvalOptions o = options();
  o.exclude_seen = kExcludeSeenExceptTarget;  // item 0 of each history leaves the ranking
  const EvalResult r = evaluate(FixedModel(true), test_set(), o, kCounts);
  const TargetGroup& cold = group(r, "cold");
  EXPECT_NEAR(cold.chance.at("recall@1"), 1.0 / 4, 1e-12);
  EXPECT_NEAR(cold.metrics.at("recall@5"), 1.0, 1e-12);  // item 4 now has rank 4
  EXPECT_NEAR(cold.metrics.at("ndcg@5"), ndcg(4), 1e-12);
}

TEST(EvalBreakdown, AutoIsOffWithoutColdItemsAndOnDemandGivesFrequencyOnly) {
  EvalOptions o = options();
  o.cold_items.clear();
  EXPECT_TRUE(evaluate(FixedModel(false), test_set(), o, kCounts).groups.empty());
  o.breakdown = 1;
  const EvalResult r = evaluate(FixedModel(false), test_set(), o, kCounts);
  ASSERT_EQ(r.groups.size(), std::size(kFrequencyGroupStarts));
  EXPECT_EQ(r.groups.front().name, "0");
  EXPECT_EQ(r.groups.back().name, "100+");
  EXPECT_EQ(frequency_group_name(1), "1-4");
}
