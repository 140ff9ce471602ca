// DSSM: hyperparameters and presets, training (its TrainableNet for the epoch loop: user
// batches, distinct items per step, candidates, Adam), scoring through the dot-product
// head, and the model file tensors (the item features travel inside the model).
#include "models/dssm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "kernels/gemm.hpp"
#include "seqrec/error.hpp"
#include "train/adam.hpp"
#include "train/epoch_loop.hpp"
#include "train/sampler.hpp"

namespace seqrec {

namespace {

/// Items per item-tower pass when computing every item's vector.
constexpr int64_t kTowerChunk = 4096;

}  // namespace

DssmModel::DssmModel(const Config& config) : ModelBase(config) {
  params_ = dssm_table().read(config);
  const DssmParams& p = params_;
  if (p.layers.empty()) throw InputError("dssm: layers must name at least one width");
  if (p.query_layers.empty())
    throw InputError(
        "dssm: query_layers must name at least one width (its last = the last of "
        "layers)");
  if (p.query_layers.back() != p.layers.back())
    throw InputError("dssm: the last of query_layers (" + std::to_string(p.query_layers.back()) +
                     ") must equal the last of layers (" + std::to_string(p.layers.back()) +
                     "): both towers end in the same space");
  net_.item_layers = p.layers;
  net_.query_layers = p.query_layers;
  net_.act = p.relu ? dssm::Activation::Relu : dssm::Activation::Tanh;
  net_.gamma = static_cast<float>(p.gamma);
  net_.decay = static_cast<float>(p.decay);
  net_.id_embedding = p.id_embedding;
}

void DssmModel::setup(int32_t n_items, int32_t n_features) {
  n_items_ = n_items;
  net_.n_items = n_items;
  net_.n_features = std::max(1, n_features);
  layout_ = dssm::make_layout(net_);
  w_.assign(static_cast<size_t>(layout_.total), 0.0f);
}

void DssmModel::refresh() {
  const int64_t D = net_.dim();
  vecs_.assign(static_cast<size_t>(n_items_ * D), 0.0f);
  const int64_t chunks = (n_items_ + kTowerChunk - 1) / kTowerChunk;
  parallel_for(
      chunks,
      [&](int64_t c0, int64_t c1, int) {
        dssm::TowerCache tc;
        std::vector<int32_t> items;
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t i0 = c * kTowerChunk, i1 = std::min<int64_t>(n_items_, i0 + kTowerChunk);
          items.resize(static_cast<size_t>(i1 - i0));
          for (int64_t i = i0; i < i1; ++i)
            items[static_cast<size_t>(i - i0)] = static_cast<int32_t>(i);
          dssm::item_tower_forward(net_, layout_, w_.data(), X_, items, tc, vecs_.data() + i0 * D);
        }
      },
      1);
  head_.resize(vecs_.size());
  for (size_t k = 0; k < vecs_.size(); ++k) head_[k] = net_.gamma * vecs_[k];
}

