// Finite-difference checks of the GRU kernels (GRUCell, GRU embedding layer, dropout),
// the sampled losses, and the accuracy of the vectorised exp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "grad_check.hpp"
#include "kernels/fast_math.hpp"
#include "kernels/gru_cell.hpp"
#include "kernels/sampled_losses.hpp"

using namespace seqrec::kernels;

namespace {

std::vector<float> randv(size_t n, std::mt19937& g, float scale = 1.0f) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

void expect_grad(const std::function<double()>& f, std::vector<float>& param,
                 const std::vector<float>& analytic, const char* what, float eps = 2e-3f,
                 double atol = 2e-3, double rtol = 2e-2) {
  ASSERT_EQ(param.size(), analytic.size()) << what;
  for (size_t i = 0; i < param.size(); ++i) {
    const double num = seqrec::test::central_difference(f, param[i], eps);
    EXPECT_TRUE(
        seqrec::test::grad_close(analytic[i], num, seqrec::test::GradTolerance::sum(atol, rtol)))
        << what << "[" << i << "]";
  }
}

}  // namespace

TEST(KernelsGruMath, FastExpSigmoidTanhAreAccurate) {
  for (float x = -80.0f; x <= 80.0f; x += 0.037f) {
    const double e = std::exp(static_cast<double>(x));
    EXPECT_NEAR(fast_exp(x) / e, 1.0, 5e-7) << x;
  }
  for (float x = -20.0f; x <= 20.0f; x += 0.011f) {
    EXPECT_NEAR(fast_sigmoid(x), 1.0 / (1.0 + std::exp(-static_cast<double>(x))), 2e-7) << x;
    EXPECT_NEAR(fast_tanh(x), std::tanh(static_cast<double>(x)), 3e-7) << x;
  }
  EXPECT_TRUE(std::isfinite(fast_exp(1000.0f)));
  EXPECT_GE(fast_exp(-1000.0f), 0.0f);
}

TEST(KernelsGruCell, BackwardMatchesFiniteDifferences) {
  std::mt19937 g(1);
  const int64_t n = 3, in = 5, H = 4, G = 3 * H;
  auto u = randv(n * in, g), h = randv(n * H, g), proj = randv(n * H, g);
  auto wih = randv(G * in, g, 0.8f), whh = randv(G * H, g, 0.8f);
  auto bih = randv(G, g, 0.5f), bhh = randv(G, g, 0.5f);
  std::vector<float> hout(n * H), act(n * G), ghn(n * H), gh(n * G);
  auto weights = [&] {
    return GruCellWeights{wih.data(), whh.data(), bih.data(), bhh.data(), in, H};
  };
  // L = sum(proj * h')
  auto loss = [&]() -> double {
    gru_cell_forward(n, weights(), u.data(), h.data(), hout.data(), act.data(), ghn.data(),
                     gh.data());
    double s = 0;
    for (int64_t i = 0; i < n * H; ++i) s += static_cast<double>(proj[i]) * hout[i];
    return s;
  };
  loss();
  std::vector<float> dgi(n * G), dgh(n * G), gwih(G * in), gwhh(G * H), gbih(G), gbhh(G),
      du(n * in), dh(n * H);
  gru_cell_backward(n, weights(), u.data(), h.data(), act.data(), ghn.data(), proj.data(),
                    dgi.data(), dgh.data(), {gwih.data(), gwhh.data(), gbih.data(), gbhh.data()},
                    du.data(), dh.data());
  expect_grad(loss, wih, gwih, "W_ih");
  expect_grad(loss, whh, gwhh, "W_hh");
  expect_grad(loss, bih, gbih, "b_ih");
  expect_grad(loss, bhh, gbhh, "b_hh");
  expect_grad(loss, u, du, "u");
  expect_grad(loss, h, dh, "h");
}

TEST(KernelsGruCell, MatchesTheGruCellFormula) {
  // One row, hand-evaluated in double with the PyTorch GRUCell equations.
  std::mt19937 g(2);
  const int64_t in = 3, H = 2, G = 6;
  auto u = randv(in, g), h = randv(H, g), wih = randv(G * in, g), whh = randv(G * H, g),
       bih = randv(G, g), bhh = randv(G, g);
  std::vector<float> hout(H), act(G), ghn(H), gh(G);
  gru_cell_forward(1, {wih.data(), whh.data(), bih.data(), bhh.data(), in, H}, u.data(), h.data(),
                   hout.data(), act.data(), ghn.data(), gh.data());
  auto dot_i = [&](int64_t row) {
    double s = bih[row];
    for (int64_t k = 0; k < in; ++k) s += static_cast<double>(wih[row * in + k]) * u[k];
    return s;
  };
  auto dot_h = [&](int64_t row) {
    double s = bhh[row];
    for (int64_t k = 0; k < H; ++k) s += static_cast<double>(whh[row * H + k]) * h[k];
    return s;
  };
  auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  for (int64_t j = 0; j < H; ++j) {
    const double r = sig(dot_i(j) + dot_h(j));
    const double z = sig(dot_i(H + j) + dot_h(H + j));
    const double nn = std::tanh(dot_i(2 * H + j) + r * dot_h(2 * H + j));
    EXPECT_NEAR(hout[j], (1 - z) * nn + z * h[j], 1e-6);
  }
}

