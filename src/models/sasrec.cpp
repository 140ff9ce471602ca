// SASRec: hyperparameters, training (its TrainableNet for the epoch loop of
// train/epoch_loop.hpp: sampling, chunked parallel forward/backward, Adam), batched
// inference and the model file tensors.
#include "models/sasrec.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>

#include "core/parallel.hpp"
#include "kernels/gemm.hpp"
#include "kernels/sasrec_loss.hpp"
#include "models/sasrec_params.hpp"
#include "seqrec/error.hpp"
#include "train/adam.hpp"
#include "train/epoch_loop.hpp"
#include "train/sampler.hpp"

namespace seqrec {

namespace {

using kernels::SasRng;
using sasrec::Chunk;
using sasrec::Workspace;

using LossKind = SasrecLoss;

/// Tokens per chunk of a training batch: the unit of parallel work (one thread runs the
/// whole forward, loss and backward of a chunk).
constexpr int64_t kChunkTokens = 2048;
/// Tokens per forward pass in score().
constexpr int64_t kScoreTokens = 8192;

/// Packed sequences of one batch (or one scoring call).
struct Packed {
  std::vector<int64_t> off{0};
  std::vector<int32_t> items, pos, target, neg;
  std::vector<int32_t> target_warm;  ///< targets as indices among the warm items (see Trainer)
  std::vector<uint64_t> stream;
  void clear() {
    off.assign(1, 0);
    items.clear();
    pos.clear();
    target.clear();
    target_warm.clear();
    neg.clear();
    stream.clear();
  }
  int64_t nseq() const { return static_cast<int64_t>(off.size()) - 1; }
  /// Chunk of sequences [s0, s1) (token arrays offset accordingly; off is rebased by the
  /// caller through `rel`).
  Chunk chunk(int64_t s0, int64_t s1, std::vector<int64_t>& rel) const {
    rel.resize(static_cast<size_t>(s1 - s0 + 1));
    for (int64_t s = s0; s <= s1; ++s) rel[static_cast<size_t>(s - s0)] = off[s] - off[s0];
    Chunk c;
    c.nseq = s1 - s0;
    c.off = rel.data();
    c.items = items.data() + off[s0];
    c.pos = pos.data() + off[s0];
    c.stream = stream.empty() ? nullptr : stream.data() + s0;
    return c;
  }
};

/// dEo[idx[k]] += src[k] for k < K (rows of d floats; repeated indices accumulate).
void scatter_rows(float* dEo, const int32_t* idx, const float* src, int64_t K, int64_t d) {
  for (int64_t k = 0; k < K; ++k) {
    float* row = dEo + static_cast<int64_t>(idx[k]) * d;
    const float* x = src + k * d;
    for (int64_t j = 0; j < d; ++j) row[j] += x[j];
  }
}

/// Contiguous groups of sequences of at most `max_tokens` tokens (at least one sequence).
std::vector<int64_t> chunk_bounds(const Packed& p, int64_t max_tokens) {
  std::vector<int64_t> b{0};
  const int64_t n = p.nseq();
  for (int64_t s = 0; s < n; ++s) {
    if (s > b.back() && p.off[s + 1] - p.off[b.back()] > max_tokens) b.push_back(s);
  }
  b.push_back(n);
  return b;
}

}  // namespace

SasrecModel::SasrecModel(const Config& config) : ModelBase(config) {
  params_ = sasrec_table().read(config);  // refuses an unknown loss, etc.
  const SasrecParams& p = params_;
  net_.d = p.hidden_units;
  net_.maxlen = p.maxlen;
  net_.blocks = p.num_blocks;
  net_.heads = p.num_heads;
  net_.dropout = p.dropout_rate;
  net_.norm_first = p.norm_first;
  net_.gelu = p.gelu;
  net_.shared_embedding = p.shared_embedding;
  net_.init_std = p.init_std;
  positions_from_start_ = p.positions_from_start;
  if (net_.maxlen < 1)
    throw InputError("sasrec: maxlen must be >= 1, got " + std::to_string(net_.maxlen));
  if (net_.heads < 1 || net_.d % net_.heads != 0)
    throw InputError("sasrec: hidden_units (" + std::to_string(net_.d) +
                     ") must be divisible by num_heads (" + std::to_string(net_.heads) + ")");
}

void SasrecModel::setup(int32_t n_items) {
  n_items_ = n_items;
  net_.n_items = n_items;
  layout_ = sasrec::make_layout(net_);
  w_.assign(static_cast<size_t>(layout_.total), 0.0f);
  eff_.clear();
}

void SasrecModel::refresh_effective() {
  if (!has_features()) return;
  eff_ = w_;
  std::vector<int32_t> all(static_cast<size_t>(n_items_));
  std::iota(all.begin(), all.end(), 0);
  const float* phi = w_.data() + layout_.feat_emb;
  featemb::gather(fx_, phi, net_.d, all, eff_.data() + layout_.item_emb,
                  eff_.data() + layout_.item_emb);
  if (!net_.shared_embedding)
    featemb::gather(fx_, phi, net_.d, all, eff_.data() + layout_.out_emb,
                    eff_.data() + layout_.out_emb);
}

/// SASRec's part of the epoch loop (train/epoch_loop.hpp): every epoch a fresh permutation
/// of the training users, batches of B users packed as the most recent transitions of each,
/// negatives per the loss, a chunked parallel forward/loss/backward, and one Adam step per
/// batch. Its checkpoint state: the Adam moments and step count, the batch counter (the key
/// of every batch's sampling and dropout stream) and the user order after the last epoch.
class SasrecModel::Trainer final : public train::TrainableNet {
 public:
  /// Sets up a fresh run (weights initialised from ctx.seed); throws InputError when no
  /// sequence has 2 events.
  Trainer(SasrecModel& m, const SequenceSet& train, int32_t n_items, const FitContext& ctx);
  int64_t n_users() const { return static_cast<int64_t>(users_.size()); }
  int64_t n_batches() const { return (n_users() + B_ - 1) / B_; }

  train::EpochResult run_epoch(int64_t epoch, train::EpochProgress& progress) override;
  bool weights_finite() const override {
    for (float x : m_.w_)
      if (!std::isfinite(x)) return false;
    return true;
  }
  void keep_best() override { best_w_ = m_.w_; }
  bool restore_best() override {
    if (best_w_ == m_.w_) return false;
    m_.w_ = std::move(best_w_);
    m_.refresh_effective();
    return true;
  }
  void write_state(nlohmann::json& values, TensorWriter& tw, bool with_best) const override;
  void read_state(const StateReader& r, bool with_best) override;