/// DSSM's part of the epoch loop: every epoch a fresh permutation of the training users;
/// a batch of B users gives every (prefix, next item) position of each user's last maxlen
/// transitions; the step computes the item tower once for the batch's distinct items
/// (inputs, targets, sampled negatives), the loss and its gradient (dssm::batch_loss), and
/// one Adam step. Checkpoint state: Adam moments and step count, the batch counter (key of
/// each batch's negative samples), the user order.
class DssmModel::Trainer final : public train::TrainableNet {
 public:
  Trainer(DssmModel& m, const SequenceSet& train, int32_t n_items, const FitContext& ctx)
      : m_(m), train_(train), n_items_(n_items), seed_(ctx.seed) {
    const DssmParams& p = m.params_;
    L_ = p.maxlen;
    B_ = p.batch_size;
    K_ = p.n_negatives;
    for (size_t s = 0; s < train.size(); ++s)
      if (train.length(s) >= 2) {
        users_.push_back(static_cast<int32_t>(s));
        positions_ += std::min<int64_t>(train.length(s) - 1, L_);
      }
    if (users_.empty())
      throw InputError(
          "dssm: no training sequence has 2 or more events, so there is no next "
          "item to learn from");
    const std::vector<int64_t> counts = count_items(train, n_items);
    if (p.pop_sampling) pop_ = train::PopularitySampler(counts);
    // logQ: the log of each item's chance to be a candidate, its add-one smoothed training
    // frequency (in-batch targets and popularity-sampled negatives follow it).
    if (p.logq > 0) {
      double total = 0;
      for (int64_t c : counts) total += static_cast<double>(c) + 1.0;
      logq_.resize(static_cast<size_t>(n_items));
      for (int32_t i = 0; i < n_items; ++i)
        logq_[static_cast<size_t>(i)] = static_cast<float>(
            p.logq * std::log((static_cast<double>(counts[static_cast<size_t>(i)]) + 1.0) / total));
    }
    train::AdamOptions ao;
    ao.lr = static_cast<float>(p.learning_rate);
    ao.beta1 = static_cast<float>(p.beta1);
    ao.beta2 = static_cast<float>(p.beta2);
    adam_ = train::Adam(m.layout_.total, ao);
    grad_.assign(static_cast<size_t>(m.layout_.total), 0.0f);
    local_.assign(static_cast<size_t>(n_items), -1);
    cand_of_.assign(static_cast<size_t>(n_items), -1);
  }
  int64_t n_users() const { return static_cast<int64_t>(users_.size()); }
  int64_t n_batches() const { return (n_users() + B_ - 1) / B_; }

