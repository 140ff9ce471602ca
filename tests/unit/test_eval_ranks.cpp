// Per-prediction ranks of the evaluator (EvalOptions::keep_ranks): one per prediction, in
// the documented order, reproducing the summed metrics, independent of threads; and
// rank_metric() on hand-computed ranks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/model.hpp"

using namespace seqrec;

TEST(EvalRanks, RankMetricByHand) {
  // rank 3: hit at K >= 3, reciprocal rank 1/3, NDCG 1 / log2(4) = 0.5.
  EXPECT_EQ(rank_metric(RankMetric::Recall, 3, 3), 1.0);
  EXPECT_EQ(rank_metric(RankMetric::Recall, 3, 2), 0.0);
  EXPECT_DOUBLE_EQ(rank_metric(RankMetric::Mrr, 3, 5), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(rank_metric(RankMetric::Ndcg, 3, 5), 0.5);
  EXPECT_EQ(rank_metric(RankMetric::Ndcg, 6, 5), 0.0);
  // Median ties give fractional ranks: 2.5 is beyond K = 2.
  EXPECT_EQ(rank_metric(RankMetric::Recall, 2.5, 2), 0.0);
  EXPECT_EQ(parse_rank_metric("hr"), RankMetric::Recall);
  EXPECT_THROW(parse_rank_metric("auc"), InputError);
}

TEST(EvalRanks, OnePerPredictionReproducingTheMetrics) {
  // Sessions over 6 items; popularity ranks items by training counts.
  SequenceSet train;
  const std::vector<std::vector<int32_t>> tr{{0, 1, 2}, {0, 1}, {0, 3}, {4, 0}, {5, 1, 0}};
  for (size_t i = 0; i < tr.size(); ++i) train.push("t" + std::to_string(i), tr[i]);
  SequenceSet test;
  const std::vector<std::vector<int32_t>> te{{1, 0, 2}, {3, 5}, {2}, {4, 1, 3, 0}};
  for (size_t i = 0; i < te.size(); ++i) test.push("q" + std::to_string(i), te[i]);
  auto model = create_model("pop", default_config("pop"));
  FitContext ctx;
  ctx.progress = false;
  model->fit(train, 6, ctx);
  const std::vector<int64_t> counts = item_counts(train, 6);

  EvalOptions opt;
  opt.progress = false;
  opt.cutoffs = {1, 2, 5};
  EvalResult plain = evaluate(*model, test, opt, counts);
  EXPECT_TRUE(plain.ranks.empty());  // off by default

  opt.keep_ranks = true;
  opt.batch_size = 2;  // several batches
  opt.threads = 1;
  EvalResult a = evaluate(*model, test, opt, counts);
  // Session protocol: prefixes 1..len-1 of every sequence of length >= 2, in order.
  const std::vector<std::pair<int32_t, int32_t>> want{{0, 1}, {0, 2}, {1, 1},
                                                      {3, 1}, {3, 2}, {3, 3}};
  ASSERT_EQ(a.ranks.size(), want.size());
  EXPECT_EQ(a.n_predictions, static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(a.ranks[i].seq, want[i].first);
    EXPECT_EQ(a.ranks[i].len, want[i].second);
    EXPECT_EQ(a.ranks[i].target,
              te[static_cast<size_t>(want[i].first)][static_cast<size_t>(want[i].second)]);
  }
  // Popularity counts: item 0: 5, item 1: 3, others 1 each -> conservative ranks: target 0
  // is rank 1, target 1 rank 2, a count-1 item ties with 4 others: rank 6.
  EXPECT_EQ(a.ranks[0].rank, 1.0);  // 1 -> 0
  EXPECT_EQ(a.ranks[1].rank, 6.0);  // 1,0 -> 2
  EXPECT_EQ(a.ranks[4].rank, 6.0);  // 4,1 -> 3
  EXPECT_EQ(a.ranks[5].rank, 1.0);  // 4,1,3 -> 0
  for (int k : opt.cutoffs) {
    double hit = 0, rr = 0, nd = 0;
    for (const auto& q : a.ranks) {
      hit += rank_metric(RankMetric::Recall, q.rank, k);
      rr += rank_metric(RankMetric::Mrr, q.rank, k);
      nd += rank_metric(RankMetric::Ndcg, q.rank, k);
    }
    const double n = static_cast<double>(a.ranks.size());
    const std::string at = "@" + std::to_string(k);
    EXPECT_NEAR(hit / n, a.metrics.at("recall" + at), 1e-12);
    EXPECT_NEAR(rr / n, a.metrics.at("mrr" + at), 1e-12);
    EXPECT_NEAR(nd / n, a.metrics.at("ndcg" + at), 1e-12);
    EXPECT_NEAR(a.metrics.at("recall" + at), plain.metrics.at("recall" + at), 1e-15);
  }

  opt.threads = 2;
  EvalResult b = evaluate(*model, test, opt, counts);
  ASSERT_EQ(b.ranks.size(), a.ranks.size());
  for (size_t i = 0; i < a.ranks.size(); ++i) EXPECT_EQ(b.ranks[i].rank, a.ranks[i].rank);
}
