// The gru4rec model type: parameters, presets, training loop (session-parallel batches,
// sampled negatives, early stopping), scoring, files and the incremental serving API.
#include "models/gru4rec.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>

#include "core/parallel.hpp"
#include "seqrec/error.hpp"
#include "train/epoch_loop.hpp"
#include "train/sampler.hpp"
#include "train/session_batcher.hpp"

namespace seqrec {

using kernels::LossType;

const ParamTable<Gru4recParams>& gru4rec_table() {
  using kernels::LossType;
  using P = Gru4recParams;
  static const ParamTable<P> table = [] {
    ParamTable<P> t;
    t.choice(&P::loss,
             param_choice("loss", "cross-entropy", {},
                          "training loss over the target and the sampled negatives"),
             {{"cross-entropy", LossType::CrossEntropy},
              {"bpr-max", LossType::BprMax},
              {"top1-max", LossType::Top1Max},
              {"bpr", LossType::Bpr},
              {"top1", LossType::Top1}});
    t.field(&P::layers,
            param_int_list("layers", "100", 1, 65536, "GRU layer sizes, e.g. 100 or 100,100"));
    t.field(&P::embedding,
            param_int("embedding", "0", -1, 65536,
                      "input embedding size when constrained_embedding is false: 0 = one-hot GRU "
                      "embedding layer, -1 = layers[0] ('layersize')"));
    t.field(&P::constrained_embedding,
            param_bool("constrained_embedding", "true",
                       "use the output weights (Wy) as the input embedding (ignores embedding)"));
    t.field(&P::batch_size,
            param_int("batch_size", "64", 1, 1 << 20, "session-parallel mini-batch size"));
    t.field(&P::dropout_p_embed,
            param_float("dropout_p_embed", "0.0", 0.0, 1.0,
                        "dropout on the input embedding (or on the GRU embedding layer)")
                .open_max());
    t.field(&P::dropout_p_hidden, param_float("dropout_p_hidden", "0.0", 0.0, 1.0,
                                              "dropout on the output of the GRU layers")
                                      .open_max());
    t.field(&P::learning_rate,
            param_float("learning_rate", "0.05", 0.0, 1e6, "Adagrad learning rate")
                .open_min()
                .alias("lr"));
    t.field(&P::momentum,
            param_float("momentum", "0.0", 0.0, 1.0, "momentum on the Adagrad step (0 = none)")
                .open_max());
    t.field(&P::n_sample, param_int("n_sample", "2048", 0, 1 << 24,
                                    "extra negatives shared by the mini-batch (0 = in-batch "
                                    "negatives only); capped at the number of items"));
    t.field(&P::sample_alpha,
            param_float("sample_alpha", "0.5", 0.0, 10.0,
                        "negatives drawn with probability ~ support^sample_alpha"));
    t.field(&P::bpreg, param_float("bpreg", "1.0", 0.0, 1e6, "score regularisation of bpr-max"));
    t.field(&P::logq,
            param_float("logq", "0.0", 0.0, 1e6,
                        "logQ correction of the sampled scores (cross-entropy only; 0 = off)"));
    t.field(&P::elu_param,
            param_float("elu_param", "0.5", 0.0, 1e6,
                        "ranking losses: ELU(elu_param) final activation, 0 = linear"));
    t.field(&P::n_epochs, param_int("epochs", "10", 0, 100000, "training epochs")
                              .alias("n_epochs")
                              .alias("num_epochs"));
    t.field(&P::sample_store_size,
            param_int("sample_store_size", "10000000", 1, int64_t{1} << 34,
                      "negative samples precomputed at once (the official sample_cache_max_size)"));
    t.choice(&P::precision,
             param_choice("precision", "fp32", {},
                          "precision of the large GEMMs (output layer): bf16 = bf16 inputs, "
                          "fp32 accumulation and fp32 weights, where the CPU has AVX512-BF16 "
                          "or AMX (else fp32); auto = bf16 where available"),
             {{"fp32", Precision::Fp32}, {"bf16", Precision::Bf16}, {"auto", Precision::Auto}});
    return t;
  }();
  return table;
}

std::vector<ParamSpec> gru4rec_params() {
  return gru4rec_table().specs();
}

Gru4recParams gru4rec_defaults() {
  return gru4rec_table().defaults();
}

namespace {

/// A preset: the defaults changed by `edit`, stored as the values that differ.
Preset gru4rec_preset(std::string name, std::string desc, void (*edit)(Gru4recParams&)) {
  Gru4recParams p = gru4rec_defaults();
  edit(p);
  return Preset{std::move(name), std::move(desc), gru4rec_table().changes(p)};
}

/// The official settings (spec §11): every preset has a constrained embedding; the
/// cross-entropy ones use logQ 1 and no bpreg/ELU, the BPR-max ones no logQ.
void official(Gru4recParams& p, LossType loss, int64_t layer, int64_t batch, float dpe, float dph,
              float lr, float momentum, double alpha, float bpreg, float elu) {
  p.loss = loss;
  p.layers = {layer};
  p.batch_size = batch;
  p.dropout_p_embed = dpe;
  p.dropout_p_hidden = dph;
  p.learning_rate = lr;
  p.momentum = momentum;
  p.sample_alpha = alpha;
  p.bpreg = bpreg;
  p.elu_param = elu;
  p.logq = loss == LossType::CrossEntropy ? 1.0f : 0.0f;
}
void official_xe(Gru4recParams& p, int64_t layer, int64_t batch, float dpe, float dph, float lr,
                 float momentum, double alpha) {
  official(p, LossType::CrossEntropy, layer, batch, dpe, dph, lr, momentum, alpha, 0.0f, 0.0f);
}
void official_bprmax(Gru4recParams& p, int64_t layer, int64_t batch, float dpe, float dph, float lr,
                     float momentum, double alpha, float bpreg, float elu) {
  official(p, LossType::BprMax, layer, batch, dpe, dph, lr, momentum, alpha, bpreg, elu);
}

}  // namespace

std::vector<Preset> gru4rec_presets() {
  return {
      gru4rec_preset(
          "rsc15", "official rsc15_xe_shared_100 (cross-entropy, 100 units, logq 1)",
          [](Gru4recParams& p) { official_xe(p, 100, 32, 0.0f, 0.4f, 0.2f, 0.2f, 0.5); }),
      gru4rec_preset(
          "yoochoose", "official yoochoose_xe_shared (cross-entropy, 480 units)",
          [](Gru4recParams& p) { official_xe(p, 480, 48, 0.0f, 0.2f, 0.07f, 0.0f, 0.2); }),
      gru4rec_preset(
          "rees46", "official rees46_xe_shared (cross-entropy, 512 units)",
          [](Gru4recParams& p) { official_xe(p, 512, 240, 0.45f, 0.0f, 0.065f, 0.0f, 0.5); }),
      gru4rec_preset("diginetica", "official diginetica_bprmax_shared (bpr-max, 512 units)",
                     [](Gru4recParams& p) {
                       official_bprmax(p, 512, 128, 0.5f, 0.3f, 0.05f, 0.15f, 0.3, 0.9f, 1.0f);
                     }),
      gru4rec_preset("bprmax", "the diginetica bpr-max set of ../shared/REFERENCE.md",
                     [](Gru4recParams& p) {
                       official_bprmax(p, 512, 128, 0.5f, 0.3f, 0.05f, 0.15f, 0.3, 0.9f, 1.0f);
                     }),
      gru4rec_preset("retailrocket", "official retailrocket_bprmax_shared (bpr-max, 224 units)",
                     [](Gru4recParams& p) {
                       official_bprmax(p, 224, 80, 0.5f, 0.05f, 0.05f, 0.4f, 0.4, 1.95f, 0.5f);
                     }),
      gru4rec_preset("coveo", "official coveo_bprmax_shared (bpr-max, 512 units)",
                     [](Gru4recParams& p) {
                       official_bprmax(p, 512, 144, 0.35f, 0.0f, 0.05f, 0.4f, 0.2, 1.85f, 1.0f);
                     }),
  };
}

Gru4recParams parse_gru4rec_config(const Config& c) {
  return gru4rec_table().read(c);
}

Gru4recModel::Gru4recModel(const Config& config) : ModelBase(config) {
  params_ = parse_gru4rec_config(config);
}

namespace {

/// GRU4Rec's part of the epoch loop (train/epoch_loop.hpp): session-parallel mini-batches
/// over the sessions in time order, shared negative samples from the store, one fused
/// train_step per batch. Its checkpoint state: the Adagrad accumulators (acc.T), momentum
/// velocities (vel.T), the dropout stream and the position in the sample store; the hidden
/// state and the batcher restart at every epoch, so they need nothing.
class Gru4recTrainer final : public train::TrainableNet {
 public:
  Gru4recTrainer(Gru4recNet& net, const SequenceSet& train, const std::vector<int32_t>& order,
                 int64_t n_sample, train::SampleStore& store)
      : net_(net), train_(train), order_(order), k_(n_sample), store_(store) {}