  train::EpochResult run_epoch(int64_t epoch, train::EpochProgress& progress) override {
    Rng perm(seed_, 0xE90C, static_cast<uint64_t>(epoch));
    for (int64_t i = n_users() - 1; i > 0; --i)
      std::swap(users_[static_cast<size_t>(i)], users_[perm.below(static_cast<uint64_t>(i + 1))]);
    double epoch_loss = 0;
    for (int64_t bi = 0; bi < n_batches(); ++bi, ++step_) {
      const int64_t u0 = bi * B_, u1 = std::min(n_users(), u0 + B_);
      Rng rng(seed_, 0xBA7C4, step_);
      pack(u0, u1, rng);
      std::fill(grad_.begin(), grad_.end(), 0.0f);
      const double loss = dssm::batch_loss(m_.net_, m_.layout_, m_.w_.data(), m_.X_, b_,
                                           m_.params_.in_batch, grad_.data(), ws_);
      float bad = 0;
      for (float x : grad_) bad += x * 0.0f;
      progress.step(loss, u1 - u0, bad == 0.0f);
      adam_.step(m_.w_.data(), grad_.data());
      epoch_loss += loss * static_cast<double>(b_.positions());
    }
    m_.refresh();  // validation after this epoch scores with these weights
    return {epoch_loss / static_cast<double>(positions_), n_users()};
  }
  bool weights_finite() const override {
    for (float x : m_.w_)
      if (!std::isfinite(x)) return false;
    return true;
  }
  void keep_best() override { best_ = m_.w_; }
  bool restore_best() override {
    if (best_ == m_.w_) return false;
    m_.w_ = std::move(best_);
    m_.refresh();
    return true;
  }
  void write_state(nlohmann::json& values, TensorWriter& tw, bool with_best) const override {
    values["step"] = step_;
    values["adam_steps"] = adam_.steps();
    tw.add<float>("adam.m", std::span<const float>(adam_.first_moment()));
    tw.add<float>("adam.v", std::span<const float>(adam_.second_moment()));
    tw.add<int32_t>("user_order", std::span<const int32_t>(users_));
    if (with_best) tw.add<float>("best_weights", std::span<const float>(best_));
  }
  void read_state(const StateReader& r, bool with_best) override {
    const int64_t P = m_.layout_.total;
    for (const auto& sl : m_.layout_.slots) {
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
    best_.clear();
    if (with_best) {
      const auto bw = r.floats("best_weights", P);
      best_.assign(bw.begin(), bw.end());
    }
    m_.refresh();
  }

 private:
  int32_t local(int32_t item) {
    int32_t& l = local_[static_cast<size_t>(item)];
    if (l < 0) {
      l = static_cast<int32_t>(b_.items.size());
      b_.items.push_back(item);
    }
    return l;
  }
  int32_t candidate(int32_t item, bool sampled) {
    int32_t& c = cand_of_[static_cast<size_t>(item)];
    if (c < 0) {
      c = static_cast<int32_t>(b_.cand.size());
      b_.cand.push_back(local(item));
      b_.sampled.push_back(sampled ? 1 : 0);
      if (!logq_.empty()) b_.logq.push_back(logq_[static_cast<size_t>(item)]);
    } else if (sampled) {
      b_.sampled[static_cast<size_t>(c)] = 1;
    }
    return c;
  }
  // Users [u0, u1) of the current order: the last min(m - 1, maxlen) transitions of each.
  void pack(int64_t u0, int64_t u1, Rng& rng) {
    b_.clear();
    for (int64_t u = u0; u < u1; ++u) {
      const auto s = train_.seq(static_cast<size_t>(users_[static_cast<size_t>(u)]));
      const int64_t m = static_cast<int64_t>(s.size()), n = std::min(m - 1, L_);
      for (int64_t i = 0; i < n; ++i) {
        b_.inputs.push_back(local(s[static_cast<size_t>(m - 1 - n + i)]));
        b_.target.push_back(candidate(s[static_cast<size_t>(m - n + i)], false));
      }
      b_.seq_off.push_back(static_cast<int64_t>(b_.inputs.size()));
    }
    for (int64_t k = 0; k < K_; ++k) {
      const int32_t x = m_.params_.pop_sampling
                            ? pop_.draw(rng)
                            : static_cast<int32_t>(rng.below(static_cast<uint64_t>(n_items_)));
      candidate(x, true);
    }
    for (int32_t it : b_.items) local_[static_cast<size_t>(it)] = -1;
    for (int32_t c : b_.cand) cand_of_[static_cast<size_t>(b_.items[static_cast<size_t>(c)])] = -1;
  }

  DssmModel& m_;
  const SequenceSet& train_;
  const int32_t n_items_;
  const uint64_t seed_;
  int64_t L_ = 0, B_ = 0, K_ = 0;
  std::vector<int32_t> users_;
  int64_t positions_ = 0;
  train::PopularitySampler pop_;
  std::vector<float> logq_;
  train::Adam adam_;
  std::vector<float> grad_, best_;
  std::vector<int32_t> local_, cand_of_;
  dssm::Batch b_;
  dssm::Workspace ws_;
  uint64_t step_ = 0;
};

void DssmModel::fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) {
  check_training_data(train, n_items, "dssm");
  if (n_items < 2)
    throw InputError("dssm: the catalogue has " + std::to_string(n_items) +
                     " item; next-item prediction needs at least 2 items");
  X_ = SparseFeatures{};
  X_.offsets.assign(static_cast<size_t>(n_items) + 1, 0);
  if (ctx.item_features) {
    if (ctx.item_features->rows() != n_items)
      throw Error("dssm: the item features have " + std::to_string(ctx.item_features->rows()) +
                  " rows for " + std::to_string(n_items) + " items");
    X_ = *ctx.item_features;
  } else if (!params_.id_embedding) {
    throw InputError(
        "dssm: without item features (--item-features FILE) the item tower needs "
        "the id embedding (id_embedding = true)");
  } else if (ctx.progress) {
    std::fprintf(stderr, "dssm: no item features given; the item tower sees item ids only\n");
  }
  const double first =
      static_cast<double>(std::max(1, X_.n_features)) * static_cast<double>(params_.layers[0]);
  if (first > 2e9)
    throw InputError("dssm: the first layer would have " +
                     std::to_string(static_cast<int64_t>(first)) +
                     " weights (features x layers[0]); use fewer text_buckets or a narrower layer");
  train::LoopOptions lo;
  lo.model = "dssm";
  lo.epochs = params_.epochs;
  lo.epochs_param = "epochs";
  lo.lr_param = "learning_rate";
  lo.unit = "seqs";
  lo.validate_every = params_.eval_every;
  train::EpochLoop loop(ctx, lo);
  setup(n_items, X_.n_features);
  dssm::init_params(net_, layout_, w_.data(), ctx.seed);
  Trainer t(*this, train, n_items, ctx);
  loop.options().units_per_epoch = t.n_users();
  loop.options().steps_per_epoch = t.n_batches();
  refresh();
  const train::LoopHistory& h = loop.run(t, *this);
  epoch_losses_ = h.losses;
  refresh();
}

