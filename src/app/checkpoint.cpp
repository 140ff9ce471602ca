#include "app/checkpoint.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "core/progress.hpp"
#include "io/model_file.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

namespace fs = std::filesystem;

namespace {

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  const fs::path ca = fs::weakly_canonical(a, ec);
  if (ec) return a == b;
  const fs::path cb = fs::weakly_canonical(b, ec);
  if (ec) return a == b;
  return ca == cb;
}

/// The parameter that only sets how long to train (a resumed run may raise it): the type's
/// declared epochs parameter, under its one spelling (old spellings are aliases).
bool is_epoch_budget(const std::string& type, const std::string& name) {
  const std::string& ep = find_model(type).epochs_param;
  return !ep.empty() && name == ep;
}

int64_t epoch_budget(const std::string& type, const Config& c) {
  const std::string& ep = find_model(type).epochs_param;
  return ep.empty() ? 0 : c.get_int(ep);
}

std::string shown(const nlohmann::json& v) {
  return v.is_null() ? std::string("(none)") : v.dump();
}

}  // namespace

void check_train_paths(const std::string& out, const CheckpointOptions& opt,
                       const std::vector<io::NamedPath>& inputs, bool force) {
  // Two outputs under one name: caught by name, as neither may exist yet.
  if (!opt.path.empty() && same_file(out, opt.path))
    throw InputError("--checkpoint and --out name the same file '" + out +
                     "': checkpoints would overwrite the model (give them different names)");
  if (!opt.resume.empty() && same_file(out, opt.resume))
    throw InputError("--resume and --out name the same file '" + out +
                     "': the model would overwrite the checkpoint (give --out another name)");
  if (!opt.resume.empty() && model_file_kind(opt.resume) == "model")
    throw InputError("--resume " + opt.resume +
                     ": not a training checkpoint but a final model file (written by `seqrec "
                     "train -o`); resume from the file given to --checkpoint");
  // The one rule of every writer (io::check_output). The resumed checkpoint is an input of
  // the model file, but not of --checkpoint: continuing it is the point.
  std::vector<io::NamedPath> model_inputs = inputs;
  if (!opt.resume.empty()) model_inputs.push_back({opt.resume, "the --resume checkpoint"});
  io::check_output({out, "--out"}, model_inputs, io::FileKind::Model, force);
  if (!opt.path.empty()) {
    struct stat st {};
    if (::stat(opt.path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      throw InputError("--checkpoint '" + opt.path +
                       "' is not a regular file; checkpoints are files that --resume reads back");
    io::check_output({opt.path, "--checkpoint"}, inputs, io::FileKind::Checkpoint, force);
  }
}

nlohmann::json data_fingerprint(const Vocab& items, const SequenceSet& seqs) {
  namespace mf = model_file;
  uint64_t hi = mf::kFnvOffset;
  for (const std::string& t : items.tokens()) {
    hi = mf::fnv1a64(t.data(), t.size(), hi);
    hi = mf::fnv1a64("\n", 1, hi);  // separator: ("ab","c") differs from ("a","bc")
  }
  uint64_t hs = mf::fnv1a64(seqs.offsets.data(), seqs.offsets.size() * sizeof(int64_t));
  hs = mf::fnv1a64(seqs.items.data(), seqs.items.size() * sizeof(int32_t), hs);
  const uint64_t ht = mf::fnv1a64(seqs.times.data(), seqs.times.size() * sizeof(double));
  return {{"n_items", items.size()}, {"n_sequences", seqs.size()},  {"n_events", seqs.n_events()},
          {"items_hash", hex64(hi)}, {"sequences_hash", hex64(hs)}, {"times_hash", hex64(ht)}};
}

void check_resume(const Checkpoint& ck, const std::string& type, const Config& config,
                  const nlohmann::json& data, const nlohmann::json& run) {
  const std::string& path = ck.state.source;
  auto fail = [&](const std::string& what) { throw InputError("--resume " + path + ": " + what); };
  const std::string ck_type = ck.bundle.model->type();
  if (ck_type != type)
    fail("model type differs: the checkpoint trains '" + ck_type + "', this run '" + type + "'");
  const bool single_pass = ck.info.value("kind", "") == "final";
  const nlohmann::json a = ck.bundle.model->config().to_json(), b = config.to_json();
  for (const auto& [k, v] : b.items()) {
    const nlohmann::json old = a.contains(k) ? a[k] : nlohmann::json();
    if (old == v || (is_epoch_budget(type, k) && !single_pass)) continue;
    fail("parameter '" + k + "' differs: the checkpoint has " + shown(old) + ", this run " +
         shown(v) + " (resume with the checkpoint's configuration; only " +
         (single_pass ? std::string("nothing") : "the epoch budget") + " may change)");
  }
  for (const auto& [k, v] : a.items())
    if (!b.contains(k)) fail("parameter '" + k + "' of the checkpoint is unknown to this run");
  if (!single_pass && ck.state.epoch > epoch_budget(type, config))
    fail("the checkpoint has completed " + std::to_string(ck.state.epoch) +
         " epochs, more than this run's budget of " + std::to_string(epoch_budget(type, config)));
  const auto d = ck.info.find("data");
  if (d == ck.info.end() || !d->is_object()) fail("checkpoint field 'data' is missing");
  // The counts that differ, or else the hashes that do (they only tell that something
  // changed).
  std::vector<std::string> keys = {"n_items", "n_sequences", "n_events"};
  for (const auto& [k, v] : data.items())
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  std::string diffs;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string& k = keys[i];
    if (i == 3 && !diffs.empty()) break;  // the counts already tell
    if (!data.contains(k)) continue;
    const nlohmann::json old = d->contains(k) ? (*d)[k] : nlohmann::json();
    if (old != data[k])
      diffs += std::string(diffs.empty() ? "" : "; ") + "data field '" + k + "': checkpoint " +
               shown(old) + ", this run " + shown(data[k]);
  }
  if (!diffs.empty()) fail("the training data differ from the checkpoint's (" + diffs + ")");
  const auto r = ck.info.find("run");
  if (r == ck.info.end() || !r->is_object()) fail("checkpoint field 'run' is missing");
  for (const auto& [k, v] : run.items()) {
    const nlohmann::json old = r->contains(k) ? (*r)[k] : nlohmann::json();
    if (old != v)
      fail("setting '" + k + "' differs: the checkpoint has " + shown(old) + ", this run " +
           shown(v));
  }
}

ModelBundle train_model_checkpointed(const std::string& type, const Config& config,
                                     const TrainData& data, FitContext ctx,
                                     const CheckpointOptions& opt, nlohmann::json* history) {
  if (opt.path.empty() && opt.resume.empty()) {
    ModelBundle b = train_model(type, config, data, ctx);
    if (history && !history->empty()) b.meta["validation_history"] = *history;
    return b;
  }
  const nlohmann::json fp = data_fingerprint(data.items, data.train);
  std::optional<Checkpoint> ck;
  double previous_seconds = 0;
  bool resume_single_pass = false;
  if (!opt.resume.empty()) {
    ck = load_checkpoint(opt.resume);
    check_resume(*ck, type, config, fp, opt.run);
    resume_single_pass = ck->info.value("kind", "") == "final";
    const auto el = ck->info.find("elapsed_seconds");
    if (el != ck->info.end() && el->is_number()) previous_seconds = el->get<double>();
    const int ck_threads = ck->info.value("threads", 0);
    if (ck_threads != opt.threads)
      std::fprintf(stderr,
                   "note: the checkpoint was written with --threads %d, this run uses %d: the "
                   "result equals an uninterrupted run bit for bit only with the same count\n",
                   ck_threads, opt.threads);
    if (history) {
      const auto h = ck->info.find("validation_history");
      *history = h != ck->info.end() && h->is_array() ? *h : nlohmann::json::array();
    }
    if (opt.progress)
      std::fprintf(stderr, "resuming from %s: %lld epoch(s) done%s\n", opt.resume.c_str(),
                   static_cast<long long>(ck->state.epoch),
                   ck->state.stopped_early ? ", stopped early" : "");
  }

  if (!ck && !opt.path.empty()) {
    const nlohmann::json h = model_file::peek_header(opt.path);
    if (h.is_object() && h.contains("checkpoint"))
      std::fprintf(stderr,
                   "note: %s holds a checkpoint (epoch %s) that this fresh run will overwrite; "
                   "to continue it instead, add --resume %s\n",
                   opt.path.c_str(),
                   h["checkpoint"].value("epoch", nlohmann::json()).dump().c_str(),
                   opt.path.c_str());
  }
  const std::vector<int64_t> counts = item_counts(data.train, data.items.size());
  nlohmann::json meta = {{"train_source", data.source},
                         {"protocol", data.protocol},
                         {"train_stats", sequence_stats(data.train)}};
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return previous_seconds +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto info = [&](const char* kind) {
    return nlohmann::json{{"kind", kind},
                          {"epochs", epoch_budget(type, config)},
                          {"elapsed_seconds", elapsed()},
                          {"data", fp},
                          {"run", opt.run},
                          {"threads", opt.threads},
                          {"validation_history",
                           history && history->is_array() ? *history : nlohmann::json::array()}};
  };
  bool wrote = false;
  if (!opt.path.empty()) {
    ctx.checkpoint = [&](const Model& m, const TrainingState& st) {
      const auto w0 = std::chrono::steady_clock::now();
      nlohmann::json cm = meta;
      cm["checkpoint_epoch"] = st.epoch;
      save_checkpoint(opt.path, m, data.items, counts, cm, st, info("epoch"));
      wrote = true;
      if (ctx.progress) {
        progress_break_line();  // a bar spanning the epochs may be showing
        std::error_code ec;
        const auto size = fs::file_size(opt.path, ec);
        std::fprintf(stderr, "checkpoint after epoch %lld written to %s (%.1f MiB, %.2f s)\n",
                     static_cast<long long>(st.epoch), opt.path.c_str(),
                     ec ? 0.0 : static_cast<double>(size) / 1048576.0,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count());
      }
    };
  }
  ModelBundle b;
  if (ck && resume_single_pass) {
    b.model = std::move(ck->bundle.model);  // trained in one pass: nothing left to do
  } else {
    ctx.resume = ck ? &ck->state : nullptr;
    b.model = create_model(type, config);
    b.model->fit(data.train, data.items.size(), ctx);
  }
  b.items = data.items;
  b.item_counts = counts;
  b.meta = meta;
  b.meta["train_seconds"] = elapsed();
  b.meta["train_peak_rss_bytes"] = peak_rss_bytes();
  if (const std::string prec = b.model->training_precision(); !prec.empty())
    b.meta["precision"] = prec;
  if (ck) b.meta["resumed_from"] = {{"checkpoint", opt.resume}, {"epoch", ck->state.epoch}};
  if (history && !history->empty()) b.meta["validation_history"] = *history;
  // A single-pass model never calls back: its checkpoint is the trained model, so that a
  // resumed run skips training. A resumed run with no epoch left keeps its checkpoint.
  if (!opt.path.empty() && !wrote && !(ck && !resume_single_pass)) {
    TrainingState st;
    nlohmann::json cm = meta;
    cm["checkpoint_epoch"] = 0;
    save_checkpoint(opt.path, *b.model, data.items, counts, cm, st, info("final"));
    if (ctx.progress)
      std::fprintf(stderr, "checkpoint (single pass, the trained model) written to %s\n",
                   opt.path.c_str());
  }
  return b;
}

}  // namespace seqrec
