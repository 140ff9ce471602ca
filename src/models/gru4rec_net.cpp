#include "models/gru4rec_net.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <random>

#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "kernels/gemm.hpp"
#include "seqrec/error.hpp"
#include "train/adagrad.hpp"

namespace seqrec {

using kernels::LossType;

Gru4recInput Gru4recParams::input_mode() const {
  if (constrained_embedding) return Gru4recInput::Shared;
  if (embedding != 0) return Gru4recInput::Embedding;
  return Gru4recInput::GruEmbedding;
}

kernels::GruCellWeights Gru4recNet::CellLayer::weights() const {
  kernels::GruCellWeights w;
  w.w_ih = w_ih.w.data();
  w.w_hh = w_hh.w.data();
  w.b_ih = b_ih.w.data();
  w.b_hh = b_hh.w.data();
  w.in = in;
  w.hidden = hidden;
  return w;
}

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void shape(Gru4recParam& t, std::string name, int64_t rows, int64_t cols) {
  t.name = std::move(name);
  t.rows = rows;
  t.cols = cols;
  t.w.assign(static_cast<size_t>(rows * cols), 0.0f);
}

/// NumPy's legacy random_sample() from an MT19937 stream: 53-bit doubles from two words.
class NumpyUniform {
 public:
  explicit NumpyUniform(uint64_t seed) : gen_(static_cast<std::mt19937::result_type>(seed)) {}
  double next() {
    const uint64_t a = gen_() >> 5, b = gen_() >> 6;
    return (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) / 9007199254740992.0;
  }
  /// One (rows x cols) block of uniform(-sigma, sigma) in float32, row-major, as
  /// compatibility-mode init_parameter_matrix: fl32(fl32(2u) * sigma) - sigma.
  std::vector<float> block(int64_t rows, int64_t cols) {
    const float sigma = static_cast<float>(std::sqrt(6.0 / static_cast<double>(rows + cols)));
    std::vector<float> out(static_cast<size_t>(rows * cols));
    for (auto& v : out) {
      const float u = static_cast<float>(next());
      const float two_u = 2.0f * u;
      const float scaled = two_u * sigma;
      v = scaled - sigma;
    }
    return out;
  }

 private:
  std::mt19937 gen_;
};

/// W (3H x in, gate blocks r, z, n) from three (in x H) blocks, transposed in.
void fill_gate_blocks(NumpyUniform& rng, std::vector<float>& w, int64_t in, int64_t H) {
  for (int64_t g = 0; g < 3; ++g) {
    const auto blk = rng.block(in, H);
    for (int64_t k = 0; k < in; ++k)
      for (int64_t j = 0; j < H; ++j)
        w[static_cast<size_t>((g * H + j) * in + k)] = blk[static_cast<size_t>(k * H + j)];
  }
}

/// Column chunks: dst (rows x chunks*cols) gets chunk c from a (rows x cols) block.
void fill_column_chunks(NumpyUniform& rng, std::vector<float>& w, int64_t rows, int64_t cols,
                        int64_t chunks) {
  for (int64_t c = 0; c < chunks; ++c) {
    const auto blk = rng.block(rows, cols);
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(&w[static_cast<size_t>(i * chunks * cols + c * cols)],
                  &blk[static_cast<size_t>(i * cols)], static_cast<size_t>(cols) * sizeof(float));
  }
}

/// dst row r = table row ids[r]. Serial on purpose: it runs for at most a mini-batch of
/// rows, and inference calls it from inside the evaluator's parallel region.
void copy_rows(float* dst, const float* table, const int32_t* ids, int64_t n, int64_t dim) {
  for (int64_t r = 0; r < n; ++r)
    std::memcpy(dst + r * dim, table + static_cast<int64_t>(ids[r]) * dim,
                static_cast<size_t>(dim) * sizeof(float));
}

}  // namespace

void Gru4recNet::allocate(const Gru4recParams& p, int32_t n_items) {
  p_ = p;
  mode_ = p.input_mode();
  n_items_ = n_items;
  const int64_t I = n_items, H = hout();
  const auto& L = p_.layers;
  shape(wy_, "Wy", I, H);
  shape(by_, "By", I, 1);
  emb_ = wx0_ = wrz0_ = wh0_ = bh0_ = Gru4recParam{};
  cells_.clear();
  int64_t in = H;
  size_t first_cell = 0;
  if (mode_ == Gru4recInput::Embedding) {
    shape(emb_, "Emb", I, p_.embedding_size());
    in = p_.embedding_size();
  } else if (mode_ == Gru4recInput::GruEmbedding) {
    const int64_t h0 = L[0];
    shape(wx0_, "Wx0", I, 3 * h0);
    shape(wrz0_, "Wrz0", h0, 2 * h0);
    shape(wh0_, "Wh0", h0, h0);
    shape(bh0_, "Bh0", 1, 3 * h0);
    in = h0;
    first_cell = 1;
  }
  for (size_t l = first_cell; l < L.size(); ++l) {
    CellLayer c;
    c.in = in;
    c.hidden = L[l];
    const std::string pre = "gru" + std::to_string(l) + ".";
    shape(c.w_ih, pre + "weight_ih", 3 * L[l], in);
    shape(c.w_hh, pre + "weight_hh", 3 * L[l], L[l]);
    shape(c.b_ih, pre + "bias_ih", 1, 3 * L[l]);
    shape(c.b_hh, pre + "bias_hh", 1, 3 * L[l]);
    cells_.push_back(std::move(c));
    in = L[l];
  }
  loss_.type = p_.loss;
  loss_.bpreg = p_.bpreg;
  loss_.elu_param = p_.elu_param;
}

void Gru4recNet::init(const Gru4recParams& p, int32_t n_items, uint64_t seed) {
  allocate(p, n_items);
  NumpyUniform rng(seed);
  const int64_t I = n_items;
  if (mode_ == Gru4recInput::Embedding) {
    emb_.w = rng.block(I, emb_.cols);
  } else if (mode_ == Gru4recInput::GruEmbedding) {
    const int64_t h0 = p_.layers[0];
    fill_column_chunks(rng, wx0_.w, I, h0, 3);
    fill_column_chunks(rng, wrz0_.w, h0, h0, 2);
    wh0_.w = rng.block(h0, h0);
  }
  // [QUIRK fixed] the official code uses the model's input size for every layer; here each
  // layer uses its own fan-in (identical for the published single-layer settings).
  for (auto& c : cells_) {
    fill_gate_blocks(rng, c.w_ih.w, c.in, c.hidden);
    fill_gate_blocks(rng, c.w_hh.w, c.hidden, c.hidden);
  }
  wy_.w = rng.block(I, hout());
}