 private:
  void shuffle_users(int64_t epoch);
  void pack_batch(int64_t u0, int64_t u1, SasRng& rng);
  void draw_shared_negatives(SasRng& rng);
  void copy_negative_rows();
  void build_effective();
  void feature_backward(float* g);
  double forward_loss_backward(float scale);
  double chunk_loss(int64_t s0, int64_t s1, int tid, const float* F, float* df, float* dEo,
                    float scale);
  double chunk_forward_loss_backward(int64_t s0, int64_t s1, int tid, float scale);
  bool sum_gradients();
  double add_l2(float* g);

  SasrecModel& m_;
  const SequenceSet& train_;
  const int32_t n_items_;
  const uint64_t seed_, drop_seed_;
  LossKind loss_kind_;
  int64_t L_, d_, B_, K_;
  double l2_;
  bool pop_sampling_;
  float beta_ = 1.0f;
  std::vector<int32_t> users_;  ///< training users, in the current epoch's order
  int64_t positions_ = 0;       ///< training positions (targets) per epoch
  train::PopularitySampler pop_;
  std::vector<float> logq_;  ///< logQ correction of sampled_softmax with pop sampling
  train::Adam adam_;
  int nt_ = 1;
  std::vector<Workspace> ws_;
  std::vector<std::vector<float>> grads_, dF_, dEneg_;  ///< per thread
  std::vector<std::vector<int64_t>> rel_;
  std::vector<int32_t> mark_, negs_;
  std::vector<float> Eneg_;
  std::vector<double> chunk_loss_;
  std::vector<int64_t> cb_;  ///< chunk bounds of the batch
  Packed pk_;
  uint64_t step_ = 0;  ///< batches done over the whole run
  int32_t stamp_ = 0;
  std::vector<float> best_w_;
  // Feature-aware training: which items have an id embedding (m_i), the distinct items of
  // the current step (all of them for ce) and their marks.
  std::vector<uint8_t> id_mask_;
  std::vector<int32_t> involved_, all_items_, inv_mark_;
  int32_t inv_stamp_ = 0;
  // Warm-only training (feature-aware with items that have no training event): the cold
  // items are left out of every softmax and negative sample, as if the training catalogue
  // were the warm items only. Otherwise full CE would push every cold item down as a
  // negative that is never a positive, and the model would learn to rank items scored by
  // their features alone last (measured on ML-1M: cold HR@20 0.0000, below chance).
  bool warm_only_ = false;
  // id dropout (DropoutNet, Volkovs et al. 2017): each step, every involved item loses its
  // id part with probability id_dropout, so that the network also learns to rank items
  // represented by their features alone, as cold and added items are.
  float id_dropout_ = 0.0f;
  std::vector<uint8_t> dropped_;  ///< per item, for the current step
  std::vector<int32_t> dropped_list_;
  std::vector<int32_t> warm_;            ///< item index of the c-th warm item
  std::vector<int32_t> warm_of_;         ///< item -> its c, -1 for a cold item
  std::vector<float> eo_warm_;           ///< ce: the warm items' output rows, W x d
  std::vector<std::vector<float>> dEw_;  ///< ce: per thread, dL/d(eo_warm_)
};

SasrecModel::Trainer::Trainer(SasrecModel& m, const SequenceSet& train, int32_t n_items,
                              const FitContext& ctx)
    : m_(m),
      train_(train),
      n_items_(n_items),
      seed_(ctx.seed),
      drop_seed_(ctx.seed ^ 0x6A09E667F3BCC909ULL) {
  const SasrecParams& p = m.params_;
  loss_kind_ = p.loss;
  L_ = m.net_.maxlen;
  d_ = m.net_.d;
  B_ = p.batch_size;
  l2_ = p.l2_emb;
  K_ = std::min<int64_t>(p.n_negatives, n_items - 1);
  pop_sampling_ = p.pop_sampling;
  const float logq_w = static_cast<float>(p.logq);
  const float gbce_t = static_cast<float>(p.gbce_t);

  m.setup(n_items);
  sasrec::init_params(m.net_, m.layout_, m.w_.data(), ctx.seed);
  if (m.has_features()) {
    // m_i: an id embedding only for items with training events (and id_embedding on); the
    // others keep zero rows, which their zeroed gradients leave at zero under Adam.
    const std::vector<int64_t> counts = count_items(train, n_items);
    id_mask_.resize(static_cast<size_t>(n_items));
    for (int32_t i = 0; i < n_items; ++i) {
      id_mask_[static_cast<size_t>(i)] = p.id_embedding && counts[static_cast<size_t>(i)] > 0;
      if (id_mask_[static_cast<size_t>(i)]) continue;
      std::fill_n(m.w_.begin() + m.layout_.item_emb + static_cast<int64_t>(i) * m.net_.d, m.net_.d,
                  0.0f);
      std::fill_n(m.w_.begin() + m.layout_.out_emb + static_cast<int64_t>(i) * m.net_.d, m.net_.d,
                  0.0f);
    }
    all_items_.resize(static_cast<size_t>(n_items));
    std::iota(all_items_.begin(), all_items_.end(), 0);
    warm_of_.assign(static_cast<size_t>(n_items), -1);
    for (int32_t i = 0; i < n_items; ++i)
      if (counts[static_cast<size_t>(i)] > 0) {
        warm_of_[static_cast<size_t>(i)] = static_cast<int32_t>(warm_.size());
        warm_.push_back(i);
      }
    warm_only_ = static_cast<int32_t>(warm_.size()) < n_items;
    id_dropout_ = p.id_embedding ? p.id_dropout : 0.0f;
    dropped_.assign(static_cast<size_t>(n_items), 0);
    inv_mark_.assign(static_cast<size_t>(n_items), -1);
    m.refresh_effective();
  }

  // Users that give at least one (input, target) pair; a one-event user has none and is
  // left out of training (it is still scored from its single item).
  for (size_t s = 0; s < train.size(); ++s) {
    const int64_t len = train.length(s);
    if (len >= 2) {
      users_.push_back(static_cast<int32_t>(s));
      positions_ += std::min(len - 1, L_);
    }
  }
  if (users_.empty())
    throw InputError(
        "sasrec: no training sequence has 2 or more events, so there is no "
        "next item to learn from");
  m.positions_per_epoch_ = positions_;
  const int64_t n_short = static_cast<int64_t>(train.size() - users_.size());
  if (n_short > 0 && ctx.progress)
    std::fprintf(stderr, "sasrec: %lld sequences with a single event are not trained on\n",
                 static_cast<long long>(n_short));

  // Negative sampling for the sampled losses: uniform or proportional to popularity.
  if (pop_sampling_) {
    const std::vector<int64_t> counts = count_items(train, n_items);
    pop_ = train::PopularitySampler(counts);
    if (loss_kind_ == LossKind::SampledSoftmax && logq_w > 0) {
      logq_.resize(static_cast<size_t>(n_items));
      for (int32_t i = 0; i < n_items; ++i)
        logq_[static_cast<size_t>(i)] = logq_w * static_cast<float>(pop_.log_probability(i));
    }
  }
  // gBCE: alpha = K / (|I| - 1) (the negative sampling rate), beta = alpha (t (1 - 1/alpha) +
  // 1/alpha)
  const double alpha = std::min(1.0, static_cast<double>(K_) / static_cast<double>(n_items - 1));
  beta_ = static_cast<float>(alpha * (gbce_t * (1.0 - 1.0 / alpha) + 1.0 / alpha));

  train::AdamOptions ao;
  ao.lr = static_cast<float>(p.learning_rate);
  ao.beta1 = static_cast<float>(p.beta1);
  ao.beta2 = static_cast<float>(p.beta2);
  ao.eps = 1e-8f;
  adam_ = train::Adam(m.layout_.total, ao);

  nt_ = std::max(1, num_threads());
  const size_t nt = static_cast<size_t>(nt_);
  ws_.resize(nt);
  grads_.assign(nt, std::vector<float>(static_cast<size_t>(m.layout_.total)));
  dF_.resize(nt);
  dEneg_.resize(nt);
  rel_.resize(nt);
  mark_.assign(static_cast<size_t>(n_items), -1);
  negs_.resize(static_cast<size_t>(std::max<int64_t>(K_, 1)));
}

// A fresh permutation of the users every epoch (without replacement): Fisher-Yates with the
// stream of (seed, epoch), applied to the previous epoch's order.
void SasrecModel::Trainer::shuffle_users(int64_t epoch) {
  SasRng perm_rng(seed_, 0xE90C, static_cast<uint64_t>(epoch));
  for (int64_t i = n_users() - 1; i > 0; --i)
    std::swap(users_[static_cast<size_t>(i)], users_[perm_rng.below(static_cast<uint32_t>(i + 1))]);
}

// Packs users [u0, u1) of the current order: the most recent min(m-1, L) transitions of
// each, input s_j at position row pos_base + i, target s_{j+1}. With bce, one negative per
// position, uniform over the items the user never had (drawn from the step's `rng`).
void SasrecModel::Trainer::pack_batch(int64_t u0, int64_t u1, SasRng& rng) {
  pk_.clear();
  for (int64_t u = u0; u < u1; ++u) {
    const auto s = train_.seq(static_cast<size_t>(users_[static_cast<size_t>(u)]));
    const int64_t m = static_cast<int64_t>(s.size());
    const int64_t n = std::min(m - 1, L_);
    for (int64_t i = 0; i < n; ++i) {
      pk_.items.push_back(s[static_cast<size_t>(m - 1 - n + i)]);
      pk_.target.push_back(s[static_cast<size_t>(m - n + i)]);
      if (warm_only_) pk_.target_warm.push_back(warm_of_[static_cast<size_t>(pk_.target.back())]);
      pk_.pos.push_back(static_cast<int32_t>(m_.pos_base(L_, n) + i));
    }
    pk_.off.push_back(static_cast<int64_t>(pk_.items.size()));
    pk_.stream.push_back(static_cast<uint64_t>(u - u0));
    if (loss_kind_ == LossKind::Bce) {
      ++stamp_;
      int64_t distinct = 0;
      for (int32_t it : s) {
        distinct += mark_[static_cast<size_t>(it)] != stamp_;
        mark_[static_cast<size_t>(it)] = stamp_;
      }
      const int64_t pool = warm_only_ ? static_cast<int64_t>(warm_.size()) : n_items_;
      const bool exclude = distinct < pool;
      for (int64_t i = 0; i < n; ++i) {
        int32_t x;
        do {
          x = static_cast<int32_t>(rng.below(static_cast<uint32_t>(pool)));
          if (warm_only_) x = warm_[static_cast<size_t>(x)];
        } while (exclude && mark_[static_cast<size_t>(x)] == stamp_);
        pk_.neg.push_back(x);
      }
    }
  }
}

// sampled_softmax: K negatives shared by every position of the batch (its softmax weights
// over them sum to at most 1 per position). gbce: K negatives per sequence, shared by that
// sequence's positions only; a BCE-type loss gives every negative the gradient of every
// position that sees it, and batch-wide sharing made that swamp the positives. Drawn from
// the step's RNG in sequence order, so chunking and threads do not change them; their
// output embeddings are copied to Eneg_.
void SasrecModel::Trainer::draw_shared_negatives(SasRng& rng) {
  const int64_t n_sets = loss_kind_ == LossKind::Gbce ? pk_.nseq() : 1;
  negs_.resize(static_cast<size_t>(n_sets * K_));
  for (int64_t k = 0; k < n_sets * K_; ++k)
    negs_[static_cast<size_t>(k)] =
        pop_sampling_ ? pop_.draw(rng)  // never a cold item: its probability is 0
        : warm_only_  ? warm_[rng.below(static_cast<uint32_t>(warm_.size()))]
                      : static_cast<int32_t>(rng.below(static_cast<uint32_t>(n_items_)));
}

// The output rows of the drawn negatives into Eneg_ (after build_effective()).
void SasrecModel::Trainer::copy_negative_rows() {
  const int64_t n_sets = static_cast<int64_t>(negs_.size()) / std::max<int64_t>(K_, 1);
  const float* Eo = m_.net_weights() + m_.layout_.out_emb;
  Eneg_.resize(static_cast<size_t>(n_sets * K_ * d_));
  for (int64_t k = 0; k < n_sets * K_; ++k)
    std::memcpy(Eneg_.data() + k * d_,
                Eo + static_cast<int64_t>(negs_[static_cast<size_t>(k)]) * d_,
                static_cast<size_t>(d_) * sizeof(float));
}

// The loss of the positions of sequences [s0, s1) (hidden states F, tokens from tb), fused
// with its gradient (kernels/sasrec_loss.hpp states each loss's math): dF = scale dl/dF,
// dEo += scale dl/dEo (negatives' rows scattered in). Returns the unscaled sum.
//   bce:             l = log(1 + e^-r) + log(1 + e^s), r the target's score, s the
//                    position's negative's
//   ce:              l = logsumexp(F_t Eo^T) - r over the whole catalogue
//   sampled_softmax: l = logsumexp(u) - u_0, u = (r, z_1..z_K) minus logQ (with pop sampling)
//   gbce:            l = beta log(1 + e^-r) + sum_k log(1 + e^{z_k}), per sequence's own
//                    negatives
double SasrecModel::Trainer::chunk_loss(int64_t s0, int64_t s1, int tid, const float* F, float* df,
                                        float* dEo, float scale) {
  Workspace& w = ws_[static_cast<size_t>(tid)];
  const float* Eo = m_.net_weights() + m_.layout_.out_emb;
  const int64_t d = d_, K = K_;
  const int64_t tb = pk_.off[s0], tc = pk_.off[s1] - tb;
  const int32_t* tgt = pk_.target.data() + tb;
  double l = 0;
  switch (loss_kind_) {
    case LossKind::Bce:
      l = kernels::sasrec_bce(tc, d, F, Eo, tgt, pk_.neg.data() + tb, scale, df, dEo);
      break;
    case LossKind::Ce:
      if (warm_only_) {  // over the warm items only (eo_warm_), their gradient in dEw_
        l = kernels::sasrec_full_ce(tc, d, static_cast<int64_t>(warm_.size()), F, eo_warm_.data(),
                                    pk_.target_warm.data() + tb, scale, df,
                                    dEw_[static_cast<size_t>(tid)].data(), w.loss_scratch,
                                    m_.net_.precision);
      } else {
        l = kernels::sasrec_full_ce(tc, d, n_items_, F, Eo, tgt, scale, df, dEo, w.loss_scratch,
                                    m_.net_.precision);
      }
      break;
    case LossKind::SampledSoftmax: {
      auto& de = dEneg_[static_cast<size_t>(tid)];
      de.resize(static_cast<size_t>(K * d));
      l = kernels::sasrec_sampled(kernels::SampledLoss::Softmax, tc, d, F, Eo, tgt, K, negs_.data(),
                                  Eneg_.data(), logq_.empty() ? nullptr : logq_.data(), beta_,
                                  scale, df, dEo, de.data(), w.loss_scratch);
      scatter_rows(dEo, negs_.data(), de.data(), K, d);
      break;
    }
    case LossKind::Gbce: {
      // One kernel call per sequence, with that sequence's own negatives.
      auto& de = dEneg_[static_cast<size_t>(tid)];
      de.resize(static_cast<size_t>(K * d));
      for (int64_t s = s0; s < s1; ++s) {
        const int64_t r0 = pk_.off[s] - tb, ts = pk_.off[s + 1] - pk_.off[s];
        const int32_t* ng = negs_.data() + s * K;
        l += kernels::sasrec_sampled(kernels::SampledLoss::GBCE, ts, d, F + r0 * d, Eo, tgt + r0, K,
                                     ng, Eneg_.data() + s * K * d, nullptr, beta_, scale,
                                     df + r0 * d, dEo, de.data(), w.loss_scratch);
        scatter_rows(dEo, ng, de.data(), K, d);
      }
      break;
    }
  }
  return l;
}

// One chunk of sequences [s0, s1) on thread `tid`: the forward pass through the blocks
// (with dropout keyed by the batch counter), the loss and dL/dF (chunk_loss), then the
// backward pass through the blocks into the thread's gradient. Returns the unscaled loss.
double SasrecModel::Trainer::chunk_forward_loss_backward(int64_t s0, int64_t s1, int tid,
                                                         float scale) {
  Workspace& w = ws_[static_cast<size_t>(tid)];
  float* g = grads_[static_cast<size_t>(tid)].data();
  const Chunk ch = pk_.chunk(s0, s1, rel_[static_cast<size_t>(tid)]);
  const int64_t tc = ch.tokens();
  const float* F =
      sasrec::forward(m_.net_, m_.layout_, m_.net_weights(), ch, w, true, drop_seed_, step_);
  auto& df = dF_[static_cast<size_t>(tid)];
  if (static_cast<int64_t>(df.size()) < tc * d_) df.resize(static_cast<size_t>(tc * d_));
  const double l = chunk_loss(s0, s1, tid, F, df.data(), g + m_.layout_.out_emb, scale);
  sasrec::backward(m_.net_, m_.layout_, m_.net_weights(), ch, w, df.data(), g);
  return l;
}

// The batch's forward, loss and backward: contiguous chunks of at most kChunkTokens tokens,
// one task each (dynamic scheduling), every thread summing into its own gradient. Returns
// the sum of the chunks' losses in chunk order (so independent of the thread count).
double SasrecModel::Trainer::forward_loss_backward(float scale) {
  cb_ = chunk_bounds(pk_, kChunkTokens);
  const int64_t n_chunks = static_cast<int64_t>(cb_.size()) - 1;
  chunk_loss_.assign(static_cast<size_t>(n_chunks), 0.0);
  for (auto& g : grads_) std::fill(g.begin(), g.end(), 0.0f);
  const bool warm_ce = warm_only_ && loss_kind_ == LossKind::Ce;
  if (warm_ce) {
    dEw_.resize(static_cast<size_t>(nt_));
    for (auto& g : dEw_) g.assign(warm_.size() * static_cast<size_t>(d_), 0.0f);
  }
  parallel_for(
      n_chunks,
      [&](int64_t c0, int64_t c1, int tid) {
        for (int64_t c = c0; c < c1; ++c)
          chunk_loss_[static_cast<size_t>(c)] = chunk_forward_loss_backward(
              cb_[static_cast<size_t>(c)], cb_[static_cast<size_t>(c) + 1], tid, scale);
      },
      1);
  if (warm_ce) {  // dL/dEo[warm_[c]] += dL/d(eo_warm_)[c], thread by thread
    for (int t = 0; t < nt_; ++t) {
      float* g = grads_[static_cast<size_t>(t)].data() + m_.layout_.out_emb;
      const float* src = dEw_[static_cast<size_t>(t)].data();
      for (size_t c = 0; c < warm_.size(); ++c) {
        float* row = g + static_cast<int64_t>(warm_[c]) * d_;
        for (int64_t k = 0; k < d_; ++k) row[k] += src[static_cast<int64_t>(c) * d_ + k];
      }
    }
  }
  double batch_loss = 0;
  for (double l : chunk_loss_) batch_loss += l;
  return batch_loss;
}

// grads_[0] += grads_[t] for every other thread t (in thread order); returns false when
// any summed gradient is NaN or inf (sum of g * 0, which NaN and inf turn into NaN).
bool SasrecModel::Trainer::sum_gradients() {
  const int64_t P = m_.layout_.total;
  float* g = grads_[0].data();
  float bad = 0;
  for (int t = 1; t < nt_; ++t) {
    const float* gt = grads_[static_cast<size_t>(t)].data();
    for (int64_t i = 0; i < P; ++i) g[i] += gt[i];
  }
  for (int64_t i = 0; i < P; ++i) bad += g[i] * 0.0f;  // NaN/inf propagate
  return bad == 0.0f;
}

// Feature-aware training, before the forward: the network's weights (eff_) are w_ with the
// item rows of the step's distinct items (inputs, targets, negatives; every item for ce)
// replaced by E_i = m_i Eid_i + G_i. Rows of other items are stale but never read.
void SasrecModel::Trainer::build_effective() {
  std::vector<float>& eff = m_.eff_;
  const sasrec::Layout& l = m_.layout_;
  std::copy(m_.w_.begin() + l.pos_emb, m_.w_.begin() + l.feat_emb, eff.begin() + l.pos_emb);
  if (loss_kind_ == LossKind::Ce) {
    involved_ = warm_only_ ? warm_ : all_items_;
  } else {
    involved_.clear();
    if (++inv_stamp_ == INT32_MAX) {
      std::fill(inv_mark_.begin(), inv_mark_.end(), -1);
      inv_stamp_ = 0;
    }
    auto mark = [&](const std::vector<int32_t>& v) {
      for (int32_t it : v)
        if (inv_mark_[static_cast<size_t>(it)] != inv_stamp_) {
          inv_mark_[static_cast<size_t>(it)] = inv_stamp_;
          involved_.push_back(it);
        }
    };
    mark(pk_.items);
    mark(pk_.target);
    mark(pk_.neg);
    if (loss_kind_ == LossKind::SampledSoftmax || loss_kind_ == LossKind::Gbce) mark(negs_);
    std::sort(involved_.begin(), involved_.end());  // a fixed order: deterministic scatter
  }
  const float* phi = m_.w_.data() + l.feat_emb;
  featemb::gather(m_.fx_, phi, d_, involved_, m_.w_.data() + l.item_emb, eff.data() + l.item_emb);
  if (!m_.net_.shared_embedding)
    featemb::gather(m_.fx_, phi, d_, involved_, m_.w_.data() + l.out_emb, eff.data() + l.out_emb);
  for (int32_t i : dropped_list_) dropped_[static_cast<size_t>(i)] = 0;
  dropped_list_.clear();
  if (id_dropout_ > 0.0f) {  // E_i = G_i for the dropped items of this step
    SasRng rng(seed_, 0x1DD0, step_);
    for (int32_t i : involved_)
      if (rng.uniform() < id_dropout_) {
        dropped_[static_cast<size_t>(i)] = 1;
        dropped_list_.push_back(i);
      }
    featemb::gather(m_.fx_, phi, d_, dropped_list_, nullptr, eff.data() + l.item_emb);
    if (!m_.net_.shared_embedding)
      featemb::gather(m_.fx_, phi, d_, dropped_list_, nullptr, eff.data() + l.out_emb);
  }
  if (warm_only_ && loss_kind_ == LossKind::Ce) {
    eo_warm_.resize(warm_.size() * static_cast<size_t>(d_));
    for (size_t c = 0; c < warm_.size(); ++c)
      std::memcpy(eo_warm_.data() + static_cast<int64_t>(c) * d_,
                  eff.data() + l.out_emb + static_cast<int64_t>(warm_[c]) * d_,
                  static_cast<size_t>(d_) * sizeof(float));
  }
}

// Feature-aware training, after the gradients are summed into g (= dL/dE for the item
// tables, the effective rows). E_i = m_i Eid_i + G_i, G_i = sum_j w_ij Phi[f_ij] (m_i = 0
// also for an item whose id part is dropped this step):
//   dL/dEid_i = m_i dL/dE_i;   dL/dPhi[f] += sum_i sum_{j: f_ij = f} w_ij dL/dG_i,
//   dL/dG_i = dL/dE_i (+ dL/dEout_i with a separate output table, which adds G_i too).
void SasrecModel::Trainer::feature_backward(float* g) {
  const sasrec::Layout& l = m_.layout_;
  featemb::scatter(m_.fx_, g + l.item_emb, d_, involved_, g + l.feat_emb);
  if (!m_.net_.shared_embedding)
    featemb::scatter(m_.fx_, g + l.out_emb, d_, involved_, g + l.feat_emb);
  for (int32_t i : involved_) {
    if (id_mask_[static_cast<size_t>(i)] && !dropped_[static_cast<size_t>(i)]) continue;
    std::fill_n(g + l.item_emb + static_cast<int64_t>(i) * d_, d_, 0.0f);
    std::fill_n(g + l.out_emb + static_cast<int64_t>(i) * d_, d_, 0.0f);
  }
}

// The l2_emb penalty l2 ||E||^2 on the item embeddings: dL/dE += 2 l2 E into `g`; returns
// ||E||^2 (the caller adds l2 times it to the loss).
double SasrecModel::Trainer::add_l2(float* g) {
  const float* E = m_.w_.data() + m_.layout_.item_emb;
  float* gE = g + m_.layout_.item_emb;
  double sq = 0;
  for (int64_t i = 0; i < n_items_ * d_; ++i) {
    sq += static_cast<double>(E[i]) * E[i];
    gE[i] += static_cast<float>(2.0 * l2_) * E[i];
  }
  return sq;
}

// One epoch: shuffle, then per batch of B users (its random stream keyed by the run's batch
// counter): pack, negatives, forward/loss/backward, gradient sum and check, L2, Adam. The
// epoch's loss is the mean over its training positions.
train::EpochResult SasrecModel::Trainer::run_epoch(int64_t epoch, train::EpochProgress& progress) {
  shuffle_users(epoch);
  const int64_t nb = n_batches();
  double epoch_loss = 0;
  for (int64_t bi = 0; bi < nb; ++bi, ++step_) {
    const int64_t u0 = bi * B_, u1 = std::min(n_users(), u0 + B_);
    SasRng rng(seed_, 0xBA7C4, step_);
    pack_batch(u0, u1, rng);
    const bool sampled = loss_kind_ == LossKind::SampledSoftmax || loss_kind_ == LossKind::Gbce;
    if (sampled) draw_shared_negatives(rng);
    if (m_.has_features()) build_effective();
    if (sampled) copy_negative_rows();
    const int64_t T = static_cast<int64_t>(pk_.items.size());
    const float scale = 1.0f / static_cast<float>(T);
    double batch_loss = forward_loss_backward(scale);
    batch_loss *= scale;
    const bool grads_finite = sum_gradients();
    if (m_.has_features() && grads_finite) feature_backward(grads_[0].data());
    const bool finite = std::isfinite(batch_loss) && grads_finite;
    if (l2_ > 0) batch_loss += l2_ * add_l2(grads_[0].data());
    progress.step(batch_loss, u1 - u0, finite);  // throws before a NaN reaches the weights
    adam_.step(m_.w_.data(), grads_[0].data());
    epoch_loss += batch_loss * static_cast<double>(T);
  }
  m_.refresh_effective();  // validation and scoring see this epoch's weights
  return {epoch_loss / static_cast<double>(positions_), n_users()};
}

void SasrecModel::Trainer::write_state(nlohmann::json& values, TensorWriter& tw,
                                       bool with_best) const {
  values["step"] = step_;
  values["adam_steps"] = adam_.steps();
  tw.add<float>("adam.m", std::span<const float>(adam_.first_moment()));
  tw.add<float>("adam.v", std::span<const float>(adam_.second_moment()));
  tw.add<int32_t>("user_order", std::span<const int32_t>(users_));
  if (with_best) tw.add<float>("best_weights", std::span<const float>(best_w_));
}

// Per-step randomness is drawn from (seed, step) and the user permutation from (seed,
// epoch) applied to the previous epoch's order, so the step counter and that order are all
// the random state there is.
void SasrecModel::Trainer::read_state(const StateReader& r, bool with_best) {
  const int64_t P = m_.layout_.total;
  for (const auto& sl : sasrec::tensor_slots(m_.net_, m_.layout_)) {
    const auto v = r.weights().get<float>(sl.name, sl.shape);
    std::copy(v.begin(), v.end(), m_.w_.begin() + sl.offset);
  }
  if (!weights_finite()) r.fail("the weights contain NaN or inf");
  adam_.restore(r.floats("adam.m", P), r.floats("adam.v", P),
                r.integer("adam_steps", 0, INT64_MAX));
  const auto order = r.tensors().get<int32_t>("user_order", {n_users()});
  std::vector<int32_t> a(order.begin(), order.end()), b = users_;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  if (a != b) r.fail("tensor 'train.user_order' is not an order of this run's training users");
  users_.assign(order.begin(), order.end());
  step_ = static_cast<uint64_t>(r.integer("step", 0, INT64_MAX));
  best_w_.clear();
  if (with_best) {
    const auto bw = r.floats("best_weights", P);
    best_w_.assign(bw.begin(), bw.end());
  }
  m_.refresh_effective();
}

void SasrecModel::fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) {
  check_training_data(train, n_items, "sasrec");
  if (n_items < 2)
    throw InputError("sasrec: the catalogue has " + std::to_string(n_items) +
                     " item; next-item prediction needs at least 2 items");
  train::LoopOptions lo;
  lo.model = "sasrec";
  lo.epochs = params_.epochs;
  lo.epochs_param = "epochs";
  lo.lr_param = "learning_rate";
  lo.unit = "seqs";
  lo.validate_every = params_.eval_every;
  X_ = SparseFeatures{};
  fx_ = featemb::MeanRows{};
  net_.n_features = 0;
  if (ctx.item_features) {
    if (ctx.item_features->rows() != n_items)
      throw Error("sasrec: the item features have " + std::to_string(ctx.item_features->rows()) +
                  " rows for " + std::to_string(n_items) + " items");
    if (ctx.item_features->n_features < 1)
      throw InputError("sasrec: the item feature file gives no feature at all");
    const double size =
        static_cast<double>(ctx.item_features->n_features) * static_cast<double>(net_.d);
    if (size > 2e9)
      throw InputError("sasrec: the feature embedding would have " +
                       std::to_string(static_cast<int64_t>(size)) +
                       " weights (features x hidden_units); use fewer text_buckets");
    X_ = *ctx.item_features;
    fx_ = featemb::mean_rows(X_);
    net_.n_features = X_.n_features;
  } else if (!params_.id_embedding) {
    throw InputError(
        "sasrec: id_embedding = false needs item features (--item-features FILE): "
        "without them an item would have no embedding at all");
  }
  train::EpochLoop loop(ctx, lo);  // sets the thread count for everything below
  net_.precision = resolve_precision(params_.precision, "sasrec");
  trained_precision_ = precision_name(net_.precision);
  if (ctx.progress)
    std::fprintf(stderr, "sasrec: precision %s (requested %s)\n", trained_precision_.c_str(),
                 precision_name(params_.precision));
  Trainer t(*this, train, n_items, ctx);
  loop.options().units_per_epoch = t.n_users();
  loop.options().steps_per_epoch = t.n_batches();
  const train::LoopHistory& h = loop.run(t, *this);
  epoch_losses_ = h.losses;
  epoch_seconds_ = h.seconds;
  refresh_effective();
}

