// DSSM: finite-difference checks of every backward kernel (pooling, the towers, the loss,
// a whole step), learning on a synthetic pattern, a cold item found through its features,
// the dot-product head, the model-file round trip, and bad parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "grad_check.hpp"
#include "models/dssm.hpp"
#include "models/dssm_net.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/features.hpp"
#include "seqrec/model.hpp"

using namespace seqrec;
using seqrec::test::central_difference;
using seqrec::test::grad_close;
using seqrec::test::GradTolerance;

namespace {

/// Random sparse features: every item has 1-3 of F features with weights in [0.5, 1.5].
SparseFeatures random_features(int32_t n_items, int32_t F, uint64_t seed) {
  Rng rng(seed);
  SparseFeatures X;
  X.n_features = F;
  for (int32_t i = 0; i < n_items; ++i) {
    const int k = 1 + static_cast<int>(rng.below(3));
    std::vector<int32_t> fs;
    for (int j = 0; j < k; ++j) {
      const int32_t f = static_cast<int32_t>(rng.below(static_cast<uint64_t>(F)));
      if (std::find(fs.begin(), fs.end(), f) == fs.end()) fs.push_back(f);
    }
    std::sort(fs.begin(), fs.end());
    for (int32_t f : fs) {
      X.index.push_back(f);
      X.value.push_back(static_cast<float>(0.5 + rng.uniform()));
    }
    X.offsets.push_back(static_cast<int64_t>(X.index.size()));
  }
  return X;
}

dssm::NetConfig small_net(bool id_embedding, dssm::Activation act) {
  dssm::NetConfig c;
  c.n_items = 7;
  c.n_features = 5;
  c.item_layers = {6, 4};
  c.query_layers = {5, 4};
  c.id_embedding = id_embedding;
  c.act = act;
  c.gamma = 3.0f;
  c.decay = 0.7f;
  return c;
}

/// Two sequences over 7 items; candidates = targets + sampled 2 and 6.
dssm::Batch small_batch(bool logq) {
  dssm::Batch b;
  // Distinct items 0..6 in order, so item == local index.
  for (int32_t i = 0; i < 7; ++i) b.items.push_back(i);
  // Sequence A: inputs 0 1 3, targets 1 3 4; sequence B: inputs 5 0, targets 0 1.
  b.inputs = {0, 1, 3, 5, 0};
  b.seq_off = {0, 3, 5};
  // Candidates: items 1 3 4 0 (targets) and 2 6 (sampled).
  b.cand = {1, 3, 4, 0, 2, 6};
  b.sampled = {0, 0, 0, 0, 1, 1};
  b.target = {0, 1, 2, 3, 0};
  if (logq) b.logq = {-1.0f, -2.0f, -0.5f, -1.5f, -3.0f, -2.5f};
  return b;
}

struct Case {
  bool id_embedding, logq, in_batch;
};

class DssmGrad : public ::testing::TestWithParam<Case> {};

// The whole step: every parameter's analytic gradient against a central difference.
TEST_P(DssmGrad, WholeStepMatchesFiniteDifferences) {
  const Case cs = GetParam();
  const dssm::NetConfig c = small_net(cs.id_embedding, dssm::Activation::Tanh);
  const dssm::Layout l = dssm::make_layout(c);
  std::vector<float> w(static_cast<size_t>(l.total));
  dssm::init_params(c, l, w.data(), 7);
  // Non-zero id embeddings and biases, so their paths are exercised.
  Rng rng(11);
  for (float& x : w) x += static_cast<float>(0.2 * (rng.uniform() - 0.5));
  const SparseFeatures X = random_features(7, 5, 3);
  const dssm::Batch b = small_batch(cs.logq);
  dssm::Workspace ws;
  std::vector<float> g(w.size(), 0.0f);
  dssm::batch_loss(c, l, w.data(), X, b, cs.in_batch, g.data(), ws);
  auto f = [&] {
    dssm::Workspace ws2;
    return dssm::batch_loss(c, l, w.data(), X, b, cs.in_batch, nullptr, ws2);
  };
  int checked = 0;
  for (const auto& s : l.slots) {
    for (int64_t k = 0; k < s.size(); ++k) {
      const size_t i = static_cast<size_t>(s.offset + k);
      const double num = central_difference(f, w[i], 1e-2);
      EXPECT_TRUE(grad_close(g[i], num, GradTolerance::sum(2e-4, 2e-2)))
          << s.name << "[" << k << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, l.total);
}

INSTANTIATE_TEST_SUITE_P(Variants, DssmGrad,
                         ::testing::Values(Case{true, true, true}, Case{false, false, true},
                                           Case{true, false, false}));

// Pooling on its own: l = sum_j c_j . P_j, so dl/dU must match pool_backward(c).
TEST(DssmKernels, PoolBackwardMatchesFiniteDifferences) {
  const int64_t n = 4, D = 3;
  const int32_t rows[] = {2, 0, 2, 1};  // a repeated row accumulates
  std::vector<float> U(9), cvec(static_cast<size_t>(n * D)), P(static_cast<size_t>(n * D));
  Rng rng(5);
  for (float& x : U) x = static_cast<float>(rng.uniform() - 0.5);
  for (float& x : cvec) x = static_cast<float>(rng.uniform() - 0.5);
  auto f = [&] {
    dssm::pool_forward(n, D, 0.6f, rows, U.data(), P.data());
    double s = 0;
    for (size_t k = 0; k < P.size(); ++k) s += static_cast<double>(cvec[k]) * P[k];
    return s;
  };
  std::vector<float> dU(9, 0.0f);
  dssm::pool_backward(n, D, 0.6f, rows, cvec.data(), dU.data());
  for (size_t k = 0; k < U.size(); ++k)
    EXPECT_TRUE(
        grad_close(dU[k], central_difference(f, U[k], 1e-2), GradTolerance::sum(1e-4, 1e-3)))
        << k;
}

// The loss on its own, with the relu activation elsewhere irrelevant: dQ and dUc.
TEST(DssmKernels, SoftmaxLossMatchesFiniteDifferences) {
  const int64_t R = 3, C = 4, D = 2;
  std::vector<float> Q(static_cast<size_t>(R * D)), Uc(static_cast<size_t>(C * D));
  Rng rng(9);
  for (float& x : Q) x = static_cast<float>(rng.uniform() - 0.5);
  for (float& x : Uc) x = static_cast<float>(rng.uniform() - 0.5);
  const int32_t target[] = {0, 1, 1};
  const uint8_t sampled[] = {0, 0, 1, 1};
  const float logq[] = {-1.0f, -0.3f, -2.0f, -0.7f};
  for (bool in_batch : {true, false}) {
    std::vector<float> dQ(Q.size()), dUc(Uc.size()), scratch;
    dssm::softmax_loss(R, C, D, 2.5f, Q.data(), Uc.data(), logq, target, sampled, in_batch, 0.5f,
                       dQ.data(), dUc.data(), scratch);
    auto f = [&] {
      std::vector<float> a(Q.size()), b(Uc.size()), s;
      return 0.5 * dssm::softmax_loss(R, C, D, 2.5f, Q.data(), Uc.data(), logq, target, sampled,
                                      in_batch, 0.5f, a.data(), b.data(), s);
    };
    for (size_t k = 0; k < Q.size(); ++k)
      EXPECT_TRUE(
          grad_close(dQ[k], central_difference(f, Q[k], 1e-2), GradTolerance::sum(1e-4, 1e-3)));
    for (size_t k = 0; k < Uc.size(); ++k)
      EXPECT_TRUE(
          grad_close(dUc[k], central_difference(f, Uc[k], 1e-2), GradTolerance::sum(1e-4, 1e-3)));
  }
}

Config dssm_config(const std::vector<std::pair<std::string, std::string>>& params) {
  Config c = default_config("dssm");
  c.set("layers", "32,16");
  c.set("query_layers", "16");
  c.set("epochs", "8");
  c.set("batch_size", "16");
  c.set("learning_rate", "0.01");
  c.set("n_negatives", "16");
  for (const auto& [k, v] : params) c.set(k, v, "test");
  return c;
}

FitContext quiet() {
  FitContext ctx;
  ctx.progress = false;
  ctx.threads = 1;
  return ctx;
}

// Users walk the catalogue cyclically (next = prev + 1 mod n) with 10% random jumps.
SequenceSet synthetic(int n_users, int n_items, uint64_t seed) {
  std::mt19937 g(static_cast<uint32_t>(seed));
  SequenceSet s;
  for (int u = 0; u < n_users; ++u) {
    const int len = 8 + static_cast<int>(g() % 20);
    std::vector<int32_t> seq;
    int32_t cur = static_cast<int32_t>(g() % n_items);
    for (int i = 0; i < len; ++i) {
      seq.push_back(cur);
      cur = (g() % 10 == 0) ? static_cast<int32_t>(g() % n_items) : (cur + 1) % n_items;
    }
    s.push("u" + std::to_string(u), seq);
  }
  return s;
}

std::vector<float> score_all(const Model& m, const std::vector<std::vector<int32_t>>& seqs) {
  std::vector<std::span<const int32_t>> sp;
  std::vector<PrefixQuery> q;
  for (size_t i = 0; i < seqs.size(); ++i) {
    sp.emplace_back(seqs[i]);
    q.push_back({static_cast<int32_t>(i), static_cast<int32_t>(seqs[i].size())});
  }
  std::vector<float> out(seqs.size() * static_cast<size_t>(m.n_items()));
  m.score(sp, q, out.data());
  return out;
}

double ndcg10(const Model& m, const SequenceSet& test, int32_t n_items) {
  EvalOptions o;
  o.protocol = Protocol::Sequential;
  o.cutoffs = {10};
  o.exclude_seen = 0;
  o.progress = false;
  o.threads = 1;
  std::vector<int64_t> counts(static_cast<size_t>(n_items), 1);
  return evaluate(m, test, o, counts).metrics.at("ndcg@10");
}

SequenceSet drop_last(const SequenceSet& s) {
  SequenceSet out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto q = s.seq(i);
    out.push(s.ids[i], q.first(q.size() - 1));
  }
  return out;
}

}  // namespace