std::vector<Gru4recParam*> Gru4recNet::tensors() {
  std::vector<Gru4recParam*> t;
  for (Gru4recParam* q : {&emb_, &wx0_, &wrz0_, &wh0_, &bh0_})
    if (!q->w.empty()) t.push_back(q);
  for (auto& c : cells_)
    for (Gru4recParam* q : {&c.w_ih, &c.w_hh, &c.b_ih, &c.b_hh}) t.push_back(q);
  t.push_back(&wy_);
  t.push_back(&by_);
  return t;
}

std::vector<const Gru4recParam*> Gru4recNet::tensors() const {
  auto t = const_cast<Gru4recNet*>(this)->tensors();
  return {t.begin(), t.end()};
}

Gru4recParam* Gru4recNet::find(const std::string& name) {
  for (auto* t : tensors())
    if (t->name == name) return t;
  return nullptr;
}

bool Gru4recNet::all_finite() const {
  for (const auto* t : tensors()) {
    bool ok = true;
    const float* w = t->w.data();
    const size_t n = t->w.size();
#pragma omp simd reduction(&& : ok)
    for (size_t i = 0; i < n; ++i) ok = ok && std::isfinite(w[i]);
    if (!ok) return false;
  }
  return true;
}

void Gru4recNet::prepare_training(int64_t max_rows, int64_t n_sample,
                                  std::span<const int64_t> counts, uint64_t seed) {
  max_rows_ = max_rows;
  max_k_ = n_sample;
  const bool mom = p_.momentum > 0.0f;
  for (Gru4recParam* t : tensors()) {
    t->acc.assign(t->w.size(), 0.0f);
    t->vel.assign(mom ? t->w.size() : 0, 0.0f);
  }
  for (auto& c : cells_)
    for (Gru4recParam* q : {&c.w_ih, &c.w_hh, &c.b_ih, &c.b_hh}) q->grad.assign(q->w.size(), 0.0f);
  for (Gru4recParam* q : {&wrz0_, &wh0_, &bh0_}) q->grad.assign(q->w.size(), 0.0f);

  const size_t L = p_.layers.size();
  const int64_t H = hout();
  const int64_t C = max_rows + n_sample;
  const int64_t U = C + max_rows;
  hstate_.assign(L, {});
  hout_.assign(L, {});
  o_.assign(L, {});
  mask_h_.assign(L, {});
  act_.assign(L, {});
  ghn_.assign(L, {});
  dgrad_.assign(L, {});
  dgi_.assign(L, {});
  dgh_.assign(L, {});
  int64_t hmax = 0;
  for (size_t l = 0; l < L; ++l) {
    const size_t h = static_cast<size_t>(max_rows * p_.layers[l]);
    hstate_[l].assign(h, 0.0f);
    hout_[l].assign(h, 0.0f);
    o_[l].assign(h, 0.0f);
    mask_h_[l].assign(h, 1.0f);
    act_[l].assign(3 * h, 0.0f);
    ghn_[l].assign(h, 0.0f);
    dgrad_[l].assign(h, 0.0f);
    const bool cell = !(mode_ == Gru4recInput::GruEmbedding && l == 0);
    dgi_[l].assign(cell ? 3 * h : 0, 0.0f);
    dgh_[l].assign(cell ? 3 * h : 0, 0.0f);
    hmax = std::max(hmax, p_.layers[l]);
  }
  const int64_t in0 = mode_ == Gru4recInput::Embedding ? p_.embedding_size() : H;
  gh_.assign(static_cast<size_t>(max_rows * 3 * hmax), 0.0f);
  emb_in_.assign(static_cast<size_t>(max_rows * in0), 0.0f);
  mask_e_.assign(emb_in_.size(), 1.0f);
  d_in_.assign(emb_in_.size(), 0.0f);
  if (mode_ == Gru4recInput::GruEmbedding) {
    const int64_t h0 = p_.layers[0];
    emb_cache_.assign(static_cast<size_t>(max_rows * 4 * h0), 0.0f);
    emb_tmp_.assign(static_cast<size_t>(max_rows * 3 * h0), 0.0f);
    dv_.assign(static_cast<size_t>(max_rows * 3 * h0), 0.0f);
  }
  const int64_t xdim = mode_ == Gru4recInput::Embedding      ? p_.embedding_size()
                       : mode_ == Gru4recInput::GruEmbedding ? 3 * p_.layers[0]
                                                             : 0;
  gx_.assign(static_cast<size_t>(max_rows * xdim), 0.0f);
  pos_.assign(static_cast<size_t>(n_items_), -1);
  uids_.assign(static_cast<size_t>(U), 0);
  cmap_.assign(static_cast<size_t>(C), 0);
  xmap_.assign(static_cast<size_t>(max_rows), 0);
  xids_.assign(static_cast<size_t>(max_rows), 0);
  xin_.clear();
  xin_.reserve(static_cast<size_t>(max_rows));
  is_in_.assign(static_cast<size_t>(U), 0);
  colbias_.assign(static_cast<size_t>(C), 0.0f);
  ou_.assign(static_cast<size_t>(U * H), 0.0f);
  gu_.assign(ou_.size(), 0.0f);
  dby_.assign(static_cast<size_t>(U), 0.0f);
  ru_.assign(static_cast<size_t>(max_rows * C), 0.0f);
  prec_ = resolve_precision(p_.precision, "gru4rec");
  const bool bf = prec_ == Precision::Bf16;
  ou16_.assign(bf ? ou_.size() : 0, 0);
  top16_.assign(bf ? static_cast<size_t>(max_rows * H) : 0, 0);
  ru16_.assign(bf ? ru_.size() : 0, 0);

  // logQ: P0 = raw counts in float32 (spec §5.5); count 0 is read as 1 (never sampled
  // with alpha > 0, and log 0 would poison the scores).
  lq_full_.assign(static_cast<size_t>(n_items_), 0.0f);
  lq_alpha_.assign(static_cast<size_t>(n_items_), 0.0f);
  if (p_.loss == LossType::CrossEntropy && p_.logq > 0.0f) {
    for (int32_t i = 0; i < n_items_; ++i) {
      const float c = static_cast<float>(std::max<int64_t>(1, counts[static_cast<size_t>(i)]));
      lq_full_[static_cast<size_t>(i)] = p_.logq * std::log(c);
      lq_alpha_[static_cast<size_t>(i)] =
          p_.logq * std::log(std::pow(c, static_cast<float>(p_.sample_alpha)));
    }
  }
  Rng r(seed, 0xD50u, 0);
  std::memcpy(rng_, r.state(), sizeof(rng_));
}