void SasrecModel::score(std::span<const std::span<const int32_t>> seqs,
                        std::span<const PrefixQuery> queries, float* out) const {
  const int64_t d = net_.d, Q = static_cast<int64_t>(queries.size());
  if (Q == 0) return;
  std::vector<float> last(static_cast<size_t>(Q * d));
  query_vectors(seqs, queries, last.data());
  // out = F_last Eo^T: one GEMM for the whole batch of queries.
  sgemm(false, true, Q, n_items_, d, 1.0f, last.data(), d, net_weights() + layout_.out_emb, d, 0.0f,
        out, n_items_);
}

DotProductHead SasrecModel::dot_product_head() const {
  if (w_.empty() || n_items_ <= 0) return {};
  return {static_cast<int32_t>(net_.d), net_weights() + layout_.out_emb, nullptr};
}

bool SasrecModel::scores_untrained_item(int32_t item) const {
  if (!has_features() || item < 0 || item >= fx_.rows()) return false;
  return !fx_.empty_row(item);
}

void SasrecModel::encode_item(std::span<const int32_t> index, std::span<const float> value,
                              float* row, float* bias) const {
  if (!adds_items())
    throw Error("sasrec: only a model trained with item features can encode an item");
  if (index.size() != value.size())
    throw InputError("sasrec: encode_item: index and value differ in length");
  for (size_t j = 0; j < index.size(); ++j) {
    if (index[j] < 0 || index[j] >= net_.n_features)
      throw InputError("sasrec: feature index " + std::to_string(index[j]) +
                       " outside the model's " + std::to_string(net_.n_features) + " features");
    if (!std::isfinite(value[j])) throw InputError("sasrec: a feature value is not finite");
  }
  // G = sum_j w_j Phi[f_j], the mean weights as in training; no id embedding (m = 0).
  featemb::MeanRows x;
  x.n_features = static_cast<int32_t>(net_.n_features);
  x.off = {0, static_cast<int64_t>(index.size())};
  x.index.assign(index.begin(), index.end());
  featemb::mean_weights(value, x.weight);
  const int32_t item0 = 0;
  featemb::gather(x, w_.data() + layout_.feat_emb, net_.d, std::span<const int32_t>(&item0, 1),
                  nullptr, row);
  if (bias) *bias = 0.0f;
}