void DssmModel::score(std::span<const std::span<const int32_t>> seqs,
                      std::span<const PrefixQuery> queries, float* out) const {
  const int64_t D = net_.dim(), Q = static_cast<int64_t>(queries.size());
  if (Q == 0) return;
  std::vector<float> q(static_cast<size_t>(Q * D));
  query_vectors(seqs, queries, q.data());
  sgemm(false, true, Q, n_items_, D, 1.0f, q.data(), D, head_.data(), D, 0.0f, out, n_items_);
}

bool DssmModel::scores_untrained_item(int32_t item) const {
  if (item < 0 || item >= X_.rows()) return false;
  return !X_.row_index(item).empty();
}

DotProductHead DssmModel::dot_product_head() const {
  if (head_.empty()) return {};
  return {static_cast<int32_t>(net_.dim()), head_.data(), nullptr};
}

void DssmModel::query_vectors(std::span<const std::span<const int32_t>> seqs,
                              std::span<const PrefixQuery> queries, float* out) const {
  query_vectors_with(seqs, queries, nullptr, 0, out);
}

void DssmModel::query_vectors_with(std::span<const std::span<const int32_t>> seqs,
                                   std::span<const PrefixQuery> queries, const float* extra_rows,
                                   int32_t n_extra, float* out) const {
  if (head_.empty()) throw Error("dssm: the model has not been trained or loaded");
  const int64_t D = net_.dim(), Q = static_cast<int64_t>(queries.size());
  if (Q == 0) return;
  // An added item's head row is gamma * u: its unit vector is the row / gamma.
  const double inv_gamma = 1.0 / static_cast<double>(net_.gamma);
  // The pooled vector of each prefix's last maxlen items: the last row of pool_forward.
  std::vector<float> P(static_cast<size_t>(Q * D));
  for (int64_t r = 0; r < Q; ++r) {
    const auto prefix = query_prefix(seqs, queries[static_cast<size_t>(r)]);
    const int64_t m = static_cast<int64_t>(prefix.size()), n = std::min<int64_t>(m, params_.maxlen);
    double z = 0;
    std::vector<double> s(static_cast<size_t>(D), 0.0);
    for (int64_t i = m - n; i < m; ++i) {
      const int32_t it = prefix[static_cast<size_t>(i)];
      z = net_.decay * z + 1.0;
      if (it >= n_items_ && it - n_items_ < n_extra && extra_rows) {
        const float* row = extra_rows + static_cast<int64_t>(it - n_items_) * D;
        for (int64_t k = 0; k < D; ++k)
          s[static_cast<size_t>(k)] = net_.decay * s[static_cast<size_t>(k)] + row[k] * inv_gamma;
        continue;
      }
      if (it < 0 || it >= n_items_)
        throw Error("dssm: item index " + std::to_string(it) + " outside the catalogue of " +
                    std::to_string(n_items_) + " (+" + std::to_string(n_extra) + " added)");
      const float* u = vecs_.data() + static_cast<int64_t>(it) * D;
      for (int64_t k = 0; k < D; ++k)
        s[static_cast<size_t>(k)] = net_.decay * s[static_cast<size_t>(k)] + u[k];
    }
    for (int64_t k = 0; k < D; ++k)
      P[static_cast<size_t>(r * D + k)] = static_cast<float>(s[static_cast<size_t>(k)] / z);
  }
  dssm::QueryCache qc;
  dssm::query_forward(net_, layout_, w_.data(), Q, P.data(), qc, out);
}

