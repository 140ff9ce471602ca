// The epoch loop of train/epoch_loop.hpp, driven with a tiny fake TrainableNet: early
// stopping restores the best weights, a run killed after a checkpoint and resumed equals the
// uninterrupted run, validation every k epochs, and NaN/inf losses, gradients and weights
// stop training with an Error that names the model, the epoch and what to try.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "models/model_base.hpp"
#include "seqrec/error.hpp"
#include "seqrec/interrupt.hpp"
#include "train/epoch_loop.hpp"

using namespace seqrec;

namespace {

/// Two weights and a random stream: every step draws from the stream and moves the weights,
/// so a resume that loses any of them shows.
class FakeNet : public train::TrainableNet {
 public:
  std::vector<float> w{0.0f, 0.0f}, best;
  uint64_t rng = 1;
  int steps_per_epoch = 3;
  /// The loss of step s (0-based) of `epoch`.
  std::function<double(int64_t epoch, int s)> loss = [](int64_t, int) { return 1.0; };
  bool poison_weights = false;  ///< run_epoch leaves a NaN weight behind

  train::EpochResult run_epoch(int64_t epoch, train::EpochProgress& progress) override {
    double sum = 0.0;
    for (int s = 0; s < steps_per_epoch; ++s) {
      rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
      const double l = loss(epoch, s);
      progress.step(l, 10);
      w[0] += static_cast<float>(rng >> 40) * 1e-7f;
      w[1] += 1.0f;
      sum += l;
    }
    if (poison_weights) w[0] = std::numeric_limits<float>::quiet_NaN();
    return {sum / steps_per_epoch, 10 * steps_per_epoch};
  }
  bool weights_finite() const override { return std::isfinite(w[0]) && std::isfinite(w[1]); }
  void keep_best() override { best = w; }
  bool restore_best() override {
    const bool changed = best != w;
    w = best;
    return changed;
  }
  void write_state(nlohmann::json& values, TensorWriter& tw, bool with_best) const override {
    values["rng"] = std::vector<uint64_t>{rng};
    if (with_best) tw.add<float>("best", std::span<const float>(best));
  }
  void read_state(const StateReader& r, bool with_best) override {
    const auto v = r.weights().get<float>("w", {2});
    w.assign(v.begin(), v.end());
    rng = r.u64s("rng", 1)[0];
    if (with_best) {
      const auto b = r.floats("best", 2);
      best.assign(b.begin(), b.end());
    }
  }
};

/// The Model the loop hands to validate and checkpoint: saves the fake's weights.
class FakeModel final : public Model {
 public:
  explicit FakeModel(const FakeNet& net) : net_(net) {}
  std::string type() const override { return "fake"; }
  const Config& config() const override { return config_; }
  int32_t n_items() const override { return 0; }
  void fit(const SequenceSet&, int32_t, const FitContext&) override {}
  void score(std::span<const std::span<const int32_t>>, std::span<const PrefixQuery>,
             float*) const override {}
  void save(TensorWriter& w) const override {
    w.add<float>("w", std::span<const float>(net_.w), {2});
  }
  void load(const TensorReader&) override {}