  train::EpochResult run_epoch(int64_t, train::EpochProgress& progress) override {
    net_.reset_state();
    train::SessionBatcher batcher(train_, order_, net_.params().batch_size, k_ == 0);
    double loss_sum = 0.0;
    int64_t steps = 0, events = 0;
    while (batcher.next()) {
      const int64_t n = batcher.n();
      if (batcher.changed()) net_.remap_state(n, batcher.src());
      const int32_t* smp = k_ > 0 ? store_.next() : nullptr;
      const double L = net_.train_step(n, batcher.x(), batcher.y(), smp, k_);
      progress.step(L, n);
      loss_sum += L;
      ++steps;
      events += n;
    }
    return {steps > 0 ? loss_sum / static_cast<double>(steps) : 0.0, events};
  }

  bool weights_finite() const override { return net_.all_finite(); }

  void keep_best() override {
    best_.clear();
    for (const auto* t : net_.tensors()) best_.push_back(t->w);
  }

  bool restore_best() override {
    auto ts = net_.tensors();
    for (size_t i = 0; i < ts.size(); ++i) ts[i]->w = std::move(best_[i]);
    best_.clear();
    return true;
  }

  void write_state(nlohmann::json& values, TensorWriter& w, bool with_best) const override {
    const auto rng = net_.dropout_rng();
    values["dropout_rng"] = {rng[0], rng[1], rng[2], rng[3]};
    values["sample_rows"] = store_.rows();
    values["sample_generation"] = store_.generations();
    values["sample_position"] = k_ > 0 ? store_.position() : 0;
    const auto ts = std::as_const(net_).tensors();
    for (size_t i = 0; i < ts.size(); ++i) {
      const Gru4recParam& t = *ts[i];
      w.add<float>("acc." + t.name, std::span<const float>(t.acc), {t.rows, t.cols});
      if (!t.vel.empty())
        w.add<float>("vel." + t.name, std::span<const float>(t.vel), {t.rows, t.cols});
      if (with_best)
        w.add<float>("best." + t.name, std::span<const float>(best_[i]), {t.rows, t.cols});
    }
  }

