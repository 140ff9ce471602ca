// evaluate() end to end with fake models whose scores are fixed tables, so that every
// metric can be computed by hand.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"

using namespace seqrec;

namespace {

/// Scores from a function of the prefix (the first `len` items of the query's sequence).
class FakeModel : public Model {
 public:
  using ScoreFn = std::function<void(std::span<const int32_t> prefix, float* row)>;
  FakeModel(int32_t n_items, ScoreFn fn) : n_items_(n_items), fn_(std::move(fn)) {}
  std::string type() const override { return "fake"; }
  const Config& config() const override { return config_; }
  int32_t n_items() const override { return n_items_; }
  void fit(const SequenceSet&, int32_t, const FitContext&) override {}
  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override {
    for (size_t q = 0; q < queries.size(); ++q) {
      const auto& s = seqs[static_cast<size_t>(queries[q].seq)];
      // The evaluator cuts spans at the longest prefix it asks for: never longer.
      if (static_cast<size_t>(queries[q].len) > s.size()) bad_span = true;
      fn_(s.first(static_cast<size_t>(queries[q].len)), out + q * static_cast<size_t>(n_items_));
    }
    calls += 1;
  }
  void save(TensorWriter&) const override { throw Error("FakeModel cannot be saved"); }
  void load(const TensorReader&) override { throw Error("FakeModel cannot be loaded"); }

  mutable std::atomic<bool> bad_span{false};
  mutable std::atomic<int> calls{0};

