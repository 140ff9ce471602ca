// SASRec: hyperparameters, training loop (sampling, chunked parallel forward/backward,
// Adam, validation with early stopping), batched inference and the model file tensors.
#include "models/sasrec.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <string>

#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "kernels/gemm.hpp"
#include "kernels/sasrec_loss.hpp"
#include "models/sasrec_params.hpp"
#include "seqrec/error.hpp"
#include "train/adam.hpp"

namespace seqrec {

namespace {

using kernels::SasRng;
using sasrec::Chunk;
using sasrec::Workspace;

enum class LossKind { Bce, Ce, SampledSoftmax, Gbce };

/// The loss named by the `loss` parameter; an unknown name is an InputError (the table
/// restricts the choices, but a config built from another spec list must not silently
/// train with some other loss).
LossKind parse_loss(const std::string& s) {
  if (s == "bce") return LossKind::Bce;
  if (s == "ce") return LossKind::Ce;
  if (s == "sampled_softmax") return LossKind::SampledSoftmax;
  if (s == "gbce") return LossKind::Gbce;
  throw InputError("sasrec: parameter 'loss' must be one of bce, ce, sampled_softmax, gbce, got '" +
                   s + "'");
}

/// Tokens per chunk of a training batch: the unit of parallel work (one thread runs the
/// whole forward, loss and backward of a chunk).
constexpr int64_t kChunkTokens = 2048;
/// Tokens per forward pass in score().
constexpr int64_t kScoreTokens = 8192;

/// Packed sequences of one batch (or one scoring call).
struct Packed {
  std::vector<int64_t> off{0};
  std::vector<int32_t> items, pos, target, neg;
  std::vector<uint64_t> stream;
  void clear() {
    off.assign(1, 0);
    items.clear();
    pos.clear();
    target.clear();
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

std::string fmt_loss(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

}  // namespace

SasrecModel::SasrecModel(const Config& config) : ModelBase(config) {
  const SasrecParams p = sasrec_table().read(config);  // refuses an unknown loss, etc.
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
}

void SasrecModel::fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) {
  check_training_data(train, n_items, "sasrec");
  if (n_items < 2)
    throw InputError("sasrec: the catalogue has " + std::to_string(n_items) +
                     " item; next-item prediction needs at least 2 items");
  ThreadScope thread_scope(ctx.threads, ZeroThreads::KeepCurrent);
  const Config& cfg = config_;
  const LossKind loss_kind = parse_loss(cfg.get_string("loss"));
  const int64_t L = net_.maxlen, d = net_.d;
  const int64_t B = cfg.get_int("batch_size");
  const int64_t epochs = cfg.get_int("num_epochs");
  const int64_t eval_every = cfg.get_int("eval_every");
  const double l2 = cfg.get_float("l2_emb");
  const int64_t K = std::min<int64_t>(cfg.get_int("n_negatives"), n_items - 1);
  const bool pop_sampling = cfg.get_string("sampling") == "pop";
  const float logq_w = static_cast<float>(cfg.get_float("logq"));
  const float gbce_t = static_cast<float>(cfg.get_float("gbce_t"));

  setup(n_items);
  sasrec::init_params(net_, layout_, w_.data(), ctx.seed);

  // Users that give at least one (input, target) pair; a one-event user has none and is
  // left out of training (it is still scored from its single item).
  std::vector<int32_t> users;
  int64_t positions = 0;
  for (size_t s = 0; s < train.size(); ++s) {
    const int64_t m = train.length(s);
    if (m >= 2) {
      users.push_back(static_cast<int32_t>(s));
      positions += std::min(m - 1, L);
    }
  }
  if (users.empty())
    throw InputError(
        "sasrec: no training sequence has 2 or more events, so there is no "
        "next item to learn from");
  positions_per_epoch_ = positions;
  const int64_t n_short = static_cast<int64_t>(train.size() - users.size());
  if (n_short > 0 && ctx.progress)
    std::fprintf(stderr, "sasrec: %lld sequences with a single event are not trained on\n",
                 static_cast<long long>(n_short));

  // Negative sampling for the sampled losses: uniform or proportional to popularity.
  const std::vector<int64_t> counts = count_items(train, n_items);
  std::vector<double> cdf;
  std::vector<float> logq;
  if (pop_sampling) {
    cdf.resize(static_cast<size_t>(n_items));
    double acc = 0;
    for (int32_t i = 0; i < n_items; ++i)
      cdf[static_cast<size_t>(i)] = acc += static_cast<double>(counts[static_cast<size_t>(i)]);
    for (auto& x : cdf) x /= acc;
    if (loss_kind == LossKind::SampledSoftmax && logq_w > 0) {
      logq.resize(static_cast<size_t>(n_items));
      for (int32_t i = 0; i < n_items; ++i)
        logq[static_cast<size_t>(i)] =
            logq_w *
            static_cast<float>(std::log(
                std::max<double>(1.0, static_cast<double>(counts[static_cast<size_t>(i)])) / acc));
    }
  }
  // gBCE: alpha = K / (|I| - 1) (the negative sampling rate), beta = alpha (t (1 - 1/alpha) +
  // 1/alpha)
  const double alpha = std::min(1.0, static_cast<double>(K) / static_cast<double>(n_items - 1));
  const float beta = static_cast<float>(alpha * (gbce_t * (1.0 - 1.0 / alpha) + 1.0 / alpha));

  train::AdamOptions ao;
  ao.lr = static_cast<float>(cfg.get_float("lr"));
  ao.beta1 = static_cast<float>(cfg.get_float("beta1"));
  ao.beta2 = static_cast<float>(cfg.get_float("beta2"));
  ao.eps = 1e-8f;
  train::Adam adam(layout_.total, ao);

  const int nt = std::max(1, num_threads());
  std::vector<Workspace> ws(static_cast<size_t>(nt));
  std::vector<std::vector<float>> grads(static_cast<size_t>(nt),
                                        std::vector<float>(static_cast<size_t>(layout_.total)));
  std::vector<std::vector<float>> dF(static_cast<size_t>(nt)), dEneg(static_cast<size_t>(nt));
  std::vector<std::vector<int64_t>> rel(static_cast<size_t>(nt));
  std::vector<int32_t> mark(static_cast<size_t>(n_items), -1);
  std::vector<int32_t> negs(static_cast<size_t>(std::max<int64_t>(K, 1)));
  std::vector<float> Eneg;
  Packed pk;

  epoch_losses_.clear();
  epoch_seconds_.clear();
  const int64_t n_users = static_cast<int64_t>(users.size());
  const int64_t n_batches = (n_users + B - 1) / B;
  // A resumed run shows (and rates) only the epochs it trains.
  const int64_t epochs_done = ctx.resume ? std::clamp<int64_t>(ctx.resume->epoch, 0, epochs) : 0;
  Progress bar("sasrec", (epochs - epochs_done) * n_users, "seqs", ctx.progress);
  std::vector<float> best_w;
  double best_score = -std::numeric_limits<double>::infinity();
  int best_epoch = 0, since_best = 0;
  uint64_t step = 0;
  int32_t stamp = 0;
  const uint64_t drop_seed = ctx.seed ^ 0x6A09E667F3BCC909ULL;
  const int64_t P = layout_.total;
  int64_t first_epoch = 1;
  bool stopped = false;
  if (ctx.resume) {
    // Everything above is a function of (data, config, seed); the rest comes from the
    // checkpoint. Per-step randomness is drawn from (seed, step) and the user permutation
    // from (seed, epoch) applied to the previous epoch's order, so the step counter and
    // that order are all the random state there is.
    const TrainingState& st = *ctx.resume;
    const StateReader r(st, "sasrec");
    if (st.epoch > epochs)
      throw InputError(st.source + ": the checkpoint has completed " + std::to_string(st.epoch) +
                       " epochs but num_epochs is " + std::to_string(epochs));
    for (const auto& sl : sasrec::tensor_slots(net_, layout_)) {
      const auto v = r.weights().get<float>(sl.name, sl.shape);
      std::copy(v.begin(), v.end(), w_.begin() + sl.offset);
    }
    for (float x : w_)
      if (!std::isfinite(x)) r.fail("the weights contain NaN or inf");
    adam.restore(r.floats("adam.m", P), r.floats("adam.v", P),
                 r.integer("adam_steps", 0, INT64_MAX));
    const auto order = r.tensors().get<int32_t>("user_order", {n_users});
    std::vector<int32_t> a(order.begin(), order.end()), b = users;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) r.fail("tensor 'train.user_order' is not an order of this run's training users");
    users.assign(order.begin(), order.end());
    step = static_cast<uint64_t>(r.integer("step", 0, INT64_MAX));
    epoch_losses_ = r.numbers("epoch_losses", st.epoch);
    epoch_seconds_ = r.numbers("epoch_seconds", st.epoch);
    best_epoch = static_cast<int>(r.integer("best_epoch", 0, st.epoch));
    since_best = static_cast<int>(r.integer("since_best", 0, st.epoch));
    const double bs = r.number("best_score");
    if (!std::isnan(bs)) {
      best_score = bs;
      const auto bw = r.floats("best_weights", P);
      best_w.assign(bw.begin(), bw.end());
    }
    first_epoch = st.epoch + 1;
    stopped = st.stopped_early;
  }
  // The training state after `epoch` completed epochs, for ctx.checkpoint.
  auto checkpoint = [&](int64_t epoch) {
    TrainingState st;
    st.epoch = epoch;
    st.stopped_early = stopped;
    st.values = {
        {"step", step},
        {"adam_steps", adam.steps()},
        {"epoch_losses", state_numbers(epoch_losses_)},
        {"epoch_seconds", state_numbers(epoch_seconds_)},
        {"best_epoch", best_epoch},
        {"since_best", since_best},
        {"best_score", best_w.empty() ? nlohmann::json(nullptr) : state_number(best_score)}};
    TensorWriter tw;
    tw.add<float>("adam.m", std::span<const float>(adam.first_moment()));
    tw.add<float>("adam.v", std::span<const float>(adam.second_moment()));
    tw.add<int32_t>("user_order", std::span<const int32_t>(users));
    if (!best_w.empty()) tw.add<float>("best_weights", std::span<const float>(best_w));
    st.tensors = tw.entries();
    ctx.checkpoint(*this, st);
  };

