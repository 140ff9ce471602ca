// GRU4Rec: gradients of a whole training step against finite differences (every input
// mode, several layers, logQ, duplicate rows), training on generated data, determinism,
// save/load, scoring vs the incremental API, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "grad_check.hpp"
#include "models/gru4rec.hpp"
#include "models/gru4rec_net.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/model.hpp"

using namespace seqrec;

namespace {

struct StepCase {
  std::string name;
  Gru4recParams p = gru4rec_defaults();
};

/// Runs one step's forward/backward on a tiny net and compares every gradient the step
/// produces with central differences of the step loss.
void check_step_gradients(Gru4recParams p, uint64_t seed) {
  const int32_t I = 12;
  Gru4recNet net;
  net.init(p, I, seed);
  // Larger weights than the init so that the non-linearities matter.
  std::mt19937 g(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> d(-0.6f, 0.6f);
  for (auto* t : net.tensors())
    for (auto& w : t->w) w = d(g);
  std::vector<int64_t> counts{5, 1, 3, 9, 2, 7, 4, 1, 6, 8, 2, 3};
  const int64_t n = 4, K = 6;
  net.prepare_training(n, K, counts, seed);
  for (size_t l = 0; l < p.layers.size(); ++l)
    for (int64_t i = 0; i < n * p.layers[l]; ++i) net.state(l)[i] = d(g);
  // x has a duplicate (3) and items that are also targets/samples; the samples repeat
  // items and hit targets: every duplicate must have its gradients summed.
  const std::vector<int32_t> x{3, 7, 3, 1};
  const std::vector<int32_t> y{5, 3, 9, 5};
  const std::vector<int32_t> smp{9, 0, 9, 3, 11, 1};
  auto loss = [&]() { return net.forward_backward(n, x.data(), y.data(), smp.data(), K, true); };
  net.forward_backward(n, x.data(), y.data(), smp.data(), K, false);  // draws the masks
  loss();
  struct Grad {
    Gru4recParam* t;
    std::vector<float> g;
  };
  std::vector<Grad> grads;
  for (auto* t : net.tensors()) {
    Grad gr{t, {}};
    if (t->name == "Wy" || t->name == "Emb" || t->name == "Wx0") {
      for (int32_t i = 0; i < I; ++i) {
        auto row = net.sparse_grad(t->name, i);
        gr.g.insert(gr.g.end(), row.begin(), row.end());
      }
    } else if (t->name == "By") {
      for (int32_t i = 0; i < I; ++i) gr.g.push_back(net.by_grad(i));
    } else {
      gr.g = t->grad;
    }
    grads.push_back(std::move(gr));
  }
  const float eps = 2e-3f;
  int checked = 0;
  for (auto& gr : grads) {
    ASSERT_EQ(gr.g.size(), gr.t->w.size()) << gr.t->name;
    double max_abs = 0;
    for (size_t i = 0; i < gr.g.size(); ++i) {
      const double num = test::central_difference(loss, gr.t->w[i], eps);
      max_abs = std::max(max_abs, std::fabs(num));
      EXPECT_TRUE(test::grad_close(gr.g[i], num, test::GradTolerance::sum(1e-3, 3e-2)))
          << gr.t->name << "[" << i / std::max<int64_t>(1, gr.t->cols) << "]["
          << i % std::max<int64_t>(1, gr.t->cols) << "]";
      ++checked;
    }
    EXPECT_GT(max_abs, 1e-4) << gr.t->name << " has no gradient at all";
  }
  EXPECT_GT(checked, 100);
}

Gru4recParams base_params() {
  Gru4recParams p = gru4rec_defaults();
  p.layers = {5};
  p.batch_size = 5;  // n = 4 < batch_size: the step loss is still divided by batch_size
  p.n_sample = 6;
  p.elu_param = 0.0f;
  return p;
}

}  // namespace

TEST(Gru4recGradients, SharedEmbeddingCrossEntropyWithLogq) {
  auto p = base_params();
  p.logq = 1.0f;
  p.sample_alpha = 0.5;
  p.dropout_p_hidden = 0.3f;
  p.dropout_p_embed = 0.2f;
  check_step_gradients(p, 1);
}

TEST(Gru4recGradients, SharedEmbeddingBprMaxElu) {
  auto p = base_params();
  p.loss = kernels::LossType::BprMax;
  p.bpreg = 0.9f;
  p.elu_param = 1.0f;
  check_step_gradients(p, 2);
}

TEST(Gru4recGradients, SeparateEmbeddingTwoLayersTop1Max) {
  auto p = base_params();
  p.constrained_embedding = false;
  p.embedding = 3;
  p.layers = {4, 5};
  p.loss = kernels::LossType::Top1Max;
  p.dropout_p_hidden = 0.25f;
  check_step_gradients(p, 3);
}

TEST(Gru4recGradients, GruEmbeddingLayerTwoLayers) {
  auto p = base_params();
  p.constrained_embedding = false;
  p.embedding = 0;
  p.layers = {4, 3};  // the official code crashes here ([BUG]); the intended network runs
  p.dropout_p_embed = 0.2f;
  check_step_gradients(p, 4);
}

TEST(Gru4recGradients, PairwiseLosses) {
  auto p = base_params();
  p.loss = kernels::LossType::Bpr;
  check_step_gradients(p, 5);
  p.loss = kernels::LossType::Top1;
  p.elu_param = 0.5f;
  check_step_gradients(p, 6);
}

namespace {

/// A net of `I` items with random weights, momentum and both dropouts, ready to train.
Gru4recNet fused_test_net(Gru4recParams p, int32_t I, int64_t n, int64_t K, uint64_t seed) {
  Gru4recNet net;
  net.init(p, I, seed);
  std::vector<int64_t> counts(static_cast<size_t>(I));
  for (int32_t i = 0; i < I; ++i) counts[static_cast<size_t>(i)] = 1 + (i * 7) % 13;
  net.prepare_training(n, K, counts, seed);
  return net;
}

/// Element-wise |a - b| <= 1e-5 (1 + |b|).
::testing::AssertionResult near_all(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (size_t i = 0; i < a.size(); ++i)
    if (std::fabs(a[i] - b[i]) > 1e-5f * (1.0f + std::fabs(b[i])))
      return ::testing::AssertionFailure() << "[" << i << "] " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

/// train_step (the fused update) against forward_backward + apply_update over a few steps
/// with changing rows: the same loss, weights, optimiser state and hidden state. With one
/// thread bit for bit. With two, the reference path's multi-threaded oneDNN GEMMs may split
/// their sums differently from the fused path's per-block GEMMs (it did on a loaded CI
/// machine), so the comparison allows float rounding there.
void check_fused_step(Gru4recParams p, int32_t I, int64_t n, int64_t K, int threads) {
  const bool exact = threads == 1;
  Gru4recNet a = fused_test_net(p, I, n, K, 3), b = fused_test_net(p, I, n, K, 3);
  std::mt19937 g(5);
  std::uniform_int_distribution<int32_t> item(0, I - 1);
  const int saved = seqrec::num_threads();
  seqrec::set_threads(threads);
  for (int s = 0; s < 4; ++s) {
    const int64_t rows = s == 3 ? n - 1 : n;  // the last step with a shrunk batch
    std::vector<int32_t> x(static_cast<size_t>(rows)), y(x.size()), smp(static_cast<size_t>(K));
    for (auto& v : x) v = item(g);
    for (auto& v : y) v = item(g);
    for (auto& v : smp) v = item(g);
    x[0] = y[1];  // an input that is also an output column
    if (rows > 2) x[2] = x[0];
    const double la = a.train_step(rows, x.data(), y.data(), smp.data(), K);
    const double lb = b.forward_backward(rows, x.data(), y.data(), smp.data(), K);
    b.apply_update();
    auto ta = a.tensors(), tb = b.tensors();
    if (exact) {
      EXPECT_EQ(la, lb) << "step " << s;
      for (size_t i = 0; i < ta.size(); ++i) {
        EXPECT_EQ(ta[i]->w, tb[i]->w) << ta[i]->name << " step " << s;
        EXPECT_EQ(ta[i]->acc, tb[i]->acc) << ta[i]->name << " step " << s;
        EXPECT_EQ(ta[i]->vel, tb[i]->vel) << ta[i]->name << " step " << s;
      }
      for (size_t l = 0; l < p.layers.size(); ++l)
        EXPECT_TRUE(std::equal(a.state(l), a.state(l) + rows * p.layers[l], b.state(l)))
            << "state " << l << " step " << s;
    } else {
      EXPECT_NEAR(la, lb, 1e-5 * (1 + std::fabs(lb))) << "step " << s;
      for (size_t i = 0; i < ta.size(); ++i) {
        EXPECT_TRUE(near_all(ta[i]->w, tb[i]->w)) << ta[i]->name << " step " << s;
        EXPECT_TRUE(near_all(ta[i]->acc, tb[i]->acc)) << ta[i]->name << " step " << s;
        EXPECT_TRUE(near_all(ta[i]->vel, tb[i]->vel)) << ta[i]->name << " step " << s;
      }
      for (size_t l = 0; l < p.layers.size(); ++l) {
        const std::vector<float> sa(a.state(l), a.state(l) + rows * p.layers[l]),
            sb(b.state(l), b.state(l) + rows * p.layers[l]);
        EXPECT_TRUE(near_all(sa, sb)) << "state " << l << " step " << s;
      }
    }
  }
  seqrec::set_threads(saved);
}

Gru4recParams fused_params() {
  Gru4recParams p = gru4rec_defaults();
  p.loss = kernels::LossType::BprMax;
  p.layers = {64};
  p.batch_size = 32;
  p.n_sample = 64;
  p.momentum = 0.3f;
  p.learning_rate = 0.1f;
  p.dropout_p_embed = 0.3f;
  p.dropout_p_hidden = 0.2f;
  return p;
}

}  // namespace

// Large enough that a step's region runs on 2 threads when 2 are allowed (and on 1 when not).
TEST(Gru4recFusedStep, EqualsForwardBackwardThenUpdateEveryInputMode) {
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    auto p = fused_params();
    {
      SCOPED_TRACE("constrained embedding");
      check_fused_step(p, 400, 32, 64, threads);
    }
    p.constrained_embedding = false;
    p.embedding = 24;
    p.layers = {40, 48};
    {
      SCOPED_TRACE("separate embedding, two layers");
      check_fused_step(p, 400, 32, 64, threads);
    }
    p.embedding = 0;  // GRU embedding layer, then a GRUCell layer
    p.momentum = 0.0f;
    {
      SCOPED_TRACE("GRU embedding layer");
      check_fused_step(p, 400, 32, 64, threads);
    }
  }
}

// Two GRU layers of different widths: the threads share the gate scratch of the forward
// pass and are not in step between layers; a per-layer row stride let one thread's rows of
// the wider layer overwrite the other's rows of the narrower one (caught at about one run in
// two with 8 steps; 30 steps here).
TEST(Gru4recFusedStep, TwoThreadsTrainLikeOne) {
  // Splitting a step over threads changes only which thread computes what; the GEMM
  // library may still round blocks of other shapes differently, hence the tolerance.
  struct Case {
    const char* name;
    bool constrained;
    int64_t embedding;
    std::vector<int64_t> layers;
  };
  const std::vector<Case> cases = {{"constrained, one layer", true, 0, {64}},
                                   {"constrained, layers 40+48", true, 0, {40, 48}},
                                   {"separate embedding, layers 40+48", false, 24, {40, 48}},
                                   {"GRU embedding, layers 48+40", false, 0, {48, 40}}};
  const int saved = seqrec::num_threads();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto p = fused_params();
    p.constrained_embedding = c.constrained;
    p.embedding = c.embedding;
    p.layers = c.layers;
    Gru4recNet a = fused_test_net(p, 400, 32, 64, 9), b = fused_test_net(p, 400, 32, 64, 9);
    std::mt19937 g(6);
    std::uniform_int_distribution<int32_t> item(0, 399);
    for (int s = 0; s < 30; ++s) {
      std::vector<int32_t> x(32), y(32), smp(64);
      for (auto& v : x) v = item(g);
      for (auto& v : y) v = item(g);
      for (auto& v : smp) v = item(g);
      x[0] = y[1];  // an input that is also an output column, and a repeated input
      x[2] = x[0];
      seqrec::set_threads(1);
      const double la = a.train_step(32, x.data(), y.data(), smp.data(), 64);
      seqrec::set_threads(2);
      const double lb = b.train_step(32, x.data(), y.data(), smp.data(), 64);
      ASSERT_NEAR(la, lb, 1e-5 * std::fabs(la)) << "step " << s;
    }
    auto ta = a.tensors(), tb = b.tensors();
    for (size_t i = 0; i < ta.size(); ++i)
      for (size_t k = 0; k < ta[i]->w.size(); ++k)
        ASSERT_NEAR(ta[i]->w[k], tb[i]->w[k], 1e-4f) << ta[i]->name << "[" << k << "]";
  }
  seqrec::set_threads(saved);
}