  void read_state(const StateReader& r, bool with_best) override {
    const bool mom = net_.params().momentum > 0.0f;
    for (Gru4recParam* t : net_.tensors()) {
      const auto w = r.weights().get<float>(t->name, {t->rows, t->cols});
      t->w.assign(w.begin(), w.end());
      const auto a = r.tensors().get<float>("acc." + t->name, {t->rows, t->cols});
      t->acc.assign(a.begin(), a.end());
      if (mom) {
        const auto v = r.tensors().get<float>("vel." + t->name, {t->rows, t->cols});
        t->vel.assign(v.begin(), v.end());
      }
    }
    if (!net_.all_finite()) r.fail("the weights contain NaN or inf");
    const auto rng = r.u64s("dropout_rng", 4);
    net_.set_dropout_rng({rng[0], rng[1], rng[2], rng[3]});
    if (r.integer("sample_rows", 0, INT64_MAX) != store_.rows())
      r.fail("the negative sample store has " + std::to_string(store_.rows()) +
             " rows in this run but " + std::to_string(r.integer("sample_rows", 0, INT64_MAX)) +
             " in the checkpoint");
    store_.restore(r.integer("sample_generation", 0, INT64_MAX),
                   r.integer("sample_position", 0, store_.rows()));
    best_.clear();
    if (with_best)
      for (Gru4recParam* t : net_.tensors()) {
        const auto w = r.tensors().get<float>("best." + t->name, {t->rows, t->cols});
        best_.emplace_back(w.begin(), w.end());
      }
  }