TEST(KernelsGruEmbedding, BackwardMatchesFiniteDifferences) {
  std::mt19937 g(3);
  const int64_t n = 3, I = 4, H = 3;
  std::vector<int32_t> x{2, 0, 2};  // a repeated item: its Wx0 row gets the summed gradient
  auto h = randv(n * H, g), proj = randv(n * H, g);
  auto wx0 = randv(I * 3 * H, g, 0.8f), wrz0 = randv(H * 2 * H, g, 0.8f),
       wh0 = randv(H * H, g, 0.8f), bh0 = randv(3 * H, g, 0.5f);
  std::vector<float> hout(n * H), cache(n * 4 * H), tmp(n * 3 * H);
  auto weights = [&] { return GruEmbWeights{wx0.data(), wrz0.data(), wh0.data(), bh0.data(), H}; };
  auto loss = [&]() -> double {
    gru_emb_forward(n, weights(), x.data(), h.data(), hout.data(), cache.data(), tmp.data());
    double s = 0;
    for (int64_t i = 0; i < n * H; ++i) s += static_cast<double>(proj[i]) * hout[i];
    return s;
  };
  loss();
  std::vector<float> dv(n * 3 * H), dwrz0(H * 2 * H), dwh0(H * H), dh(n * H);
  gru_emb_backward(n, weights(), h.data(), cache.data(), proj.data(), dv.data(), dwrz0.data(),
                   dwh0.data(), dh.data(), tmp.data());
  std::vector<float> dwx0(I * 3 * H, 0.0f), dbh0(3 * H, 0.0f);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < 3 * H; ++k) {
      dwx0[x[b] * 3 * H + k] += dv[b * 3 * H + k];
      dbh0[k] += dv[b * 3 * H + k];
    }
  expect_grad(loss, wx0, dwx0, "Wx0");
  expect_grad(loss, wrz0, dwrz0, "Wrz0");
  expect_grad(loss, wh0, dwh0, "Wh0");
  expect_grad(loss, bh0, dbh0, "Bh0");
  expect_grad(loss, h, dh, "h");
}

