// The run-time choice of instruction set (core/isa.hpp): levels, SEQREC_ISA, and every
// dispatched kernel's variants computing the same thing. Each variant the CPU can run is
// called directly (isa_baseline::f, isa_avx2::f, isa_avx512::f), so the fallback paths are
// exercised on every machine, whatever level the dispatcher would pick. The whole suite also
// runs with SEQREC_ISA=baseline and =avx2 (CMakeLists.txt: the unit_isa_* tests).
//
// Tolerances: the variants differ only in how the compiler vectorises sums (the order of
// additions), with FMA contraction off (ISO C++ mode) and every explicit fma in the same
// order; so results agree to a few units of rounding of the summed magnitudes, far inside
// the 1e-5 relative tolerance used here. Integer work (dropout masks from hashes) and the
// serving head (defined as one fma chain, dot_head.hpp) must agree exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "core/isa.hpp"
#include "eval/ranking.hpp"
#include "kernels/attention.hpp"
#include "kernels/gru_cell.hpp"
#include "kernels/layernorm.hpp"
#include "kernels/sampled_losses.hpp"
#include "kernels/sasrec_loss.hpp"
#include "seqrec/error.hpp"
#include "serve/dot_head_kernels.hpp"
#include "train/adagrad.hpp"
#include "train/adam.hpp"

using namespace seqrec;

namespace {

/// The variants this CPU can run: 0 baseline, 1 avx2, 2 avx512.
int top_variant() {
  const isa::Level l = isa::cpu_level();
  return l >= isa::Level::Avx512 ? 2 : static_cast<int>(l);
}

#define SEQREC_VARIANTS(ns, name) \
  { &ns::isa_baseline::name, &ns::isa_avx2::name, &ns::isa_avx512::name }

std::vector<float> randv(size_t n, std::mt19937& g, float scale = 1.0f) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const char* what,
                  int variant) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = 1e-5 * std::max(1.0, std::fabs(static_cast<double>(want[i])));
    ASSERT_NEAR(got[i], want[i], tol) << what << "[" << i << "], variant " << variant;
  }
}

/// Zeroed floats at a 64-byte boundary (the serving head's aligned loads need it).
struct AlignedFloats {
  explicit AlignedFloats(size_t n)
      : p(static_cast<float*>(::operator new (n * sizeof(float), std::align_val_t{64}))) {
    std::fill(p, p + n, 0.0f);
  }
  ~AlignedFloats() { ::operator delete (p, std::align_val_t{64}); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  float& operator[](size_t i) { return p[i]; }
  float* data() { return p; }
  float* p;
};

}  // namespace

TEST(CoreIsa, LevelsParseAndOrder) {
  for (isa::Level l :
       {isa::Level::Baseline, isa::Level::Avx2, isa::Level::Avx512, isa::Level::Avx512Vnni})
    EXPECT_EQ(isa::parse_level(isa::level_name(l)), l);
  EXPECT_EQ(isa::parse_level("auto"), isa::cpu_level());
  EXPECT_THROW(isa::parse_level("sse9"), InputError);
  // The active level never exceeds what the CPU has, and follows SEQREC_ISA when set.
  EXPECT_LE(static_cast<int>(isa::level()), static_cast<int>(isa::cpu_level()));
  const char* env = std::getenv("SEQREC_ISA");
  if (env == nullptr || *env == '\0') {
    EXPECT_EQ(isa::level(), isa::cpu_level());
  } else {
    const isa::Level want = isa::parse_level(env);
    EXPECT_EQ(static_cast<int>(isa::level()),
              std::min(static_cast<int>(want), static_cast<int>(isa::cpu_level())));
  }
  const isa::CpuFeatures& f = isa::cpu();
  if (isa::cpu_level() >= isa::Level::Avx2) EXPECT_TRUE(f.avx2 && f.fma);
  if (isa::cpu_level() >= isa::Level::Avx512) EXPECT_TRUE(f.avx512f && f.avx512bw);
  const std::string d = isa::describe();
  EXPECT_NE(d.find(std::string("kernels ") + isa::level_name(isa::level())), std::string::npos)
      << d;
  EXPECT_NE(d.find("oneDNN"), std::string::npos) << d;
}