 private:
  int32_t n_items_;
  ScoreFn fn_;
  Config config_;
};

/// 5 items; the row depends on the last item of the prefix only.
///   last 0: [0.0, 0.9, 0.5, 0.5, 0.1]
///   last 1: [0.3, 0.0, 0.8, 0.2, 0.8]
///   last 2: [0.7, 0.7, 0.7, 0.1, 0.2]
///   last 3, 4: all 0
FakeModel table_model() {
  return FakeModel(5, [](std::span<const int32_t> prefix, float* row) {
    static const float table[5][5] = {{0.0f, 0.9f, 0.5f, 0.5f, 0.1f},
                                      {0.3f, 0.0f, 0.8f, 0.2f, 0.8f},
                                      {0.7f, 0.7f, 0.7f, 0.1f, 0.2f},
                                      {0, 0, 0, 0, 0},
                                      {0, 0, 0, 0, 0}};
    for (int i = 0; i < 5; ++i) row[i] = table[prefix.back()][i];
  });
}

/// A = [0, 1, 2, 0], B = [3] (too short: no prediction), C = [2, 4].
SequenceSet table_test() {
  SequenceSet s;
  s.push("A", std::vector<int32_t>{0, 1, 2, 0});
  s.push("B", std::vector<int32_t>{3});
  s.push("C", std::vector<int32_t>{2, 4});
  return s;
}

EvalOptions quiet(Protocol p, std::vector<int> cutoffs) {
  EvalOptions o;
  o.protocol = p;
  o.cutoffs = std::move(cutoffs);
  o.progress = false;
  return o;
}

// Session queries of table_test() (full ranking, nothing excluded):
//   A len1: prefix [0],     target 1, row "last 0", t = 0.9: #> 0, #= 1
//   A len2: prefix [0,1],   target 2, row "last 1", t = 0.8: #> 0, #= 2 (items 2, 4)
//   A len3: prefix [0,1,2], target 0, row "last 2", t = 0.7: #> 0, #= 3 (items 0, 1, 2)
//   C len1: prefix [2],     target 4, row "last 2", t = 0.2: #> 3, #= 1
// Ranks: conservative 1, 2, 3, 4; standard 1, 1, 1, 4; median 1, 1.5, 2, 4.
TEST(EvalSession, ConservativeHandComputed) {
  FakeModel m = table_model();
  const std::vector<int64_t> counts{10, 5, 0, 20, 2};
  auto r = evaluate(m, table_test(), quiet(Protocol::Session, {1, 2, 5}), counts);
  EXPECT_EQ(r.protocol, "session");
  EXPECT_EQ(r.ties, "conservative");
  EXPECT_FALSE(r.exclude_seen);
  EXPECT_EQ(r.n_predictions, 4);
  EXPECT_EQ(r.n_sequences, 2);
  EXPECT_FALSE(m.bad_span);
  // recall@1 = 1/4, @2 = 2/4, @5 = 4/4.
  EXPECT_DOUBLE_EQ(r.metrics.at("recall@1"), 0.25);
  EXPECT_DOUBLE_EQ(r.metrics.at("recall@2"), 0.5);
  EXPECT_DOUBLE_EQ(r.metrics.at("recall@5"), 1.0);
  // mrr@1 = 1/4; mrr@2 = (1 + 1/2)/4 = 0.375; mrr@5 = (1 + 1/2 + 1/3 + 1/4)/4 = 25/48.
  EXPECT_DOUBLE_EQ(r.metrics.at("mrr@1"), 0.25);
  EXPECT_DOUBLE_EQ(r.metrics.at("mrr@2"), 0.375);
  EXPECT_NEAR(r.metrics.at("mrr@5"), 25.0 / 48.0, 1e-12);
  // ndcg@2 = (1 + 1/log2 3)/4; ndcg@5 = (1 + 1/log2 3 + 1/2 + 1/log2 5)/4 = 2.5616063/4.
  EXPECT_NEAR(r.metrics.at("ndcg@2"), (1 + 1 / std::log2(3.0)) / 4, 1e-12);
  EXPECT_NEAR(r.metrics.at("ndcg@5"), 2.5616063116 / 4, 1e-9);
  EXPECT_EQ(r.metrics.count("hr@5"), 0u);  // hr only in the sequential protocols

  // Top lists (ties by lower index): row "last 0": 1, 2 (0.5 tie with 3); "last 1": 2, 4;
  // "last 2": 0, 1 (twice). coverage@1 = |{1, 2, 0}|/5 = 0.6; @2 = |{1,2,4,0}|/5 = 0.8;
  // @5 = every item appears in some top-5 = 1.
  EXPECT_DOUBLE_EQ(r.metrics.at("coverage@1"), 0.6);
  EXPECT_DOUBLE_EQ(r.metrics.at("coverage@2"), 0.8);
  EXPECT_DOUBLE_EQ(r.metrics.at("coverage@5"), 1.0);
  // pop = count / max(count) = [0.5, 0.25, 0, 1, 0.1].
  // avg_pop@1 = (0.25 + 0 + 0.5 + 0.5)/4 = 0.3125.
  // avg_pop@2 = ((0.25+0)/2 + (0+0.1)/2 + (0.5+0.25)/2 * 2)/4 = 0.925/4 = 0.23125.
  // avg_pop@5 = mean popularity of all items = 1.85/5 = 0.37 for every row.
  EXPECT_NEAR(r.metrics.at("avg_pop@1"), 0.3125, 1e-12);
  EXPECT_NEAR(r.metrics.at("avg_pop@2"), 0.23125, 1e-12);
  EXPECT_NEAR(r.metrics.at("avg_pop@5"), 0.37, 1e-12);
}

TEST(EvalSession, StandardAndMedianTies) {
  FakeModel m = table_model();
  auto o = quiet(Protocol::Session, {1, 2, 5});
  o.ties = TieMode::Standard;
  // Standard ranks 1, 1, 1, 4: recall@1 = 3/4, mrr@5 = (3 + 1/4)/4 = 0.8125.
  auto r = evaluate(m, table_test(), o, {});
  EXPECT_EQ(r.ties, "standard");
  EXPECT_DOUBLE_EQ(r.metrics.at("recall@1"), 0.75);
  EXPECT_DOUBLE_EQ(r.metrics.at("mrr@5"), 0.8125);
  EXPECT_EQ(r.metrics.count("avg_pop@5"), 0u);  // no training counts: no avg_pop
  // Median ranks 1, 1.5, 2, 4: recall@1 = 1/4, recall@2 = 3/4,
  // mrr@5 = (1 + 2/3 + 1/2 + 1/4)/4 = 29/48, ndcg@2 = (1 + 1/log2 2.5 + 1/log2 3)/4.
  o.ties = TieMode::Median;
  r = evaluate(m, table_test(), o, {});
  EXPECT_DOUBLE_EQ(r.metrics.at("recall@1"), 0.25);
  EXPECT_DOUBLE_EQ(r.metrics.at("recall@2"), 0.75);
  EXPECT_NEAR(r.metrics.at("mrr@5"), 29.0 / 48.0, 1e-12);
  EXPECT_NEAR(r.metrics.at("ndcg@2"), (1 + 1 / std::log2(2.5) + 1 / std::log2(3.0)) / 4, 1e-12);
}

// exclude_seen = 1: the prefix's items other than the target leave the ranking.
//   A len1: masks 0 (0.0)            -> rank 1
//   A len2: masks 0 (0.3), 1 (0.0)   -> rank 2 (item 4 ties at 0.8)
//   A len3: target 0 is in the prefix but is NOT masked; masks 1, 2 (0.7) -> rank 1
//   C len1: masks 2 (0.7)            -> #> = 2 (items 0, 1), rank 3
TEST(EvalSession, ExcludeSeenKeepsTarget) {
  FakeModel m = table_model();
  auto o = quiet(Protocol::Session, {1, 5});
  o.exclude_seen = 1;
  auto r = evaluate(m, table_test(), o, {});
  EXPECT_TRUE(r.exclude_seen);
  // recall@1 = 2/4; mrr@5 = (1 + 1/2 + 1 + 1/3)/4 = 17/24.
  EXPECT_DOUBLE_EQ(r.metrics.at("recall@1"), 0.5);
  EXPECT_NEAR(r.metrics.at("mrr@5"), 17.0 / 24.0, 1e-12);
  // Top-1 with exclusion: "last 0" minus {0} -> 1; "last 1" minus {0,1} -> 2;
  // "last 2" minus {1,2} -> 0; "last 2" minus {2} -> 0: coverage@1 = 3/5.
  EXPECT_DOUBLE_EQ(r.metrics.at("coverage@1"), 0.6);
}

// Sequential: one query per sequence, exclude_seen by default.
//   A: prefix [0,1,2], target 0, masks 1, 2 -> rank 1
//   C: prefix [2], target 4, masks 2         -> rank 3
TEST(EvalSequential, HandComputed) {
  FakeModel m = table_model();
  auto r = evaluate(m, table_test(), quiet(Protocol::Sequential, {5, 1, 2, 2}), {});
  EXPECT_EQ(r.protocol, "sequential");
  EXPECT_TRUE(r.exclude_seen);
  EXPECT_EQ(r.n_predictions, 2);
  EXPECT_EQ(r.n_sequences, 2);
  // hr@1 = 1/2, hr@2 = 1/2, hr@5 = 1; ndcg@5 = (1 + 1/log2 4)/2 = 0.75; mrr@5 = 2/3.
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@1"), 0.5);
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@2"), 0.5);
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@5"), 1.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("recall@5"), 1.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("ndcg@5"), 0.75);
  EXPECT_NEAR(r.metrics.at("mrr@5"), 2.0 / 3.0, 1e-12);
  // Top lists: A's row minus {1,2} = {0: .7, 3: .1, 4: .2} -> 0, 4;
  // C's row minus {2} = {0: .7, 1: .7, 3: .1, 4: .2} -> 0, 1.
  // coverage@1 = 1/5, coverage@2 = |{0, 4, 1}|/5.
  EXPECT_DOUBLE_EQ(r.metrics.at("coverage@1"), 0.2);
  EXPECT_DOUBLE_EQ(r.metrics.at("coverage@2"), 0.6);
  // Without exclusion: A: rank 3 (ties 0, 1, 2 at 0.7), C: rank 4.
  auto o = quiet(Protocol::Sequential, {5});
  o.exclude_seen = 0;
  r = evaluate(m, table_test(), o, {});
  EXPECT_FALSE(r.exclude_seen);
  EXPECT_NEAR(r.metrics.at("mrr@5"), (1.0 / 3 + 1.0 / 4) / 2, 1e-12);
}

// exclude_seen = all (S3-Rec's rule): the target leaves the ranking too when it repeats an
// item of its prefix, so that prediction is a miss. In table_test() only A's last target
// (0, after [0, 1, 2]) repeats one.
//   sequential: A miss, C rank 3 -> hr@5 = 1/2, mrr@5 = (1/3)/2 = 1/6
//   session:    A len1 rank 1, A len2 rank 2, A len3 miss, C rank 3 -> mrr@5 = 11/24
TEST(EvalSequential, ExcludeSeenAllMakesRepeatedTargetsMisses) {
  FakeModel m = table_model();
  auto o = quiet(Protocol::Sequential, {1, 5});
  o.exclude_seen = kExcludeSeenAll;
  o.keep_ranks = true;
  auto r = evaluate(m, table_test(), o, {});
  EXPECT_TRUE(r.exclude_seen);
  EXPECT_EQ(r.exclude_seen_mode, "all");
  EXPECT_EQ(r.n_repeated_targets, 1);
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@1"), 0.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@5"), 0.5);
  EXPECT_NEAR(r.metrics.at("mrr@5"), 1.0 / 6.0, 1e-12);
  ASSERT_EQ(r.ranks.size(), 2u);
  EXPECT_GT(r.ranks[0].rank, 1e300);  // not in the ranking at all
  EXPECT_EQ(rank_metric(RankMetric::Ndcg, r.ranks[0].rank, 1000000), 0.0);
  EXPECT_DOUBLE_EQ(r.ranks[1].rank, 3.0);
  // The default (except-target) keeps A's target rankable: rank 1.
  o.exclude_seen = kExcludeSeenDefault;
  r = evaluate(m, table_test(), o, {});
  EXPECT_EQ(r.exclude_seen_mode, "except-target");
  EXPECT_EQ(r.n_repeated_targets, 1);
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@1"), 0.5);
  // Nothing excluded: the count is still reported.
  o.exclude_seen = kExcludeSeenNone;
  r = evaluate(m, table_test(), o, {});
  EXPECT_EQ(r.exclude_seen_mode, "none");
  EXPECT_FALSE(r.exclude_seen);
  EXPECT_EQ(r.n_repeated_targets, 1);

  auto so = quiet(Protocol::Session, {1, 5});
  so.exclude_seen = kExcludeSeenAll;
  r = evaluate(m, table_test(), so, {});
  EXPECT_EQ(r.n_predictions, 4);
  EXPECT_EQ(r.n_repeated_targets, 1);
  EXPECT_DOUBLE_EQ(r.metrics.at("recall@1"), 0.25);
  EXPECT_NEAR(r.metrics.at("mrr@5"), 11.0 / 24.0, 1e-12);
  // Top-1 lists: "last 0" minus {0} -> 1; "last 1" minus {0, 1} -> 2; "last 2" minus
  // {0, 1, 2} -> 4; "last 2" minus {2} -> 0: coverage@1 = 4/5.
  EXPECT_DOUBLE_EQ(r.metrics.at("coverage@1"), 0.8);

  // A sampled run follows the same rule: the repeated target is a miss.
  o.exclude_seen = kExcludeSeenAll;
  o.sampled_negatives = 2;
  r = evaluate(m, table_test(), o, {});
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@5"), 0.5);
}

