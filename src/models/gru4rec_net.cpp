#include "models/gru4rec_net.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <random>

#include "core/parallel.hpp"
#include "kernels/gemm.hpp"
#include "seqrec/error.hpp"
#include "train/adagrad.hpp"
#include "train/rng.hpp"

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
    hmax = std::max(hmax, p_.layers[l]);
  }
  const int64_t in0 = mode_ == Gru4recInput::Embedding ? p_.embedding_size() : H;
  gh_.assign(static_cast<size_t>(max_rows * 3 * hmax), 0.0f);
  dgi_.assign(gh_.size(), 0.0f);
  dgh_.assign(gh_.size(), 0.0f);
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
  colbias_.assign(static_cast<size_t>(C), 0.0f);
  ou_.assign(static_cast<size_t>(U * H), 0.0f);
  gu_.assign(ou_.size(), 0.0f);
  dby_.assign(static_cast<size_t>(U), 0.0f);
  ru_.assign(static_cast<size_t>(max_rows * C), 0.0f);

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
  train::Rng r(seed, 0xD50u, 0);
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
  if (n > max_rows_ || K > max_k_ || n < 1)
    throw Error("internal: gru4rec step with " + std::to_string(n) + " rows / " +
                std::to_string(K) + " samples exceeds the prepared sizes");
  n_ = n;
  const int64_t C = n + K, H = hout();
  const size_t L = p_.layers.size();
  double t_last = now_s();
  auto lap = [&](double& bucket) {
    const double t = now_s();
    bucket += t - t_last;
    t_last = t;
  };

  // ---- 1. distinct rows: targets and samples first (output columns), then inputs.
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
  if (mode_ == Gru4recInput::Shared)
    for (int64_t b = 0; b < n; ++b) xmap_[b] = add(x[b]);
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

  // ---- 2. column biases with logQ (the output rows are gathered in step 4).
  const bool use_logq = p_.loss == LossType::CrossEntropy && p_.logq > 0.0f;
  const float* byw = by_.w.data();
  for (int64_t c = 0; c < C; ++c) {
    const int32_t id = c < n ? y[c] : samples[c - n];
    float v = byw[id];
    // [QUIRK kept] columns below batch_size (not n) get the alpha-free correction.
    if (use_logq) v -= c < p_.batch_size ? lq_full_[id] : lq_alpha_[id];
    colbias_[c] = v;
  }

  lap(prof_.unique_gather);

  // ---- 3. input and GRU layers.
  const float* u = nullptr;
  int64_t in0 = H;
  if (mode_ != Gru4recInput::GruEmbedding) {
    if (mode_ == Gru4recInput::Shared) {
      copy_rows(emb_in_.data(), wy_.w.data(), x, n, H);
    } else {
      in0 = p_.embedding_size();
      copy_rows(emb_in_.data(), emb_.w.data(), x, n, in0);
    }
    if (p_.dropout_p_embed > 0.0f) {
      if (!reuse_masks)
        kernels::gru_dropout_mask(mask_e_.data(), n * in0, p_.dropout_p_embed, rng_);
      kernels::gru_apply_mask(emb_in_.data(), emb_in_.data(), mask_e_.data(), n * in0);
    }
    u = emb_in_.data();
  }
  kernels::GruEmbWeights ew{wx0_.w.data(), wrz0_.w.data(), wh0_.w.data(), bh0_.w.data(),
                            p_.layers[0]};
  // Small GRU layers run on one thread: a fork/join per GEMM costs more than it saves.
  const int threads_all = num_threads();
  double gru_flops = 0;
  for (size_t l = 0; l < L; ++l)
    gru_flops +=
        6.0 * static_cast<double>(n * p_.layers[l]) * static_cast<double>(p_.layers[l] + in0);
  const bool gru_serial = threads_all > 1 && gru_flops < 2e7;
  if (gru_serial) set_threads(1);
  for (size_t l = 0; l < L; ++l) {
    const int64_t h = p_.layers[l];
    float p;
    if (mode_ == Gru4recInput::GruEmbedding && l == 0) {
      kernels::gru_emb_forward(n, ew, x, hstate_[0].data(), hout_[0].data(), emb_cache_.data(),
                               emb_tmp_.data());
      p = p_.dropout_p_embed;
    } else {
      const CellLayer& c = cells_[mode_ == Gru4recInput::GruEmbedding ? l - 1 : l];
      kernels::gru_cell_forward(n, c.weights(), u, hstate_[l].data(), hout_[l].data(),
                                act_[l].data(), ghn_[l].data(), gh_.data());
      p = p_.dropout_p_hidden;
    }
    if (p > 0.0f) {
      if (!reuse_masks) kernels::gru_dropout_mask(mask_h_[l].data(), n * h, p, rng_);
      kernels::gru_apply_mask(o_[l].data(), hout_[l].data(), mask_h_[l].data(), n * h);
    } else {
      std::memcpy(o_[l].data(), hout_[l].data(), static_cast<size_t>(n * h) * 4);
    }
    u = o_[l].data();
  }
  const float* top = o_[L - 1].data();
  if (gru_serial) set_threads(threads_all);

  // ---- 4+5. Output layer in one parallel region (one fork/join per step): each thread
  // gathers its block of distinct columns and computes their scores; after a barrier the
  // rows' losses and dL/dscores (summed per distinct column) are computed, split by rows;
  // after another barrier each thread computes its columns' dWy rows and dBy, and its
  // share of dL/d(top output). GEMMs inside the region run single-threaded.
  lap(prof_.gru_forward);
  float* ru = ru_.data();
  const int64_t uy = uy_;
  const float scale = 1.0f / static_cast<float>(p_.batch_size);
  thread_local std::vector<double> row_loss;
  row_loss.assign(static_cast<size_t>(n), 0.0);
  double* rl = row_loss.data();  // (row_loss is thread_local: the workers need its address)
  const int32_t* cmap = cmap_.data();
  const float* cb = colbias_.data();
  const int nt = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(threads_all, static_cast<int64_t>(6.0 * n * uy * H / 4e6) + 1)));
  if (dpart_.size() < static_cast<size_t>(nt)) dpart_.resize(static_cast<size_t>(nt));
  for (int t = 0; t < nt; ++t) dpart_[static_cast<size_t>(t)].resize(static_cast<size_t>(n * H));
  std::exception_ptr error;
  double t_gather = 0, t_loss = 0;
  const float* wyw = wy_.w.data();
  float* ou = ou_.data();
  float* gu = gu_.data();
  float* dby = dby_.data();
  const Gru4recParams& P = p_;
  const kernels::LossOptions& lo = loss_;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    auto guard = [&](auto&& fn) {
      try {
        fn();
      } catch (...) {
#pragma omp critical(gru4rec_error)
        if (!error) error = std::current_exception();
      }
    };
    const int64_t blk = ((uy + T - 1) / T + 15) / 16 * 16;
    const int64_t c0 = std::min(uy, t * blk), c1 = std::min(uy, c0 + blk);
    const double ts = now_s();
    double tg = ts;
    guard([&] {
      for (int64_t u = c0; u < c1; ++u)
        std::memcpy(ou + u * H, wyw + static_cast<int64_t>(uids[u]) * H,
                    static_cast<size_t>(H) * 4);
      tg = now_s();
      if (c1 > c0)
        sgemm(false, true, n, c1 - c0, H, 1.0f, top, H, ou + c0 * H, H, 0.0f, ru + c0, uy);
    });