TEST(Gru4recInit, MatchesNumpyCompatibilityStream) {
  // MT19937(42) doubles: 0.3745401188, 0.9507143064, 0.7319939418 (spec §8). The first
  // W_ih block is (in x H) transposed into rows 0..H-1: W_ih[0][0] uses the first draw.
  Gru4recParams p = gru4rec_defaults();
  p.layers = {3};
  Gru4recNet net;
  net.init(p, 10, 42);
  const float sigma = static_cast<float>(std::sqrt(6.0 / 6.0));
  auto w = [&](double u) {
    const float two_u = 2.0f * static_cast<float>(u);
    return two_u * sigma - sigma;
  };
  const auto* wih = net.tensors()[0];
  ASSERT_EQ(wih->name, "gru0.weight_ih");
  EXPECT_FLOAT_EQ(wih->w[0], w(0.3745401188));          // block[0][0] -> W[0][0]
  EXPECT_FLOAT_EQ(wih->w[1 * 3 + 0], w(0.9507143064));  // block[0][1] -> W[1][0]
  EXPECT_FLOAT_EQ(wih->w[2 * 3 + 0], w(0.7319939418));  // block[0][2] -> W[2][0]
}

namespace {

FitContext quiet(uint64_t seed = 42, int threads = 1) {
  FitContext ctx;
  ctx.progress = false;
  ctx.seed = seed;
  ctx.threads = threads;
  return ctx;
}

Config gru_config(const std::vector<std::pair<std::string, std::string>>& kv) {
  Config c = default_config("gru4rec");
  for (auto& [k, v] : kv) c.set(k, v);
  return c;
}

struct Split {
  SequenceSet train, test;
  int32_t n_items = 0;
};

Split generated_split() {
  GenerateOptions o;
  o.n_events = 40000;
  o.n_items = 300;
  o.mean_length = 5.0;
  o.seed = 11;
  EventLog log = generate_sessions(o);
  Split s;
  s.n_items = log.items.size();
  const size_t n = log.seqs.size();
  for (size_t i = 0; i < n; ++i) {
    auto seq = log.seqs.seq(i);
    auto t = log.seqs.seq_times(i);
    (i < n * 9 / 10 ? s.train : s.test).push(log.seqs.ids[i], seq, t);
  }
  return s;
}

}  // namespace