TEST(EvalOptionsNames, ExcludeSeenModes) {
  EXPECT_EQ(parse_exclude_seen("auto"), kExcludeSeenDefault);
  EXPECT_EQ(parse_exclude_seen("none"), kExcludeSeenNone);
  EXPECT_EQ(parse_exclude_seen("false"), kExcludeSeenNone);
  EXPECT_EQ(parse_exclude_seen("except-target"), kExcludeSeenExceptTarget);
  EXPECT_EQ(parse_exclude_seen("true"), kExcludeSeenExceptTarget);
  EXPECT_EQ(parse_exclude_seen("all"), kExcludeSeenAll);
  EXPECT_STREQ(exclude_seen_name(kExcludeSeenAll), "all");
  try {
    parse_exclude_seen("history");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("except-target"), std::string::npos) << e.what();
  }
  FakeModel m = table_model();
  auto o = quiet(Protocol::Sequential, {5});
  o.exclude_seen = 3;
  EXPECT_THROW(evaluate(m, table_test(), o, {}), InputError);
}

TEST(EvalEvaluate, CountPredictions) {
  EXPECT_EQ(count_predictions(table_test(), Protocol::Session), 4);
  EXPECT_EQ(count_predictions(table_test(), Protocol::Sequential), 2);
  SequenceSet shorts;
  shorts.push("x", std::vector<int32_t>{1});
  EXPECT_EQ(count_predictions(shorts, Protocol::Session), 0);
}