TEST(KernelsGruDropout, MaskIsAFunctionOfKeyAndIndexOnly) {
  // Entry i keeps iff the top 24 bits of the i-th 32-bit half of SplitMix64(key) are >= p 2^24:
  // any split of the range (threads) gives the same mask, and the vector path equals this.
  const uint64_t key = 0x0123456789abcdefULL;
  const float p = 0.4f;
  const int64_t n = 1000;
  auto splitmix = [](uint64_t key, uint64_t m) {
    uint64_t z = key + (m + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  const uint32_t thr = static_cast<uint32_t>(0.4 * 16777216.0);
  std::vector<float> whole(n), parts(n, -1.0f);
  gru_dropout_mask_range(whole.data(), 0, n, p, key);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t half = static_cast<uint32_t>(splitmix(key, i / 2) >> (32 * (i % 2)));
    const float want = (half >> 8) >= thr ? 1.0f / 0.6f : 0.0f;
    ASSERT_EQ(whole[i], want) << i;
  }
  for (int64_t b : {0, 1, 7, 16, 17, 333, 998}) {
    std::fill(parts.begin(), parts.end(), -1.0f);
    gru_dropout_mask_range(parts.data(), 0, b, p, key);
    gru_dropout_mask_range(parts.data(), b, n, p, key);
    EXPECT_EQ(parts, whole) << "split at " << b;
  }
  // gru_dropout_mask draws the key from the xoshiro256** stream, one draw per mask.
  uint64_t s1[4] = {1, 2, 3, 4}, s2[4] = {1, 2, 3, 4};
  std::vector<float> m1(n), m2(n);
  gru_dropout_mask(m1.data(), n, p, s1);
  gru_dropout_mask_range(m2.data(), 0, n, p, gru_dropout_key(s2));
  EXPECT_EQ(m1, m2);
  EXPECT_TRUE(std::equal(s1, s1 + 4, s2));
}

TEST(KernelsGruDropout, InvertedMaskAndGradient) {
  uint64_t s[4] = {1, 2, 3, 4};
  const int64_t n = 200000;
  std::vector<float> mask(n);
  gru_dropout_mask(mask.data(), n, 0.3f, s);
  double kept = 0, mean = 0;
  for (float m : mask) {
    EXPECT_TRUE(m == 0.0f || std::fabs(m - 1.0f / 0.7f) < 1e-6f);
    kept += m != 0.0f;
    mean += m;
  }
  EXPECT_NEAR(kept / n, 0.7, 0.005);
  EXPECT_NEAR(mean / n, 1.0, 0.01);  // inverted dropout keeps the expectation
  // y = x * mask is linear: its gradient is the mask (finite differences exact up to rounding).
  std::mt19937 g(4);
  auto x = randv(16, g), proj = randv(16, g);
  std::vector<float> m16(mask.begin(), mask.begin() + 16), y(16);
  auto loss = [&]() -> double {
    gru_apply_mask(y.data(), x.data(), m16.data(), 16);
    double t = 0;
    for (int i = 0; i < 16; ++i) t += static_cast<double>(proj[i]) * y[i];
    return t;
  };
  std::vector<float> dx(16);
  gru_apply_mask(dx.data(), proj.data(), m16.data(), 16);
  expect_grad(loss, x, dx, "dropout");
}

namespace {

void check_loss(LossOptions opt, float scale_scores, uint32_t seed) {
  std::mt19937 g(seed);
  const int64_t n = 3, C = 9;
  auto R = randv(n * C, g, scale_scores);
  const float scale = 0.25f;
  auto loss = [&]() -> double {
    std::vector<float> tmp(R);
    std::vector<float> scratch(2 * C);
    return scale * sampled_loss_rows(opt, 0, n, C, tmp.data(), C, scale, scratch.data());
  };
  std::vector<float> grad(R);
  std::vector<float> scratch(2 * C);
  sampled_loss_rows(opt, 0, n, C, grad.data(), C, scale, scratch.data());
  // Also through the parallel entry point: identical.
  std::vector<float> grad2(R);
  const double l2 = sampled_loss(opt, n, C, grad2.data(), C, scale);
  EXPECT_NEAR(l2 * scale, loss(), 1e-9);
  for (size_t i = 0; i < grad.size(); ++i) EXPECT_EQ(grad[i], grad2[i]);
  expect_grad(loss, R, grad, "dR", 1e-3f, 3e-4, 2e-2);
}

}  // namespace

TEST(KernelsGruLoss, CrossEntropyGradient) {
  check_loss({LossType::CrossEntropy, 0.0f, 0.0f}, 3.0f, 10);
}

TEST(KernelsGruLoss, CrossEntropyValue) {
  // l = -ln softmax(r)_j
  std::vector<float> r{1.0f, 2.0f, 0.5f};
  std::vector<float> scratch(6);
  const double l =
      sampled_loss_rows({LossType::CrossEntropy, 0, 0}, 0, 1, 3, r.data(), 3, 1.0f, scratch.data());
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(0.5);
  EXPECT_NEAR(l, -std::log(std::exp(1.0) / z), 1e-6);
}

TEST(KernelsGruLoss, BprMaxGradientWithEluAndRegularisation) {
  check_loss({LossType::BprMax, 0.9f, 1.0f}, 2.0f, 11);
  check_loss({LossType::BprMax, 1.95f, 0.5f}, 2.0f, 12);
}

TEST(KernelsGruLoss, BprMaxGradientLinear) {
  check_loss({LossType::BprMax, 1.0f, 0.0f}, 2.0f, 13);
}

TEST(KernelsGruLoss, BprMaxValue) {
  // Row 0, scores (t=1, 0, 2), linear, bpreg 0.5: s = softmax over (0, 2).
  std::vector<float> r{1.0f, 0.0f, 2.0f};
  std::vector<float> scratch(6);
  const double l =
      sampled_loss_rows({LossType::BprMax, 0.5f, 0.0f}, 0, 1, 3, r.data(), 3, 1.0f, scratch.data());
  const double s1 = 1.0 / (1.0 + std::exp(2.0)), s2 = 1.0 - s1;
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  const double want = -std::log(s1 * sig(1.0) + s2 * sig(-1.0)) + 0.5 * (s2 * 4.0);
  EXPECT_NEAR(l, want, 1e-6);
}

TEST(KernelsGruLoss, Top1MaxGradient) {
  check_loss({LossType::Top1Max, 0.0f, 0.0f}, 1.5f, 14);
  check_loss({LossType::Top1Max, 0.0f, 1.0f}, 1.5f, 15);
}

TEST(KernelsGruLoss, BprGradient) {
  check_loss({LossType::Bpr, 0.0f, 0.0f}, 2.0f, 16);
  check_loss({LossType::Bpr, 0.0f, 0.5f}, 2.0f, 17);
}

TEST(KernelsGruLoss, Top1Gradient) {
  check_loss({LossType::Top1, 0.0f, 0.0f}, 1.5f, 18);
  check_loss({LossType::Top1, 0.0f, 1.0f}, 1.5f, 19);
}

TEST(KernelsGruLoss, CrossEntropyLossIsCappedByEpsilon) {
  // The target's probability underflows: the loss is ln(1e24) ~ 55.3, not inf.
  std::vector<float> r{-200.0f, 0.0f};
  std::vector<float> scratch(4);
  const double l =
      sampled_loss_rows({LossType::CrossEntropy, 0, 0}, 0, 1, 2, r.data(), 2, 1.0f, scratch.data());
  EXPECT_TRUE(std::isfinite(l));
  EXPECT_GT(l, 50.0);
  EXPECT_LT(l, 56.0);
}