void SasrecModel::query_vectors(std::span<const std::span<const int32_t>> seqs,
                                std::span<const PrefixQuery> queries, float* last) const {
  query_vectors_with(seqs, queries, nullptr, 0, last);
}

void SasrecModel::query_vectors_with(std::span<const std::span<const int32_t>> seqs,
                                     std::span<const PrefixQuery> queries, const float* extra_rows,
                                     int32_t n_extra, float* last) const {
  if (w_.empty()) throw Error("sasrec: the model has not been trained or loaded");
  if (!extra_rows) n_extra = 0;
  const int64_t L = net_.maxlen, d = net_.d, Q = static_cast<int64_t>(queries.size());
  if (Q == 0) return;
  thread_local Workspace ws;
  thread_local Packed pk;
  thread_local std::vector<int64_t> rel;
  int64_t q0 = 0;
  while (q0 < Q) {
    pk.clear();
    int64_t q1 = q0;
    while (q1 < Q) {
      const auto prefix = query_prefix(seqs, queries[static_cast<size_t>(q1)]);
      const int64_t m = static_cast<int64_t>(prefix.size());
      const int64_t n = std::min(m, L);
      if (q1 > q0 && static_cast<int64_t>(pk.items.size()) + n > kScoreTokens) break;
      for (int64_t i = 0; i < n; ++i) {
        pk.items.push_back(prefix[static_cast<size_t>(m - n + i)]);
        pk.pos.push_back(static_cast<int32_t>(pos_base(L, n) + i));
      }
      pk.off.push_back(static_cast<int64_t>(pk.items.size()));
      ++q1;
    }
    for (int32_t it : pk.items)
      if (it < 0 || it >= n_items_ + n_extra)
        throw Error("sasrec: item index " + std::to_string(it) + " outside the catalogue of " +
                    std::to_string(n_items_) +
                    (n_extra > 0 ? " (+" + std::to_string(n_extra) + " added)" : std::string()));
    Chunk ch = pk.chunk(0, pk.nseq(), rel);
    if (n_extra > 0) {
      ch.extra_rows = extra_rows;
      ch.extra_base = n_items_;
    }
    const float* F = sasrec::forward(net_, layout_, net_weights(), ch, ws, false, 0, 0, true);
    std::memcpy(last + q0 * d, F, static_cast<size_t>(ch.nseq * d) * sizeof(float));
    q0 = q1;
  }
}