TEST(EvalSampled, AllTiesGiveClosedFormRanks) {
  // A constant model: the target ties with all N negatives.
  // conservative: N + 1; standard: 1; median: 1 + N/2.
  FakeModel m(50, [](std::span<const int32_t>, float* row) {
    for (int i = 0; i < 50; ++i) row[i] = 1.0f;
  });
  SequenceSet t;
  for (int u = 0; u < 10; ++u)
    t.push(std::string("u").append(std::to_string(u)), std::vector<int32_t>{u, u + 10, u + 20});
  auto o = quiet(Protocol::Sequential, {1, 4, 10});
  o.sampled_negatives = 3;
  auto r = evaluate(m, t, o, {});
  EXPECT_EQ(r.protocol, "sequential-sampled-3");
  EXPECT_EQ(r.sampled_negatives, 3);
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@1"), 0.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@4"), 1.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("mrr@4"), 0.25);
  o.ties = TieMode::Standard;
  r = evaluate(m, t, o, {});
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@1"), 1.0);
  o.ties = TieMode::Median;
  r = evaluate(m, t, o, {});
  EXPECT_DOUBLE_EQ(r.metrics.at("mrr@10"), 1.0 / 2.5);
}

TEST(EvalSampled, NegativesAvoidTheWholeSequence) {
  // Items of the prefix score 10, the successor of the last item 5 (the target here),
  // others 0. A negative drawn from the prefix would outrank the target.
  const int32_t n = 30;
  FakeModel m(n, [n](std::span<const int32_t> prefix, float* row) {
    for (int i = 0; i < n; ++i) row[i] = 0.0f;
    for (int32_t it : prefix) row[it] = 10.0f;
    row[(prefix.back() + 1) % n] = 5.0f;
  });
  SequenceSet t;
  for (int u = 0; u < 20; ++u) {
    std::vector<int32_t> s;
    for (int k = 0; k < 12; ++k) s.push_back((u + 2 * k) % n);
    s.push_back((s.back() + 1) % n);
    t.push(std::string("u").append(std::to_string(u)), s);
  }
  auto o = quiet(Protocol::Sequential, {1});
  o.sampled_negatives = 100;
  auto r = evaluate(m, t, o, {});
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@1"), 1.0);
}

