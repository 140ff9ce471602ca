// The training machinery of GRU4Rec: negative sampler and store, session-parallel batcher,
// IndexedAdagradM.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "core/rng.hpp"
#include "seqrec/dataset.hpp"
#include "train/adagrad.hpp"
#include "train/sampler.hpp"
#include "train/session_batcher.hpp"

using namespace seqrec;
using namespace seqrec::train;

TEST(TrainSampler, GuideTableEqualsBinarySearch) {
  std::vector<int64_t> counts{5, 0, 1, 100, 3, 3, 0, 7, 1, 1};
  for (double alpha : {0.0, 0.3, 0.5, 1.0}) {
    ItemSampler s(counts, alpha);
    Rng rng(7);
    for (int i = 0; i < 20000; ++i) {
      const float u = rng.uniform_float();
      ASSERT_EQ(s.draw(u), s.draw_binary(u)) << u;
    }
    for (float u : {0.0f, 0.5f, 0.99999994f}) EXPECT_EQ(s.draw(u), s.draw_binary(u));
  }
}

TEST(TrainSampler, FrequenciesFollowSupportToTheAlpha) {
  std::vector<int64_t> counts{1, 4, 9, 16, 100, 0, 25};
  const double alpha = 0.5;
  ItemSampler s(counts, alpha);
  SampleStore store(s, 1000, 100000, 3);  // 100 rows, regenerated every 100 steps
  std::vector<int64_t> hits(counts.size(), 0);
  const int64_t steps = 1000;  // 10 generations, 1e6 draws
  for (int64_t i = 0; i < steps; ++i) {
    const int32_t* row = store.next();
    for (int64_t k = 0; k < 1000; ++k) ++hits[static_cast<size_t>(row[k])];
  }
  EXPECT_EQ(store.generations(), 10);
  double z = 0;
  for (int64_t c : counts) z += std::pow(static_cast<double>(c), alpha);
  for (size_t i = 0; i < counts.size(); ++i) {
    const double p = std::pow(static_cast<double>(counts[i]), alpha) / z;
    const double f = static_cast<double>(hits[i]) / 1e6;
    EXPECT_NEAR(f, p, 4.0 * std::sqrt(p * (1 - p) / 1e6) + 1e-6) << "item " << i;
  }
  EXPECT_EQ(hits[5], 0);  // zero support is never drawn
}

TEST(TrainSampler, StoreIsDeterministicAndRefreshes) {
  std::vector<int64_t> counts(50, 1);
  SampleStore a(ItemSampler(counts, 1.0), 8, 24, 9), b(ItemSampler(counts, 1.0), 8, 24, 9);
  EXPECT_EQ(a.rows(), 3);
  std::vector<std::vector<int32_t>> rows;
  for (int i = 0; i < 6; ++i) {
    const int32_t* ra = a.next();
    const int32_t* rb = b.next();
    rows.emplace_back(ra, ra + 8);
    for (int k = 0; k < 8; ++k) ASSERT_EQ(ra[k], rb[k]);
  }
  EXPECT_NE(rows[0], rows[3]);  // fresh draws after the refresh
}

namespace {

SequenceSet make_sessions(const std::vector<std::vector<int32_t>>& s,
                          const std::vector<double>& first_time) {
  SequenceSet out;
  for (size_t i = 0; i < s.size(); ++i) {
    std::vector<double> t;
    for (size_t j = 0; j < s[i].size(); ++j) t.push_back(first_time[i] + static_cast<double>(j));
    out.push("s" + std::to_string(i), s[i], t);
  }
  return out;
}

}  // namespace

TEST(TrainBatcher, OrdersSessionsByFirstEventTime) {
  auto s = make_sessions({{1, 2}, {3, 4}, {5, 6}}, {30, 10, 20});
  EXPECT_EQ(session_order_by_time(s), (std::vector<int32_t>{1, 2, 0}));
}

TEST(TrainBatcher, SessionParallelStepsAsTheOfficialLoop) {
  // Items encode (session, position) so that every pair can be checked.
  std::vector<std::vector<int32_t>> seqs{{0, 1, 2, 3}, {10, 11}, {20}, {30, 31, 32}, {40, 41}};
  auto data = make_sessions(seqs, {0, 1, 2, 3, 4});
  auto order = session_order_by_time(data);
  SessionBatcher b(data, order, 2, false);
  std::vector<std::vector<std::pair<int32_t, int32_t>>> steps;
  std::vector<std::vector<int32_t>> srcs;
  std::vector<bool> changed;
  while (b.next()) {
    std::vector<std::pair<int32_t, int32_t>> st;
    for (int64_t r = 0; r < b.n(); ++r) st.emplace_back(b.x()[r], b.y()[r]);
    steps.push_back(st);
    srcs.emplace_back(b.src(), b.src() + b.n());
    changed.push_back(b.changed());
  }
  // Round 1: slots (s0, s1), m = 2: one step (0->1, 10->11). s1 ends -> slot 1 takes s2
  // (length 1), reset. Round 2: m = 1, no step; slot 1 finished again -> s3.
  // Round 3: (s0 at 1, s3 at 30): m = 3 (s0 has 1,2,3 left) -> steps (1->2, 30->31),
  // (2->3, 31->32); both finish: slot 0 -> s4, slot 1 -> none (deleted).
  // Round 4: (s4): one step 40->41.
  using P = std::vector<std::pair<int32_t, int32_t>>;
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0], (P{{0, 1}, {10, 11}}));
  EXPECT_EQ(steps[1], (P{{1, 2}, {30, 31}}));
  EXPECT_EQ(steps[2], (P{{2, 3}, {31, 32}}));
  EXPECT_EQ(steps[3], (P{{40, 41}}));
  EXPECT_TRUE(changed[0]);
  EXPECT_EQ(srcs[1], (std::vector<int32_t>{0, -1}));  // s0 continues, s3 starts from zero
  EXPECT_FALSE(changed[2]);
  EXPECT_EQ(srcs[3], (std::vector<int32_t>{-1}));  // the batch shrank to s4, fresh state
}