void DssmModel::encode_item(std::span<const int32_t> index, std::span<const float> value,
                            float* row, float* bias) const {
  if (head_.empty()) throw Error("dssm: the model has not been trained or loaded");
  if (index.size() != value.size())
    throw InputError("dssm: encode_item: index and value differ in length");
  for (size_t j = 0; j < index.size(); ++j) {
    if (index[j] < 0 || index[j] >= X_.n_features)
      throw InputError("dssm: feature index " + std::to_string(index[j]) + " outside the model's " +
                       std::to_string(X_.n_features) + " features");
    if (!std::isfinite(value[j])) throw InputError("dssm: a feature value is not finite");
  }
  // One row of features, through the item tower without the id embedding (a new item has
  // none: its features alone, like a cold item of training).
  SparseFeatures x;
  x.n_features = X_.n_features;
  x.offsets = {0, static_cast<int64_t>(index.size())};
  x.index.assign(index.begin(), index.end());
  x.value.assign(value.begin(), value.end());
  dssm::Layout l = layout_;
  l.E = -1;
  dssm::TowerCache tc;
  const int32_t item0 = 0;
  const int64_t D = net_.dim();
  std::vector<float> u(static_cast<size_t>(D));
  dssm::item_tower_forward(net_, l, w_.data(), x, std::span<const int32_t>(&item0, 1), tc,
                           u.data());
  for (int64_t k = 0; k < D; ++k) row[k] = net_.gamma * u[static_cast<size_t>(k)];
  if (bias) *bias = 0.0f;
}

void DssmModel::save(TensorWriter& w) const {
  for (const auto& s : layout_.slots)
    w.add<float>(s.name,
                 std::span<const float>(w_.data() + s.offset, static_cast<size_t>(s.size())),
                 s.shape);
  w.add<int64_t>("features.offsets", std::span<const int64_t>(X_.offsets));
  if (!X_.index.empty()) {
    w.add<int32_t>("features.index", std::span<const int32_t>(X_.index));
    w.add<float>("features.value", std::span<const float>(X_.value));
  }
}

void DssmModel::load(const TensorReader& r) {
  const auto off = read_vector<int64_t>(r, "features.offsets");
  if (off.size() < 3) bad_tensor(r, "features.offsets", "must have n_items + 1 >= 3 entries");
  const TensorEntry& w1 = r.entry("item.W1");
  if (w1.shape.size() != 2 || w1.shape[1] != params_.layers[0] || w1.shape[0] < 1)
    bad_tensor(r, "item.W1",
               "must be n_features x layers[0] (" + std::to_string(params_.layers[0]) + ")");
  const int32_t n = static_cast<int32_t>(off.size() - 1);
  setup(n, static_cast<int32_t>(w1.shape[0]));
  for (const auto& s : layout_.slots) {
    const auto v = r.get<float>(s.name, s.shape);
    std::copy(v.begin(), v.end(), w_.begin() + s.offset);
  }
  for (float x : w_)
    if (!std::isfinite(x)) throw Error(r.source() + ": dssm weights contain NaN/inf");
  X_ = read_sparse_features(r, off, static_cast<int32_t>(w1.shape[0]));
  refresh();
}