 private:
  Gru4recNet& net_;
  const SequenceSet& train_;
  const std::vector<int32_t>& order_;
  int64_t k_;
  train::SampleStore& store_;
  std::vector<std::vector<float>> best_;  // per tensor, in tensors() order
};

}  // namespace

void Gru4recModel::fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) {
  check_training_data(train, n_items, "gru4rec");
  if (n_items < 2)
    throw InputError("gru4rec: the training data has " + std::to_string(n_items) +
                     " item(s); at least 2 are needed to rank anything");
  Gru4recParams p = params_;
  train::LoopOptions lo;
  lo.model = "gru4rec";
  lo.epochs = p.n_epochs;
  lo.epochs_param = "epochs";
  lo.lr_param = "learning_rate";
  lo.unit = "events";
  train::EpochLoop loop(ctx, lo);  // sets the thread count for everything below
  const auto counts = count_items(train, n_items);

  // Sessions in order of their first event; empty ones (none after remap) are skipped.
  std::vector<int32_t> order;
  for (int32_t s : train::session_order_by_time(train))
    if (train.length(static_cast<size_t>(s)) > 0) order.push_back(s);
  const int64_t pairs = train::count_training_pairs(train);
  if (pairs == 0)
    throw InputError(
        "gru4rec: every training session has a single event: nothing to learn "
        "from (sessions need at least 2 events)");
  loop.options().units_per_epoch = pairs;
  const int64_t S = static_cast<int64_t>(order.size());
  if (p.batch_size > S && ctx.progress)
    std::fprintf(stderr, "gru4rec: batch_size %lld > %lld training sessions; using %lld slots\n",
                 static_cast<long long>(p.batch_size), static_cast<long long>(S),
                 static_cast<long long>(S));
  int64_t K = p.n_sample;
  if (K > n_items) {
    if (ctx.progress)
      std::fprintf(stderr, "gru4rec: n_sample %lld > %d items; using %d samples\n",
                   static_cast<long long>(K), n_items, n_items);
    K = n_items;
  }

  net_.init(p, n_items, ctx.seed);
  n_items_ = n_items;
  const int64_t slots = std::min(p.batch_size, S);
  net_.prepare_training(slots, K, counts, ctx.seed);
  trained_precision_ = precision_name(net_.precision_used());
  if (ctx.progress)
    std::fprintf(stderr, "gru4rec: precision %s (requested %s)\n", trained_precision_.c_str(),
                 precision_name(p.precision));
  train::SampleStore store;
  if (K > 0)
    store = train::SampleStore(train::ItemSampler(counts, p.sample_alpha), K, p.sample_store_size,
                               ctx.seed ^ 0x5A3D1E5ULL);

  stats_ = FitStats{};
  Gru4recTrainer trainer(net_, train, order, K, store);
  const train::LoopHistory& h = loop.run(trainer, *this);
  stats_.epochs_run = h.epochs_run;
  stats_.best_epoch = h.best_epoch;
  stats_.epoch_loss = h.losses;
  stats_.epoch_seconds = h.seconds;
  stats_.epoch_events_per_s = h.rates;
  stats_.valid_score = h.valid_scores;
}

void Gru4recModel::score(std::span<const std::span<const int32_t>> seqs,
                         std::span<const PrefixQuery> queries, float* out) const {
  const int64_t Q = static_cast<int64_t>(queries.size());
  if (Q == 0) return;
  std::vector<float> hq(static_cast<size_t>(Q * params_.layers.back()));
  query_vectors(seqs, queries, hq.data());
  net_.output_scores(Q, hq.data(), out);
}

DotProductHead Gru4recModel::dot_product_head() const {
  DotProductHead h;
  for (const Gru4recParam* t : net_.tensors()) {
    if (t->name == "Wy") h.items = t->w.data();
    if (t->name == "By") h.bias = t->w.data();
  }
  if (h.items == nullptr || n_items_ <= 0) return {};
  h.dim = static_cast<int32_t>(params_.layers.back());
  return h;
}