  for (int64_t epoch = first_epoch; epoch <= epochs && !stopped; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    // A fresh permutation of the users every epoch (without replacement).
    SasRng perm_rng(ctx.seed, 0xE90C, static_cast<uint64_t>(epoch));
    for (int64_t i = n_users - 1; i > 0; --i)
      std::swap(users[static_cast<size_t>(i)], users[perm_rng.below(static_cast<uint32_t>(i + 1))]);
    double epoch_loss = 0;
    for (int64_t bi = 0; bi < n_batches; ++bi, ++step) {
      const int64_t u0 = bi * B, u1 = std::min(n_users, u0 + B);
      SasRng rng(ctx.seed, 0xBA7C4, step);
      // Pack the most recent min(m-1, L) transitions of every user: input s_j at slot
      // position L-n+i, target s_{j+1}.
      pk.clear();
      for (int64_t u = u0; u < u1; ++u) {
        const auto s = train.seq(static_cast<size_t>(users[static_cast<size_t>(u)]));
        const int64_t m = static_cast<int64_t>(s.size());
        const int64_t n = std::min(m - 1, L);
        for (int64_t i = 0; i < n; ++i) {
          pk.items.push_back(s[static_cast<size_t>(m - 1 - n + i)]);
          pk.target.push_back(s[static_cast<size_t>(m - n + i)]);
          pk.pos.push_back(static_cast<int32_t>(pos_base(L, n) + i));
        }
        pk.off.push_back(static_cast<int64_t>(pk.items.size()));
        pk.stream.push_back(static_cast<uint64_t>(u - u0));
        if (loss_kind == LossKind::Bce) {
          // One negative per position, uniform over the items the user never had.
          ++stamp;
          int64_t distinct = 0;
          for (int32_t it : s) {
            distinct += mark[static_cast<size_t>(it)] != stamp;
            mark[static_cast<size_t>(it)] = stamp;
          }
          const bool exclude = distinct < n_items;
          for (int64_t i = 0; i < n; ++i) {
            int32_t x;
            do {
              x = static_cast<int32_t>(rng.below(static_cast<uint32_t>(n_items)));
            } while (exclude && mark[static_cast<size_t>(x)] == stamp);
            pk.neg.push_back(x);
          }
        }
      }
      const int64_t T = static_cast<int64_t>(pk.items.size());
      const float scale = 1.0f / static_cast<float>(T);
      const float* Eo = w_.data() + layout_.out_emb;
      if (loss_kind == LossKind::SampledSoftmax || loss_kind == LossKind::Gbce) {
        // sampled_softmax: K negatives shared by every position of the batch (its softmax
        // weights over them sum to at most 1 per position). gbce: K negatives per sequence,
        // shared by that sequence's positions only; a BCE-type loss gives every negative the
        // gradient of every position that sees it, and batch-wide sharing made that swamp the
        // positives. Drawn from the step's RNG in sequence order, so chunking and threads do
        // not change them.
        const int64_t n_sets = loss_kind == LossKind::Gbce ? pk.nseq() : 1;
        negs.resize(static_cast<size_t>(n_sets * K));
        for (int64_t k = 0; k < n_sets * K; ++k) {
          if (pop_sampling) {
            const double u = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
            const auto it = std::upper_bound(cdf.begin(), cdf.end(), u);
            negs[static_cast<size_t>(k)] =
                static_cast<int32_t>(std::min<int64_t>(it - cdf.begin(), n_items - 1));
          } else {
            negs[static_cast<size_t>(k)] =
                static_cast<int32_t>(rng.below(static_cast<uint32_t>(n_items)));
          }
        }
        Eneg.resize(static_cast<size_t>(n_sets * K * d));
        for (int64_t k = 0; k < n_sets * K; ++k)
          std::memcpy(Eneg.data() + k * d,
                      Eo + static_cast<int64_t>(negs[static_cast<size_t>(k)]) * d,
                      static_cast<size_t>(d) * sizeof(float));
      }

      const std::vector<int64_t> cb = chunk_bounds(pk, kChunkTokens);
      const int64_t n_chunks = static_cast<int64_t>(cb.size()) - 1;
      std::vector<double> chunk_loss(static_cast<size_t>(n_chunks), 0.0);
      for (auto& g : grads) std::fill(g.begin(), g.end(), 0.0f);
      parallel_for(
          n_chunks,
          [&](int64_t c0, int64_t c1, int tid) {
            Workspace& w = ws[static_cast<size_t>(tid)];
            float* g = grads[static_cast<size_t>(tid)].data();
            float* dEo = g + layout_.out_emb;
            for (int64_t c = c0; c < c1; ++c) {
              const int64_t s0 = cb[static_cast<size_t>(c)], s1 = cb[static_cast<size_t>(c) + 1];
              const Chunk ch = pk.chunk(s0, s1, rel[static_cast<size_t>(tid)]);
              const int64_t tb = pk.off[s0], tc = ch.tokens();
              const float* F =
                  sasrec::forward(net_, layout_, w_.data(), ch, w, true, drop_seed, step);
              auto& df = dF[static_cast<size_t>(tid)];
              if (static_cast<int64_t>(df.size()) < tc * d) df.resize(static_cast<size_t>(tc * d));
              const int32_t* tgt = pk.target.data() + tb;
              double l = 0;
              switch (loss_kind) {
                case LossKind::Bce:
                  l = kernels::sasrec_bce(tc, d, F, Eo, tgt, pk.neg.data() + tb, scale, df.data(),
                                          dEo);
                  break;
                case LossKind::Ce:
                  l = kernels::sasrec_full_ce(tc, d, n_items, F, Eo, tgt, scale, df.data(), dEo,
                                              w.loss_scratch);
                  break;
                case LossKind::SampledSoftmax: {
                  auto& de = dEneg[static_cast<size_t>(tid)];
                  de.resize(static_cast<size_t>(K * d));
                  l = kernels::sasrec_sampled(kernels::SampledLoss::Softmax, tc, d, F, Eo, tgt, K,
                                              negs.data(), Eneg.data(),
                                              logq.empty() ? nullptr : logq.data(), beta, scale,
                                              df.data(), dEo, de.data(), w.loss_scratch);
                  scatter_rows(dEo, negs.data(), de.data(), K, d);
                  break;
                }
                case LossKind::Gbce: {
                  // One kernel call per sequence, with that sequence's own negatives.
                  auto& de = dEneg[static_cast<size_t>(tid)];
                  de.resize(static_cast<size_t>(K * d));
                  for (int64_t s = s0; s < s1; ++s) {
                    const int64_t r0 = pk.off[s] - tb, ts = pk.off[s + 1] - pk.off[s];
                    const int32_t* ng = negs.data() + s * K;
                    l += kernels::sasrec_sampled(kernels::SampledLoss::GBCE, ts, d, F + r0 * d, Eo,
                                                 tgt + r0, K, ng, Eneg.data() + s * K * d, nullptr,
                                                 beta, scale, df.data() + r0 * d, dEo, de.data(),
                                                 w.loss_scratch);
                    scatter_rows(dEo, ng, de.data(), K, d);
                  }
                  break;
                }
              }
              chunk_loss[static_cast<size_t>(c)] = l;
              sasrec::backward(net_, layout_, w_.data(), ch, w, df.data(), g);
            }
          },
          1);
      double batch_loss = 0;
      for (double l : chunk_loss) batch_loss += l;
      batch_loss *= scale;
      // Sum the per-thread gradients into grads[0] and check them.
      float* g = grads[0].data();
      bool finite = std::isfinite(batch_loss);
      {
        float bad = 0;
        for (int t = 1; t < nt; ++t) {
          const float* gt = grads[static_cast<size_t>(t)].data();
          for (int64_t i = 0; i < P; ++i) g[i] += gt[i];
        }
        for (int64_t i = 0; i < P; ++i) bad += g[i] * 0.0f;  // NaN/inf propagate
        finite = finite && bad == 0.0f;
      }
      if (l2 > 0) {
        // + l2 ||E||^2: dL/dE += 2 l2 E
        const float* E = w_.data() + layout_.item_emb;
        float* gE = g + layout_.item_emb;
        double sq = 0;
        for (int64_t i = 0; i < n_items * d; ++i) {
          sq += static_cast<double>(E[i]) * E[i];
          gE[i] += static_cast<float>(2.0 * l2) * E[i];
        }
        batch_loss += l2 * sq;
      }
      if (!finite)
        throw Error("sasrec: the loss or its gradient became NaN/inf at epoch " +
                    std::to_string(epoch) + ", step " + std::to_string(bi + 1) + " of " +
                    std::to_string(n_batches) +
                    " (try a lower lr); training stopped, no weights were written");
      adam.step(w_.data(), g);
      epoch_loss += batch_loss * static_cast<double>(T);
      bar.add(u1 - u0);
      bar.set_note("epoch " + std::to_string(epoch) + "/" + std::to_string(epochs) + " loss " +
                   fmt_loss(batch_loss));
    }
    epoch_losses_.push_back(epoch_loss / static_cast<double>(positions));
    epoch_seconds_.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (ctx.progress) {
      // The bar spans every epoch: the summary goes on a line of its own, not onto the
      // bar's unfinished line.
      char summary[160];
      std::snprintf(
          summary, sizeof summary, "sasrec: epoch %lld/%lld loss %.5f in %.2f s (%.0f seqs/s)",
          static_cast<long long>(epoch), static_cast<long long>(epochs), epoch_losses_.back(),
          epoch_seconds_.back(), static_cast<double>(n_users) / epoch_seconds_.back());
      bar.message(summary);
    }
    if (ctx.validate && (epoch % eval_every == 0 || epoch == epochs)) {
      const double v = ctx.validate(*this, static_cast<int>(epoch));
      if (std::isfinite(v)) {
        if (v > best_score) {
          best_score = v;
          best_epoch = static_cast<int>(epoch);
          best_w = w_;
          since_best = 0;
        } else if (ctx.patience > 0 && ++since_best >= ctx.patience) {
          if (ctx.progress)
            std::fprintf(stderr,
                         "sasrec: no improvement in %d validations; stopping after epoch %lld\n",
                         ctx.patience, static_cast<long long>(epoch));
          stopped = true;
        }
      }
    }
    if (ctx.checkpoint) checkpoint(epoch);
  }
  bar.finish();
  if (!best_w.empty() && best_w != w_) {
    w_ = std::move(best_w);
    if (ctx.progress)
      std::fprintf(stderr, "sasrec: restored the best weights (epoch %d, validation %.4f)\n",
                   best_epoch, best_score);
  }
}

void SasrecModel::score(std::span<const std::span<const int32_t>> seqs,
                        std::span<const PrefixQuery> queries, float* out) const {
  const int64_t d = net_.d, Q = static_cast<int64_t>(queries.size());
  if (Q == 0) return;
  std::vector<float> last(static_cast<size_t>(Q * d));
  query_vectors(seqs, queries, last.data());
  // out = F_last Eo^T: one GEMM for the whole batch of queries.
  sgemm(false, true, Q, n_items_, d, 1.0f, last.data(), d, w_.data() + layout_.out_emb, d, 0.0f,
        out, n_items_);
}

DotProductHead SasrecModel::dot_product_head() const {
  if (w_.empty() || n_items_ <= 0) return {};
  return {static_cast<int32_t>(net_.d), w_.data() + layout_.out_emb, nullptr};
}

void SasrecModel::query_vectors(std::span<const std::span<const int32_t>> seqs,
                                std::span<const PrefixQuery> queries, float* last) const {
  if (w_.empty()) throw Error("sasrec: the model has not been trained or loaded");
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
      if (it < 0 || it >= n_items_)
        throw Error("sasrec: item index " + std::to_string(it) + " outside the catalogue of " +
                    std::to_string(n_items_));
    const Chunk ch = pk.chunk(0, pk.nseq(), rel);
    const float* F = sasrec::forward(net_, layout_, w_.data(), ch, ws, false, 0, 0, true);
    std::memcpy(last + q0 * d, F, static_cast<size_t>(ch.nseq * d) * sizeof(float));
    q0 = q1;
  }
}

void SasrecModel::save(TensorWriter& w) const {
  for (const auto& s : sasrec::tensor_slots(net_, layout_))
    w.add<float>(s.name,
                 std::span<const float>(w_.data() + s.offset, static_cast<size_t>(s.size())),
                 s.shape);
}

void SasrecModel::load(const TensorReader& r) {
  const TensorEntry& e = r.entry("item_emb");
  if (e.shape.size() != 2 || e.shape[1] != net_.d || e.shape[0] < 1)
    bad_tensor(r, "item_emb", "must be n_items x hidden_units (" + std::to_string(net_.d) + ")");
  setup(static_cast<int32_t>(e.shape[0]));
  for (const auto& s : sasrec::tensor_slots(net_, layout_)) {
    const auto v = r.get<float>(s.name, s.shape);
    std::copy(v.begin(), v.end(), w_.begin() + s.offset);
  }
  for (float x : w_)
    if (!std::isfinite(x)) throw Error(r.source() + ": sasrec weights contain NaN/inf");
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
