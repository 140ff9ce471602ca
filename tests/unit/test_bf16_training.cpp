// bf16 mixed-precision training (the parameter `precision`): every kernel switched to the
// bf16 GEMM against its fp32 path, forward and backward, with tolerances derived from bf16's
// 8 significant bits; the option parsed, stored and reloaded; a short training run in bf16
// ending near the fp32 loss. On a CPU without bf16 units (or with SEQREC_ISA capped) the bf16
// path is the fp32 one: the comparisons hold trivially and the parts that need the hardware
// say they were skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.hpp"
#include "kernels/gemm.hpp"
#include "kernels/sasrec_loss.hpp"
#include "models/gru4rec.hpp"
#include "models/gru4rec_net.hpp"
#include "models/sasrec_net.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"
#include "test_data_util.hpp"

using namespace seqrec;

namespace {

constexpr double kU = 0x1p-8;  // bf16 unit roundoff (8 significant bits, round to nearest)

std::vector<float> randv(size_t n, std::mt19937& g, float a = 1.0f) {
  std::uniform_real_distribution<float> u(-a, a);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// |a - b| <= tol elementwise, reporting the worst element.
void expect_close(const std::vector<float>& a, const std::vector<float>& b, double tol,
                  const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (e > worst) worst = e, at = i;
  }
  EXPECT_LE(worst, tol) << what << " at " << at << ": " << a[at] << " vs " << b[at];
}

void note_hardware() {
  if (!bf16_gemm_available())
    std::printf("[ SKIPPED  ] bf16 units (%s): comparing the fp32 fallback with fp32\n",
                bf16_gemm_unavailable_reason().c_str());
}

}  // namespace