void Gru4recNet::reset_state() {
  for (auto& h : hstate_) std::fill(h.begin(), h.end(), 0.0f);
}

void Gru4recNet::remap_state(int64_t n, const int32_t* src) {
  for (size_t l = 0; l < hstate_.size(); ++l) {
    const int64_t h = p_.layers[l];
    float* tmp = o_[l].data();
    for (int64_t r = 0; r < n; ++r) {
      if (src[r] >= 0)
        std::memcpy(tmp + r * h, hstate_[l].data() + src[r] * h, static_cast<size_t>(h) * 4);
      else
        std::memset(tmp + r * h, 0, static_cast<size_t>(h) * 4);
    }
    std::swap(hstate_[l], o_[l]);
  }
}

double Gru4recNet::forward_backward(int64_t n, const int32_t* x, const int32_t* y,
                                    const int32_t* samples, int64_t K, bool reuse_masks) {
  return step(n, x, y, samples, K, reuse_masks, false);
}

double Gru4recNet::train_step(int64_t n, const int32_t* x, const int32_t* y, const int32_t* samples,
                              int64_t K) {
  const double loss = step(n, x, y, samples, K, false, true);
  for (size_t l = 0; l < hstate_.size(); ++l) std::swap(hstate_[l], o_[l]);
  return loss;
}

namespace {

/// Gradient blocks of the fused dense update: kRows rows of the widest tensor per thread;
/// the output columns are processed (and updated) kColBlock at a time.
constexpr int64_t kRows = 64, kColBlock = 64;

float* vel_of(Gru4recParam& t) {
  return t.vel.empty() ? nullptr : t.vel.data();
}

}  // namespace

void Gru4recNet::StepThread::lap(int bucket) {
  if (t != 0) return;
  const double v = now_s();
  clock[bucket] += v - last;
  last = v;
}

// Phase 1: the distinct items of the step. Targets and samples first (the output columns
// cmap_[c] -> index into uids_, uy_ of them), then in Shared mode the inputs (xmap_[b], the
// distinct input rows listed in xin_); in the other modes the distinct inputs get their own
// list xids_ (nx_ of them). pos_ is left all -1 again.
void Gru4recNet::unique_rows(int64_t n, const int32_t* x, const int32_t* y, const int32_t* samples,
                             int64_t K) {
  nu_ = 0;
  int32_t* pos = pos_.data();
  int32_t* uids = uids_.data();
  auto add = [&](int32_t id) {
    int32_t& q = pos[id];
    if (q < 0) {
      q = static_cast<int32_t>(nu_);
      uids[nu_++] = id;
    }
    return q;
  };
  for (int64_t c = 0; c < n; ++c) cmap_[c] = add(y[c]);
  for (int64_t k = 0; k < K; ++k) cmap_[n + k] = add(samples[k]);
  uy_ = nu_;
  for (int32_t u : xin_) is_in_[static_cast<size_t>(u)] = 0;
  xin_.clear();
  if (mode_ == Gru4recInput::Shared)
    for (int64_t b = 0; b < n; ++b) {
      const int32_t u = add(x[b]);
      xmap_[b] = u;
      if (!is_in_[static_cast<size_t>(u)]) {
        is_in_[static_cast<size_t>(u)] = 1;
        xin_.push_back(u);
      }
    }
  for (int64_t u = 0; u < nu_; ++u) pos[uids[u]] = -1;
  if (mode_ != Gru4recInput::Shared) {
    nx_ = 0;
    for (int64_t b = 0; b < n; ++b) {
      int32_t& q = pos[x[b]];
      if (q < 0) {
        q = static_cast<int32_t>(nx_);
        xids_[nx_++] = x[b];
      }
      xmap_[b] = q;
    }
    for (int64_t u = 0; u < nx_; ++u) pos[xids_[u]] = -1;
  }
}

// Phase 2: the bias of every output column c (target or sample): By[item], minus the logQ
// correction with cross-entropy and logq > 0 (the output rows are gathered in phase A).
void Gru4recNet::column_biases(int64_t n, const int32_t* y, const int32_t* samples, int64_t K) {
  const bool use_logq = p_.loss == LossType::CrossEntropy && p_.logq > 0.0f;
  const float* byw = by_.w.data();
  for (int64_t c = 0; c < n + K; ++c) {
    const int32_t id = c < n ? y[c] : samples[c - n];
    float v = byw[id];
    // [QUIRK kept] columns below batch_size (not n) get the alpha-free correction.
    if (use_logq) v -= c < p_.batch_size ? lq_full_[id] : lq_alpha_[id];
    colbias_[c] = v;
  }
}

// Phase 3: the step's dropout keys, one draw of the stream per mask in the order embedding,
// layers (none with reuse_masks: the previous step's masks are applied again).
void Gru4recNet::dropout_keys(StepPlan& s) {
  const size_t L = p_.layers.size();
  s.key_e = 0;
  key_h_.assign(L, 0);
  if (s.reuse_masks) return;
  if (s.drop_e) s.key_e = kernels::gru_dropout_key(rng_);
  for (size_t l = 0; l < L; ++l)
    if ((s.gru_emb && l == 0 ? p_.dropout_p_embed : p_.dropout_p_hidden) > 0.0f)
      key_h_[l] = kernels::gru_dropout_key(rng_);
}