TEST(EvalSampled, NegativesAreUniform) {
  // Score = item index. Sequence [9, 5]: target 5; negatives uniform over the 8 items
  // {0,1,2,3,4,6,7,8} (9 and 5 are in the sequence), 3 of which (6, 7, 8) score higher.
  // Standard rank = 1 + #{negatives > 5} ~ 1 + Binomial(N, 3/8): with N = 8000 the
  // mean is 3001 and the sd 43, so the rank lies in (2800, 3200].
  FakeModel m(10, [](std::span<const int32_t>, float* row) {
    for (int i = 0; i < 10; ++i) row[i] = static_cast<float>(i);
  });
  SequenceSet t;
  t.push("u", std::vector<int32_t>{9, 5});
  auto o = quiet(Protocol::Sequential, {2800, 3200});
  o.sampled_negatives = 8000;
  o.ties = TieMode::Standard;
  auto r = evaluate(m, t, o, {});
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@2800"), 0.0);
  EXPECT_DOUBLE_EQ(r.metrics.at("hr@3200"), 1.0);
  // A different seed draws different negatives (almost surely a different rank).
  const double rr1 = r.metrics.at("mrr@3200");
  o.seed = 7;
  r = evaluate(m, t, o, {});
  EXPECT_NE(r.metrics.at("mrr@3200"), rr1);
}

/// A deterministic pseudo-random model over 300 items with many ties.
FakeModel hashed_model() {
  return FakeModel(300, [](std::span<const int32_t> prefix, float* row) {
    uint64_t h = 1469598103934665603ULL;
    for (int32_t it : prefix) h = (h ^ static_cast<uint64_t>(it)) * 1099511628211ULL;
    for (int i = 0; i < 300; ++i) {
      uint64_t z = (h + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 29)) * 0xbf58476d1ce4e5b9ULL;
      row[i] = static_cast<float>((z >> 40) % 50) * 0.1f;  // 50 levels: ties everywhere
    }
  });
}

SequenceSet random_test() {
  SequenceSet t;
  uint64_t z = 12345;
  for (int u = 0; u < 200; ++u) {
    z = z * 6364136223846793005ULL + 1442695040888963407ULL;
    const int len = 1 + static_cast<int>((z >> 33) % 12);
    std::vector<int32_t> s;
    for (int k = 0; k < len; ++k) {
      z = z * 6364136223846793005ULL + 1442695040888963407ULL;
      s.push_back(static_cast<int32_t>((z >> 33) % 300));
    }
    t.push(std::string("s").append(std::to_string(u)), s);
  }
  return t;
}