 private:
  const FakeNet& net_;
  Config config_;
};

/// A TrainingState with its arrays copied (the loop's point into a writer that is gone once
/// the checkpoint callback returns), plus the weights as Model::save wrote them.
struct StoredState {
  TrainingState st;
  std::vector<std::shared_ptr<std::string>> bytes;
};
StoredState store(const Model& m, const TrainingState& st) {
  StoredState s;
  s.st = st;
  auto own = [&](std::vector<TensorEntry>& v) {
    for (TensorEntry& e : v) {
      s.bytes.push_back(std::make_shared<std::string>(static_cast<const char*>(e.data), e.nbytes));
      e.data = s.bytes.back()->data();
    }
  };
  own(s.st.tensors);
  TensorWriter w;
  m.save(w);
  s.st.weights = w.entries();
  own(s.st.weights);
  s.st.source = "memory";
  return s;
}

train::LoopOptions options(int64_t epochs) {
  train::LoopOptions o;
  o.model = "fake";
  o.epochs = epochs;
  o.epochs_param = "epochs";
  o.lr_param = "learning_rate";
  o.units_per_epoch = 30;
  o.steps_per_epoch = 3;
  return o;
}

FitContext quiet() {
  FitContext c;
  c.threads = 1;
  c.progress = false;
  return c;
}

/// Validation scores by epoch (1-based).
std::function<double(const Model&, int)> scores(std::vector<double> s) {
  return [s](const Model&, int epoch) { return s.at(static_cast<size_t>(epoch - 1)); };
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(EpochLoop, RunsEveryEpochWithoutValidation) {
  FakeNet net;
  FakeModel model(net);
  const FitContext ctx = quiet();
  train::EpochLoop loop(ctx, options(3));
  const train::LoopHistory& h = loop.run(net, model);
  EXPECT_EQ(h.epochs_run, 3);
  EXPECT_EQ(h.losses.size(), 3u);
  EXPECT_EQ(h.seconds.size(), 3u);
  EXPECT_EQ(h.best_epoch, 0);
  EXPECT_FALSE(h.stopped_early);
  EXPECT_EQ(net.w[1], 9.0f);  // 3 epochs of 3 steps
}

TEST(EpochLoop, EarlyStoppingRestoresTheBestWeights) {
  FakeNet net;
  FakeModel model(net);
  FitContext ctx = quiet();
  ctx.patience = 2;
  std::vector<float> w_at_2;
  ctx.validate = [&](const Model&, int epoch) {
    if (epoch == 2) w_at_2 = net.w;
    const double s[] = {0.1, 0.5, 0.4, 0.3, 0.9, 0.9};
    return s[epoch - 1];
  };
  train::EpochLoop loop(ctx, options(6));
  const train::LoopHistory& h = loop.run(net, model);
  // Peak at epoch 2; two validations without improvement stop after epoch 4.
  EXPECT_EQ(h.epochs_run, 4);
  EXPECT_TRUE(h.stopped_early);
  EXPECT_EQ(h.best_epoch, 2);
  EXPECT_EQ(h.best_score, 0.5);
  EXPECT_EQ(h.valid_scores, (std::vector<double>{0.1, 0.5, 0.4, 0.3}));
  EXPECT_EQ(net.w, w_at_2);
  EXPECT_EQ(net.w[1], 6.0f);
}

TEST(EpochLoop, ValidatesEveryKEpochsAndAfterTheLastAndIgnoresNaN) {
  FakeNet net;
  FakeModel model(net);
  FitContext ctx = quiet();
  ctx.patience = 1;
  std::vector<int> seen;
  ctx.validate = [&](const Model&, int epoch) {
    seen.push_back(epoch);
    return epoch == 4 ? std::numeric_limits<double>::quiet_NaN() : 0.1 * epoch;
  };
  train::LoopOptions o = options(5);
  o.validate_every = 2;
  train::EpochLoop loop(ctx, o);
  const train::LoopHistory& h = loop.run(net, model);
  EXPECT_EQ(seen, (std::vector<int>{2, 4, 5}));
  EXPECT_FALSE(h.stopped_early);  // the NaN at epoch 4 neither improves nor counts
  EXPECT_EQ(h.best_epoch, 5);
}

TEST(EpochLoop, ResumedRunEqualsTheUninterruptedRun) {
  // Validation peaks at epoch 2, patience 3: the resumed runs carry the best weights, the
  // count since the best and the random stream through the checkpoint.
  for (int64_t kill : {1, 2, 3, 4}) {
    FitContext ctx = quiet();
    ctx.patience = 3;
    ctx.validate = scores({0.1, 0.5, 0.4, 0.3, 0.45, 0.6});
    FakeNet full;
    FakeModel full_model(full);
    train::EpochLoop full_loop(ctx, options(6));
    const train::LoopHistory hf = full_loop.run(full, full_model);

    FakeNet first;
    FakeModel first_model(first);
    StoredState saved;
    struct Killed {};
    FitContext c1 = ctx;
    c1.checkpoint = [&](const Model& m, const TrainingState& st) {
      saved = store(m, st);
      if (st.epoch == kill) throw Killed{};
    };
    train::EpochLoop first_loop(c1, options(6));
    EXPECT_THROW(first_loop.run(first, first_model), Killed);
    ASSERT_EQ(saved.st.epoch, kill);

    FakeNet resumed;
    FakeModel resumed_model(resumed);
    FitContext c2 = ctx;
    c2.resume = &saved.st;
    train::EpochLoop resumed_loop(c2, options(6));
    const train::LoopHistory hr = resumed_loop.run(resumed, resumed_model);
    EXPECT_EQ(resumed.w, full.w) << "kill after " << kill;
    EXPECT_EQ(resumed.rng, full.rng) << "kill after " << kill;
    EXPECT_EQ(hr.epochs_run, hf.epochs_run) << "kill after " << kill;
    EXPECT_EQ(hr.best_epoch, hf.best_epoch) << "kill after " << kill;
    EXPECT_EQ(hr.stopped_early, hf.stopped_early) << "kill after " << kill;
    EXPECT_EQ(hr.losses, hf.losses) << "kill after " << kill;
    EXPECT_EQ(hr.valid_scores, hf.valid_scores) << "kill after " << kill;
  }
}

TEST(EpochLoop, CheckpointFieldsHaveOneSetOfNamesAndOldNamesStillResume) {
  FakeNet net;
  FakeModel model(net);
  FitContext ctx = quiet();
  ctx.validate = scores({0.2, 0.1});
  ctx.patience = 5;
  StoredState saved;
  ctx.checkpoint = [&](const Model& m, const TrainingState& st) { saved = store(m, st); };
  train::EpochLoop loop(ctx, options(2));
  loop.run(net, model);
  const nlohmann::json& values = saved.st.values;
  for (const char* k : {"epoch_losses", "epoch_seconds", "epoch_rates", "valid_scores",
                        "best_epoch", "since_best", "best_score", "rng"})
    EXPECT_TRUE(values.contains(k)) << k << " in " << values.dump();
  EXPECT_EQ(values["since_best"], 1);
  EXPECT_EQ(values["best_epoch"], 1);

  // A checkpoint written under the names GRU4Rec used before the shared loop resumes.
  TrainingState old = saved.st;
  for (const auto& [now, before] :
       std::vector<std::pair<std::string, std::string>>{{"epoch_losses", "epoch_loss"},
                                                        {"epoch_rates", "epoch_events_per_s"},
                                                        {"valid_scores", "valid_score"},
                                                        {"since_best", "bad_epochs"}}) {
    old.values[before] = old.values[now];
    old.values.erase(now);
  }
  FakeNet resumed;
  FakeModel resumed_model(resumed);
  FitContext c2 = quiet();
  c2.validate = scores({0.2, 0.1, 0.3});
  c2.resume = &old;
  train::EpochLoop again(c2, options(3));
  const train::LoopHistory h = again.run(resumed, resumed_model);
  EXPECT_EQ(h.epochs_run, 3);
  EXPECT_EQ(h.losses.size(), 3u);
  EXPECT_EQ(h.valid_scores.size(), 3u);
}

TEST(EpochLoop, ResumeBeyondTheBudgetIsAnInputError) {
  FakeNet net;
  FakeModel model(net);
  FitContext ctx = quiet();
  StoredState saved;
  ctx.checkpoint = [&](const Model& m, const TrainingState& st) { saved = store(m, st); };
  train::EpochLoop loop(ctx, options(3));
  loop.run(net, model);
  FitContext c2 = quiet();
  c2.resume = &saved.st;
  train::EpochLoop shorter(c2, options(2));
  FakeNet again;
  const std::string e = error_of([&] {
    try {
      shorter.run(again, model);
    } catch (const InputError&) {
      throw;
    } catch (...) {
      ADD_FAILURE() << "not an InputError";
      throw;
    }
  });
  EXPECT_NE(e.find("completed 3 epochs but epochs is 2"), std::string::npos) << e;
}

TEST(EpochLoop, NaNLossStopsTrainingWithAClearError) {
  FakeNet net;
  FakeModel model(net);
  net.loss = [](int64_t epoch, int s) {
    return epoch == 2 && s == 1 ? std::numeric_limits<double>::quiet_NaN() : 1.0;
  };
  bool checkpointed_2 = false;
  FitContext ctx = quiet();
  ctx.checkpoint = [&](const Model&, const TrainingState& st) { checkpointed_2 |= st.epoch == 2; };
  train::EpochLoop loop(ctx, options(3));
  const std::string e = error_of([&] { loop.run(net, model); });
  EXPECT_NE(e.find("fake: the training loss became NaN at epoch 2, step 2 of 3"), std::string::npos)
      << e;
  EXPECT_NE(e.find("try a lower learning_rate"), std::string::npos) << e;
  EXPECT_FALSE(checkpointed_2);
  EXPECT_EQ(net.w[1], 4.0f);  // epoch 1 and the first step of epoch 2: the NaN step stopped
}

TEST(EpochLoop, InfiniteLossNonFiniteGradientAndWeightsAreErrors) {
  {
    FakeNet net;
    FakeModel model(net);
    net.loss = [](int64_t, int) { return std::numeric_limits<double>::infinity(); };
    train::EpochLoop loop(quiet(), options(1));
    const std::string e = error_of([&] { loop.run(net, model); });
    EXPECT_NE(e.find("the training loss became inf at epoch 1, step 1"), std::string::npos) << e;
  }
  {
    // A model that checks its gradient reports it through EpochProgress::step.
    struct GradNet : FakeNet {
      train::EpochResult run_epoch(int64_t, train::EpochProgress& p) override {
        p.step(1.0, 1, /*gradient_finite=*/false);
        return {1.0, 1};
      }
    } net;
    FakeModel model(net);
    train::EpochLoop loop(quiet(), options(1));
    const std::string e = error_of([&] { loop.run(net, model); });
    EXPECT_NE(e.find("fake: the gradient of the training loss became NaN/inf at epoch 1, step 1"),
              std::string::npos)
        << e;
  }
  {
    FakeNet net;
    FakeModel model(net);
    net.poison_weights = true;
    train::EpochLoop loop(quiet(), options(2));
    const std::string e = error_of([&] { loop.run(net, model); });
    EXPECT_NE(e.find("fake: the weights became NaN/inf during epoch 1"), std::string::npos) << e;
    EXPECT_NE(e.find("try a lower learning_rate"), std::string::npos) << e;
  }
}

TEST(EpochLoop, AfterEpochHookSeesEveryEpochAndCanEndTraining) {
  FakeNet net;
  FakeModel model(net);
  FitContext ctx = quiet();
  std::vector<int> seen;
  ctx.after_epoch = [&](int epoch, double loss) {
    seen.push_back(epoch);
    EXPECT_TRUE(std::isfinite(loss));
    return epoch < 2;  // stop after the second epoch
  };
  train::EpochLoop loop(ctx, options(5));
  const train::LoopHistory& h = loop.run(net, model);
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  EXPECT_EQ(h.epochs_run, 2);
  EXPECT_FALSE(h.stopped_early);  // not early stopping: a checkpoint of it may be resumed
  EXPECT_EQ(net.w[1], 6.0f);      // 2 epochs of 3 steps
}

TEST(EpochLoop, InterruptStopsBeforeTheNextStep) {
  FakeNet net;
  FakeModel model(net);
  FitContext ctx = quiet();
  ctx.after_epoch = [&](int, double) {
    request_interrupt();  // as the Python binding does on Ctrl-C
    return true;
  };
  train::EpochLoop loop(ctx, options(5));
  EXPECT_THROW(loop.run(net, model), Interrupted);
  EXPECT_TRUE(interrupt_requested());
  clear_interrupt();
  EXPECT_EQ(net.w[1], 3.0f);  // the first epoch only: no step of the second was applied
  EXPECT_NO_THROW(check_interrupt("test"));
}
