// Feature-aware SASRec: the feature embedding's gather and scatter (models/
// feature_embedding.hpp), the gradient of the whole composition (effective item rows ->
// network -> full CE -> scatter into the feature-token table) against finite differences,
// and the model: cold items scored by their features, the model-file round trip, items
// encoded and used as input like trained ones.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "grad_check.hpp"
#include "kernels/sasrec_loss.hpp"
#include "models/feature_embedding.hpp"
#include "models/sasrec.hpp"
#include "models/sasrec_net.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"

using namespace seqrec;

namespace {

std::vector<float> randv(size_t n, std::mt19937& g, float a = 1.0f) {
  std::uniform_real_distribution<float> u(-a, a);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

// 6 items over 5 features: an empty row (item 4), repeated tokens, a negative numeric value.
SparseFeatures small_features() {
  SparseFeatures x;
  x.n_features = 5;
  const std::vector<std::vector<std::pair<int32_t, float>>> rows{{{0, 1.0f}, {2, 1.0f}},
                                                                 {{1, 2.0f}, {3, 1.0f}},
                                                                 {{0, 1.0f}, {4, -0.5f}},
                                                                 {{2, 1.0f}},
                                                                 {},
                                                                 {{1, 1.0f}, {2, 1.0f}, {3, 1.0f}}};
  for (const auto& r : rows) {
    for (auto [f, v] : r) {
      x.index.push_back(f);
      x.value.push_back(v);
    }
    x.offsets.push_back(static_cast<int64_t>(x.index.size()));
  }
  return x;
}

}  // namespace

TEST(FeatureEmbedding, MeanWeightsGatherAndScatter) {
  const SparseFeatures x = small_features();
  const featemb::MeanRows m = featemb::mean_rows(x);
  ASSERT_EQ(m.rows(), 6);
  // Weights are v / sum |v| per row: item 1 has (2, 1) -> (2/3, 1/3); item 2 (1, -0.5) ->
  // (2/3, -1/3).
  EXPECT_NEAR(m.weight[2], 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(m.weight[3], 1.0 / 3.0, 1e-6);
  EXPECT_NEAR(m.weight[5], -1.0 / 3.0, 1e-6);
  EXPECT_TRUE(m.empty_row(4));
  std::mt19937 g(3);
  const int64_t d = 3;
  auto phi = randv(5 * d, g), base = randv(6 * d, g);
  std::vector<int32_t> all(6);
  std::iota(all.begin(), all.end(), 0);
  std::vector<float> G(6 * d, 99.0f);
  featemb::gather(m, phi.data(), d, all, base.data(), G.data());
  for (int32_t i = 0; i < 6; ++i)
    for (int64_t c = 0; c < d; ++c) {
      double ref = base[i * d + c];
      for (int64_t j = m.off[i]; j < m.off[i + 1]; ++j)
        ref += static_cast<double>(m.weight[j]) * phi[m.index[j] * d + c];
      EXPECT_NEAR(G[i * d + c], ref, 1e-5) << i << "," << c;
    }
  // Only the listed items are written.
  std::vector<float> H(6 * d, 7.0f);
  const std::vector<int32_t> some{1, 5};
  featemb::gather(m, phi.data(), d, some, nullptr, H.data());
  EXPECT_EQ(H[0], 7.0f);
  EXPECT_NE(H[1 * d], 7.0f);
  // scatter is the adjoint of gather: d/dPhi of sum_i R_i . G_i matches central differences.
  const auto R = randv(6 * d, g);
  auto f = [&]() {
    std::vector<float> out(6 * d);
    featemb::gather(m, phi.data(), d, all, nullptr, out.data());
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * R[i];
    return s;
  };
  std::vector<float> dphi(5 * d, 0.0f);
  featemb::scatter(m, R.data(), d, all, dphi.data());
  for (size_t i = 0; i < phi.size(); ++i) {
    const double fd = test::central_difference(f, phi[i], 1e-2);
    EXPECT_TRUE(test::grad_close(dphi[i], fd, test::GradTolerance::scaled(1e-3))) << i;
  }
}

// The training step of feature-aware SASRec, composed as SasrecModel's trainer does it:
// E_i = m_i Eid_i + G_i in the item table(s), forward, full CE, backward, then
// dPhi += W^T dE and dEid_i = m_i dE_i. Checked against central differences of the loss in
// every tensor (item 5 is cold: m = 0), with a shared and a separate output table.
TEST(FeatureEmbedding, FeatureAwareSasrecGradientMatchesFiniteDifferences) {
  for (bool shared : {true, false}) {
    SCOPED_TRACE(shared ? "shared output table" : "separate output table");
    sasrec::NetConfig c;
    c.d = 4;
    c.maxlen = 4;
    c.n_items = 6;
    c.blocks = 1;
    c.heads = 2;
    c.dropout = 0.0f;
    c.gelu = true;  // no kinks
    c.shared_embedding = shared;
    c.n_features = 5;
    const auto l = sasrec::make_layout(c);
    ASSERT_GE(l.feat_emb, 0);
    std::vector<float> w(static_cast<size_t>(l.total));
    sasrec::init_params(c, l, w.data(), 7);
    std::mt19937 g(8);
    for (auto& x : w) x += std::uniform_real_distribution<float>(-0.2f, 0.2f)(g);
    const std::vector<uint8_t> mask{1, 1, 1, 1, 1, 0};
    const featemb::MeanRows fx = featemb::mean_rows(small_features());
    std::vector<int32_t> all(6);
    std::iota(all.begin(), all.end(), 0);
    const std::vector<int64_t> off{0, 3, 5};
    const std::vector<int32_t> items{0, 5, 1, 2, 3}, pos{1, 2, 3, 2, 3}, tgt{5, 1, 4, 3, 0};
    sasrec::Chunk ch;
    ch.nseq = 2;
    ch.off = off.data();
    ch.items = items.data();
    ch.pos = pos.data();
    sasrec::Workspace ws;
    std::vector<float> eff, scratch;
    const int64_t T = 5, d = c.d;
    auto build = [&]() {
      eff = w;
      for (int32_t i = 0; i < 6; ++i)
        if (!mask[i])
          for (int64_t k = 0; k < d; ++k) {
            eff[l.item_emb + i * d + k] = 0.0f;
            eff[l.out_emb + i * d + k] = 0.0f;
          }
      featemb::gather(fx, w.data() + l.feat_emb, d, all, eff.data() + l.item_emb,
                      eff.data() + l.item_emb);
      if (!shared)
        featemb::gather(fx, w.data() + l.feat_emb, d, all, eff.data() + l.out_emb,
                        eff.data() + l.out_emb);
    };
    auto f = [&]() {
      build();
      const float* F = sasrec::forward(c, l, eff.data(), ch, ws, false, 0, 0);
      std::vector<float> df(T * d), de(6 * d, 0.0f);
      return kernels::sasrec_full_ce(T, d, 6, F, eff.data() + l.out_emb, tgt.data(), 1.0f,
                                     df.data(), de.data(), scratch, Precision::Fp32);
    };
    build();
    const float* F = sasrec::forward(c, l, eff.data(), ch, ws, false, 0, 0);
    std::vector<float> grad(w.size(), 0.0f), df(T * d);
    kernels::sasrec_full_ce(T, d, 6, F, eff.data() + l.out_emb, tgt.data(), 1.0f, df.data(),
                            grad.data() + l.out_emb, scratch, Precision::Fp32);
    sasrec::backward(c, l, eff.data(), ch, ws, df.data(), grad.data());
    featemb::scatter(fx, grad.data() + l.item_emb, d, all, grad.data() + l.feat_emb);
    if (!shared) featemb::scatter(fx, grad.data() + l.out_emb, d, all, grad.data() + l.feat_emb);
    for (int64_t k = 0; k < d; ++k) {
      grad[l.item_emb + 5 * d + k] = 0.0f;
      grad[l.out_emb + 5 * d + k] = 0.0f;
    }
    // Every entry of the item tables and the feature table, and a few of the rest.
    std::vector<size_t> idx;
    for (int64_t i = l.item_emb; i < l.pos_emb; ++i) idx.push_back(static_cast<size_t>(i));
    for (int64_t i = l.feat_emb; i < l.total; ++i) idx.push_back(static_cast<size_t>(i));
    for (int64_t i = l.pos_emb; i < l.feat_emb; i += 7) idx.push_back(static_cast<size_t>(i));
    for (size_t i : idx) {
      const double fd = test::central_difference(f, w[i], 5e-3);
      EXPECT_TRUE(test::grad_close(grad[i], fd, test::GradTolerance::scaled(2e-3)))
          << "w[" << i << "]";
    }
  }
}

namespace {

Config feat_config(const std::vector<std::pair<std::string, std::string>>& params) {
  Config c = default_config("sasrec");
  c.set("hidden_units", "16");
  c.set("maxlen", "10");
  c.set("num_epochs", "3");
  c.set("batch_size", "16");
  c.set("dropout_rate", "0.1");
  for (const auto& [k, v] : params) c.set(k, v, "test");
  return c;
}

FitContext quiet_ctx(const SparseFeatures* x) {
  FitContext ctx;
  ctx.progress = false;
  ctx.threads = 1;
  ctx.seed = 42;
  ctx.item_features = x;
  return ctx;
}

// 20 items walked cyclically; item 19 never occurs (a cold item). Features: the item's own
// token (19 has none, so it is described by the rest alone), its parity, and its group of 4.
constexpr int32_t kItems = 20;
SequenceSet cold_walks() {
  std::mt19937 g(5);
  SequenceSet s;
  for (int u = 0; u < 60; ++u) {
    std::vector<int32_t> seq;
    int32_t cur = static_cast<int32_t>(g() % 19);
    for (int i = 0; i < 12; ++i) {
      seq.push_back(cur);
      cur = (cur + 1) % 19;
    }
    s.push("u" + std::to_string(u), seq);
  }
  return s;
}
SparseFeatures item_features() {
  SparseFeatures x;
  x.n_features = kItems + 2 + 5;
  for (int32_t i = 0; i < kItems; ++i) {
    if (i < 19) {
      x.index.push_back(i);
      x.value.push_back(1.0f);
    }
    x.index.push_back(kItems + i % 2);
    x.value.push_back(1.0f);
    x.index.push_back(kItems + 2 + i / 4);
    x.value.push_back(1.0f);
    x.offsets.push_back(static_cast<int64_t>(x.index.size()));
  }
  return x;
}

std::vector<float> query(const Model& m, const std::vector<int32_t>& seq,
                         const float* extra = nullptr, int32_t n_extra = 0) {
  std::vector<std::span<const int32_t>> sp{seq};
  const PrefixQuery q{0, static_cast<int32_t>(seq.size())};
  const int32_t d = m.dot_product_head().dim;
  std::vector<float> out(static_cast<size_t>(d));
  m.query_vectors_with(sp, std::span<const PrefixQuery>(&q, 1), extra, n_extra, out.data());
  return out;
}

}  // namespace

TEST(SasrecFeatures, ColdItemIsScoredByItsFeaturesAndRoundTrips) {
  const SequenceSet data = cold_walks();
  const SparseFeatures x = item_features();
  for (const char* loss : {"ce", "bce", "sampled_softmax"}) {
    SCOPED_TRACE(loss);
    const Config c = feat_config({{"loss", loss}, {"n_negatives", "5"}});
    auto m = create_model("sasrec", c);
    m->fit(data, kItems, quiet_ctx(&x));
    auto* sm = dynamic_cast<SasrecModel*>(m.get());
    ASSERT_TRUE(sm && sm->has_features());
    EXPECT_TRUE(m->scores_untrained_item(19));
    EXPECT_TRUE(m->adds_items());
    // The cold item has no id embedding: its id row stayed exactly zero.
    for (int64_t k = 0; k < 16; ++k)
      EXPECT_EQ(sm->weights()[sm->layout().item_emb + 19 * 16 + k], 0.0f);
    // Its score is finite and comes from its features alone: the head row equals
    // encode_item of its features.
    std::vector<float> row(16), scores(kItems);
    float bias = 1.0f;
    m->encode_item(x.row_index(19), x.row_value(19), row.data(), &bias);
    EXPECT_EQ(bias, 0.0f);
    const DotProductHead h = m->dot_product_head();
    for (int64_t k = 0; k < 16; ++k) EXPECT_NEAR(h.items[19 * 16 + k], row[k], 1e-5);
    const std::vector<int32_t> seq{3, 4, 5};
    std::vector<std::span<const int32_t>> sp{seq};
    const PrefixQuery q{0, 3};
    m->score(sp, std::span<const PrefixQuery>(&q, 1), scores.data());
    for (float s : scores) EXPECT_TRUE(std::isfinite(s));
    // The model file keeps the features and the token table.
    TensorWriter w;
    m->save(w);
    TensorReader r(w.entries(), "memory");
    auto l = create_model("sasrec", c);
    l->load(r);
    EXPECT_TRUE(l->scores_untrained_item(19));
    std::vector<float> again(kItems);
    l->score(sp, std::span<const PrefixQuery>(&q, 1), again.data());
    for (int32_t i = 0; i < kItems; ++i) EXPECT_NEAR(again[i], scores[i], 1e-4);
    // An id-only model scores no cold item.
    auto id_only = create_model("sasrec", c);
    id_only->fit(data, kItems, quiet_ctx(nullptr));
    EXPECT_FALSE(id_only->scores_untrained_item(19));
    EXPECT_FALSE(id_only->adds_items());
  }
}

TEST(SasrecFeatures, AnAddedItemActsAsInputLikeAnItemWithTheSameFeatures) {
  // Without id embeddings an item is its features: an added item with item 7's features is
  // item 7, as a target (its head row) and as an input (the query after it).
  const SequenceSet data = cold_walks();
  const SparseFeatures x = item_features();
  auto m = create_model("sasrec", feat_config({{"loss", "ce"}, {"id_embedding", "false"}}));
  m->fit(data, kItems, quiet_ctx(&x));
  std::vector<float> row(16);
  m->encode_item(x.row_index(7), x.row_value(7), row.data(), nullptr);
  const DotProductHead h = m->dot_product_head();
  for (int64_t k = 0; k < 16; ++k) EXPECT_NEAR(h.items[7 * 16 + k], row[k], 1e-5);
  const auto a = query(*m, {5, 6, 7}), b = query(*m, {5, 6, kItems}, row.data(), 1);
  for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-4);
  // An index beyond the added rows is refused.
  EXPECT_THROW(query(*m, {5, kItems + 1}, row.data(), 1), Error);
  // Bad feature input to encode_item is an InputError.
  const std::vector<int32_t> bad{999};
  const std::vector<float> one{1.0f};
  EXPECT_THROW(m->encode_item(bad, one, row.data(), nullptr), InputError);
}

TEST(SasrecFeatures, IdEmbeddingOffNeedsFeatures) {
  auto m = create_model("sasrec", feat_config({{"id_embedding", "false"}}));
  EXPECT_THROW(m->fit(cold_walks(), kItems, quiet_ctx(nullptr)), InputError);
}

TEST(SasrecFeatures, IdDropoutKeepsColdRowsZeroAndScoresFinite) {
  const SequenceSet data = cold_walks();
  const SparseFeatures x = item_features();
  for (const char* loss : {"ce", "bce"}) {
    SCOPED_TRACE(loss);
    auto m = create_model("sasrec", feat_config({{"loss", loss}, {"id_dropout", "0.5"}}));
    m->fit(data, kItems, quiet_ctx(&x));
    auto* sm = dynamic_cast<SasrecModel*>(m.get());
    ASSERT_TRUE(sm);
    for (int64_t k = 0; k < 16; ++k)
      EXPECT_EQ(sm->weights()[sm->layout().item_emb + 19 * 16 + k], 0.0f);
    const std::vector<int32_t> seq{3, 4, 5};
    std::vector<std::span<const int32_t>> sp{seq};
    const PrefixQuery q{0, 3};
    std::vector<float> scores(kItems);
    m->score(sp, std::span<const PrefixQuery>(&q, 1), scores.data());
    for (float s : scores) EXPECT_TRUE(std::isfinite(s));
    // Trained (warm) items keep learned id embeddings.
    double norm = 0;
    for (int64_t k = 0; k < 16; ++k)
      norm += std::fabs(sm->weights()[sm->layout().item_emb + 4 * 16 + k]);
    EXPECT_GT(norm, 0.0);
  }
}