// Threads for the region: about one per 4 MFLOP of GEMM work (6 n uy H for the output
// layer, 18 n h 2h per GRU layer), at most num_threads(); grows the per-thread buffers.
int Gru4recNet::step_threads(const StepPlan& s) {
  double work = 6.0 * static_cast<double>(s.n * s.uy * s.H);
  for (size_t l = 0; l < p_.layers.size(); ++l)
    work += 18.0 * static_cast<double>(s.n * p_.layers[l]) * static_cast<double>(2 * p_.layers[l]);
  const int nt = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(num_threads(), static_cast<int64_t>(work / 4e6) + 1)));
  int64_t widest = 0;
  for (const auto& c : cells_) widest = std::max(widest, c.in + c.hidden + 2);
  if (s.gru_emb) widest = std::max(widest, 3 * p_.layers[0]);
  if (gscratch_.size() < static_cast<size_t>(nt)) gscratch_.resize(static_cast<size_t>(nt));
  if (which_.size() < static_cast<size_t>(nt)) which_.resize(static_cast<size_t>(nt));
  for (int t = 0; t < nt; ++t) {
    auto& g = gscratch_[static_cast<size_t>(t)];
    if (s.update && g.size() < static_cast<size_t>(kRows * widest))
      g.resize(static_cast<size_t>(kRows * widest));
    auto& w = which_[static_cast<size_t>(t)];
    if (w.size() < static_cast<size_t>(std::max(kColBlock, s.n)))
      w.resize(static_cast<size_t>(std::max(kColBlock, s.n)));
  }
  return nt;
}

// A1: copy this thread's share of the distinct output rows, ou[u] = Wy[uids[u]].
void Gru4recNet::gather_output_rows(const StepPlan& s, StepThread& th) {
  const float* wyw = wy_.w.data();
  const int32_t* uids = uids_.data();
  float* ou = ou_.data();
  const int64_t H = s.H;
  for (int64_t u = th.c0; u < th.c1; ++u) {
    // scattered rows: start the next ones early (the streamer fetches the rest)
    if (u + 2 < th.c1) __builtin_prefetch(wyw + static_cast<int64_t>(uids[u + 2]) * H);
    std::memcpy(ou + u * H, wyw + static_cast<int64_t>(uids[u]) * H, static_cast<size_t>(H) * 4);
  }
  if (prec_ == Precision::Bf16 && th.c1 > th.c0)
    to_bf16(th.c1 - th.c0, H, ou + th.c0 * H, H, ou16_.data() + th.c0 * H, H);
}

// A2: forward of this thread's rows: input rows (Wy rows in Shared mode, Emb rows otherwise)
// with embedding dropout, then every layer h' = GRU(input, h) (the one-hot GRU embedding
// layer first in GruEmbedding mode), o = dropout(h') the next layer's input.
void Gru4recNet::forward_rows(const StepPlan& s, StepThread& th) {
  const int64_t r0 = th.r0, r1 = th.r1, m = th.m, in0 = s.in0;
  const float* uin = nullptr;
  if (!s.gru_emb) {
    float* e = emb_in_.data() + r0 * in0;
    copy_rows(e, mode_ == Gru4recInput::Shared ? wy_.w.data() : emb_.w.data(), s.x + r0, m, in0);
    if (s.drop_e) {
      if (!s.reuse_masks)
        kernels::gru_dropout_mask_range(mask_e_.data(), r0 * in0, r1 * in0, p_.dropout_p_embed,
                                        s.key_e);
      kernels::gru_apply_mask(e, e, mask_e_.data() + r0 * in0, m * in0);
    }
    uin = emb_in_.data();
  }
  const kernels::GruEmbWeights ew = emb_weights();
  for (size_t l = 0; l < p_.layers.size(); ++l) {
    const int64_t h = p_.layers[l];
    float p;
    float* ho = hout_[l].data() + r0 * h;
    if (s.gru_emb && l == 0) {
      kernels::gru_emb_forward(m, ew, s.x + r0, hstate_[0].data() + r0 * h, ho,
                               emb_cache_.data() + r0 * 4 * h, emb_tmp_.data() + r0 * 3 * h);
      p = p_.dropout_p_embed;
    } else {
      const CellLayer& c = cells_[s.gru_emb ? l - 1 : l];
      kernels::gru_cell_forward(m, c.weights(), uin + r0 * c.in, hstate_[l].data() + r0 * h, ho,
                                act_[l].data() + r0 * 3 * h, ghn_[l].data() + r0 * h, th.gh_rows);
      p = p_.dropout_p_hidden;
    }
    float* o = o_[l].data() + r0 * h;
    if (p > 0.0f) {
      if (!s.reuse_masks)
        kernels::gru_dropout_mask_range(mask_h_[l].data(), r0 * h, r1 * h, p, key_h_[l]);
      kernels::gru_apply_mask(o, ho, mask_h_[l].data() + r0 * h, m * h);
    } else {
      std::memcpy(o, ho, static_cast<size_t>(m * h) * 4);
    }
    uin = o_[l].data();
  }
  if (prec_ == Precision::Bf16) {
    const int64_t H = s.H;
    to_bf16(m, H, o_[p_.layers.size() - 1].data() + r0 * H, H, top16_.data() + r0 * H, H);
  }
}

// B: scores of this thread's distinct columns for every row, R_u[:, c0:c1] = top ou^T
// (in bf16: both operands rounded to bf16, products summed in fp32).
void Gru4recNet::score_columns(const StepPlan& s, StepThread& th) {
  const float* top = o_[p_.layers.size() - 1].data();
  if (th.c1 > th.c0 && prec_ == Precision::Bf16)
    gemm_bf16_pre(false, true, s.n, th.c1 - th.c0, s.H, 1.0f, top16_.data(), s.H,
                  ou16_.data() + th.c0 * s.H, s.H, 0.0f, ru_.data() + th.c0, s.uy);
  else if (th.c1 > th.c0)
    sgemm(false, true, s.n, th.c1 - th.c0, s.H, 1.0f, top, s.H, ou_.data() + th.c0 * s.H, s.H, 0.0f,
          ru_.data() + th.c0, s.uy);
}