void SasrecModel::save(TensorWriter& w) const {
  for (const auto& s : sasrec::tensor_slots(net_, layout_))
    w.add<float>(s.name,
                 std::span<const float>(w_.data() + s.offset, static_cast<size_t>(s.size())),
                 s.shape);
  if (has_features()) {  // the catalogue's features travel with the model, as dssm's do
    w.add<int64_t>("features.offsets", std::span<const int64_t>(X_.offsets));
    if (!X_.index.empty()) {
      w.add<int32_t>("features.index", std::span<const int32_t>(X_.index));
      w.add<float>("features.value", std::span<const float>(X_.value));
    }
  }
}

void SasrecModel::load(const TensorReader& r) {
  const TensorEntry& e = r.entry("item_emb");
  if (e.shape.size() != 2 || e.shape[1] != net_.d || e.shape[0] < 1)
    bad_tensor(r, "item_emb", "must be n_items x hidden_units (" + std::to_string(net_.d) + ")");
  net_.n_features = 0;
  X_ = SparseFeatures{};
  fx_ = featemb::MeanRows{};
  if (r.has("feat_emb")) {
    const TensorEntry& f = r.entry("feat_emb");
    if (f.shape.size() != 2 || f.shape[1] != net_.d || f.shape[0] < 1)
      bad_tensor(r, "feat_emb",
                 "must be n_features x hidden_units (" + std::to_string(net_.d) + ")");
    net_.n_features = f.shape[0];
  }
  setup(static_cast<int32_t>(e.shape[0]));
  for (const auto& s : sasrec::tensor_slots(net_, layout_)) {
    const auto v = r.get<float>(s.name, s.shape);
    std::copy(v.begin(), v.end(), w_.begin() + s.offset);
  }
  for (float x : w_)
    if (!std::isfinite(x)) throw Error(r.source() + ": sasrec weights contain NaN/inf");
  if (has_features()) {
    const auto off = read_vector<int64_t>(r, "features.offsets", int64_t{n_items_} + 1);
    X_ = read_sparse_features(r, off, static_cast<int32_t>(net_.n_features));
    fx_ = featemb::mean_rows(X_);
    refresh_effective();
  }
}