TEST(Gru4recTraining, LowersLossAndBeatsPopularity) {
  const Split sp = generated_split();
  auto cfg = gru_config({{"layers", "48"},
                         {"batch_size", "16"},
                         {"n_sample", "64"},
                         {"learning_rate", "0.1"},
                         {"momentum", "0.1"},
                         {"logq", "1"},
                         {"sample_alpha", "0.5"},
                         {"dropout_p_hidden", "0.1"},
                         {"n_epochs", "3"}});
  Gru4recModel m(cfg);
  m.fit(sp.train, sp.n_items, quiet(42, 1));
  const auto& st = m.fit_stats();
  ASSERT_EQ(st.epoch_loss.size(), 3u);
  EXPECT_LT(st.epoch_loss[2], st.epoch_loss[0]);
  auto pop = create_model("pop", default_config("pop"));
  pop->fit(sp.train, sp.n_items, quiet());
  EvalOptions eo;
  eo.progress = false;
  eo.cutoffs = {20};
  const auto counts = item_counts(sp.train, sp.n_items);
  const EvalResult rg = evaluate(m, sp.test, eo, counts);
  const EvalResult rp = evaluate(*pop, sp.test, eo, counts);
  const double g = rg.metrics.at("recall@20"), pr = rp.metrics.at("recall@20");
  EXPECT_GT(g, 1.5 * pr) << "gru4rec " << g << " vs pop " << pr;
  EXPECT_GT(rg.metrics.at("mrr@20"), 2.0 * rp.metrics.at("mrr@20"));
}