TEST(CoreIsa, GruCellVariantsAgree) {
  using namespace kernels;
  const int64_t n = 5, in = 7, H = 19, G = 3 * H;  // odd sizes: vector tails too
  std::mt19937 g(1);
  auto wih = randv(G * in, g), whh = randv(G * H, g), bih = randv(G, g), bhh = randv(G, g);
  auto u = randv(n * in, g), h = randv(n * H, g), dh_out = randv(n * H, g);
  const GruCellWeights w{wih.data(), whh.data(), bih.data(), bhh.data(), in, H};
  decltype(&isa_baseline::gru_cell_forward) fwd[] = SEQREC_VARIANTS(kernels, gru_cell_forward);
  decltype(&isa_baseline::gru_cell_backward) bwd[] = SEQREC_VARIANTS(kernels, gru_cell_backward);
  std::vector<std::vector<float>> ref;
  for (int v = 0; v <= top_variant(); ++v) {
    std::vector<float> ho(n * H), act(n * G), ghn(n * H), gh(n * G);
    fwd[v](n, w, u.data(), h.data(), ho.data(), act.data(), ghn.data(), gh.data());
    std::vector<float> dgi(n * G), dgh(n * G), gwih(G * in), gwhh(G * H), gbih(G), gbhh(G);
    std::vector<float> du(n * in), dh(n * H);
    bwd[v](n, w, u.data(), h.data(), act.data(), ghn.data(), dh_out.data(), dgi.data(), dgh.data(),
           GruCellGrads{gwih.data(), gwhh.data(), gbih.data(), gbhh.data()}, du.data(), dh.data());
    const std::vector<std::vector<float>> out{ho, act, du, dh, gwih, gwhh, gbih, gbhh};
    if (v == 0) {
      ref = out;
      continue;
    }
    for (size_t i = 0; i < out.size(); ++i) expect_close(out[i], ref[i], "gru cell", v);
  }
}

TEST(CoreIsa, DropoutMasksAreIdenticalInEveryVariant) {
  using namespace kernels;
  decltype(&isa_baseline::gru_dropout_mask_range) f[] =
      SEQREC_VARIANTS(kernels, gru_dropout_mask_range);
  std::vector<float> ref(1003);
  f[0](ref.data(), 0, 1003, 0.3f, 12345);
  for (int v = 1; v <= top_variant(); ++v) {
    std::vector<float> m(1003);
    f[v](m.data(), 0, 1003, 0.3f, 12345);
    EXPECT_EQ(m, ref) << "variant " << v;
  }
}

TEST(CoreIsa, SampledLossVariantsAgree) {
  using namespace kernels;
  decltype(&isa_baseline::sampled_loss) f[] = SEQREC_VARIANTS(kernels, sampled_loss);
  for (LossType t : {LossType::CrossEntropy, LossType::BprMax, LossType::Top1Max, LossType::Bpr,
                     LossType::Top1}) {
    LossOptions opt;
    opt.type = t;
    opt.elu_param = t == LossType::BprMax ? 0.5f : 0.0f;
    std::mt19937 g(2);
    const int64_t n = 6, C = 37;
    const auto R0 = randv(n * C, g, 3.0f);
    std::vector<float> ref;
    double ref_loss = 0.0;
    for (int v = 0; v <= top_variant(); ++v) {
      std::vector<float> R = R0;
      const double loss = f[v](opt, n, C, R.data(), C, 0.25f);
      if (v == 0) {
        ref = R;
        ref_loss = loss;
        continue;
      }
      EXPECT_NEAR(loss, ref_loss, 1e-5 * std::max(1.0, std::fabs(ref_loss)));
      expect_close(R, ref, "sampled loss gradient", v);
    }
  }
}