TEST(DssmModel, LearnsTheCyclePatternFromIdsAndFeatures) {
  const int32_t n = 30;
  const SequenceSet data = synthetic(300, n, 1);
  const SequenceSet train = drop_last(data);
  const SparseFeatures X = random_features(n, 12, 2);
  FitContext ctx = quiet();
  ctx.item_features = &X;
  auto m = create_model("dssm", dssm_config({}));
  m->fit(train, n, ctx);
  auto* d = dynamic_cast<DssmModel*>(m.get());
  ASSERT_NE(d, nullptr);
  ASSERT_GE(d->epoch_losses().size(), 2u);
  EXPECT_LT(d->epoch_losses().back(), d->epoch_losses().front());
  // Chance NDCG@10 over 30 items is about 0.1; the pattern is learnable.
  EXPECT_GT(ndcg10(*m, data, n), 0.3);
}

TEST(DssmModel, ACapturedFeatureScoresAColdItem) {
  // Items 0..19 each have their own feature; item 20 never occurs in training but shares
  // the feature of item 5. Users go 4 -> 5 repeatedly, so after 4 the model should put
  // the cold item 20 far above chance (it looks like 5).
  const int32_t n = 21;
  SparseFeatures X;
  X.n_features = 20;
  for (int32_t i = 0; i < n; ++i) {
    X.index.push_back(i == 20 ? 5 : i);
    X.value.push_back(1.0f);
    X.offsets.push_back(static_cast<int64_t>(X.index.size()));
  }
  std::mt19937 g(3);
  SequenceSet train;
  for (int u = 0; u < 200; ++u) {
    std::vector<int32_t> s;
    for (int k = 0; k < 6; ++k) {
      const int32_t a = static_cast<int32_t>(g() % 20);
      s.push_back(a);
      s.push_back((a + 1) % 20);
    }
    train.push("u" + std::to_string(u), s);
  }
  FitContext ctx = quiet();
  ctx.item_features = &X;
  auto m = create_model("dssm", dssm_config({{"id_embedding", "false"}, {"decay", "0.1"}}));
  m->fit(train, n, ctx);
  const auto sc = score_all(*m, {{4}});
  int above = 0;
  for (int32_t i = 0; i < 20; ++i) above += sc[static_cast<size_t>(i)] > sc[20];
  EXPECT_LE(above, 2) << "the cold item should rank near the top after item 4";
}