TEST(TrainBatcher, EveryPairOnceAndShrinkingBatch) {
  std::vector<std::vector<int32_t>> seqs;
  std::vector<double> t;
  int32_t next = 0;
  std::mt19937 g(5);
  for (int s = 0; s < 57; ++s) {
    std::vector<int32_t> q(1 + g() % 7);
    for (auto& v : q) v = next++;
    seqs.push_back(q);
    t.push_back(static_cast<double>(g() % 1000));
  }
  auto data = make_sessions(seqs, t);
  auto order = session_order_by_time(data);
  SessionBatcher b(data, order, 8, false);
  std::multiset<std::pair<int32_t, int32_t>> seen;
  int64_t last_n = 8;
  bool shrank = false;
  while (b.next()) {
    EXPECT_LE(b.n(), last_n);
    shrank = shrank || b.n() < 8;
    last_n = b.n();
    for (int64_t r = 0; r < b.n(); ++r) seen.emplace(b.x()[r], b.y()[r]);
  }
  std::multiset<std::pair<int32_t, int32_t>> want;
  for (auto& q : seqs)
    for (size_t j = 0; j + 1 < q.size(); ++j) want.emplace(q[j], q[j + 1]);
  EXPECT_EQ(seen, want);
  EXPECT_TRUE(shrank);
  EXPECT_EQ(static_cast<int64_t>(want.size()), count_training_pairs(data));
}

TEST(TrainBatcher, MoreSlotsThanSessionsIsCapped) {
  auto data = make_sessions({{1, 2, 3}, {4, 5}}, {0, 1});
  auto order = session_order_by_time(data);
  SessionBatcher b(data, order, 64, false);
  EXPECT_EQ(b.batch(), 2);
  int64_t pairs = 0;
  while (b.next()) pairs += b.n();
  EXPECT_EQ(pairs, 3);
}

TEST(TrainAdagrad, DenseAndSparseRules) {
  // mu = 0: w -= lr g / sqrt(A + eps)
  std::vector<float> w{1.0f, 2.0f}, a{0.0f, 1.0f}, g{0.5f, -1.0f};
  adagrad_step(w.data(), a.data(), nullptr, g.data(), 2, 0.1f, 0.0f);
  EXPECT_NEAR(a[0], 0.25f, 1e-7);
  EXPECT_NEAR(w[0], 1.0 - 0.1 * 0.5 / std::sqrt(0.25 + 1e-6), 1e-6);
  EXPECT_NEAR(w[1], 2.0 + 0.1 * 1.0 / std::sqrt(2.0 + 1e-6), 1e-6);
  // mu > 0: heavy ball on the Adagrad step; a zero gradient still moves by momentum.
  std::vector<float> w2{0.0f}, a2{0.0f}, v2{0.0f}, g2{1.0f}, z{0.0f};
  adagrad_step(w2.data(), a2.data(), v2.data(), g2.data(), 1, 0.1f, 0.5f);
  const double v1 = -0.1 / std::sqrt(1.0 + 1e-6);
  EXPECT_NEAR(w2[0], v1, 1e-6);
  adagrad_step(w2.data(), a2.data(), v2.data(), z.data(), 1, 0.1f, 0.5f);
  EXPECT_NEAR(w2[0], v1 + 0.5 * v1, 1e-6);
  // Sparse: only the listed rows change (lazy momentum for the others).
  std::vector<float> W(3 * 2, 1.0f), A(6, 0.0f), V(6, 0.3f), G{1.0f, 1.0f, 2.0f, 2.0f};
  std::vector<int32_t> rows{2, 0};
  adagrad_rows(W.data(), A.data(), V.data(), 2, rows, G.data(), 2, 0.1f, 0.5f);
  EXPECT_EQ(W[2], 1.0f);
  EXPECT_EQ(V[2], 0.3f);
  EXPECT_NEAR(A[4], 1.0f, 1e-7);  // row 2 got gradient row 0
  EXPECT_NEAR(A[0], 4.0f, 1e-7);  // row 0 got gradient row 1
}