TEST(CoreIsa, OptimiserVariantsAgree) {
  std::mt19937 g(3);
  const int64_t count = 101;
  const auto w0 = randv(count, g), grad = randv(count, g);
  std::vector<float> acc0(count, 0.1f), vel0(count, 0.0f);
  decltype(&train::isa_baseline::adagrad_step) ada[] = SEQREC_VARIANTS(train, adagrad_step);
  decltype(&train::isa_baseline::adam_update) adam[] = SEQREC_VARIANTS(train, adam_update);
  std::vector<std::vector<float>> ref;
  for (int v = 0; v <= top_variant(); ++v) {
    std::vector<float> w = w0, acc = acc0, vel = vel0;
    ada[v](w.data(), acc.data(), vel.data(), grad.data(), count, 0.05f, 0.9f);
    std::vector<float> w2 = w0, m(count, 0.01f), s(count, 0.02f);
    adam[v](w2.data(), m.data(), s.data(), grad.data(), 0, count, 0.9f, 0.999f, 1e-3f, 1.2f, 1e-8f);
    const std::vector<std::vector<float>> out{w, acc, vel, w2, m, s};
    if (v == 0) {
      ref = out;
      continue;
    }
    for (size_t i = 0; i < out.size(); ++i) expect_close(out[i], ref[i], "optimiser", v);
  }
}

TEST(CoreIsa, SasrecKernelVariantsAgree) {
  using namespace kernels;
  std::mt19937 g(4);
  const int64_t rows = 9, d = 12;
  const auto x = randv(rows * d, g), gamma = randv(d, g), beta = randv(d, g),
             dy = randv(rows * d, g);
  decltype(&isa_baseline::layernorm_forward) lnf[] = SEQREC_VARIANTS(kernels, layernorm_forward);
  decltype(&isa_baseline::layernorm_backward) lnb[] = SEQREC_VARIANTS(kernels, layernorm_backward);
  decltype(&isa_baseline::causal_attention_forward) af[] =
      SEQREC_VARIANTS(kernels, causal_attention_forward);
  decltype(&isa_baseline::causal_attention_backward) ab[] =
      SEQREC_VARIANTS(kernels, causal_attention_backward);
  decltype(&isa_baseline::sasrec_full_ce) ce[] = SEQREC_VARIANTS(kernels, sasrec_full_ce);
  AttentionShape s;
  s.n = 9;
  s.pad = 2;
  s.d = d;
  s.heads = 2;
  s.ld = d;
  const auto q = randv(s.n * d, g), k = randv(s.n * d, g), val = randv(s.n * d, g),
             dout = randv(s.n * d, g);
  const int64_t n_items = 23;
  const auto Eo = randv(n_items * d, g);
  std::vector<int32_t> pos(rows);
  for (int64_t t = 0; t < rows; ++t) pos[t] = static_cast<int32_t>((t * 7) % n_items);
  std::vector<std::vector<float>> ref;
  double ref_loss = 0.0;
  for (int v = 0; v <= top_variant(); ++v) {
    std::vector<float> y(rows * d), xhat(rows * d), rstd(rows), dx(rows * d), dg(d), db(d);
    lnf[v](rows, d, x.data(), gamma.data(), beta.data(), y.data(), xhat.data(), rstd.data(),
           kLayerNormEps);
    lnb[v](rows, d, dy.data(), xhat.data(), rstd.data(), gamma.data(), dx.data(), dg.data(),
           db.data(), false);
    std::vector<float> A(s.probs_size()), out(s.n * d), dq(s.n * d), dk(s.n * d), dv(s.n * d);
    std::vector<float> scratch(s.real() * s.real());
    af[v](s, q.data(), k.data(), val.data(), A.data(), A.data(), 0.0f, nullptr, out.data());
    ab[v](s, q.data(), k.data(), val.data(), A.data(), A.data(), 0.0f, dout.data(), dq.data(),
          dk.data(), dv.data(), scratch.data());
    std::vector<float> dF(rows * d), dEo(n_items * d, 0.0f), ce_scratch;
    const double loss = ce[v](rows, d, n_items, y.data(), Eo.data(), pos.data(), 1.0f / rows,
                              dF.data(), dEo.data(), ce_scratch, Precision::Fp32);
    const std::vector<std::vector<float>> res{y,   xhat, rstd, dx, dg, db, A,
                                              out, dq,   dk,   dv, dF, dEo};
    if (v == 0) {
      ref = res;
      ref_loss = loss;
      continue;
    }
    EXPECT_NEAR(loss, ref_loss, 1e-5 * std::max(1.0, std::fabs(ref_loss)));
    for (size_t i = 0; i < res.size(); ++i) expect_close(res[i], ref[i], "sasrec kernels", v);
  }
}