void Gru4recModel::query_vectors(std::span<const std::span<const int32_t>> seqs,
                                 std::span<const PrefixQuery> queries, float* hq) const {
  const int64_t Q = static_cast<int64_t>(queries.size());
  if (Q == 0) return;
  // Distinct sequences, their longest requested prefix; run them longest first so that
  // the active ones at time t are a prefix of the list.
  std::vector<int64_t> need(seqs.size(), 0);
  for (const PrefixQuery& q : queries) {
    const auto pre = query_prefix(seqs, q);
    for (int32_t it : pre)
      if (it < 0 || it >= n_items_)
        throw InputError("gru4rec: item index " + std::to_string(it) + " outside the catalogue");
    need[static_cast<size_t>(q.seq)] = std::max<int64_t>(need[static_cast<size_t>(q.seq)], q.len);
  }
  std::vector<int32_t> ord;
  for (size_t s = 0; s < seqs.size(); ++s)
    if (need[s] > 0) ord.push_back(static_cast<int32_t>(s));
  std::stable_sort(ord.begin(), ord.end(), [&](int32_t a, int32_t b) {
    return need[static_cast<size_t>(a)] > need[static_cast<size_t>(b)];
  });
  std::vector<int32_t> rank(seqs.size(), -1);
  for (size_t r = 0; r < ord.size(); ++r)
    rank[static_cast<size_t>(ord[r])] = static_cast<int32_t>(r);
  // Queries grouped by (row, length).
  std::vector<int64_t> qo(static_cast<size_t>(Q));
  std::iota(qo.begin(), qo.end(), 0);
  std::sort(qo.begin(), qo.end(), [&](int64_t a, int64_t b) {
    const auto& qa = queries[static_cast<size_t>(a)];
    const auto& qb = queries[static_cast<size_t>(b)];
    return qa.len != qb.len ? qa.len < qb.len : a < b;
  });

  const auto& L = params_.layers;
  const int64_t H = L.back();
  const int64_t nseq = static_cast<int64_t>(ord.size());
  std::vector<std::vector<float>> h(L.size());
  for (size_t l = 0; l < L.size(); ++l) h[l].assign(static_cast<size_t>(nseq * L[l]), 0.0f);
  std::vector<float> scratch;
  std::vector<int32_t> x(static_cast<size_t>(nseq));
  size_t qi = 0;
  int64_t active = nseq;
  const int64_t tmax = need[static_cast<size_t>(ord[0])];
  for (int64_t t = 0; t < tmax; ++t) {
    while (active > 0 && need[static_cast<size_t>(ord[static_cast<size_t>(active - 1)])] <= t)
      --active;
    for (int64_t b = 0; b < active; ++b)
      x[static_cast<size_t>(b)] =
          seqs[static_cast<size_t>(ord[static_cast<size_t>(b)])][static_cast<size_t>(t)];
    const float* top = net_.infer_step(active, x.data(), h, scratch);
    for (; qi < qo.size() && queries[static_cast<size_t>(qo[qi])].len == t + 1; ++qi) {
      const int64_t q = qo[qi];
      const int32_t r = rank[static_cast<size_t>(queries[static_cast<size_t>(q)].seq)];
      std::memcpy(hq + q * H, top + r * H, static_cast<size_t>(H) * 4);
    }
  }
}

Gru4recModel::State Gru4recModel::init_state() const {
  State s;
  for (int64_t l : params_.layers) s.h.emplace_back(static_cast<size_t>(l), 0.0f);
  return s;
}

void Gru4recModel::step(State& s, int32_t item) const {
  if (item < 0 || item >= n_items_)
    throw InputError("gru4rec: item index " + std::to_string(item) + " outside the catalogue");
  if (s.h.size() != params_.layers.size()) throw InputError("gru4rec: state of another model");
  thread_local std::vector<float> scratch;
  net_.infer_step(1, &item, s.h, scratch);
  ++s.length;
}

void Gru4recModel::score_state(const State& s, float* out) const {
  if (s.h.size() != params_.layers.size()) throw InputError("gru4rec: state of another model");
  net_.output_scores(1, s.h.back().data(), out);
}

void Gru4recModel::save(TensorWriter& w) const {
  for (const Gru4recParam* t : net_.tensors())
    w.add<float>(t->name, std::span<const float>(t->w), {t->rows, t->cols});
}

void Gru4recModel::load(const TensorReader& r) {
  const TensorEntry& e = r.entry("Wy");
  if (e.shape.size() != 2 || e.shape[0] < 1 || e.shape[1] != params_.layers.back())
    bad_tensor(r, "Wy", "must be n_items x layers[-1]");
  const int32_t n = static_cast<int32_t>(e.shape[0]);
  net_.allocate(params_, n);
  for (Gru4recParam* t : net_.tensors()) {
    const auto v = r.get<float>(t->name, {t->rows, t->cols});
    t->w.assign(v.begin(), v.end());
  }
  if (!net_.all_finite()) bad_tensor(r, "Wy", "the weights contain NaN or inf");
  n_items_ = n;
}

