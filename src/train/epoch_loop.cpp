#include "train/epoch_loop.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "seqrec/error.hpp"
#include "seqrec/interrupt.hpp"
#include "train/state.hpp"

namespace seqrec::train {

namespace {

std::string fmt_loss(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

/// The loop's fields of a checkpoint have one set of names for every model. Checkpoints
/// written before (GRU4Rec's own loop) used other names for four of them; they still resume.
std::string state_key(const TrainingState& st, const std::string& name) {
  static const std::pair<const char*, const char*> kOld[] = {{"epoch_losses", "epoch_loss"},
                                                             {"epoch_rates", "epoch_events_per_s"},
                                                             {"valid_scores", "valid_score"},
                                                             {"since_best", "bad_epochs"}};
  if (st.values.contains(name)) return name;
  for (const auto& [now, before] : kOld)
    if (name == now && st.values.contains(before)) return before;
  return name;
}

}  // namespace

EpochProgress::EpochProgress(Progress& bar, std::string model, std::string lr_param, int64_t epoch,
                             int64_t steps_per_epoch)
    : bar_(bar),
      model_(std::move(model)),
      lr_param_(std::move(lr_param)),
      epoch_(epoch),
      steps_per_epoch_(steps_per_epoch) {}

void EpochProgress::step(double loss, int64_t units, bool gradient_finite) {
  check_interrupt("training");  // before the update: the weights stay those of a whole step
  ++steps_;
  if (!std::isfinite(loss) || !gradient_finite) {
    const std::string what =
        !std::isfinite(loss)
            ? std::string("training loss became ") + (std::isnan(loss) ? "NaN" : "inf")
            : std::string("gradient of the training loss became NaN/inf");
    const std::string of =
        steps_per_epoch_ > 0 ? " of " + std::to_string(steps_per_epoch_) : std::string();
    throw Error(model_ + ": the " + what + " at epoch " + std::to_string(epoch_) + ", step " +
                std::to_string(steps_) + of + " (try a lower " + lr_param_ +
                "); training stopped, no model or checkpoint written for this epoch");
  }
  loss_sum_ += loss;
  bar_.add(units);
  if ((steps_ & 15) == 0)
    bar_.set_note("loss " + fmt_loss(loss_sum_ / static_cast<double>(steps_)));
}

EpochLoop::EpochLoop(const FitContext& ctx, LoopOptions options)
    : ctx_(ctx), o_(std::move(options)), threads_(ctx.threads, ZeroThreads::AllCores) {}

void EpochLoop::resume(TrainableNet& net) {
  // Everything the model set up before run() is a function of (data, config, seed) and so
  // equals the interrupted run's; what changed during its epochs comes from the state.
  const TrainingState& st = *ctx_.resume;
  const StateReader r(st, o_.model);
  if (st.epoch > o_.epochs)
    throw InputError(st.source + ": the checkpoint has completed " + std::to_string(st.epoch) +
                     " epochs but " + o_.epochs_param + " is " + std::to_string(o_.epochs));
  const double best = r.number("best_score");
  has_best_ = !std::isnan(best);
  net.read_state(r, has_best_);
  h_.losses = r.numbers(state_key(st, "epoch_losses"), st.epoch);
  h_.seconds = r.numbers("epoch_seconds", st.epoch);
  // Checkpoints of SASRec before the loop was shared kept neither rates nor scores.
  if (const std::string k = state_key(st, "epoch_rates"); st.values.contains(k))
    h_.rates = r.numbers(k, st.epoch);
  if (const std::string k = state_key(st, "valid_scores"); st.values.contains(k))
    h_.valid_scores = r.numbers(k);
  h_.epochs_run = static_cast<int>(st.epoch);
  h_.best_epoch = static_cast<int>(r.integer("best_epoch", 0, st.epoch));
  since_best_ = static_cast<int>(r.integer(state_key(st, "since_best"), 0, st.epoch));
  if (has_best_) h_.best_score = best;
  h_.stopped_early = st.stopped_early;
}

void EpochLoop::validate(TrainableNet& net, const Model& model, int64_t epoch) {
  const double v = ctx_.validate(model, static_cast<int>(epoch));
  h_.valid_scores.push_back(v);
  if (!std::isfinite(v)) return;  // NaN: nothing to compare
  if (v > h_.best_score) {
    h_.best_score = v;
    h_.best_epoch = static_cast<int>(epoch);
    net.keep_best();
    has_best_ = true;
    since_best_ = 0;
  } else if (ctx_.patience > 0 && ++since_best_ >= ctx_.patience) {
    if (ctx_.progress) {
      progress_break_line();
      std::fprintf(stderr, "%s: no improvement in %d validations; stopping after epoch %lld\n",
                   o_.model.c_str(), ctx_.patience, static_cast<long long>(epoch));
    }
    h_.stopped_early = true;
  }
}

void EpochLoop::checkpoint(const TrainableNet& net, const Model& model, int64_t epoch) const {
  TrainingState st;
  st.epoch = epoch;
  st.stopped_early = h_.stopped_early;
  st.values = nlohmann::json::object();
  st.values["epoch_losses"] = state_numbers(h_.losses);
  st.values["epoch_seconds"] = state_numbers(h_.seconds);
  st.values["epoch_rates"] = state_numbers(h_.rates);
  st.values["valid_scores"] = state_numbers(h_.valid_scores);
  st.values["best_epoch"] = h_.best_epoch;
  st.values["since_best"] = since_best_;
  st.values["best_score"] = has_best_ ? state_number(h_.best_score) : nlohmann::json(nullptr);
  TensorWriter w;  // copies the arrays; alive while the callback runs
  net.write_state(st.values, w, has_best_);
  st.tensors = w.entries();
  ctx_.checkpoint(model, st);
}

const LoopHistory& EpochLoop::run(TrainableNet& net, const Model& model) {
  h_ = LoopHistory{};
  h_.best_score = -std::numeric_limits<double>::infinity();
  has_best_ = false;
  since_best_ = 0;
  if (ctx_.resume) resume(net);
  for (int64_t epoch = h_.epochs_run + 1; epoch <= o_.epochs && !h_.stopped_early; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    Progress bar(o_.model + " epoch " + std::to_string(epoch) + "/" + std::to_string(o_.epochs),
                 o_.units_per_epoch, o_.unit, ctx_.progress);
    EpochProgress progress(bar, o_.model, o_.lr_param, epoch, o_.steps_per_epoch);
    const EpochResult r = net.run_epoch(epoch, progress);
    if (!net.weights_finite())
      throw Error(o_.model + ": the weights became NaN/inf during epoch " + std::to_string(epoch) +
                  " (after step " + std::to_string(progress.steps()) + "; try a lower " +
                  o_.lr_param + "); training stopped, no model or checkpoint written for it");
    bar.set_note("loss " + fmt_loss(r.mean_loss));
    bar.finish();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    h_.losses.push_back(r.mean_loss);
    h_.seconds.push_back(secs);
    h_.rates.push_back(secs > 0 ? static_cast<double>(r.units) / secs : 0.0);
    h_.epochs_run = static_cast<int>(epoch);
    if (ctx_.validate && (epoch % o_.validate_every == 0 || epoch == o_.epochs))
      validate(net, model, epoch);
    if (ctx_.checkpoint) checkpoint(net, model, epoch);
    if (ctx_.after_epoch && !ctx_.after_epoch(static_cast<int>(epoch), r.mean_loss)) break;
  }
  if (has_best_ && net.restore_best() && ctx_.progress)
    std::fprintf(stderr, "%s: restored the best weights (epoch %d, validation %.4f)\n",
                 o_.model.c_str(), h_.best_epoch, h_.best_score);
  return h_;
}

}  // namespace seqrec::train