TEST(CoreIsa, ServingHeadVariantsGiveIdenticalScores) {
  // dot_head.hpp defines the exact score as one fma chain in k order; every variant must
  // reproduce it bit for bit (scores alone or in a batch, on any CPU).
  using namespace serve::detail;
  std::mt19937 g(5);
  const int32_t n_items = 53, dim = 13, blocks = (n_items + kLanes - 1) / kLanes;
  const auto items = randv(static_cast<size_t>(n_items) * dim, g), bias = randv(n_items, g);
  // The packed layout of PackedDotHead: 64-byte aligned blocks of 16 items.
  AlignedFloats panels(static_cast<size_t>(blocks) * dim * kLanes);
  AlignedFloats bias_pad(static_cast<size_t>(blocks) * kLanes);
  for (int32_t i = 0; i < n_items; ++i) {
    bias_pad[i] = bias[i];
    for (int32_t k = 0; k < dim; ++k)
      panels[static_cast<size_t>(i / kLanes) * dim * kLanes + k * kLanes + i % kLanes] =
          items[static_cast<size_t>(i) * dim + k];
  }
  const TileF32 tile{panels.data(), bias_pad.data(), dim, n_items};
  const int32_t nq = 3;
  std::vector<std::vector<float>> qs;
  std::vector<const float*> qp;
  for (int r = 0; r < nq; ++r) qs.push_back(randv(dim, g));
  for (auto& q : qs) qp.push_back(q.data());
  std::vector<int32_t> ids(n_items);
  for (int32_t i = 0; i < n_items; ++i) ids[i] = n_items - 1 - i;
  decltype(&isa_baseline::head_pass) pass[] = SEQREC_VARIANTS(serve::detail, head_pass);
  decltype(&isa_baseline::head_exact) exact[] = SEQREC_VARIANTS(serve::detail, head_exact);
  // The definition, written out.
  std::vector<float> want(static_cast<size_t>(nq) * n_items);
  for (int r = 0; r < nq; ++r)
    for (int32_t i = 0; i < n_items; ++i) {
      float acc = 0.0f;
      for (int32_t k = 0; k < dim; ++k)
        acc = std::fma(qs[r][k], items[static_cast<size_t>(i) * dim + k], acc);
      want[static_cast<size_t>(r) * n_items + i] = acc + bias[i];
    }
  for (int v = 0; v <= top_variant(); ++v) {
    std::vector<float> got(static_cast<size_t>(nq) * n_items);
    std::vector<float*> out;
    for (int r = 0; r < nq; ++r) out.push_back(got.data() + static_cast<size_t>(r) * n_items);
    pass[v](&tile, nullptr, blocks, nq, qp.data(), nullptr, out.data(), nullptr);
    EXPECT_EQ(got, want) << "float pass, variant " << v;
    std::vector<float> ex(n_items);
    exact[v](items.data(), bias.data(), n_items, dim, qp[1], ids.data(), ids.size(), ex.data());
    for (int32_t j = 0; j < n_items; ++j)
      EXPECT_EQ(ex[j], want[static_cast<size_t>(n_items) + ids[j]]) << "exact, variant " << v;
  }
}

TEST(CoreIsa, EvaluatorScansGiveIdenticalResults) {
  // Counting against the target and the top-K scan are exact on every level.
  using namespace eval_detail;
  std::mt19937 g(6);
  const int32_t n = 1037;
  std::vector<float> s = randv(n, g);
  for (int32_t i = 0; i < n; i += 17) s[i] = s[5];  // ties with the target
  s[100] = std::nanf("");
  decltype(&isa_baseline::count_row) count[] = SEQREC_VARIANTS(eval_detail, count_row);
  decltype(&isa_baseline::select_top_k) top[] = SEQREC_VARIANTS(eval_detail, select_top_k);
  s[100] = 0.0f;  // select_top_k wants no NaN
  std::vector<float> with_nan = s;
  with_nan[100] = std::nanf("");
  const RowCounts ref = count[0](with_nan.data(), n, s[5]);
  EXPECT_GT(ref.eq, 1);
  EXPECT_EQ(ref.nan, 1);
  std::vector<Scored> ref_top;
  top[0](s.data(), n, 25, nullptr, ref_top);
  ASSERT_EQ(ref_top.size(), 25u);
  for (int v = 1; v <= top_variant(); ++v) {
    const RowCounts c = count[v](with_nan.data(), n, s[5]);
    EXPECT_EQ(c.gt, ref.gt) << v;
    EXPECT_EQ(c.eq, ref.eq) << v;
    EXPECT_EQ(c.nan, ref.nan) << v;
    std::vector<Scored> t;
    top[v](s.data(), n, 25, nullptr, t);
    ASSERT_EQ(t.size(), ref_top.size()) << v;
    for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ(t[i].item, ref_top[i].item) << v;
  }
}