#pragma omp barrier
    const double tl = now_s();
    guard([&] {
      thread_local std::vector<float> buf;
      if (buf.size() < static_cast<size_t>(3 * C)) buf.resize(static_cast<size_t>(3 * C));
      float* row = buf.data();
      for (int64_t j = n * t / T; j < n * (t + 1) / T; ++j) {
        float* rj = ru + j * uy;
        for (int64_t c = 0; c < C; ++c) row[c] = rj[cmap[c]] + cb[c];
        rl[j] = kernels::sampled_loss_row(lo, row, C, j, scale, row + C);
        // dL/dRu[j][u] = sum over the columns c showing item u of dL/dR[j][c]
        std::memset(rj, 0, static_cast<size_t>(uy) * 4);
        for (int64_t c = 0; c < C; ++c) rj[cmap[c]] += row[c];
      }
    });
#pragma omp barrier
    const double tb = now_s();
    guard([&] {
      float* dp = dpart_[static_cast<size_t>(t)].data();
      if (c1 > c0) {
        std::memset(dby + c0, 0, static_cast<size_t>(c1 - c0) * 4);
        for (int64_t j = 0; j < n; ++j) {
          const float* rj = ru + j * uy;
#pragma omp simd
          for (int64_t u = c0; u < c1; ++u) dby[u] += rj[u];
        }
        sgemm(true, false, c1 - c0, H, n, 1.0f, ru + c0, uy, top, H, 0.0f, gu + c0 * H, H);
        sgemm(false, false, n, H, c1 - c0, 1.0f, ru + c0, uy, ou + c0 * H, H, 0.0f, dp, H);
      } else {
        std::memset(dp, 0, static_cast<size_t>(n * H) * 4);
      }
    });
    if (t == 0) {
      t_gather = tg - ts;
      t_loss = tb - tl;
    }
    (void)P;
  }
  if (error) std::rethrow_exception(error);
  {
    float* d = dgrad_[L - 1].data();
    std::memcpy(d, dpart_[0].data(), static_cast<size_t>(n * H) * 4);
    for (int t = 1; t < nt; ++t) {
      const float* q = dpart_[static_cast<size_t>(t)].data();
#pragma omp simd
      for (int64_t i = 0; i < n * H; ++i) d[i] += q[i];
    }
  }
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) total += rl[j];
  {
    const double t_end = now_s();
    const double region = t_end - t_last;
    prof_.loss += t_loss;
    prof_.unique_gather += t_gather;
    prof_.output_gemm += region - t_loss - t_gather;
    t_last = t_end;
  }

  // ---- 6. GRU layers backward (no BPTT: the previous state is a constant).
  if (gru_serial) set_threads(1);
  for (size_t li = L; li-- > 0;) {
    const int64_t h = p_.layers[li];
    float* d = dgrad_[li].data();
    const bool emb_layer = mode_ == Gru4recInput::GruEmbedding && li == 0;
    const float p = emb_layer ? p_.dropout_p_embed : p_.dropout_p_hidden;
    if (p > 0.0f) kernels::gru_apply_mask(d, d, mask_h_[li].data(), n * h);  // dL/dh'
    if (emb_layer) {
      kernels::gru_emb_backward(n, ew, hstate_[0].data(), emb_cache_.data(), d, dv_.data(),
                                wrz0_.grad.data(), wh0_.grad.data(), nullptr, emb_tmp_.data());
      kernels::gru_column_sums(dv_.data(), n, 3 * h, bh0_.grad.data());
    } else {
      CellLayer& c = cells_[mode_ == Gru4recInput::GruEmbedding ? li - 1 : li];
      const float* uin = li == 0 ? emb_in_.data() : o_[li - 1].data();
      float* du = li > 0 ? dgrad_[li - 1].data() : d_in_.data();
      kernels::GruCellGrads g{c.w_ih.grad.data(), c.w_hh.grad.data(), c.b_ih.grad.data(),
                              c.b_hh.grad.data()};
      kernels::gru_cell_backward(n, c.weights(), uin, hstate_[li].data(), act_[li].data(),
                                 ghn_[li].data(), d, dgi_.data(), dgh_.data(), g, du, nullptr);
    }
  }

  if (gru_serial) set_threads(threads_all);

  // ---- 7. input rows: gradients summed per distinct row.
  if (mode_ != Gru4recInput::GruEmbedding) {
    if (p_.dropout_p_embed > 0.0f)
      kernels::gru_apply_mask(d_in_.data(), d_in_.data(), mask_e_.data(), n * in0);
    if (mode_ == Gru4recInput::Shared) {
      std::memset(gu_.data() + uy * H, 0, static_cast<size_t>((nu_ - uy) * H) * 4);
      for (int64_t b = 0; b < n; ++b) {
        float* g = gu_.data() + xmap_[b] * H;
        const float* s = d_in_.data() + b * H;
#pragma omp simd
        for (int64_t k = 0; k < H; ++k) g[k] += s[k];
      }
    } else {
      std::memset(gx_.data(), 0, static_cast<size_t>(nx_ * in0) * 4);
      for (int64_t b = 0; b < n; ++b) {
        float* g = gx_.data() + xmap_[b] * in0;
        const float* s = d_in_.data() + b * in0;
#pragma omp simd
        for (int64_t k = 0; k < in0; ++k) g[k] += s[k];
      }
    }
  } else {
    const int64_t w = 3 * p_.layers[0];
    std::memset(gx_.data(), 0, static_cast<size_t>(nx_ * w) * 4);
    for (int64_t b = 0; b < n; ++b) {
      float* g = gx_.data() + xmap_[b] * w;
      const float* s = dv_.data() + b * w;
#pragma omp simd
      for (int64_t k = 0; k < w; ++k) g[k] += s[k];
    }
  }
  lap(prof_.gru_backward);
  ++prof_.steps;
  prof_.rows += n;
  prof_.distinct_columns += uy;
  prof_.output_gemm_flops += 6.0 * static_cast<double>(n * uy * H);
  for (const auto& c : cells_)
    prof_.gru_gemm_flops += 2.0 * static_cast<double>(n * 3 * c.hidden) *
                            static_cast<double>(3 * (c.in + c.hidden) - c.hidden);
  return total * static_cast<double>(scale);
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