TEST(Gru4recTraining, FixedSeedSingleThreadIsDeterministic) {
  const Split sp = generated_split();
  auto cfg = gru_config({{"layers", "16"},
                         {"batch_size", "8"},
                         {"n_sample", "32"},
                         {"dropout_p_hidden", "0.2"},
                         {"dropout_p_embed", "0.1"},
                         {"momentum", "0.2"},
                         {"n_epochs", "1"}});
  Gru4recModel a(cfg), b(cfg);
  a.fit(sp.train, sp.n_items, quiet(7, 1));
  b.fit(sp.train, sp.n_items, quiet(7, 1));
  auto ta = a.net().tensors(), tb = b.net().tensors();
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) EXPECT_EQ(ta[i]->w, tb[i]->w) << ta[i]->name;
  Gru4recModel c(cfg);
  c.fit(sp.train, sp.n_items, quiet(8, 1));
  EXPECT_NE(c.net().tensors().back()->w, ta.back()->w);  // another seed, other weights
}

TEST(Gru4recScoring, BatchScoresEqualIncrementalStateAndSurviveSaveLoad) {
  const Split sp = generated_split();
  for (const char* mode : {"shared", "embedding", "gru"}) {
    std::vector<std::pair<std::string, std::string>> kv{
        {"layers", "8,6"}, {"batch_size", "8"}, {"n_sample", "16"}, {"n_epochs", "1"}};
    if (std::string(mode) == "embedding") {
      kv.emplace_back("constrained_embedding", "false");
      kv.emplace_back("embedding", "5");
    } else if (std::string(mode) == "gru") {
      kv.emplace_back("constrained_embedding", "false");
      kv.emplace_back("embedding", "0");
    }
    auto cfg = gru_config(kv);
    Gru4recModel m(cfg);
    m.fit(sp.train, sp.n_items, quiet());
    const int32_t I = m.n_items();
    std::vector<std::span<const int32_t>> seqs{sp.test.seq(0), sp.test.seq(1), sp.test.seq(2)};
    std::vector<PrefixQuery> qs;
    for (int32_t s = 0; s < 3; ++s)
      for (int32_t len = 1; len <= static_cast<int32_t>(seqs[s].size()); ++len)
        qs.push_back({s, len});
    std::reverse(qs.begin(), qs.end());  // any order
    std::vector<float> out(qs.size() * I);
    m.score(seqs, qs, out.data());
    std::vector<float> one(I);
    for (size_t q = 0; q < qs.size(); ++q) {
      auto st = m.init_state();
      for (int32_t k = 0; k < qs[q].len; ++k) m.step(st, seqs[qs[q].seq][k]);
      m.score_state(st, one.data());
      for (int32_t i = 0; i < I; ++i)
        ASSERT_NEAR(out[q * I + i], one[i], 1e-5f * (1.0f + std::fabs(one[i]))) << mode;
      // The generic Model interface (what the server uses) gives the same scores.
      const Model& generic = m;
      std::unique_ptr<SessionState> gs = generic.new_state();
      ASSERT_NE(gs, nullptr);
      for (int32_t k = 0; k < qs[q].len; ++k) generic.step(*gs, seqs[qs[q].seq][k]);
      std::vector<float> viag(I);
      generic.score_state(*gs->clone(), viag.data());
      EXPECT_EQ(viag, one) << mode;
      EXPECT_GT(gs->bytes(), 0u);
    }
    // Save / load: identical scores.
    TensorWriter w;
    m.save(w);
    TensorReader r(w.entries(), "memory");
    Gru4recModel m2(cfg);
    m2.load(r);
    std::vector<float> out2(out.size());
    m2.score(seqs, qs, out2.data());
    EXPECT_EQ(out, out2) << mode;
  }
}