TEST(CoreIsa, Int8HeadPassIsExactOnEveryLevel) {
  // The int8 pass: an exact int32 dot product of offset query bytes with int8 weights, then
  // fma(float(acc - corr), scale * sq, bias). VNNI, the AVX2 widening tile and the portable
  // loop must all give exactly this.
  using namespace serve::detail;
  std::mt19937 g(8);
  const int32_t n_items = 45, dim4 = 12, groups = dim4 / 4,
                blocks = (n_items + kLanes - 1) / kLanes;
  const size_t panel_bytes = static_cast<size_t>(blocks) * dim4 * kLanes;
  void* raw = ::operator new (panel_bytes, std::align_val_t{64});
  auto* pan = static_cast<int8_t*>(raw);
  std::uniform_int_distribution<int> wd(-127, 127), ud(0, 255);
  std::vector<std::vector<int>> w(n_items, std::vector<int>(dim4));
  AlignedFloats scale(static_cast<size_t>(blocks) * kLanes),
      bias(static_cast<size_t>(blocks) * kLanes);
  const size_t slots = static_cast<size_t>(blocks) * kLanes;
  void* craw = ::operator new (slots * sizeof(int32_t), std::align_val_t{64});
  auto* corr = static_cast<int32_t*>(craw);
  std::fill(corr, corr + slots, 0);
  std::fill(pan, pan + panel_bytes, 0);
  std::uniform_real_distribution<float> fd(0.001f, 0.02f);
  for (int32_t i = 0; i < n_items; ++i) {
    int sum = 0;
    for (int32_t k = 0; k < dim4; ++k) {
      w[i][k] = wd(g);
      sum += w[i][k];
      pan[static_cast<size_t>(i / kLanes) * dim4 * kLanes +
          static_cast<size_t>(k / 4) * 4 * kLanes + 4 * (i % kLanes) + k % 4] =
          static_cast<int8_t>(w[i][k]);
    }
    corr[i] = 128 * sum;
    scale[i] = fd(g);
    bias[i] = fd(g) - 0.01f;
  }
  const TileI8 tile{pan, bias.data(), scale.data(), corr, dim4, n_items};
  const int32_t nq = 3;
  std::vector<std::vector<uint32_t>> words(nq, std::vector<uint32_t>(groups));
  std::vector<QueryI8> qs(nq);
  for (int r = 0; r < nq; ++r) {
    for (auto& word : words[r])
      word = static_cast<uint32_t>(ud(g)) | static_cast<uint32_t>(ud(g)) << 8 |
             static_cast<uint32_t>(ud(g)) << 16 | static_cast<uint32_t>(ud(g)) << 24;
    qs[r] = {words[r].data(), fd(g)};
  }
  std::vector<float> want(static_cast<size_t>(nq) * n_items);
  for (int r = 0; r < nq; ++r)
    for (int32_t i = 0; i < n_items; ++i) {
      int32_t acc = 0;
      for (int32_t k = 0; k < dim4; ++k)
        acc += static_cast<int32_t>((words[r][k / 4] >> (8 * (k % 4))) & 0xffu) * w[i][k];
      want[static_cast<size_t>(r) * n_items + i] =
          std::fma(static_cast<float>(acc - corr[i]), scale[i] * qs[r].sq, bias[i]);
    }
  decltype(&isa_baseline::head_pass) pass[] = SEQREC_VARIANTS(serve::detail, head_pass);
  for (int v = 0; v <= top_variant(); ++v) {
    std::vector<float> got(static_cast<size_t>(nq) * n_items);
    std::vector<float*> out;
    for (int r = 0; r < nq; ++r) out.push_back(got.data() + static_cast<size_t>(r) * n_items);
    pass[v](nullptr, &tile, blocks, nq, nullptr, qs.data(), out.data(), nullptr);
    EXPECT_EQ(got, want) << "int8 pass, variant " << v << " (level "
                         << isa::level_name(isa::level()) << ")";
  }
  ::operator delete (raw, std::align_val_t{64});
  ::operator delete (craw, std::align_val_t{64});
}