// C: the loss of this thread's rows over their C = n + K columns (score R_u[j][cmap[c]] +
// bias[c]), fused with dL/dR; then dL/dR_u[j][u] = sum of dL/dR[j][c] over the columns c
// showing item u, written over R_u's row.
void Gru4recNet::loss_rows(const StepPlan& s, StepThread& th) {
  const int64_t C = s.n + s.K, uy = s.uy;
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(3 * C)) buf.resize(static_cast<size_t>(3 * C));
  float* row = buf.data();
  const int32_t* cmap = cmap_.data();
  const float* cb = colbias_.data();
  for (int64_t j = th.r0; j < th.r1; ++j) {
    float* rj = ru_.data() + j * uy;
    for (int64_t c = 0; c < C; ++c) row[c] = rj[cmap[c]] + cb[c];
    s.row_loss[j] = kernels::sampled_loss_row(loss_, row, C, j, s.scale, row + C);
    // dL/dRu[j][u] = sum over the columns c showing item u of dL/dR[j][c]
    std::memset(rj, 0, static_cast<size_t>(uy) * 4);
    for (int64_t c = 0; c < C; ++c) rj[cmap[c]] += row[c];
    if (prec_ == Precision::Bf16) to_bf16(1, uy, rj, uy, ru16_.data() + j * uy, uy);
  }
}

// D1: output backward of this thread's columns: dBy[u] = sum_j dR_u[j][u] and, by blocks of
// kColBlock columns, dWy[u] = dR_u[:, u]^T top; with `update` each block's By/Wy rows are
// updated at once (Wy rows that are also inputs wait for their input gradient in E).
void Gru4recNet::output_column_grads(const StepPlan& s, StepThread& th) {
  const int64_t c0 = th.c0, c1 = th.c1, uy = s.uy, H = s.H;
  const float* ru = ru_.data();
  const float* top = o_[p_.layers.size() - 1].data();
  float* dby = dby_.data();
  float* gu = gu_.data();
  if (c1 > c0) {
    std::memset(dby + c0, 0, static_cast<size_t>(c1 - c0) * 4);
    for (int64_t j = 0; j < s.n; ++j) {
      const float* rj = ru + j * uy;
#pragma omp simd
      for (int64_t u = c0; u < c1; ++u) dby[u] += rj[u];
    }
  }
  for (int64_t a = c0; a < c1; a += kColBlock) {
    const int64_t b = std::min(c1, a + kColBlock);
    if (prec_ == Precision::Bf16)
      gemm_bf16_pre(true, false, b - a, H, s.n, 1.0f, ru16_.data() + a, uy, top16_.data(), H, 0.0f,
                    gu + a * H, H);
    else
      sgemm(true, false, b - a, H, s.n, 1.0f, ru + a, uy, top, H, 0.0f, gu + a * H, H);
    th.lap(4);
    if (s.update) {
      int64_t cnt = 0;
      for (int64_t u = a; u < b; ++u) {
        th.which[cnt] = static_cast<int32_t>(u);
        cnt += is_in_[static_cast<size_t>(u)] == 0;
      }
      train::adagrad_rows_at(wy_.w.data(), wy_.acc.data(), vel_of(wy_), H, uids_.data(), th.which,
                             cnt, gu, H, s.lr, s.mu);
      for (int64_t u = a; u < b; ++u) th.which[u - a] = static_cast<int32_t>(u);
      train::adagrad_rows_at(by_.w.data(), by_.acc.data(), vel_of(by_), 1, uids_.data(), th.which,
                             b - a, dby, 1, s.lr, s.mu);
      th.lap(6);
    }
  }
}

// D2: backward of this thread's rows: dL/d(top) = dR_u[rows] Wy[U], then every layer from
// the top: through its dropout mask (dL/dh'), the row-local GRU backward (gate gradients
// dgi/dgh or dv, and dL/d(its input) into the layer below), and the embedding dropout.
void Gru4recNet::gru_backward_rows(const StepPlan& s, StepThread& th) {
  const int64_t r0 = th.r0, m = th.m, H = s.H, in0 = s.in0;
  const size_t L = p_.layers.size();
  // dL/d(top rows) = dR_u[rows] Wy[U]
  if (prec_ == Precision::Bf16)
    gemm_bf16_pre(false, false, m, H, s.uy, 1.0f, ru16_.data() + r0 * s.uy, s.uy, ou16_.data(), H,
                  0.0f, dgrad_[L - 1].data() + r0 * H, H);
  else
    sgemm(false, false, m, H, s.uy, 1.0f, ru_.data() + r0 * s.uy, s.uy, ou_.data(), H, 0.0f,
          dgrad_[L - 1].data() + r0 * H, H);
  th.lap(4);
  const kernels::GruEmbWeights ew = emb_weights();
  for (size_t li = L; li-- > 0;) {
    const int64_t h = p_.layers[li];
    float* d = dgrad_[li].data() + r0 * h;
    const bool emb_layer = s.gru_emb && li == 0;
    const float p = emb_layer ? p_.dropout_p_embed : p_.dropout_p_hidden;
    if (p > 0.0f) kernels::gru_apply_mask(d, d, mask_h_[li].data() + r0 * h, m * h);  // dL/dh'
    if (emb_layer) {
      kernels::gru_emb_backward_rows(m, ew, hstate_[0].data() + r0 * h,
                                     emb_cache_.data() + r0 * 4 * h, d, dv_.data() + r0 * 3 * h,
                                     nullptr, emb_tmp_.data() + r0 * 3 * h);
    } else {
      const CellLayer& c = cells_[s.gru_emb ? li - 1 : li];
      float* du = li > 0 ? dgrad_[li - 1].data() + r0 * c.in : d_in_.data() + r0 * c.in;
      kernels::gru_cell_backward_rows(m, c.weights(), hstate_[li].data() + r0 * h,
                                      act_[li].data() + r0 * 3 * h, ghn_[li].data() + r0 * h, d,
                                      dgi_[li].data() + r0 * 3 * h, dgh_[li].data() + r0 * 3 * h,
                                      du, nullptr);
    }
  }
  if (s.drop_e) {
    float* d = d_in_.data() + r0 * in0;
    kernels::gru_apply_mask(d, d, mask_e_.data() + r0 * in0, m * in0);
  }
}