TEST(Gru4recScoring, EncodedStatesDecodeExactlyAndOtherShapesAreRefused) {
  const Split sp = generated_split();
  auto cfg =
      gru_config({{"layers", "8,6"}, {"batch_size", "8"}, {"n_sample", "16"}, {"n_epochs", "1"}});
  Gru4recModel m(cfg);
  m.fit(sp.train, sp.n_items, quiet());
  const Model& g = m;
  const int32_t I = m.n_items();
  std::span<const int32_t> seq = sp.test.seq(0);
  ASSERT_GE(seq.size(), 2u);
  auto st = g.new_state();
  g.step(*st, seq[0]);
  const std::string bytes = g.encode_state(*st);
  auto back = g.decode_state(bytes);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(g.encode_state(*back), bytes);
  // The same scores now and after the next event.
  std::vector<float> a(I), b(I);
  g.score_state(*st, a.data());
  g.score_state(*back, b.data());
  EXPECT_EQ(a, b);
  g.step(*st, seq[1]);
  g.step(*back, seq[1]);
  g.score_state(*st, a.data());
  g.score_state(*back, b.data());
  EXPECT_EQ(a, b);
  // Refused: truncated, extended, another version, another shape, non-finite values.
  EXPECT_EQ(g.decode_state(""), nullptr);
  EXPECT_EQ(g.decode_state(std::string_view(bytes).substr(0, bytes.size() - 1)), nullptr);
  EXPECT_EQ(g.decode_state(bytes + "x"), nullptr);
  std::string v2 = bytes;
  v2[4] = 2;
  EXPECT_EQ(g.decode_state(v2), nullptr);
  std::string nan = bytes;
  const float q = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(nan.data() + nan.size() - 4, &q, 4);
  EXPECT_EQ(g.decode_state(nan), nullptr);
  Gru4recModel other(
      gru_config({{"layers", "8,7"}, {"batch_size", "8"}, {"n_sample", "16"}, {"n_epochs", "1"}}));
  other.fit(sp.train, sp.n_items, quiet());
  EXPECT_EQ(static_cast<const Model&>(other).decode_state(bytes), nullptr);
  Gru4recModel one_layer(
      gru_config({{"layers", "8"}, {"batch_size", "8"}, {"n_sample", "16"}, {"n_epochs", "1"}}));
  one_layer.fit(sp.train, sp.n_items, quiet());
  EXPECT_EQ(static_cast<const Model&>(one_layer).decode_state(bytes), nullptr);
}