TEST(EvalEvaluate, MatchesPerQueryReference) {
  // evaluate() against target_rank() applied query by query, for both protocols,
  // with and without exclusion, under every tie mode.
  FakeModel m = hashed_model();
  const SequenceSet t = random_test();
  for (Protocol p : {Protocol::Session, Protocol::Sequential}) {
    for (int ex : {0, 1, 2}) {
      for (TieMode ties : {TieMode::Conservative, TieMode::Standard, TieMode::Median}) {
        MetricAccumulator ref({1, 10, 50});
        std::vector<float> row(300);
        for (size_t s = 0; s < t.size(); ++s) {
          const auto seq = t.seq(s);
          if (seq.size() < 2) continue;
          const size_t first = p == Protocol::Session ? 1 : seq.size() - 1;
          for (size_t len = first; len < seq.size(); ++len) {
            m.score(std::vector<std::span<const int32_t>>{seq.first(len)},
                    std::vector<PrefixQuery>{{0, static_cast<int32_t>(len)}}, row.data());
            std::vector<uint8_t> mask(300, 0);
            bool repeated = false;
            for (size_t k = 0; k < len; ++k) {
              if (ex) mask[seq[k]] = 1;
              repeated = repeated || seq[k] == seq[len];
            }
            // "all": a target that repeats a prefix item is not ranked at all.
            ref.add_rank(ex == 2 && repeated ? std::numeric_limits<double>::infinity()
                                             : target_rank(row, seq[len], ties, mask));
          }
        }
        auto o = quiet(p, {1, 10, 50});
        o.exclude_seen = ex;
        o.ties = ties;
        o.batch_size = 13;
        auto r = evaluate(m, t, o, {});
        ASSERT_EQ(r.n_predictions, ref.n);
        for (size_t k = 0; k < 3; ++k) {
          const std::string at = std::string("@").append(std::to_string(ref.cutoffs[k]));
          EXPECT_NEAR(r.metrics.at("recall" + at), ref.hits[k] / ref.n, 1e-12);
          EXPECT_NEAR(r.metrics.at("mrr" + at), ref.rr[k] / ref.n, 1e-12);
          EXPECT_NEAR(r.metrics.at("ndcg" + at), ref.ndcg[k] / ref.n, 1e-12);
        }
      }
    }
  }
  EXPECT_FALSE(m.bad_span);
}

TEST(EvalEvaluate, IndependentOfThreadCount) {
  FakeModel m = hashed_model();
  const SequenceSet t = random_test();
  std::vector<int64_t> counts(300);
  for (int i = 0; i < 300; ++i) counts[static_cast<size_t>(i)] = (i * 37) % 101;
  const int before = num_threads();
  for (int variant = 0; variant < 3; ++variant) {
    auto o = quiet(variant == 0 ? Protocol::Session : Protocol::Sequential, {1, 5, 20});
    if (variant == 2) o.sampled_negatives = 20;
    o.batch_size = 7;
    o.threads = 1;
    const auto r1 = evaluate(m, t, o, counts);
    o.threads = 2;
    const auto r2 = evaluate(m, t, o, counts);
    EXPECT_EQ(r1.n_predictions, r2.n_predictions);
    ASSERT_EQ(r1.metrics.size(), r2.metrics.size());
    for (const auto& [k, v] : r1.metrics) EXPECT_EQ(v, r2.metrics.at(k)) << k;  // exact
    // And again: the sampled negatives are a pure function of (seed, sequence).
    const auto r3 = evaluate(m, t, o, counts);
    for (const auto& [k, v] : r1.metrics) EXPECT_EQ(v, r3.metrics.at(k)) << k;
  }
  EXPECT_EQ(num_threads(), before);  // the thread setting is restored
}