// E1: the GRU weight gradients summed over all rows, this thread's blocks of kRows gate rows
// (dW_ih = dgi^T input, dW_hh = dgh^T h, db = column sums; the GRU embedding layer's
// Wrz0/Wh0 from dv and Bh0 = column sums of dv). Without `update` they go to the tensors'
// dense grad; with it each block goes to the thread's scratch and is applied at once
// (IndexedAdagradM) while in cache.
void Gru4recNet::gru_weight_grads(const StepPlan& s, StepThread& th) {
  const int t = th.t, T = th.T;
  const int64_t n = s.n;
  const float lr = s.lr, mu = s.mu;
  float* scr = s.update ? gscratch_[static_cast<size_t>(t)].data() : nullptr;
  for (size_t li = 0; li < p_.layers.size(); ++li) {
    const int64_t h = p_.layers[li];
    if (s.gru_emb && li == 0) {
      const int64_t q0 = h * t / T, q1 = h * (t + 1) / T;
      for (int64_t a = q0; a < q1; a += kRows) {
        const int64_t b = std::min(q1, a + kRows);
        float* grz = s.update ? scr : wrz0_.grad.data() + a * 2 * h;
        float* gh = s.update ? scr + (b - a) * 2 * h : wh0_.grad.data() + a * h;
        kernels::gru_emb_weight_grads(n, h, hstate_[0].data(), emb_cache_.data(), dv_.data(), a, b,
                                      grz, gh);
        th.lap(5);
        if (s.update) {
          train::adagrad_step(wrz0_.w.data() + a * 2 * h, wrz0_.acc.data() + a * 2 * h,
                              vel_of(wrz0_) ? vel_of(wrz0_) + a * 2 * h : nullptr, grz,
                              (b - a) * 2 * h, lr, mu);
          train::adagrad_step(wh0_.w.data() + a * h, wh0_.acc.data() + a * h,
                              vel_of(wh0_) ? vel_of(wh0_) + a * h : nullptr, gh, (b - a) * h, lr,
                              mu);
          th.lap(6);
        }
      }
      // Bh0: column sums of dv over this thread's share of the 3h columns.
      const int64_t k0 = 3 * h * t / T, k1 = 3 * h * (t + 1) / T;
      if (k1 > k0) {
        float* gb = s.update ? scr : bh0_.grad.data() + k0;
        std::memset(gb, 0, static_cast<size_t>(k1 - k0) * 4);
        for (int64_t r = 0; r < n; ++r) {
          const float* dvr = dv_.data() + r * 3 * h + k0;
#pragma omp simd
          for (int64_t k = 0; k < k1 - k0; ++k) gb[k] += dvr[k];
        }
        th.lap(5);
        if (s.update) {
          train::adagrad_step(bh0_.w.data() + k0, bh0_.acc.data() + k0,
                              vel_of(bh0_) ? vel_of(bh0_) + k0 : nullptr, gb, k1 - k0, lr, mu);
          th.lap(6);
        }
      }
      continue;
    }
    CellLayer& c = cells_[s.gru_emb ? li - 1 : li];
    const float* uin = li == 0 ? emb_in_.data() : o_[li - 1].data();
    const int64_t G = 3 * h, q0 = G * t / T, q1 = G * (t + 1) / T;
    for (int64_t a = q0; a < q1; a += kRows) {
      const int64_t b = std::min(q1, a + kRows), rows = b - a;
      kernels::GruCellGrads g;
      if (s.update) {
        g = {scr, scr + rows * c.in, scr + rows * (c.in + h), scr + rows * (c.in + h) + rows};
      } else {
        g = {c.w_ih.grad.data() + a * c.in, c.w_hh.grad.data() + a * h, c.b_ih.grad.data() + a,
             c.b_hh.grad.data() + a};
      }
      kernels::gru_cell_weight_grads(n, c.in, h, uin, hstate_[li].data(), dgi_[li].data(),
                                     dgh_[li].data(), a, b, g);
      th.lap(5);
      if (s.update) {
        auto upd = [&](Gru4recParam& q, const float* gq, int64_t off, int64_t count) {
          train::adagrad_step(q.w.data() + off, q.acc.data() + off,
                              vel_of(q) ? vel_of(q) + off : nullptr, gq, count, lr, mu);
        };
        upd(c.w_ih, g.w_ih, a * c.in, rows * c.in);
        upd(c.w_hh, g.w_hh, a * h, rows * h);
        upd(c.b_ih, g.b_ih, a, rows);
        upd(c.b_hh, g.b_hh, a, rows);
        th.lap(6);
      }
    }
  }
}

// E2: the input rows' gradients, summed per distinct input row in row order (Shared mode:
// added to that Wy row's output gradient, or starting from zero for a row that is only an
// input; other modes: the Emb or Wx0 rows), this thread's share of the distinct rows, and
// with `update` applied.
void Gru4recNet::input_row_grads(const StepPlan& s, StepThread& th) {
  const int t = th.t, T = th.T;
  const int64_t n = s.n, H = s.H;
  const int32_t* xmap = xmap_.data();
  if (mode_ == Gru4recInput::Shared) {
    float* gu = gu_.data();
    const int64_t nin = static_cast<int64_t>(xin_.size());
    const int64_t i0 = nin * t / T, i1 = nin * (t + 1) / T;
    for (int64_t i = i0; i < i1; ++i) {
      const int32_t u = xin_[static_cast<size_t>(i)];
      float* g = gu + static_cast<int64_t>(u) * H;
      if (u >= s.uy) std::memset(g, 0, static_cast<size_t>(H) * 4);
      for (int64_t b = 0; b < n; ++b) {
        if (xmap[b] != u) continue;
        const float* src = d_in_.data() + b * H;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) g[k] += src[k];
      }
    }
    th.lap(5);
    if (s.update) {
      train::adagrad_rows_at(wy_.w.data(), wy_.acc.data(), vel_of(wy_), H, uids_.data(),
                             xin_.data() + i0, i1 - i0, gu, H, s.lr, s.mu);
      th.lap(6);
    }
  } else {
    const int64_t w = s.gru_emb ? 3 * p_.layers[0] : s.in0;
    const float* src = s.gru_emb ? dv_.data() : d_in_.data();
    const int64_t i0 = nx_ * t / T, i1 = nx_ * (t + 1) / T;
    for (int64_t u = i0; u < i1; ++u) {
      float* g = gx_.data() + u * w;
      std::memset(g, 0, static_cast<size_t>(w) * 4);
      for (int64_t b = 0; b < n; ++b) {
        if (xmap[b] != u) continue;
        const float* sb = src + b * w;
#pragma omp simd
        for (int64_t k = 0; k < w; ++k) g[k] += sb[k];
      }
      th.which[u - i0] = static_cast<int32_t>(u);
    }
    th.lap(5);
    if (s.update) {
      Gru4recParam& q = s.gru_emb ? wx0_ : emb_;
      train::adagrad_rows_at(q.w.data(), q.acc.data(), vel_of(q), w, xids_.data(), th.which,
                             i1 - i0, gx_.data(), w, s.lr, s.mu);
      th.lap(6);
    }
  }
}