const ParamTable<DssmParams>& dssm_table() {
  using P = DssmParams;
  static const ParamTable<P> table = [] {
    ParamTable<P> t;
    t.field(&P::layers, param_int_list("layers", "300,300,128", 1, 8192,
                                       "item tower widths (the last is the shared space's)"));
    t.field(&P::query_layers,
            param_int_list("query_layers", "128", 1, 8192,
                           "query tower widths over the pooled history (the last must equal the "
                           "last of layers)"));
    t.choice(&P::relu, param_choice("activation", "tanh", {}, "activation of every layer"),
             {{"tanh", false}, {"relu", true}});
    t.field(&P::gamma, param_float("gamma", "10", 0, 1000,
                                   "smoothing factor: scores are gamma times the cosine")
                           .open_min());
    t.field(&P::decay, param_float("decay", "0.8", 0, 1,
                                   "recency weight of the query pooling: the item k steps back "
                                   "weighs decay^k (1 = plain mean)")
                           .open_min());
    t.field(&P::maxlen,
            param_int("maxlen", "50", 1, 100000, "longest history pooled: the last maxlen items"));
    t.field(&P::id_embedding,
            param_bool("id_embedding", "true",
                       "add a learned id embedding to the item tower's first layer (an item "
                       "without training events keeps a zero one: its features alone)"));
    t.field(
        &P::learning_rate,
        param_float("learning_rate", "0.001", 0, 10, "Adam learning rate").open_min().alias("lr"));
    t.field(&P::beta1, param_float("beta1", "0.9", 0, 0.999999, "Adam beta1"));
    t.field(&P::beta2, param_float("beta2", "0.999", 0, 0.999999, "Adam beta2"));
    t.field(&P::batch_size, param_int("batch_size", "128", 1, 1000000, "sequences per step"));
    t.field(&P::epochs, param_int("epochs", "20", 1, 1000000, "passes over the users")
                            .alias("n_epochs")
                            .alias("num_epochs"));
    t.field(&P::n_negatives, param_int("n_negatives", "256", 0, 1000000,
                                       "sampled negatives per step, shared by its positions"));
    t.choice(&P::pop_sampling,
             param_choice("sampling", "pop", {},
                          "distribution of the sampled negatives: proportional to training "
                          "popularity, or uniform"),
             {{"pop", true}, {"uniform", false}});
    t.field(&P::in_batch, param_bool("in_batch", "true",
                                     "the other positions' targets of the step are negatives too"));
    t.field(&P::logq, param_float("logq", "1", 0, 1,
                                  "weight of the logQ correction (log of the add-one smoothed "
                                  "training frequency subtracted from each candidate's logit)"));
    t.field(&P::eval_every,
            param_int("eval_every", "1", 1, 1000000,
                      "validate (and check early stopping) every this many epochs"));
    return t;
  }();
  return table;
}

DssmParams dssm_defaults() {
  return dssm_table().defaults();
}

std::vector<Preset> dssm_presets() {
  // Huang et al. 2013: 300-300-128 tanh, Xavier-uniform init, the clicked document against
  // 4 randomly drawn unclicked ones, no in-batch negatives, no logQ. The paper sets the
  // smoothing factor gamma on held-out data without printing it; 10 is our choice.
  DssmParams p = dssm_defaults();
  p.layers = {300, 300, 128};
  p.relu = false;
  p.n_negatives = 4;
  p.pop_sampling = false;
  p.in_batch = false;
  p.logq = 0;
  p.gamma = 10;
  return {Preset{"huang2013",
                 "DSSM as published (Huang et al. 2013): 300-300-128 tanh, softmax over the "
                 "positive and 4 uniform negatives, no in-batch negatives, no logQ",
                 dssm_table().changes(p)}};
}

ModelInfo dssm_model_info() {
  return {"dssm",
          "DSSM two towers (Huang et al. 2013): item features -> tanh MLP, recency-pooled "
          "history -> MLP, gamma * cosine, softmax with in-batch and sampled negatives",
          dssm_table().specs(),
          [](const Config& c) { return std::make_unique<DssmModel>(c); },
          dssm_presets(),
          "epochs"};
}

}  // namespace seqrec