const ParamTable<SasrecParams>& sasrec_table() {
  using P = SasrecParams;
  static const ParamTable<P> table = [] {
    ParamTable<P> t;
    t.field(&P::maxlen,
            param_int("maxlen", "200", 1, 100000, "longest history used: the last maxlen items"));
    t.field(&P::hidden_units,
            param_int("hidden_units", "50", 1, 4096, "embedding and hidden width d"));
    t.field(&P::num_blocks, param_int("num_blocks", "2", 1, 64, "Transformer blocks"));
    t.field(&P::num_heads,
            param_int("num_heads", "1", 1, 256, "attention heads (must divide hidden_units)"));
    t.field(&P::dropout_rate,
            param_float("dropout_rate", "0.2", 0, 0.95,
                        "dropout on embeddings, attention weights and the feed-forward network"));
    t.field(&P::learning_rate,
            param_float("learning_rate", "0.001", 1e-8, 10, "Adam learning rate").alias("lr"));
    t.field(&P::batch_size, param_int("batch_size", "128", 1, 1000000, "sequences per step"));
    t.field(&P::l2_emb,
            param_float("l2_emb", "0", 0, 1e6, "L2 penalty l2 * ||E||^2 on the item embeddings"));
    t.field(&P::epochs, param_int("epochs", "200", 1, 1000000, "passes over the users")
                            .alias("num_epochs")
                            .alias("n_epochs"));
    t.field(&P::beta1, param_float("beta1", "0.9", 0, 0.999999, "Adam beta1"));
    t.field(&P::beta2, param_float("beta2", "0.98", 0, 0.999999, "Adam beta2"));
    t.choice(&P::loss,
             param_choice(
                 "loss", "bce", {},
                 "bce: one negative per position (original); ce: full softmax over the "
                 "catalogue (SASRec+); sampled_softmax: n_negatives shared negatives with "
                 "logQ correction; gbce: generalised BCE with n_negatives negatives per sequence"),
             {{"bce", SasrecLoss::Bce},
              {"ce", SasrecLoss::Ce},
              {"sampled_softmax", SasrecLoss::SampledSoftmax},
              {"gbce", SasrecLoss::Gbce}});
    t.field(&P::n_negatives,
            param_int("n_negatives", "256", 1, 1000000,
                      "negatives of sampled_softmax (per batch, shared by all its positions) and "
                      "gbce (per sequence, shared by its positions)"));
    t.field(&P::gbce_t, param_float("gbce_t", "0.75", 0, 1,
                                    "gBCE calibration parameter t (0: BCE, 1: fully calibrated)"));
    t.choice(&P::pop_sampling,
             param_choice("sampling", "uniform", {},
                          "negative distribution of sampled_softmax and gbce: uniform or "
                          "proportional to training popularity"),
             {{"uniform", false}, {"pop", true}});
    t.field(&P::logq, param_float("logq", "1", 0, 1,
                                  "weight of the logQ correction of sampled_softmax with pop "
                                  "sampling"));
    t.choice(&P::gelu, param_choice("activation", "relu", {}, "feed-forward activation"),
             {{"relu", false}, {"gelu", true}});
    t.field(&P::norm_first,
            param_bool("norm_first", "false",
                       "Pre-LN blocks (x + f(LN(x))) instead of the original layout (layer norm "
                       "on the queries, residual on the normed input)"));
    t.field(&P::shared_embedding,
            param_bool("shared_embedding", "true",
                       "score with the input item embedding (false: a separate output table)"));
    t.field(&P::init_std,
            param_float("init_std", "0", 0, 10,
                        "initialisation: 0 = Xavier normal on every matrix (the original code); "
                        "> 0 = N(0, init_std) on embeddings and projections, Xavier-uniform "
                        "attention in-projections, zero biases (SASRec+, RecBole)"));
    t.choice(&P::positions_from_start,
             param_choice("positions", "from_end", {},
                          "position rows: from_end = the newest item always has the last row "
                          "(the original's left padding); from_start = the window's oldest item "
                          "has row 0 (right padding, as SASRec+ of Klenitskiy & Vasilev), so a "
                          "history shorter than maxlen also tells its length"),
             {{"from_end", false}, {"from_start", true}});
    t.field(&P::eval_every,
            param_int("eval_every", "1", 1, 1000000,
                      "validate (and check early stopping) every this many epochs"));
    t.choice(&P::precision,
             param_choice("precision", "fp32", {},
                          "precision of the large GEMMs (projections, feed-forward, attention, "
                          "full cross-entropy output): bf16 = bf16 inputs, fp32 accumulation "
                          "and fp32 weights, where the CPU has AVX512-BF16 or AMX (else fp32); "
                          "auto = bf16 where available"),
             {{"fp32", Precision::Fp32}, {"bf16", Precision::Bf16}, {"auto", Precision::Auto}});
    t.field(&P::id_embedding,
            param_bool("id_embedding", "true",
                       "with --item-features: an item is its id embedding plus the mean "
                       "embedding of its feature tokens (false: the feature embedding alone); "
                       "an item without training events never has an id embedding"));
    t.field(&P::id_dropout,
            param_float("id_dropout", "0", 0, 1,
                        "with --item-features and id_embedding: probability that an item of a "
                        "training step is represented by its features alone (its id part "
                        "dropped), so that items without an id embedding (cold, added) are "
                        "ranked on the same scale as trained ones"));
    return t;
  }();
  return table;
}