kernels::GruEmbWeights Gru4recNet::emb_weights() const {
  return {wx0_.w.data(), wrz0_.w.data(), wh0_.w.data(), bh0_.w.data(), p_.layers[0]};
}

// One step: the serial phases 1-3 (distinct items, column biases, dropout keys), then one
// OpenMP region of T threads (GEMMs inside run single-threaded), phases separated by
// barriers:
//   A  rows split: input rows, dropout, GRU layers forward;  columns split: gather Wy rows
//   B  columns: scores of the distinct columns
//   C  rows: fused softmax/loss/gradient, summed per distinct column
//   D  columns: dBy, dWy (blocks of kColBlock; with `update`, their By/Wy rows are updated
//      at once, except rows that are also inputs);  rows: dL/d(top) = dR_u Wy[U], then
//      every GRU layer's row-local backward down to dL/d(input)
//   E  the GRU weight gradients by blocks of gate rows (with `update`: each block applied
//      while in cache), the input rows' gradients summed per distinct row (and updated).
// Every row/column split is a contiguous range per thread and every per-element reduction
// runs in the same order for any T, so T only changes which thread computes what.
// Returns L = (sum of the row losses) / batch_size.
double Gru4recNet::step(int64_t n, const int32_t* x, const int32_t* y, const int32_t* samples,
                        int64_t K, bool reuse_masks, bool update) {
  if (n > max_rows_ || K > max_k_ || n < 1)
    throw Error("internal: gru4rec step with " + std::to_string(n) + " rows / " +
                std::to_string(K) + " samples exceeds the prepared sizes");
  n_ = n;
  const double t_start = now_s();
  unique_rows(n, x, y, samples, K);
  column_biases(n, y, samples, K);

  StepPlan s;
  s.n = n;
  s.K = K;
  s.H = hout();
  s.uy = uy_;
  s.x = x;
  s.reuse_masks = reuse_masks;
  s.update = update;
  s.gru_emb = mode_ == Gru4recInput::GruEmbedding;
  s.in0 = mode_ == Gru4recInput::Embedding ? p_.embedding_size() : s.H;
  s.drop_e = !s.gru_emb && p_.dropout_p_embed > 0.0f;
  s.scale = 1.0f / static_cast<float>(p_.batch_size);
  s.lr = p_.learning_rate;
  s.mu = p_.momentum;
  dropout_keys(s);
  const int nt = step_threads(s);
  const int64_t gh_stride = static_cast<int64_t>(gh_.size()) / max_rows_;

  thread_local std::vector<double> row_loss;
  row_loss.assign(static_cast<size_t>(n), 0.0);
  s.row_loss = row_loss.data();  // (row_loss is thread_local: the workers need its address)
  std::exception_ptr error;
  // Thread 0's clock: [0] gather, [1] GRU forward (+ wait), [2] scores, [3] loss,
  // [4] output backward GEMMs, [5] GRU backward, [6] updates.
  double tp[7] = {0, 0, 0, 0, 0, 0, 0};
  const double t_region = now_s();
#pragma omp parallel num_threads(nt)
  {
    StepThread th;
    th.t = omp_get_thread_num();
    th.T = omp_get_num_threads();
    th.clock = tp;
    th.last = now_s();
    th.r0 = n * th.t / th.T;
    th.r1 = n * (th.t + 1) / th.T;
    th.m = th.r1 - th.r0;
    // The GRU layers' shared scratch gh_ is split by rows at the widest layer's stride: the
    // threads are not in step between layers, and a per-layer stride (r0 * 3h) let one
    // thread's rows of a wider layer overlap another's rows of a narrower one.
    th.gh_rows = gh_.data() + th.r0 * gh_stride;
    const int64_t blk = ((s.uy + th.T - 1) / th.T + 15) / 16 * 16;
    th.c0 = std::min(s.uy, th.t * blk);
    th.c1 = std::min(s.uy, th.c0 + blk);
    th.which = which_[static_cast<size_t>(th.t)].data();
    auto guard = [&](auto&& fn) {
      try {
        fn();
      } catch (...) {
#pragma omp critical(gru4rec_error)
        if (!error) error = std::current_exception();
      }
    };
    guard([&] { gather_output_rows(s, th); });  // A
    th.lap(0);
    guard([&] { forward_rows(s, th); });
#pragma omp barrier
    th.lap(1);
    guard([&] { score_columns(s, th); });  // B
#pragma omp barrier
    th.lap(2);
    guard([&] { loss_rows(s, th); });  // C
#pragma omp barrier
    th.lap(3);
    guard([&] {  // D
      output_column_grads(s, th);
      gru_backward_rows(s, th);
    });
#pragma omp barrier
    th.lap(5);
    guard([&] {  // E
      gru_weight_grads(s, th);
      input_row_grads(s, th);
    });
  }
  if (error) std::rethrow_exception(error);
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) total += s.row_loss[j];
  record_profile(s, t_start, t_region, tp);
  return total * static_cast<double>(s.scale);
}

// Adds the step's phase times (thread 0's; the waits at the barriers count for the phase
// before them) and its GEMM work to prof_.
void Gru4recNet::record_profile(const StepPlan& s, double t_start, double t_region,
                                const double* tp) {
  const double t_end = now_s();
  const double other = (t_end - t_region) - (tp[0] + tp[1] + tp[2] + tp[3] + tp[4] + tp[5] + tp[6]);
  prof_.unique_gather += (t_region - t_start) + tp[0];
  prof_.gru_forward += tp[1];
  prof_.output_gemm += tp[2] + tp[4];
  prof_.loss += tp[3];
  prof_.gru_backward += tp[5];
  prof_.update += tp[6] + other;
  ++prof_.steps;
  prof_.rows += s.n;
  prof_.distinct_columns += s.uy;
  prof_.output_gemm_flops += 6.0 * static_cast<double>(s.n * s.uy * s.H);
  for (const auto& c : cells_)
    prof_.gru_gemm_flops += 2.0 * static_cast<double>(s.n * 3 * c.hidden) *
                            static_cast<double>(3 * (c.in + c.hidden) - c.hidden);
}

