// Ranks, tie modes, masks and metric sums, checked against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "eval/ranking.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"

using namespace seqrec;

namespace {

// scores: item 0 = 0.5 (target), 1 = 0.9, 2 = 0.5, 3 = 0.1, 4 = 0.5.
// Against t = 0.5: #{>} = 1 (item 1), #{=} = 3 (items 0, 2, 4; the target included).
const std::vector<float> kScores{0.5f, 0.9f, 0.5f, 0.1f, 0.5f};

TEST(EvalRank, TieModesWithTies) {
  // conservative = #{>=} = 1 + 3 = 4; standard = 1 + #{>} = 2;
  // median = 1 + #{>} + (#{=} - 1)/2 = 1 + 1 + 1 = 3.
  EXPECT_DOUBLE_EQ(target_rank(kScores, 0, TieMode::Conservative), 4.0);
  EXPECT_DOUBLE_EQ(target_rank(kScores, 0, TieMode::Standard), 2.0);
  EXPECT_DOUBLE_EQ(target_rank(kScores, 0, TieMode::Median), 3.0);
}

TEST(EvalRank, NoTiesAllModesAgree) {
  // target item 3 (0.1): every other item is higher -> rank 5 in all modes.
  for (TieMode m : {TieMode::Conservative, TieMode::Standard, TieMode::Median})
    EXPECT_DOUBLE_EQ(target_rank(kScores, 3, m), 5.0);
  // target item 1 (0.9): the best -> rank 1.
  for (TieMode m : {TieMode::Conservative, TieMode::Standard, TieMode::Median})
    EXPECT_DOUBLE_EQ(target_rank(kScores, 1, m), 1.0);
}

TEST(EvalRank, MaskedItemsIgnored) {
  // Mask items 1 and 2: left are 0 (target, 0.5), 3 (0.1), 4 (0.5).
  // #{>} = 0, #{=} = 2 -> conservative 2, standard 1, median 1.5.
  const std::vector<uint8_t> mask{0, 1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(target_rank(kScores, 0, TieMode::Conservative, mask), 2.0);
  EXPECT_DOUBLE_EQ(target_rank(kScores, 0, TieMode::Standard, mask), 1.0);
  EXPECT_DOUBLE_EQ(target_rank(kScores, 0, TieMode::Median, mask), 1.5);
}

TEST(EvalRank, TargetIsNeverMasked) {
  // The mask also covers the target (item 0): it still counts, as if unmasked.
  const std::vector<uint8_t> mask{1, 1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(target_rank(kScores, 0, TieMode::Conservative, mask), 2.0);
  EXPECT_DOUBLE_EQ(target_rank(kScores, 0, TieMode::Median, mask), 1.5);
}

TEST(EvalRank, NaNIsAnError) {
  std::vector<float> s = kScores;
  s[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(target_rank(s, 0, TieMode::Conservative), Error);
  const std::vector<uint8_t> mask{0, 0, 1, 0, 0};  // even when the NaN item is masked
  EXPECT_THROW(target_rank(s, 0, TieMode::Standard, mask), Error);
  s = kScores;
  s[0] = std::numeric_limits<float>::quiet_NaN();  // NaN target
  EXPECT_THROW(target_rank(s, 0, TieMode::Standard), Error);
  EXPECT_THROW(target_rank(kScores, 7, TieMode::Standard), Error);  // target out of range
}

TEST(EvalRank, InfiniteScoresRankNormally) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> s{-inf, inf, 0.0f, inf};
  // target 1 (+inf): #{>} = 0, #{=} = 2 -> conservative 2, standard 1.
  EXPECT_DOUBLE_EQ(target_rank(s, 1, TieMode::Conservative), 2.0);
  EXPECT_DOUBLE_EQ(target_rank(s, 1, TieMode::Standard), 1.0);
  EXPECT_DOUBLE_EQ(target_rank(s, 0, TieMode::Conservative), 4.0);
}

TEST(EvalRank, LongRowMatchesScalarCount) {
  // The vectorised counting agrees with a plain loop on a row with many ties.
  std::vector<float> s(10007);
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<float>((i * 7919) % 101) / 10.0f;
  const int32_t target = 4242;
  int64_t gt = 0, eq = 0;
  for (float v : s) {
    gt += v > s[target];
    eq += v == s[target];
  }
  EXPECT_DOUBLE_EQ(target_rank(s, target, TieMode::Conservative), static_cast<double>(gt + eq));
  EXPECT_DOUBLE_EQ(target_rank(s, target, TieMode::Standard), static_cast<double>(1 + gt));
}

TEST(EvalMetrics, AccumulatorHandComputed) {
  // Ranks 1, 3 and 2.5 (a median rank) at cutoffs 1, 3, 10.
  MetricAccumulator acc({1, 3, 10});
  acc.add_rank(1);
  acc.add_rank(3);
  acc.add_rank(2.5);
  acc.add_rank(11);  // beyond every cutoff: counts in n only
  EXPECT_EQ(acc.n, 4);
  // @1: only rank 1 -> hits 1, rr 1, ndcg 1/log2(2) = 1.
  EXPECT_DOUBLE_EQ(acc.hits[0], 1.0);
  EXPECT_DOUBLE_EQ(acc.rr[0], 1.0);
  EXPECT_DOUBLE_EQ(acc.ndcg[0], 1.0);
  // @3: ranks 1, 3, 2.5 -> hits 3, rr 1 + 1/3 + 1/2.5 = 1.7333..,
  //     ndcg 1 + 1/log2(4) + 1/log2(3.5) = 1 + 0.5 + 0.55329..
  EXPECT_DOUBLE_EQ(acc.hits[1], 3.0);
  EXPECT_NEAR(acc.rr[1], 1.0 + 1.0 / 3 + 0.4, 1e-12);
  EXPECT_NEAR(acc.ndcg[1], 1.5 + 1.0 / std::log2(3.5), 1e-12);
  EXPECT_NEAR(acc.ndcg[1], 2.0532947557, 1e-9);
  // @10: the same three (11 > 10).
  EXPECT_DOUBLE_EQ(acc.hits[2], 3.0);
  EXPECT_NEAR(acc.rr[2], 1.7333333333, 1e-9);

  MetricAccumulator other({1, 3, 10});
  other.add_rank(2);  // @3: hit, rr 0.5, ndcg 1/log2(3) = 0.63093
  acc.merge(other);
  EXPECT_EQ(acc.n, 5);
  EXPECT_DOUBLE_EQ(acc.hits[0], 1.0);
  EXPECT_DOUBLE_EQ(acc.hits[1], 4.0);
  EXPECT_NEAR(acc.rr[1], 2.2333333333, 1e-9);
  EXPECT_NEAR(acc.ndcg[1], 2.0532947557 + 0.6309297536, 1e-9);
  MetricAccumulator bad({5});
  EXPECT_THROW(acc.merge(bad), Error);
}

TEST(EvalNames, ParseAndName) {
  EXPECT_EQ(parse_protocol("session"), Protocol::Session);
  EXPECT_EQ(parse_protocol("sequential"), Protocol::Sequential);
  EXPECT_EQ(parse_ties("conservative"), TieMode::Conservative);
  EXPECT_EQ(parse_ties("standard"), TieMode::Standard);
  EXPECT_EQ(parse_ties("median"), TieMode::Median);
  EXPECT_STREQ(protocol_name(Protocol::Sequential), "sequential");
  EXPECT_STREQ(ties_name(TieMode::Median), "median");
  try {
    parse_protocol("loo");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("session, sequential"), std::string::npos);
  }
  try {
    parse_ties("optimistic");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("conservative, standard, median"), std::string::npos);
  }
}

TEST(EvalTopK, OrderAndTies) {
  using eval_detail::Scored;
  std::vector<Scored> top;
  // 0.7 x3 (items 0,1,2), 0.1, 0.2: top-2 = 0, 1 (ties by lower index).
  const std::vector<float> s{0.7f, 0.7f, 0.7f, 0.1f, 0.2f};
  eval_detail::select_top_k(s.data(), 5, 2, nullptr, top);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].item, 0);
  EXPECT_EQ(top[1].item, 1);
  // k beyond n: everything, in order 0, 1, 2, 4, 3.
  eval_detail::select_top_k(s.data(), 5, 9, nullptr, top);
  ASSERT_EQ(top.size(), 5u);
  EXPECT_EQ(top[3].item, 4);
  EXPECT_EQ(top[4].item, 3);
  // Masked entries (marked, and -inf in the row) are skipped.
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> m{ninf, 0.7f, ninf, 0.1f, 0.2f};
  const std::vector<uint8_t> mark{1, 0, 1, 0, 0};
  eval_detail::select_top_k(m.data(), 5, 9, mark.data(), top);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].item, 1);
  EXPECT_EQ(top[1].item, 4);
  EXPECT_EQ(top[2].item, 3);
}

TEST(EvalTopK, MatchesFullSortOnLongRows) {
  using eval_detail::Scored;
  std::vector<float> s(5000);
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<float>((i * 2654435761u) % 997);
  // Increasing scores are the worst case for the running top-k.
  std::vector<float> inc(3000);
  for (size_t i = 0; i < inc.size(); ++i) inc[i] = static_cast<float>(i / 3);
  for (const auto* row : {&s, &inc}) {
    std::vector<Scored> all;
    for (size_t i = 0; i < row->size(); ++i) all.push_back({(*row)[i], static_cast<int32_t>(i)});
    std::sort(all.begin(), all.end(), eval_detail::ranks_before);
    std::vector<Scored> top;
    eval_detail::select_top_k(row->data(), static_cast<int32_t>(row->size()), 50, nullptr, top);
    ASSERT_EQ(top.size(), 50u);
    for (size_t i = 0; i < 50; ++i) EXPECT_EQ(top[i].item, all[i].item) << i;
  }
}

}  // namespace