TEST(DssmModel, HeadQueryVectorsAndSaveLoadAgreeWithScore) {
  const int32_t n = 25;
  const SequenceSet train = synthetic(100, n, 4);
  const SparseFeatures X = random_features(n, 9, 5);
  FitContext ctx = quiet();
  ctx.item_features = &X;
  auto m = create_model("dssm", dssm_config({{"epochs", "2"}}));
  m->fit(train, n, ctx);
  const std::vector<std::vector<int32_t>> qs = {{1, 2, 3}, {7}, {4, 4, 9, 10, 11}};
  const auto s = score_all(*m, qs);
  // score == head . query vector.
  const DotProductHead h = m->dot_product_head();
  ASSERT_EQ(h.dim, 16);
  std::vector<std::span<const int32_t>> sp(qs.begin(), qs.end());
  std::vector<PrefixQuery> pq;
  for (size_t i = 0; i < qs.size(); ++i)
    pq.push_back({static_cast<int32_t>(i), static_cast<int32_t>(qs[i].size())});
  std::vector<float> q(qs.size() * 16);
  m->query_vectors(sp, pq, q.data());
  for (size_t r = 0; r < qs.size(); ++r)
    for (int32_t i = 0; i < n; ++i) {
      double v = 0;
      for (int k = 0; k < 16; ++k) v += static_cast<double>(q[r * 16 + k]) * h.items[i * 16 + k];
      EXPECT_NEAR(v, s[r * n + static_cast<size_t>(i)], 1e-4);
    }
  // Scores are gamma * cosine: within [-gamma, gamma].
  for (float x : s) EXPECT_LE(std::fabs(x), 10.0f + 1e-3f);
  // The model file's tensors carry the features: a loaded model scores the same.
  TensorWriter w;
  m->save(w);
  auto m2 = create_model("dssm", m->config());
  m2->load(TensorReader(w.entries(), "mem"));
  const auto s2 = score_all(*m2, qs);
  ASSERT_EQ(s.size(), s2.size());
  for (size_t k = 0; k < s.size(); ++k) EXPECT_FLOAT_EQ(s[k], s2[k]);
  const auto* d2 = dynamic_cast<const DssmModel*>(m2.get());
  EXPECT_EQ(d2->features().index, X.index);
}