// Full cross-entropy (SASRec+ output layer). With |F|, |E| <= 0.5 and d = 16: each logit
// z = F Eo^T moves by dz <= 2u sum|F||E| <= 2u d / 4; softmax probabilities then move by at
// most a factor e^{2 dz} - 1 ~ 2 dz, so the gradient G = scale (softmax - onehot) moves by
// sum_j |dG_tj| <= 2 dz scale per row; dF = G Eo and dEo = G^T F add the rounding of their own
// operands (2u sum|G||.|, sum_j |G_tj| <= 2 scale). Hence per entry
//   |d(dF)| <= 0.5 scale (2 dz + 4u),  |d(dEo)| <= T times that,  |dl| <= dz per position.
TEST(Bf16Training, FullCrossEntropyMatchesFp32) {
  note_hardware();
  std::mt19937 g(21);
  const int64_t T = 37, d = 16, I = 211;
  const auto F = randv(T * d, g, 0.5f), E = randv(I * d, g, 0.5f);
  std::vector<int32_t> pos(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>((t * 7) % I);
  const float scale = 1.0f / T;
  std::vector<float> s1, s2, dF1(T * d), dF2(T * d), dE1(I * d, 0.0f), dE2(I * d, 0.0f);
  const double l32 = kernels::sasrec_full_ce(T, d, I, F.data(), E.data(), pos.data(), scale,
                                             dF1.data(), dE1.data(), s1, Precision::Fp32);
  const double l16 = kernels::sasrec_full_ce(T, d, I, F.data(), E.data(), pos.data(), scale,
                                             dF2.data(), dE2.data(), s2, Precision::Bf16);
  const double dz = 2 * kU * d * 0.25;
  EXPECT_NEAR(l16, l32, 2 * dz * T);
  const double tol = 2 * 0.5 * scale * (2 * dz + 4 * kU);  // factor 2 for second-order terms
  expect_close(dF2, dF1, tol, "dF");
  expect_close(dE2, dE1, tol * T, "dEo");
  EXPECT_GT(max_abs(dF1), tol);  // the bound is tighter than the gradients themselves
}

// Causal multi-head attention, forward and backward: the bf16 GEMMs (QK^T, PV, their
// gradients) against fp32. Scores move by <= 2u sum|q||k| scale, probabilities by about as
// much, outputs by <= 2u sum|P||v| + that.
TEST(Bf16Training, AttentionMatchesFp32) {
  note_hardware();
  std::mt19937 g(22);
  kernels::AttentionShape s;
  s.n = 40;
  s.pad = 5;
  s.d = 32;
  s.heads = 2;
  s.ld = s.d;
  const int64_t N = s.n * s.d, dh = s.d / s.heads;
  const auto q = randv(N, g), k = randv(N, g), v = randv(N, g), dout = randv(N, g);
  auto run = [&](Precision p, std::vector<float>& out, std::vector<float>& dq,
                 std::vector<float>& dk, std::vector<float>& dv) {
    kernels::AttentionShape sp = s;
    sp.precision = p;
    std::vector<float> A(sp.probs_size()), scratch(s.n * s.n);
    out.assign(N, 0.0f);
    dq.assign(N, 0.0f);
    dk.assign(N, 0.0f);
    dv.assign(N, 0.0f);
    kernels::causal_attention_forward(sp, q.data(), k.data(), v.data(), A.data(), A.data(), 0.0f,
                                      nullptr, out.data());
    kernels::causal_attention_backward(sp, q.data(), k.data(), v.data(), A.data(), A.data(), 0.0f,
                                       dout.data(), dq.data(), dk.data(), dv.data(),
                                       scratch.data());
  };
  std::vector<float> o1, q1, k1, v1, o2, q2, k2, v2;
  run(Precision::Fp32, o1, q1, k1, v1);
  run(Precision::Bf16, o2, q2, k2, v2);
  const double ds = 2 * kU * dh / std::sqrt(static_cast<double>(dh));  // score error
  const double tol = 2 * ds + 2 * kU;  // |P|, |v| <= 1, rows of P sum to 1
  expect_close(o2, o1, 2 * tol, "out");
  const double m = static_cast<double>(s.real());
  expect_close(v2, v1, 2 * tol * m, "dv");
  expect_close(q2, q1, 4 * tol * m, "dq");
  expect_close(k2, k1, 4 * tol * m, "dk");
}

// The whole SASRec network (projections, feed-forward, attention) forward and backward with
// NetConfig::precision bf16 against fp32: errors stay a small multiple of u relative to the
// magnitudes (layer norm keeps activations O(1)).
TEST(Bf16Training, SasrecNetworkMatchesFp32) {
  note_hardware();
  sasrec::NetConfig c;
  c.d = 32;
  c.maxlen = 20;
  c.n_items = 50;
  c.blocks = 2;
  c.heads = 2;
  c.dropout = 0.0f;
  const sasrec::Layout l = sasrec::make_layout(c);
  std::vector<float> w(static_cast<size_t>(l.total));
  sasrec::init_params(c, l, w.data(), 5);
  sasrec::Chunk ch;
  std::mt19937 g(23);
  const std::vector<int64_t> off{0, 20, 33, 40};
  std::vector<int32_t> items, pos;
  for (int s = 0; s < 3; ++s)
    for (int64_t t = off[s]; t < off[s + 1]; ++t) {
      items.push_back(1 + static_cast<int32_t>(g() % 49));
      pos.push_back(static_cast<int32_t>(20 - (off[s + 1] - t)));
    }
  const std::vector<uint64_t> streams{1, 2, 3};
  ch.nseq = 3;
  ch.off = off.data();
  ch.items = items.data();
  ch.pos = pos.data();
  ch.stream = streams.data();
  std::vector<float> dF0 = randv(40 * c.d, g);
  auto run = [&](Precision p, std::vector<float>& F, std::vector<float>& grad) {
    sasrec::NetConfig cp = c;
    cp.precision = p;
    sasrec::Workspace ws;
    const float* f = sasrec::forward(cp, l, w.data(), ch, ws, true, 1, 1);
    F.assign(f, f + 40 * c.d);
    std::vector<float> dF = dF0;
    grad.assign(w.size(), 0.0f);
    sasrec::backward(cp, l, w.data(), ch, ws, dF.data(), grad.data());
  };
  std::vector<float> F1, g1, F2, g2;
  run(Precision::Fp32, F1, g1);
  run(Precision::Bf16, F2, g2);
  expect_close(F2, F1, 64 * kU * std::max(1.0, max_abs(F1)), "F");
  expect_close(g2, g1, 64 * kU * max_abs(g1), "grad");
}

namespace {

// One GRU4Rec step's loss and gradients (Wy rows, By, GRU weights) with `prec`.
struct StepOut {
  double loss = 0;
  std::vector<float> wy, by, gru;
};

StepOut gru4rec_step(Precision prec) {
  Gru4recParams p = gru4rec_defaults();
  p.layers = {64};
  p.batch_size = 16;
  p.n_sample = 32;
  p.loss = kernels::LossType::BprMax;
  p.elu_param = 0.5f;
  p.precision = prec;
  const int32_t I = 100;
  Gru4recNet net;
  net.init(p, I, 7);
  std::vector<int64_t> counts(I);
  for (int32_t i = 0; i < I; ++i) counts[i] = 1 + (i * 37) % 11;
  const int64_t n = 16, K = 32;
  net.prepare_training(n, K, counts, 7);
  std::mt19937 g(8);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (int64_t i = 0; i < n * 64; ++i) net.state(0)[i] = u(g);
  std::vector<int32_t> x(n), y(n), smp(K);
  for (int64_t j = 0; j < n; ++j)
    x[j] = static_cast<int32_t>(g() % I), y[j] = static_cast<int32_t>(g() % I);
  for (int64_t j = 0; j < K; ++j) smp[j] = static_cast<int32_t>(g() % I);
  StepOut o;
  o.loss = net.forward_backward(n, x.data(), y.data(), smp.data(), K, false);
  for (int32_t i = 0; i < I; ++i) {
    auto r = net.sparse_grad("Wy", i);
    o.wy.insert(o.wy.end(), r.begin(), r.end());
    o.by.push_back(net.by_grad(i));
  }
  for (auto* t : net.tensors())
    if (t->name != "Wy" && t->name != "By")
      o.gru.insert(o.gru.end(), t->grad.begin(), t->grad.end());
  return o;
}

}  // namespace

// GRU4Rec's output layer in bf16 (scores R = top Wy[U]^T, dWy = dR^T top, d(top) = dR Wy[U])
// against fp32, forward (the loss) and backward (every gradient): scores move by <= 2u
// sum|top||Wy| and the gradients by a few u of their magnitude.
TEST(Bf16Training, Gru4recStepMatchesFp32) {
  note_hardware();
  const StepOut a = gru4rec_step(Precision::Fp32), b = gru4rec_step(Precision::Bf16);
  EXPECT_NEAR(b.loss, a.loss, 16 * kU * std::fabs(a.loss) + 1e-6);
  expect_close(b.wy, a.wy, 16 * kU * max_abs(a.wy), "dWy");
  expect_close(b.by, a.by, 16 * kU * max_abs(a.by), "dBy");
  expect_close(b.gru, a.gru, 16 * kU * max_abs(a.gru), "GRU weights");
  EXPECT_GT(max_abs(a.wy), 0.0);
}

namespace {

SequenceSet generated_train(int32_t* n_items) {
  GenerateOptions o;
  o.n_events = 20000;
  o.n_items = 200;
  o.mean_length = 5.0;
  o.seed = 13;
  EventLog log = generate_sessions(o);
  *n_items = static_cast<int32_t>(log.items.size());
  SequenceSet s;
  for (size_t i = 0; i < log.seqs.size(); ++i)
    s.push(log.seqs.ids[i], log.seqs.seq(i), log.seqs.seq_times(i));
  return s;
}

FitContext quiet_ctx() {
  FitContext ctx;
  ctx.progress = false;
  ctx.seed = 5;
  ctx.threads = 2;
  return ctx;
}

}  // namespace

// The option: parsed from the table (bad values are input errors naming it), used by fit()
// (training_precision), stored in the model file's config and read back.
TEST(Bf16Training, PrecisionOptionParsedStoredAndReloaded) {
  Config bad = default_config("gru4rec");
  EXPECT_THROW(
      {
        try {
          bad.set("precision", "fp16");
          create_model("gru4rec", bad);
        } catch (const InputError& e) {
          EXPECT_NE(std::string(e.what()).find("precision"), std::string::npos) << e.what();
          throw;
        }
      },
      InputError);
  for (const char* model : {"gru4rec", "sasrec"}) {
    for (const char* prec : {"fp32", "bf16", "auto"}) {
      Config c = default_config(model);
      c.set("precision", prec);
      c.set("epochs", "1");
      if (std::string(model) == "gru4rec") c.set("layers", "16");
      if (std::string(model) == "sasrec") c.set("maxlen", "10"), c.set("hidden_units", "16");
      int32_t I = 0;
      const SequenceSet train = generated_train(&I);
      ModelBundle b;
      b.model = create_model(model, c);
      b.model->fit(train, I, quiet_ctx());
      const std::string used = b.model->training_precision();
      const bool want_bf16 = std::string(prec) != "fp32" && bf16_gemm_available();
      EXPECT_EQ(used, want_bf16 ? "bf16" : "fp32") << model << " " << prec;
      for (int32_t i = 0; i < I; ++i) b.items.add("i" + std::to_string(i));
      b.item_counts.assign(static_cast<size_t>(I), 1);
      b.meta["precision"] = used;
      const test::TempDir dir;
      const std::string path = dir.file(std::string(model) + ".seqrec");
      save_model(path, b);
      const ModelBundle r = load_model(path);
      EXPECT_EQ(r.model->config().get_string("precision"), prec) << model;
      EXPECT_EQ(r.meta.value("precision", ""), used) << model;
    }
  }
  note_hardware();
}

// A short GRU4Rec training run (3 epochs on a generated log) in bf16 ends within a few % of
// the fp32 loss.
TEST(Bf16Training, Gru4recTrainingLossNearFp32) {
  note_hardware();
  int32_t I = 0;
  const SequenceSet train = generated_train(&I);
  auto run = [&](const char* prec) {
    Config c = default_config("gru4rec");
    c.set("layers", "64");
    c.set("batch_size", "32");
    c.set("n_sample", "64");
    c.set("epochs", "3");
    c.set("precision", prec);
    Gru4recModel m(c);
    m.fit(train, I, quiet_ctx());
    return m.fit_stats().epoch_loss.back();
  };
  const double l32 = run("fp32"), l16 = run("bf16");
  EXPECT_NEAR(l16, l32, 0.03 * std::fabs(l32)) << "fp32 " << l32 << " bf16 " << l16;
}