void Gru4recNet::dense_update(Gru4recParam& t) {
  train::adagrad_step_parallel(t.w.data(), t.acc.data(), t.vel.empty() ? nullptr : t.vel.data(),
                               t.grad.data(), static_cast<int64_t>(t.w.size()), p_.learning_rate,
                               p_.momentum);
}

void Gru4recNet::apply_update() {
  const double t0 = now_s();
  const float lr = p_.learning_rate, mu = p_.momentum;
  for (auto& c : cells_)
    for (Gru4recParam* q : {&c.w_ih, &c.w_hh, &c.b_ih, &c.b_hh}) dense_update(*q);
  if (mode_ == Gru4recInput::GruEmbedding)
    for (Gru4recParam* q : {&wrz0_, &wh0_, &bh0_}) dense_update(*q);
  auto vel = [](Gru4recParam& t) { return t.vel.empty() ? nullptr : t.vel.data(); };
  const int64_t H = hout();
  const int64_t rows_wy = mode_ == Gru4recInput::Shared ? nu_ : uy_;
  train::adagrad_rows(wy_.w.data(), wy_.acc.data(), vel(wy_), H,
                      std::span<const int32_t>(uids_.data(), static_cast<size_t>(rows_wy)),
                      gu_.data(), H, lr, mu);
  train::adagrad_rows(by_.w.data(), by_.acc.data(), vel(by_), 1,
                      std::span<const int32_t>(uids_.data(), static_cast<size_t>(uy_)), dby_.data(),
                      1, lr, mu);
  if (mode_ != Gru4recInput::Shared) {
    Gru4recParam& t = mode_ == Gru4recInput::Embedding ? emb_ : wx0_;
    train::adagrad_rows(t.w.data(), t.acc.data(), vel(t), t.cols,
                        std::span<const int32_t>(xids_.data(), static_cast<size_t>(nx_)),
                        gx_.data(), t.cols, lr, mu);
  }
  for (size_t l = 0; l < hstate_.size(); ++l) std::swap(hstate_[l], o_[l]);
  prof_.update += now_s() - t0;
}

std::vector<float> Gru4recNet::sparse_grad(const std::string& table, int32_t item) const {
  if (table == "Wy") {
    const int64_t H = hout();
    const int64_t rows = mode_ == Gru4recInput::Shared ? nu_ : uy_;
    for (int64_t u = 0; u < rows; ++u)
      if (uids_[u] == item) return {gu_.begin() + u * H, gu_.begin() + (u + 1) * H};
    return std::vector<float>(static_cast<size_t>(H), 0.0f);
  }
  const int64_t w = mode_ == Gru4recInput::Embedding ? emb_.cols : wx0_.cols;
  for (int64_t u = 0; u < nx_; ++u)
    if (xids_[u] == item) return {gx_.begin() + u * w, gx_.begin() + (u + 1) * w};
  return std::vector<float>(static_cast<size_t>(w), 0.0f);
}

float Gru4recNet::by_grad(int32_t item) const {
  for (int64_t u = 0; u < uy_; ++u)
    if (uids_[u] == item) return dby_[u];
  return 0.0f;
}

const float* Gru4recNet::infer_step(int64_t n, const int32_t* x, std::vector<std::vector<float>>& h,
                                    std::vector<float>& scratch) const {
  const size_t L = p_.layers.size();
  int64_t hmax = 0;
  for (int64_t v : p_.layers) hmax = std::max(hmax, v);
  const int64_t H = hout();
  const int64_t in0 = mode_ == Gru4recInput::Embedding ? p_.embedding_size() : H;
  // e | act (3 hmax) | ghn | gh (3 hmax) | hnew | emb cache (4 hmax) | tmp (2 hmax)
  const int64_t per_row = in0 + 14 * hmax;
  if (scratch.size() < static_cast<size_t>(n * per_row))
    scratch.resize(static_cast<size_t>(n * per_row));
  float* e = scratch.data();
  float* act = e + n * in0;
  float* ghn = act + n * 3 * hmax;
  float* gh = ghn + n * hmax;
  float* hnew = gh + n * 3 * hmax;
  float* cache = hnew + n * hmax;
  float* tmp = cache + n * 4 * hmax;
  const float* u = e;
  if (mode_ == Gru4recInput::Shared)
    copy_rows(e, wy_.w.data(), x, n, H);
  else if (mode_ == Gru4recInput::Embedding)
    copy_rows(e, emb_.w.data(), x, n, in0);
  kernels::GruEmbWeights ew{wx0_.w.data(), wrz0_.w.data(), wh0_.w.data(), bh0_.w.data(),
                            p_.layers[0]};
  for (size_t l = 0; l < L; ++l) {
    const int64_t hl = p_.layers[l];
    if (mode_ == Gru4recInput::GruEmbedding && l == 0) {
      kernels::gru_emb_forward(n, ew, x, h[0].data(), hnew, cache, tmp);
    } else {
      const CellLayer& c = cells_[mode_ == Gru4recInput::GruEmbedding ? l - 1 : l];
      kernels::gru_cell_forward(n, c.weights(), u, h[l].data(), hnew, act, ghn, gh);
    }
    std::memcpy(h[l].data(), hnew, static_cast<size_t>(n * hl) * 4);
    u = h[l].data();
  }
  return h[L - 1].data();
}

void Gru4recNet::output_scores(int64_t n, const float* h, float* out) const {
  const int64_t I = n_items_, H = hout();
  for (int64_t r = 0; r < n; ++r)
    std::memcpy(out + r * I, by_.w.data(), static_cast<size_t>(I) * 4);
  sgemm(false, true, n, I, H, 1.0f, h, H, wy_.w.data(), H, 1.0f, out, I);
}

}  // namespace seqrec