TEST(EvalEvaluate, Errors) {
  FakeModel m = table_model();
  const SequenceSet t = table_test();
  auto o = quiet(Protocol::Session, {0, 5});
  try {
    evaluate(m, t, o, {});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("K=0"), std::string::npos) << e.what();
  }
  o.cutoffs = {-3};
  EXPECT_THROW(evaluate(m, t, o, {}), InputError);
  o.cutoffs = {};
  EXPECT_THROW(evaluate(m, t, o, {}), InputError);

  // No sequence of length >= 2.
  SequenceSet shorts;
  shorts.push("x", std::vector<int32_t>{1});
  shorts.push("y", std::vector<int32_t>{2});
  o.cutoffs = {5};
  try {
    evaluate(m, shorts, o, {});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no predictable events"), std::string::npos);
  }
  EXPECT_THROW(evaluate(m, SequenceSet{}, o, {}), InputError);

  // Items outside the catalogue: a caller bug.
  SequenceSet out;
  out.push("z", std::vector<int32_t>{1, 5});
  EXPECT_THROW(evaluate(m, out, o, {}), Error);

  // Sampling belongs to the sequential protocol.
  o.sampled_negatives = 10;
  EXPECT_THROW(evaluate(m, t, o, {}), InputError);
  o.sampled_negatives = 0;

  // Training counts must cover the catalogue.
  EXPECT_THROW(evaluate(m, t, o, std::vector<int64_t>{1, 2}), InputError);

  // NaN scores, in the target or elsewhere, on one or two threads.
  for (int bad : {1, 3}) {
    FakeModel nan_model(5, [bad](std::span<const int32_t>, float* row) {
      for (int i = 0; i < 5; ++i) row[i] = 0.1f * static_cast<float>(i);
      row[bad] = std::numeric_limits<float>::quiet_NaN();
    });
    for (int threads : {1, 2}) {
      o.threads = threads;
      o.batch_size = 1;
      try {
        evaluate(nan_model, t, o, {});
        FAIL();
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos);
      }
    }
  }
}

TEST(EvalReport, JsonAndTable) {
  FakeModel m = table_model();
  const std::vector<int64_t> counts{10, 5, 0, 20, 2};
  auto r = evaluate(m, table_test(), quiet(Protocol::Session, {1, 5}), counts);
  r.n_skipped_unknown = 3;
  const auto j = r.to_json();
  EXPECT_EQ(j["protocol"], "session");
  EXPECT_EQ(j["ties"], "conservative");
  EXPECT_EQ(j["exclude_seen"], false);
  EXPECT_EQ(j["sampled_negatives"], 0);
  EXPECT_EQ(j["n_sequences"], 2);
  EXPECT_EQ(j["n_predictions"], 4);
  EXPECT_EQ(j["n_skipped_unknown"], 3);
  EXPECT_TRUE(j.contains("seconds"));
  EXPECT_DOUBLE_EQ(j["metrics"]["recall@1"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["recall@1"].get<double>(), 0.25);
  EXPECT_TRUE(j.contains("coverage@5"));
  EXPECT_TRUE(j.contains("avg_pop@5"));
  // The exclusion rule is labelled in the JSON and in the table.
  EXPECT_EQ(j["exclude_seen_mode"], "none");
  EXPECT_EQ(j["n_repeated_targets"], 1);
  {
    auto ao = quiet(Protocol::Sequential, {5});
    ao.exclude_seen = kExcludeSeenAll;
    const auto a = evaluate(m, table_test(), ao, counts);
    EXPECT_EQ(a.to_json()["exclude_seen_mode"], "all");
    const std::string t = format_results_table({{"m", a}}, {5});
    EXPECT_NE(t.find("--exclude-seen all"), std::string::npos) << t;
    EXPECT_NE(t.find("1 of 2 targets repeat an earlier item"), std::string::npos) << t;
    const std::string d = format_results_table(
        {{"m", evaluate(m, table_test(), quiet(Protocol::Sequential, {5}), counts)}}, {5});
    EXPECT_NE(d.find("--exclude-seen except-target"), std::string::npos) << d;
  }

  auto s = evaluate(m, table_test(), quiet(Protocol::Sequential, {1, 5}), counts);
  const std::string table = format_results_table({{"table", r}, {"pop-baseline", r}}, {1, 5});
  EXPECT_NE(table.find("protocol session, ties conservative"), std::string::npos) << table;
  EXPECT_NE(table.find("Recall@5"), std::string::npos);
  EXPECT_NE(table.find("MRR@1"), std::string::npos);
  EXPECT_NE(table.find("NDCG@5"), std::string::npos);
  EXPECT_NE(table.find("Cov@5"), std::string::npos);
  EXPECT_NE(table.find("pop-baseline"), std::string::npos);
  EXPECT_NE(table.find("0.2500"), std::string::npos);
  const std::string seq_table = format_results_table({{"m", s}}, {1, 5});
  EXPECT_NE(seq_table.find("HR@5"), std::string::npos) << seq_table;
  // Mixed protocols get a per-row protocol column.
  const std::string mixed = format_results_table({{"a", r}, {"b", s}}, {5});
  EXPECT_NE(mixed.find("Protocol"), std::string::npos) << mixed;
}

}  // namespace