ModelInfo gru4rec_model_info() {
  return {"gru4rec",
          "GRU4Rec (Hidasi et al.): session-parallel GRU with sampled negatives, "
          "cross-entropy/BPR-max/TOP1-max/BPR/TOP1 losses, faithful to the official code",
          gru4rec_params(),
          [](const Config& c) { return std::make_unique<Gru4recModel>(c); },
          gru4rec_presets(),
          "epochs"};
}

namespace {
/// Gru4recModel::State behind the generic SessionState interface.
struct Gru4recSessionState final : SessionState {
  Gru4recModel::State s;
  std::unique_ptr<SessionState> clone() const override {
    return std::make_unique<Gru4recSessionState>(*this);
  }
  size_t bytes() const override {
    size_t b = sizeof(*this);
    for (const auto& h : s.h) b += h.capacity() * sizeof(float) + sizeof(h);
    return b;
  }
};

const Gru4recSessionState& as_gru_state(const SessionState& st) {
  const auto* g = dynamic_cast<const Gru4recSessionState*>(&st);
  if (!g) throw Error("internal: a session state of another model type was given to gru4rec");
  return *g;
}
}  // namespace

std::unique_ptr<SessionState> Gru4recModel::new_state() const {
  auto st = std::make_unique<Gru4recSessionState>();
  st->s = init_state();
  return st;
}

void Gru4recModel::step(SessionState& state, int32_t item) const {
  step(const_cast<Gru4recSessionState&>(as_gru_state(state)).s, item);
}

void Gru4recModel::score_state(const SessionState& state, float* out) const {
  score_state(as_gru_state(state).s, out);
}

void Gru4recModel::state_query(const SessionState& state, float* out) const {
  const State& s = as_gru_state(state).s;
  if (s.h.size() != params_.layers.size()) throw InputError("gru4rec: state of another model");
  std::copy(s.h.back().begin(), s.h.back().end(), out);
}

namespace {
static_assert(std::endian::native == std::endian::little,
              "the session state encoding is little-endian; big-endian hosts need byte swapping");
constexpr char kStateMagic[4] = {'G', '4', 'R', 'S'};
constexpr uint32_t kStateVersion = 1;

template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
bool take(std::string_view& in, T& v) {
  if (in.size() < sizeof v) return false;
  std::memcpy(&v, in.data(), sizeof v);
  in.remove_prefix(sizeof v);
  return true;
}
}  // namespace

std::string Gru4recModel::encode_state(const SessionState& state) const {
  const State& s = as_gru_state(state).s;
  if (s.h.size() != params_.layers.size()) throw InputError("gru4rec: state of another model");
  std::string out;
  size_t floats = 0;
  for (const auto& h : s.h) floats += h.size();
  out.reserve(16 + 4 * s.h.size() + 8 + 4 * floats);
  out.append(kStateMagic, 4);
  put(out, kStateVersion);
  put(out, static_cast<uint32_t>(s.h.size()));
  for (const auto& h : s.h) put(out, static_cast<uint32_t>(h.size()));
  put(out, static_cast<int64_t>(s.length));
  for (const auto& h : s.h) out.append(reinterpret_cast<const char*>(h.data()), 4 * h.size());
  return out;
}

std::unique_ptr<SessionState> Gru4recModel::decode_state(std::string_view in) const {
  if (in.size() < 4 || std::memcmp(in.data(), kStateMagic, 4) != 0) return nullptr;
  in.remove_prefix(4);
  uint32_t version = 0, layers = 0;
  if (!take(in, version) || version != kStateVersion) return nullptr;
  if (!take(in, layers) || layers != params_.layers.size()) return nullptr;
  for (size_t l = 0; l < layers; ++l) {
    uint32_t n = 0;
    if (!take(in, n) || static_cast<int64_t>(n) != params_.layers[l]) return nullptr;
  }
  auto st = std::make_unique<Gru4recSessionState>();
  int64_t length = 0;
  if (!take(in, length) || length < 0) return nullptr;
  st->s = init_state();
  st->s.length = length;
  for (auto& h : st->s.h) {
    if (in.size() < 4 * h.size()) return nullptr;
    std::memcpy(h.data(), in.data(), 4 * h.size());
    in.remove_prefix(4 * h.size());
    for (float x : h)
      if (!std::isfinite(x)) return nullptr;
  }
  if (!in.empty()) return nullptr;
  return st;
}

}  // namespace seqrec