TEST(DssmModel, WithoutFeaturesUsesIdsOnly) {
  const int32_t n = 20;
  const SequenceSet train = synthetic(100, n, 6);
  auto m = create_model("dssm", dssm_config({{"epochs", "1"}}));
  EXPECT_NO_THROW(m->fit(train, n, quiet()));
  auto m2 = create_model("dssm", dssm_config({{"id_embedding", "false"}}));
  EXPECT_THROW(m2->fit(train, n, quiet()), InputError);
}

TEST(DssmModel, BadParametersAndTensors) {
  EXPECT_THROW(create_model("dssm", dssm_config({{"query_layers", "8"}})), InputError);
  Config c = default_config("dssm");
  EXPECT_THROW(c.set("gamma", "0", "test"), InputError);
  EXPECT_THROW(c.set("decay", "1.5", "test"), InputError);
  EXPECT_THROW(c.set("activation", "sigmoid", "test"), InputError);
  // Presets.
  const ModelInfo& info = find_model("dssm");
  Config p = model_config(info, "huang2013", "");
  EXPECT_EQ(p.get_int_list("layers"), (std::vector<int64_t>{300, 300, 128}));
  EXPECT_EQ(p.get_string("activation"), "tanh");
  EXPECT_FALSE(p.get_bool("in_batch"));
  // A damaged feature index in a model file.
  const int32_t n = 10;
  const SparseFeatures X = random_features(n, 4, 1);
  FitContext ctx = quiet();
  ctx.item_features = &X;
  auto m = create_model("dssm", dssm_config({{"epochs", "1"}}));
  m->fit(synthetic(30, n, 2), n, ctx);
  TensorWriter w;
  m->save(w);
  std::vector<TensorEntry> es = w.entries();
  std::vector<int32_t> bad(X.index.size(), 99);
  for (auto& e : es)
    if (e.name == "features.index") e.data = bad.data();
  auto m2 = create_model("dssm", m->config());
  EXPECT_THROW(m2->load(TensorReader(es, "mem")), Error);
}