TEST(CoreIsa, Bf16HeadPassIsWithinRoundingOfTheExactSumOnEveryLevel) {
  // The bf16 pass: pairs of bf16 products (exact in float) summed in float, then the bias.
  // vdpbf16ps (avx512 variant at the avx512_vnni level on a CPU with AVX512-BF16), the
  // AVX-512 and AVX2 widening tiles and the portable loop may sum in another order: each
  // must be within the float rounding of the summed magnitudes of the exact sum.
  using namespace serve::detail;
  std::mt19937 g(9);
  const int32_t n_items = 45, dim2 = 10, groups = dim2 / 2,
                blocks = (n_items + kLanes - 1) / kLanes;
  const size_t words = static_cast<size_t>(blocks) * groups * kLanes;
  void* raw = ::operator new (words * sizeof(uint32_t), std::align_val_t{64});
  auto* pan = static_cast<uint32_t*>(raw);
  std::fill(pan, pan + words, 0u);
  // A bf16 value: a float's upper half (normal numbers of either sign, and some zeros).
  std::uniform_real_distribution<float> fd(-2.0f, 2.0f);
  auto bf = [&] {
    const float x = g() % 9 == 0 ? 0.0f : fd(g);
    uint32_t b;
    std::memcpy(&b, &x, 4);
    return static_cast<uint16_t>(b >> 16);
  };
  auto as_float = [](uint16_t h) {
    const uint32_t b = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  };
  std::vector<std::vector<uint16_t>> w(n_items, std::vector<uint16_t>(dim2));
  AlignedFloats bias(static_cast<size_t>(blocks) * kLanes);
  for (int32_t i = 0; i < n_items; ++i) {
    for (int32_t k = 0; k < dim2; ++k) {
      w[i][k] = bf();
      pan[static_cast<size_t>(i / kLanes) * groups * kLanes + static_cast<size_t>(k / 2) * kLanes +
          i % kLanes] |= static_cast<uint32_t>(w[i][k]) << (16 * (k % 2));
    }
    bias[i] = fd(g);
  }
  const TileBf16 tile{pan, bias.data(), dim2, n_items};
  for (const int nq : {3, 11}) {
    std::vector<std::vector<uint32_t>> qw(nq, std::vector<uint32_t>(groups));
    std::vector<QueryBf16> qs(nq);
    for (int r = 0; r < nq; ++r) {
      for (auto& word : qw[r])
        word = static_cast<uint32_t>(bf()) | static_cast<uint32_t>(bf()) << 16;
      qs[r].u = qw[r].data();
    }
    decltype(&isa_baseline::head_pass_bf16) pass[] = SEQREC_VARIANTS(serve::detail, head_pass_bf16);
    for (int v = 0; v <= top_variant(); ++v) {
      std::vector<float> got(static_cast<size_t>(nq) * n_items, std::nanf(""));
      std::vector<float*> out;
      for (int r = 0; r < nq; ++r) out.push_back(got.data() + static_cast<size_t>(r) * n_items);
      pass[v](&tile, blocks, nq, qs.data(), out.data(), nullptr);
      for (int r = 0; r < nq; ++r)
        for (int32_t i = 0; i < n_items; ++i) {
          double exact = bias[i], mag = std::fabs(bias[i]);
          for (int32_t k = 0; k < dim2; ++k) {
            const uint16_t qk = static_cast<uint16_t>(qw[r][k / 2] >> (16 * (k % 2)));
            const double p = static_cast<double>(as_float(qk)) * as_float(w[i][k]);
            exact += p;
            mag += std::fabs(p);
          }
          const double tol = 1.01 * (dim2 + 2) * std::ldexp(1.0, -24) * mag;
          ASSERT_LE(std::fabs(got[static_cast<size_t>(r) * n_items + i] - exact), tol)
              << "bf16 pass, variant " << v << " (level " << isa::level_name(isa::level())
              << "), query " << r << " item " << i;
        }
    }
  }
  ::operator delete (raw, std::align_val_t{64});
}