SasrecParams sasrec_defaults() {
  return sasrec_table().defaults();
}

namespace {

/// A preset: the defaults changed by `edit`, stored as the values that differ.
Preset sasrec_preset(std::string name, std::string desc, void (*edit)(SasrecParams&)) {
  SasrecParams p = sasrec_defaults();
  edit(p);
  return Preset{std::move(name), std::move(desc), sasrec_table().changes(p)};
}

/// The original SASRec settings: d 50, 2 blocks, 1 head, Adam 0.001, batch 128.
void original(SasrecParams& p, int64_t maxlen, float dropout) {
  p.maxlen = maxlen;
  p.hidden_units = 50;
  p.num_blocks = 2;
  p.num_heads = 1;
  p.dropout_rate = dropout;
  p.learning_rate = 0.001;
  p.batch_size = 128;
}

/// SASRec+ (Klenitskiy & Vasilev, RecSys 2023, antklen/sasrec-bert4rec-recsys23): full
/// cross-entropy with their model settings, which differ from the original's: d 64,
/// dropout 0.1, PyTorch's default Adam betas (0.9, 0.999) and N(0, 0.02) initialisation.
/// Their published full-ranking ML-1M figures (BCE 0.1341, CE 0.1821 NDCG@10) come from
/// these settings; they trained at most 100 epochs with early stopping (patience 10).
void sasrec_plus(SasrecParams& p, int64_t maxlen) {
  p.maxlen = maxlen;
  p.hidden_units = 64;
  p.num_blocks = 2;
  p.num_heads = 1;
  p.dropout_rate = 0.1f;
  p.learning_rate = 0.001;
  p.beta2 = 0.999;
  p.init_std = 0.02f;
  p.batch_size = 128;
  p.loss = SasrecLoss::Ce;
}

}  // namespace