TEST(Gru4recModelType, RegisteredWithPresets) {
  const ModelInfo& info = find_model("gru4rec");
  std::vector<std::string> names;
  for (const auto& p : info.presets) names.push_back(p.name);
  for (const char* want : {"rsc15", "yoochoose", "rees46", "bprmax", "diginetica"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  for (const auto& pr : info.presets) {
    Config c = default_config("gru4rec");
    for (const auto& [k, v] : pr.values) c.set(k, v, "preset " + pr.name);
    Gru4recModel m(c);
    if (pr.name == "rsc15") {
      EXPECT_EQ(m.params().batch_size, 32);
      EXPECT_FLOAT_EQ(m.params().dropout_p_hidden, 0.4f);
      EXPECT_FLOAT_EQ(m.params().logq, 1.0f);
    }
  }
}

TEST(Gru4recBadInput, AbsurdParametersAndData) {
  EXPECT_THROW(Gru4recModel(gru_config({{"layers", ""}})), InputError);
  EXPECT_THROW(Gru4recModel(gru_config({{"dropout_p_hidden", "1"}})), InputError);
  EXPECT_THROW(gru_config({{"dropout_p_embed", "-0.1"}}), InputError);
  EXPECT_THROW(gru_config({{"layers", "0"}}), InputError);
  // One item: nothing to rank.
  SequenceSet one;
  one.push("a", std::vector<int32_t>{0, 0, 0});
  Gru4recModel m(gru_config({{"n_epochs", "1"}}));
  EXPECT_THROW(m.fit(one, 1, quiet()), InputError);
  // Only length-1 sessions: nothing to learn.
  SequenceSet singles;
  singles.push("a", std::vector<int32_t>{0});
  singles.push("b", std::vector<int32_t>{1});
  EXPECT_THROW(m.fit(singles, 2, quiet()), InputError);
  // More slots than sessions and more samples than items: capped, trains.
  SequenceSet small;
  small.push("a", std::vector<int32_t>{0, 1, 2});
  small.push("b", std::vector<int32_t>{2, 1});
  Gru4recModel m2(
      gru_config({{"batch_size", "64"}, {"n_sample", "2048"}, {"n_epochs", "2"}, {"layers", "4"}}));
  m2.fit(small, 3, quiet());
  EXPECT_TRUE(m2.net().all_finite());
}

TEST(Gru4recBadInput, TableRangesAreWhatIsAccepted) {
  // The parameter table is the one place that says what is accepted: a dropout of exactly
  // 1 is refused when it is set, with the table's message and range.
  Config c = default_config("gru4rec");
  for (const char* name : {"dropout_p_embed", "dropout_p_hidden", "momentum"}) {
    try {
      c.set(name, "1.0", "test");
      FAIL() << name << " = 1 was accepted";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()),
                std::string("test: parameter '") + name + "' must be in [0, 1), got '1.0'");
    }
  }
  EXPECT_THROW(c.set("learning_rate", "0", "test"), InputError);
  EXPECT_NO_THROW(c.set("dropout_p_embed", "0.999", "test"));
  EXPECT_NO_THROW(c.set("momentum", "0", "test"));
  for (const ParamSpec& p : find_model("gru4rec").params)
    if (p.name == "dropout_p_hidden") EXPECT_EQ(range_text(p), "in [0, 1)");
}