std::vector<Preset> sasrec_presets() {
  return {
      sasrec_preset("ml1m", "original SASRec settings for MovieLens-1M",
                    [](SasrecParams& p) { original(p, 200, 0.2f); }),
      sasrec_preset("amazon",
                    "original SASRec settings for sparse Amazon data (Beauty, Games, ...)",
                    [](SasrecParams& p) { original(p, 50, 0.5f); }),
      // Beauty is the Amazon data set the paper tuned on: the same values under its own name.
      sasrec_preset("beauty", "= amazon (original SASRec settings for Amazon Beauty)",
                    [](SasrecParams& p) { original(p, 50, 0.5f); }),
      sasrec_preset("ml1m_plus",
                    "SASRec+ settings for MovieLens-1M (Klenitskiy & Vasilev 2023): full CE, "
                    "maxlen 200, d 64, dropout 0.1, Adam beta2 0.999, N(0, 0.02) init",
                    [](SasrecParams& p) { sasrec_plus(p, 200); }),
      sasrec_preset("beauty_plus",
                    "SASRec+ settings for Amazon Beauty (Klenitskiy & Vasilev 2023): full CE, "
                    "maxlen 50, d 64, dropout 0.1, Adam beta2 0.999, N(0, 0.02) init",
                    [](SasrecParams& p) { sasrec_plus(p, 50); }),
  };
}

ModelInfo sasrec_model_info() {
  return {"sasrec",
          "SASRec: causal self-attention over the history (Kang & McAuley 2018) with BCE, "
          "full CE, sampled softmax or gBCE",
          sasrec_table().specs(),
          [](const Config& c) { return std::make_unique<SasrecModel>(c); },
          sasrec_presets(),
          "epochs"};
}

}  // namespace seqrec