TEST(Gru4recBadInput, NonFiniteLossIsReportedWithEpochAndStep) {
  const Split sp = generated_split();
  Gru4recModel m(
      gru_config({{"layers", "8"}, {"batch_size", "8"}, {"n_sample", "16"}, {"n_epochs", "3"}}));
  FitContext ctx = quiet();
  // Poison the output weights after epoch 1 (as a diverging run would).
  ctx.validate = [](const Model& model, int) {
    auto& net = const_cast<Gru4recNet&>(static_cast<const Gru4recModel&>(model).net());
    for (float& w : net.find("Wy")->w) w = std::numeric_limits<float>::quiet_NaN();
    return 0.0;
  };
  try {
    m.fit(sp.train, sp.n_items, ctx);
    ADD_FAILURE() << "NaN not detected";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("epoch 2, step 1"), std::string::npos) << msg;
  }
}

TEST(Gru4recTraining, EarlyStoppingRestoresTheBestEpoch) {
  const Split sp = generated_split();
  Gru4recModel m(
      gru_config({{"layers", "8"}, {"batch_size", "8"}, {"n_sample", "16"}, {"n_epochs", "5"}}));
  FitContext ctx = quiet();
  std::vector<std::vector<float>> snap;
  ctx.validate = [&](const Model& model, int epoch) {
    snap.push_back(static_cast<const Gru4recModel&>(model).net().tensors().back()->w);
    return epoch == 2 ? 1.0 : 0.5;  // epoch 2 is the best, then no improvement
  };
  ctx.patience = 2;
  m.fit(sp.train, sp.n_items, ctx);
  EXPECT_EQ(m.fit_stats().epochs_run, 4);
  EXPECT_EQ(m.fit_stats().best_epoch, 2);
  EXPECT_EQ(m.net().tensors().back()->w, snap[1]);
}
