// seqrec: the command-line program. Each subcommand is one object that declares its options
// (its constructor) and runs them through the library (run()); main() parses and dispatches.
// Errors thrown inside become a message on stderr and a non-zero exit code.
#include <pthread.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "app/checkpoint.hpp"
#include "app/compare_cli.hpp"
#include "app/demo.hpp"
#include "app/options.hpp"
#include "app/param_flags.hpp"
#include "app/serve_options.hpp"
#include "app/tune.hpp"
#include "app/workflow.hpp"
#include "core/isa.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "io/model_file.hpp"
#include "io/output_file.hpp"
#include "seqrec/ann.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/interrupt.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"
#include "serve/http/server.hpp"

using namespace seqrec;
namespace fs = std::filesystem;

namespace {

using cli::dashed;
using cli::ParamFlags;

struct GlobalOptions {
  int threads = 0;
  bool quiet = false;
  std::string prog = "seqrec";  ///< how to run this binary again, for printed hints
};

/// The exit statuses, one table (docs/cli.md): 130 and other 128+N come from the shell when a
/// signal ends the process.
enum ExitCode : int { kExitOk = 0, kExitUserError = 1, kExitInternal = 2, kExitOutOfMemory = 3 };

CLI::Validator threads_validator(int min);

/// Config from defaults, then an optional config file, then flags (flags win).
Config build_config(const std::vector<ParamSpec>& specs, const std::string& config_file,
                    const ParamFlags& flags) {
  Config c(specs);
  if (!config_file.empty()) c.load_file(config_file);
  auto unknown = flags.apply(c);
  if (!unknown.empty()) throw InputError("--" + dashed(unknown.front()) + " does not apply here");
  return c;
}

void print_json_file(io::OutputFile& out, const nlohmann::json& j) {
  out.write(j.dump(2) + "\n");
  out.commit();
}

/// The files a command reads for its data argument, named for messages: a prepared split
/// folder's files, or the file itself.
std::vector<io::NamedPath> data_inputs(const std::string& data) {
  std::vector<io::NamedPath> v;
  for (const std::string& f : data_input_files(data))
    v.push_back({f, f == data ? "the input data" : "a file of the input split '" + data + "'"});
  return v;
}

std::string fmt_bytes(int64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  return buf;
}

/// What every subcommand object has: its CLI11 subcommand, chosen when parsed.
struct Command {
  CLI::App* cmd = nullptr;
  bool chosen() const { return cmd->parsed(); }
};

// ---- generate ---------------------------------------------------------------------------
struct GenerateCommand : Command {
  std::string out, config_file;
  bool force = false;
  ParamFlags flags;

  explicit GenerateCommand(CLI::App& app) {
    cmd = app.add_subcommand("generate", "write a synthetic session log");
    cmd->add_option("-o,--out", out, "output file")->required();
    cmd->add_option("--config", config_file, "file of name = value lines (flags win)");
    cli::add_force_flag(cmd, force);
    flags.add(cmd, generate_option_specs(), "Generator");
  }

  int run(const GlobalOptions& g) const {
    const Config c = build_config(generate_option_specs(), config_file, flags);
    io::check_output({out, "-o"}, {{config_file, "the --config file"}}, io::FileKind::Text, force);
    Progress p("generate", 0, "events", false);
    EventLog log = generate_sessions(to_generate_options(c));
    const std::string f = c.get_string("out_format");
    write_events(out, log.seqs, log.items, parse_format(f));
    if (!g.quiet)
      std::fprintf(stderr, "wrote %s: %lld events, %zu sessions, %d items (%s format) in %.1f s\n",
                   out.c_str(), static_cast<long long>(log.seqs.n_events()), log.seqs.size(),
                   log.items.size(), f.c_str(), p.elapsed_seconds());
    return 0;
  }
};

// ---- prepare ----------------------------------------------------------------------------
void print_stats_line(const char* name, const nlohmann::json& s) {
  const nlohmann::json len = s.value("length", nlohmann::json::object());
  std::printf(
      "  %-11s %10lld sequences %12lld events %9lld items   length mean %.2f, median "
      "%.0f, max %lld\n",
      name, s.value("sequences", 0LL), s.value("events", 0LL), s.value("items", 0LL),
      len.value("mean", 0.0), len.value("median", 0.0), len.value("max", 0LL));
}

/// One line per preprocessing step that removed something.
void print_steps(const nlohmann::json& stats) {
  for (const auto& st : stats.value("steps", nlohmann::json::array())) {
    std::string line = "  step " + st.value("step", std::string("?")) + ":";
    bool any = false;
    for (auto it = st.begin(); it != st.end(); ++it) {
      if (it.key() == "step" || !it.value().is_number()) continue;
      line += " " + it.key() + "=" + it.value().dump();
      any = true;
    }
    if (any) std::printf("%s\n", line.c_str());
  }
  for (const auto& w : stats.value("warnings", nlohmann::json::array()))
    std::printf("  warning: %s\n", w.is_string() ? w.get<std::string>().c_str() : w.dump().c_str());
}

struct PrepareCommand : Command {
  std::string input, out_dir, config_file;
  bool force = false;
  ParamFlags read_flags, prep_flags;

  explicit PrepareCommand(CLI::App& app) {
    cmd = app.add_subcommand("prepare", "filter a log and split it for evaluation");
    cmd->add_option("input", input, "interaction log")->required();
    cmd->add_option("-o,--out", out_dir, "output folder for the split (new or empty)")->required();
    cli::add_force_flag(cmd, force,
                        "write into a non-empty folder, and write a degenerate split (a test set "
                        "with fewer than 10 predictions or 0.1% of the events) instead of "
                        "refusing");
    cmd->add_option("--config", config_file, "file of name = value lines (flags win)");
    prep_flags.add(cmd, prepare_option_specs(), "Preprocessing");
    read_flags.add(cmd, read_option_specs(), "Input format");
  }

  int run(const GlobalOptions&) const {
    const Config read_cfg = build_config(read_option_specs(), "", read_flags);
    const Config prep_cfg = build_config(prepare_option_specs(), config_file, prep_flags);
    Progress p("prepare", 0, "", false);
    check_split_folder(out_dir, force, input);
    ReadInfo info;
    EventLog log = read_events(input, to_read_options(read_cfg), &info);
    std::printf("read %s: %lld events, %zu sequences, %d items (%.1f s)\n", input.c_str(),
                static_cast<long long>(log.seqs.n_events()), log.seqs.size(), log.items.size(),
                p.elapsed_seconds());
    PrepareOptions po = to_prepare_options(prep_cfg);
    po.force = force;
    PreparedSplit split = prepare_split(log, po, &info);
    for (const auto& d : split.stats["detected"])
      std::fprintf(stderr, "prepare: %s\n", d.get<std::string>().c_str());
    split.stats["options"] = prep_cfg.to_json();
    split.stats["input"] = fs::absolute(input).string();
    write_split(out_dir, split, input);
    std::printf("%s split written to %s (%.1f s):\n", split.protocol.c_str(),
                folder_display(out_dir).c_str(), p.elapsed_seconds());
    print_steps(split.stats);
    std::printf("  catalogue   %d items\n", split.items.size());
    print_stats_line("train_full", sequence_stats(split.train_full));
    print_stats_line("test", sequence_stats(split.test));
    print_stats_line("train_tr", sequence_stats(split.train_tr));
    print_stats_line("valid", sequence_stats(split.valid));
    if (!split.cold_items.empty())
      std::printf("  cold items  %zu of %d items held out of training (cold_items.tsv)\n",
                  split.cold_items.size(), split.items.size());
    return 0;
  }
};

// ---- train ------------------------------------------------------------------------------
struct TrainCommand : Command {
  std::string data, type, out, config_file, preset;
  bool validation = false, force = false;
  uint64_t seed = 42;
  bool monitor = false;
  CheckpointOptions ckpt;
  ParamFlags read_flags, model_flags, feature_flags, stop_flags;

  explicit TrainCommand(CLI::App& app) {
    cmd = app.add_subcommand("train", "train a model and write a model file");
    cmd->add_option("data", data, "a split folder from `seqrec prepare`, or a log file")
        ->required();
    cmd->add_option("-m,--model", type, "model type (see `seqrec models`)")->required();
    cmd->add_option("-o,--out", out, "model file to write")->required();
    cmd->add_option("--preset", preset, "a named parameter set of the model (see `seqrec models`)");
    cmd->add_option("--config", config_file, "model parameters, name = value lines or JSON");
    cmd->add_flag("--validation", validation, "train on train_tr (the validation run)");
    cmd->add_option("--seed", seed, "random seed");
    cmd->add_flag("--monitor", monitor,
                  "evaluate on valid.tsv after every epoch (with --validation; iterative models)");
    stop_flags.add(cmd, early_stopping_option_specs(), "Validation (with --monitor)", "",
                   {.check = true});
    cmd->add_option("--checkpoint", ckpt.path,
                    "write a training checkpoint to this file after every epoch (atomically; "
                    "see docs/cli.md)");
    cmd->add_option("--resume", ckpt.resume,
                    "continue the training saved in this checkpoint (same data, parameters and "
                    "seed; it keeps being updated unless --checkpoint names another file)");
    cli::add_force_flag(cmd, force);
    for (const auto& m : model_registry())
      model_flags.add(cmd, m.params, "Model parameters", "[" + m.type + "] ");
    read_flags.add(cmd, read_option_specs(), "Input format");
    feature_flags.add(cmd, feature_option_specs(), "Item features");
  }

  /// The model's configuration: defaults, preset, config file, then its flags.
  Config configuration(const ModelInfo& info, const GlobalOptions& g) const {
    Config cfg = model_config(info, preset, config_file);
    for (const auto& name : model_flags.apply(cfg)) {
      std::vector<std::string> own;
      for (const auto& p : info.params) own.push_back(dashed(p.name));
      const std::string near = cli::nearest_name(dashed(name), own);
      throw InputError("--" + dashed(name) + " is not a parameter of model '" + type + "'" +
                       (near.empty() ? "" : " (did you mean --" + near + "?)") + " (see `" +
                       g.prog + " models`)");
    }
    return cfg;
  }

  int run(const GlobalOptions& g) const {
    const Config read_cfg = build_config(read_option_specs(), "", read_flags);
    const Config stop_cfg = build_config(early_stopping_option_specs(), "", stop_flags);
    const std::string valid_metric = stop_cfg.get_string("valid_metric");
    const int patience = static_cast<int>(stop_cfg.get_int("patience"));
    const MetricAtK watched = parse_metric_at_k(valid_metric, "--valid-metric");
    if (patience > 0 && !monitor) throw InputError("--patience needs --monitor");
    const ModelInfo& info = find_model(type);
    const Config cfg = configuration(info, g);
    if (fs::exists(out) && fs::is_directory(out))
      throw InputError("--out '" + out + "' is a folder; give a model file name");
    CheckpointOptions ck = ckpt;
    if (!ck.resume.empty() && ck.path.empty()) ck.path = ck.resume;  // keep checkpointing
    std::vector<io::NamedPath> inputs = data_inputs(data);
    inputs.push_back({config_file, "the --config file"});
    const Config feat_cfg = build_config(feature_option_specs(), "", feature_flags);
    inputs.push_back({feat_cfg.get_string("item_features"), "the --item-features file"});
    check_train_paths(out, ck, inputs, force);
    // Opened now: a folder that cannot be written, or a FIFO nobody reads, fails before the
    // training rather than after it.
    io::OutputFile model_out(out);
    if (!ck.path.empty()) io::OutputFile probe(ck.path);  // the checkpoint's folder, likewise
    TrainData td = load_train_data(data, validation ? SplitPart::Valid : SplitPart::Test,
                                   to_read_options(read_cfg));
    std::fprintf(stderr, "training %s on %s: %zu sequences, %lld events, %d items\n", type.c_str(),
                 td.source.c_str(), td.train.size(), static_cast<long long>(td.train.n_events()),
                 td.items.size());
    FitContext ctx;
    ctx.threads = g.threads;
    ctx.seed = seed;
    ctx.progress = !g.quiet;
    // Item features: read, aligned to the catalogue, and copied into the model by a model
    // that uses them (dssm, feature-aware sasrec), so its model file is self-contained.
    std::optional<ItemFeatures> features;
    if (const std::string& fpath = feat_cfg.get_string("item_features"); !fpath.empty()) {
      if (!model_uses_item_features(type))
        throw InputError("--item-features: model '" + type +
                         "' does not use item features (dssm and sasrec do)");
      features.emplace(
          load_item_features(fpath, to_feature_read_options(feat_cfg), td.items, g.quiet));
      ctx.item_features = &features->rows;
    }
    // Validation after every epoch (iterative models): on valid.tsv of the split.
    nlohmann::json history = nlohmann::json::array();
    std::optional<EpochValidation> valid;
    if (monitor) {
      if (!validation)
        throw InputError(
            "--monitor needs --validation (it evaluates on valid.tsv while training "
            "on train_tr.tsv; the test set is never used for model selection)");
      valid.emplace(data, td, watched, to_read_options(read_cfg), g.threads);
      valid->attach(ctx, &history);
      ctx.patience = patience;
    }
    // What besides the configuration decides the result: a resumed run must match it.
    ck.run = {{"seed", seed},
              {"validation", validation},
              {"monitor", monitor},
              {"valid_metric", monitor ? valid_metric : ""},
              {"patience", patience}};
    if (monitor) ck.run["valid_data"] = data_fingerprint(td.items, valid->data().test);
    if (features) ck.run["item_features"] = features->table.describe();
    ck.threads = g.threads;
    ck.progress = !g.quiet;
    ModelBundle b = train_model_checkpointed(type, cfg, td, ctx, ck, &history);
    if (features) {
      b.meta["item_features"] = features->describe();
      // What serving a new item by its features needs (POST /v1/items): the model file alone.
      b.meta["item_feature_encoder"] = FeatureEncoder(features->table).to_json();
    }
    model_file::write(model_out, *b.model, b.items, b.item_counts, b.meta, nullptr, {});
    std::printf("trained %s in %.2f s (peak RSS %s); model written to %s\n", type.c_str(),
                b.meta.value("train_seconds", 0.0),
                fmt_bytes(b.meta.value("train_peak_rss_bytes", 0LL)).c_str(), out.c_str());
    return 0;
  }
};

// ---- tune -------------------------------------------------------------------------------
/// Ctrl-C (SIGINT) and SIGTERM during a tune: the running trial stops at its next batch,
/// the finished ones stay in the trials log and the report is written for them.
extern "C" void tune_signal_handler(int) {
  request_interrupt();
}

struct TuneCommand : Command {
  std::string data, type, space, out, preset, config_file;
  ParamFlags tune_flags, stop_flags, read_flags;

  explicit TuneCommand(CLI::App& app) {
    cmd = app.add_subcommand(
        "tune",
        "search a model's parameters on the validation split (TPE sampler, pruning of "
        "hopeless trials) and write the best configuration (docs/tune.md)");
    cmd->add_option("data", data, "a split folder from `seqrec prepare` (with valid.tsv)")
        ->required();
    cmd->add_option("-m,--model", type, "model type (see `seqrec models`)")->required();
    cmd->add_option("-o,--out", out,
                    "folder for trials.jsonl, best.json, tune_result.json and report.md; the "
                    "same command again continues a tune stopped or killed there")
        ->required();
    cmd->add_option("--space", space,
                    "search space file (JSON, docs/tune.md) [default: the model's, "
                    "tune/spaces/MODEL.json]");
    cmd->add_option("--preset", preset, "the parameters every trial starts from (a preset)");
    cmd->add_option("--config", config_file,
                    "a parameter file every trial starts from (after --preset)");
    tune_flags.add(cmd, tune_option_specs(), "Tuning", "", {.check = true});
    stop_flags.add(cmd, early_stopping_option_specs("", 3), "Validation", "", {.check = true});
    read_flags.add(cmd, read_option_specs(), "Input format");
  }

  int run(const GlobalOptions& g) const {
    TuneOptions o;
    o.data = data;
    o.model = type;
    o.space_file = space;
    o.out_dir = out;
    o.preset = preset;
    o.config_file = config_file;
    o.tune_cfg = build_config(tune_option_specs(), "", tune_flags);
    o.stop_cfg = build_config(early_stopping_option_specs("", 3), "", stop_flags);
    o.read_cfg = build_config(read_option_specs(), "", read_flags);
    o.threads = g.threads;
    o.quiet = g.quiet;
    o.command_line = own_command_line();
    clear_interrupt();
    // Ctrl-C and SIGTERM are taken by a thread of their own (sigwait), blocked in this
    // thread and in the training threads it starts later, so that no signal handler ever
    // runs inside the numeric code; the handler stays as a fallback for a thread that
    // existed before.
    std::signal(SIGINT, tune_signal_handler);
    std::signal(SIGTERM, tune_signal_handler);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::thread([stop_signals] {
      int sig = 0;
      while (sigwait(&stop_signals, &sig) == 0) request_interrupt();
    }).detach();
    try {
      run_tune(o);
    } catch (const Interrupted& e) {
      std::fprintf(stderr, "seqrec: %s\n", e.what());
      return 130;
    }
    return 0;
  }
};

// ---- eval -------------------------------------------------------------------------------
struct EvalCommand : Command {
  std::string model_path, data, json_out, config_file;
  bool validation = false, force = false;
  ParamFlags eval_flags, read_flags, ann_flags;

  explicit EvalCommand(CLI::App& app) {
    cmd = app.add_subcommand("eval", "evaluate a model file on test data");
    cmd->add_option("-m,--model", model_path, "model file")->required();
    cmd->add_option("data", data, "a split folder (uses test.tsv) or a log file")->required();
    cmd->add_option("--json", json_out, "also write the metrics as JSON to this file");
    cmd->add_flag("--validation", validation, "evaluate on valid.tsv instead of test.tsv");
    cmd->add_option("--config", config_file, "file of name = value lines (flags win)");
    cli::add_force_flag(cmd, force);
    eval_flags.add(cmd, eval_option_specs(), "Evaluation");
    read_flags.add(cmd, read_option_specs(), "Input format");
    // --retrieval ann: also measure what the serving ANN index costs (docs/cli.md#eval).
    ann_flags.add(cmd, ann_option_specs(), "Retrieval (GRU4Rec/SASRec/DSSM)");
  }

  int run(const GlobalOptions& g) const {
    const Config read_cfg = build_config(read_option_specs(), "", read_flags);
    const AnnOptions ann = to_ann_options(build_config(ann_option_specs(), "", ann_flags));
    const Config ecfg = build_config(eval_option_specs(), config_file, eval_flags);
    std::optional<io::OutputFile> json_file;
    if (!json_out.empty()) {
      std::vector<io::NamedPath> inputs = data_inputs(data);
      inputs.push_back({model_path, "the model (-m)"});
      inputs.push_back({config_file, "the --config file"});
      io::check_output({json_out, "--json"}, inputs, io::FileKind::Json, force);
      json_file.emplace(json_out);  // before the evaluation: fail fast
    }
    ModelBundle b = load_model(model_path);
    TestData td = load_test_data(data, validation ? SplitPart::Valid : SplitPart::Test, b.items,
                                 to_read_options(read_cfg));
    if (td.dropped_events > 0)
      std::fprintf(stderr, "note: %lld test events have items the model does not know; skipped\n",
                   static_cast<long long>(td.dropped_events));
    EvalOptions eo = to_eval_options(ecfg, td.protocol);
    eo.threads = g.threads;
    eo.progress = !g.quiet;
    EvalResult r = evaluate_bundle(b, td, eo);
    std::printf("%s", format_results_table({{b.model->type(), r}}, eo.cutoffs).c_str());
    std::printf("%s", format_groups_table({{b.model->type(), r}}, eo.cutoffs).c_str());
    std::optional<AnnEvalResult> ar;
    if (ann.enabled) {
      ar = evaluate_ann(b, td.test, eo.protocol, eo.exclude_seen, ann, 20, !g.quiet);
      const AnnEvalResult& a = *ar;
      if (!a.notice.empty()) std::fprintf(stderr, "note: --retrieval ann: %s\n", a.notice.c_str());
      std::printf(
          "\nretrieval (top-20 lists, %lld predictions): ANN top-20 recall vs exact %.4f\n"
          "  %-6s Recall@20 %.4f  MRR@20 %.4f  (%.2f s)\n"
          "  %-6s Recall@20 %.4f  MRR@20 %.4f  (%.2f s; index %s %.1f s, %.1f MiB)\n",
          static_cast<long long>(a.predictions), a.list_recall, "exact", a.recall_exact,
          a.mrr_exact, a.exact_seconds, "ann", a.recall_ann, a.mrr_ann, a.ann_seconds,
          a.used_index ? "built in" : "not used,", a.build_seconds,
          static_cast<double>(a.index_bytes) / 1048576.0);
    }
    if (!json_out.empty()) {
      nlohmann::json j = r.to_json();
      if (ar) {
        j["retrieval"] = ar->to_json();
        j["retrieval"]["options"] = {{"m", ann.m},
                                     {"ef_construction", ann.ef_construction},
                                     {"ef_search", ann.ef_search},
                                     {"candidates", ann.candidates},
                                     {"min_items", ann.min_items}};
      }
      j["model"] = {{"file", model_path},
                    {"type", b.model->type()},
                    {"config", b.model->config().to_json()},
                    {"n_items", b.items.size()}};
      j["test"] = {{"source", td.source}, {"stats", sequence_stats(td.test)}};
      j["train"] = b.meta;
      print_json_file(*json_file, j);
      std::fprintf(stderr, "metrics written to %s\n", json_out.c_str());
    }
    return 0;
  }
};

// ---- recommend --------------------------------------------------------------------------
std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string t;
  while (in >> t) out.push_back(t);
  return out;
}

/// `seqrec recommend` answers through the library's Recommender (its top-K, its exclusion
/// rule), one list of items at a time, scored by Model::score like `seqrec eval`.
struct RecommendCommand : Command {
  std::string model_path, session, input = "-", exclude = "auto";
  int k = 20;
  bool json = false;

  explicit RecommendCommand(CLI::App& app) {
    cmd = app.add_subcommand("recommend", "top-K next items for a session");
    cmd->add_option("-m,--model", model_path, "model file")->required();
    cmd->add_option("-s,--session", session,
                    "the session's item ids in order, space separated (otherwise one session "
                    "per line from --input)");
    cmd->add_option("-i,--input", input, "file of sessions, one per line ('-' = stdin)");
    cmd->add_option("-k", k, "number of items to recommend");
    cmd->add_option("--exclude-seen", exclude,
                    "drop the session's own items: auto (yes for models trained on a "
                    "sequential split), true/all/except-target (yes: a session has no target "
                    "here), false/none (no); the values of eval's --exclude-seen")
        ->check(CLI::IsMember({"auto", "true", "false", "none", "except-target", "all"}));
    cmd->add_flag("--json", json, "one JSON object per session");
  }

  /// The answer for one session as JSON: unknown_items, then items or error.
  static nlohmann::json answer(const Recommender& rec, const std::vector<std::string>& tokens,
                               const RecommendOptions& o) {
    ItemsRequest req;
    req.items = tokens;
    req.options = o;
    const Recommendation r = rec.recommend(req);
    nlohmann::json res;
    res["unknown_items"] = r.unknown_items;
    if (r.session_length == 0) {
      res["error"] = "no known items in the session";
      return res;
    }
    nlohmann::json items = nlohmann::json::array();
    for (const ScoredItem& it : r.items) items.push_back({{"item", it.item}, {"score", it.score}});
    res["items"] = items;
    return res;
  }

  void emit(const std::string& label, const nlohmann::json& r) const {
    for (const auto& u : r["unknown_items"])
      std::fprintf(stderr, "%sunknown item '%s' skipped\n", label.c_str(),
                   u.get<std::string>().c_str());
    if (json) {
      std::printf("%s\n", r.dump().c_str());
      return;
    }
    if (r.contains("error")) {
      std::fprintf(stderr, "%s%s\n", label.c_str(), r["error"].get<std::string>().c_str());
      return;
    }
    int rank = 0;
    for (const auto& it : r["items"])
      std::printf("%s%d\t%s\t%.6g\n", label.c_str(), ++rank, it["item"].get<std::string>().c_str(),
                  it["score"].get<double>());
  }

  int run(const GlobalOptions&) const {
    if (k <= 0) throw InputError("-k must be at least 1, got " + std::to_string(k));
    ModelBundle b = load_model(model_path);
    RecommenderOptions ro;
    ro.max_k = ro.default_k = std::max<int32_t>(1, std::min<int32_t>(k, b.items.size()));
    ro.dot_product_head = false;    // Model::score, as eval: the same scores bit for bit
    ro.threads_per_request = 0;     // the threads of --threads
    ro.sweep_interval_seconds = 0;  // no sessions here
    const Recommender rec(std::move(b), ro);
    RecommendOptions o;
    o.k = ro.max_k;
    if (const int mode = parse_exclude_seen(exclude); mode != kExcludeSeenDefault)
      o.exclude_seen = mode != kExcludeSeenNone;  // unset: the Recommender's rule
    if (!session.empty()) {
      if (!json) std::printf("rank\titem\tscore\n");
      const nlohmann::json r = answer(rec, split_ws(session), o);
      emit("", r);
      return r.contains("error") ? 1 : 0;
    }
    std::istream* in = &std::cin;
    std::ifstream f;
    if (input != "-") {
      f.open(input);
      if (!f) throw IoError("cannot open '" + input + "'");
      in = &f;
    }
    if (!json) std::printf("line\trank\titem\tscore\n");
    std::string line;
    int64_t lineno = 0;
    while (std::getline(*in, line)) {
      ++lineno;
      auto toks = split_ws(line);
      if (toks.empty()) continue;
      nlohmann::json r = answer(rec, toks, o);
      if (json) r["line"] = lineno;
      emit(json ? "" : std::to_string(lineno) + "\t", r);
    }
    return 0;
  }
};

// ---- info, models -----------------------------------------------------------------------
/// Flattens nested metadata objects into dotted keys ("train_stats.length.mean").
void print_flat(const nlohmann::json& j, const std::string& prefix) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it.value().is_object() && !it.value().empty())
      print_flat(it.value(), key);
    else
      std::printf("  %-36s %s\n", key.c_str(), it.value().dump().c_str());
  }
}

int run_info(const std::string& model_path, bool json, bool list_items, const GlobalOptions& g) {
  const model_file::Contents c = model_file::read(model_path);
  const nlohmann::json& h = c.header;
  const ModelBundle& b = c.bundle;
  if (list_items) {
    for (int32_t i = 0; i < b.items.size(); ++i) std::printf("%s\n", b.items.token(i).c_str());
    return 0;
  }
  auto text = [&](const char* key) { return h.contains(key) ? h[key].dump() : std::string("?"); };
  nlohmann::json tensors = nlohmann::json::array();
  int64_t tensor_bytes = 0;
  for (const nlohmann::json& t : h["tensors"]) {
    tensors.push_back({{"name", t["name"]},
                       {"dtype", t["dtype"]},
                       {"shape", t["shape"]},
                       {"bytes", t["nbytes"]}});
    tensor_bytes += t["nbytes"].get<int64_t>();
  }
  nlohmann::json first_items = nlohmann::json::array();
  for (int32_t i = 0; i < std::min<int32_t>(b.items.size(), 10); ++i)
    first_items.push_back(b.items.token(i));
  nlohmann::json j = {{"file", model_path},
                      {"file_bytes", fs::file_size(model_path)},
                      {"format_version", h.value("format_version", 0)},
                      {"seqrec_version", h.value("seqrec_version", std::string())},
                      {"created", h.value("created", std::string())},
                      {"type", b.model->type()},
                      {"checkpoint", h.contains("checkpoint")},
                      {"n_items", b.items.size()},
                      {"first_items", first_items},
                      {"config", b.model->config().to_json()},
                      {"meta", b.meta},
                      {"tensors", tensors}};
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model      %s%s\nfile       %s (%s)\nformat     %s, written by seqrec %s on %s\n",
              b.model->type().c_str(), h.contains("checkpoint") ? " (training checkpoint)" : "",
              model_path.c_str(),
              fmt_bytes(static_cast<int64_t>(fs::file_size(model_path))).c_str(),
              text("format_version").c_str(), h.value("seqrec_version", std::string("?")).c_str(),
              h.value("created", std::string("?")).c_str());
  std::string first;
  for (const auto& id : first_items) first += (first.empty() ? "" : " ") + id.get<std::string>();
  std::printf("items      %d (first: %s%s; all: %s info --items %s)\n", b.items.size(),
              first.c_str(), b.items.size() > 10 ? " ..." : "", g.prog.c_str(), model_path.c_str());
  std::printf("config\n");
  print_flat(j["config"], "");
  std::printf("meta\n");
  print_flat(b.meta, "");
  std::printf("tensors    %zu, %s\n", tensors.size(), fmt_bytes(tensor_bytes).c_str());
  for (const auto& t : tensors)
    std::printf("  %-36s %-4s %s\n", t["name"].get<std::string>().c_str(),
                t["dtype"].get<std::string>().c_str(), t["shape"].dump().c_str());
  return 0;
}

int run_models() {
  for (const auto& m : model_registry()) {
    std::printf("%s — %s\n", m.type.c_str(), m.description.c_str());
    for (const auto& p : m.params) {
      const std::string range = range_text(p);
      std::string also;
      for (const auto& a : p.aliases) also += (also.empty() ? "; also --" : ", --") + dashed(a);
      std::printf("  --%-22s %s [default: %s%s%s]\n", dashed(p.name).c_str(), p.help.c_str(),
                  p.default_value.c_str(), range.empty() ? "" : ("; " + range).c_str(),
                  also.c_str());
    }
    for (const auto& p : m.presets) {
      std::string vals;
      for (const auto& [k, v] : p.values) vals += " " + k + "=" + v;
      if (vals.empty()) vals = " (the defaults)";
      std::printf("  preset %-15s %s:%s\n", p.name.c_str(), p.description.c_str(), vals.c_str());
    }
  }
  return 0;
}

struct InfoCommand : Command {
  std::string model_path;
  bool json = false, list_items = false;

  explicit InfoCommand(CLI::App& app) {
    cmd = app.add_subcommand("info", "print a model file's metadata");
    cmd->add_option("model", model_path, "model file")->required();
    cmd->add_flag("--json", json, "as JSON");
    cmd->add_flag("--items", list_items,
                  "print the item vocabulary (the original ids, one per line, in model order)");
  }

  int run(const GlobalOptions& g) const { return run_info(model_path, json, list_items, g); }
};

struct ModelsCommand : Command {
  explicit ModelsCommand(CLI::App& app) {
    cmd = app.add_subcommand("models", "list model types and their parameters");
  }
  int run(const GlobalOptions&) const { return run_models(); }
};

// ---- demo -------------------------------------------------------------------------------
struct DemoCommand : Command {
  std::string out_dir = "seqrec-demo", models = "all";
  ParamFlags flags;

  explicit DemoCommand(CLI::App& app) {
    cmd = app.add_subcommand(
        "demo", "the main job: generate data, train every model, print the comparison");
    cmd->add_option("-o,--out", out_dir, "output folder");
    cmd->add_option("--models", models, "comma-separated model types, or all");
    flags.add(cmd, generate_option_specs(), "Generator");
  }

  int run(const GlobalOptions& g) const {
    DemoOptions o;
    o.generator = build_config(generate_option_specs(), "", flags);
    o.out_dir = out_dir;
    o.models = models;
    o.threads = g.threads;
    o.quiet = g.quiet;
    o.prog = g.prog;
    return run_demo(o);
  }
};

// ---- serve ------------------------------------------------------------------------------
/// The HTTP server: flags from one table (serve_option_specs: the HTTP layer's and the
/// recommender's), checked while parsing -> ServeOptions -> src/serve.
struct ServeCommand : Command {
  std::string model_path;
  ParamFlags flags;

  explicit ServeCommand(CLI::App& app) {
    cmd = app.add_subcommand("serve",
                             "serve recommendations over HTTP/JSON with live "
                             "session state (see docs/http-api.md)");
    cmd->add_option("model", model_path, "model file")->required();
    const cli::FlagStyle style{/*check=*/true, /*bool_switch=*/true};
    flags.add(cmd, http_option_specs(), "HTTP", "", style);
    flags.add(cmd, recommender_option_specs(), "Sessions and scoring", "", style);
  }

  int run(const GlobalOptions& g) const {
    serve::http::ServeOptions o =
        to_serve_options(build_config(serve_option_specs(), "", flags), model_path);
    o.quiet = g.quiet;
    return serve::http::serve(o);
  }
};

// ---- main: process setup and command-line errors -------------------------------------
// libgomp's threads spin for up to 300,000 iterations at every barrier before they sleep. On
// a machine whose cores are shared with other busy processes that turns into a disaster: a
// spinning thread holds the core its descheduled partner needs, and every barrier waits for a
// scheduler time slice. GRU4Rec's rsc15 preset on rsc15-100k with 2 threads ran at 1,100
// events/s instead of 56,000 next to two other busy processes. With a spin count of 10,000
// the quiet machine loses nothing (59,300 vs 56,300 events/s) and the busy one runs 5x
// faster (docs/performance.md). libgomp reads the setting once, when it is loaded, before
// main() runs, so the only way to choose it for the user is to start again with it set: when
// neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY is set, seqrec sets GOMP_SPINCOUNT=10000 and
// re-executes itself (once; if exec fails it just goes on). Either variable set by the user
// wins.
void reexec_with_bounded_spinning(char** argv) {
  if (std::getenv("GOMP_SPINCOUNT") != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  // Exec the binary's real path, not /proc/self/exe, so that the process keeps its name
  // ("seqrec", not "exe") in ps, top and kill scripts.
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = '\0';
  if (::setenv("GOMP_SPINCOUNT", "10000", 0) != 0) return;
  ::execv(self, argv);
  // exec failed (no /proc, ...): run with libgomp's defaults.
}

/// How to run this binary again in a printed hint: `seqrec` when that name on PATH is this
/// binary (or it was started through PATH), else the path it was started as
/// (`./build/seqrec`), which works from the same folder.
std::string invocation_name(const char* argv0) {
  const std::string self = argv0 != nullptr && *argv0 != '\0' ? argv0 : "seqrec";
  if (self.find('/') == std::string::npos) return self;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (dir.empty()) continue;
      std::error_code ec;
      if (fs::equivalent(fs::path(dir) / "seqrec", self, ec) && !ec) return "seqrec";
    }
  }
  return self.find(' ') == std::string::npos ? self : "'" + self + "'";
}

/// The spellings of every option of `app` ("--num-epochs", "-m"), and of the global options
/// above it, which are accepted after a subcommand too.
std::vector<std::string> option_names(const CLI::App* app) {
  std::vector<std::string> names;
  for (; app != nullptr; app = app->get_parent())
    for (const CLI::Option* o : app->get_options()) {
      for (const auto& n : o->get_lnames()) names.push_back("--" + n);
      for (const auto& n : o->get_snames()) names.push_back("-" + n);
    }
  return names;
}

/// The flag a user should be told about: for an old spelling (a hidden alias flag, whose
/// description is "= --NAME", see ParamFlags) the parameter's own name.
std::string preferred_flag(const CLI::App* app, const std::string& flag) {
  for (; app != nullptr; app = app->get_parent())
    for (const CLI::Option* o : app->get_options())
      for (const auto& n : o->get_lnames())
        if ("--" + n == flag) {
          const std::string& d = o->get_description();
          return d.rfind("= --", 0) == 0 ? d.substr(2) : flag;
        }
  return flag;
}

/// A command-line error from CLI11 as a `seqrec: error:` message with the nearest option or
/// subcommand name for a misspelt one; returns the exit status (kExitUserError, or 0 for
/// --help and --version, which CLI11 also reports as "errors").
int report_parse_error(const CLI::App& app, const CLI::ParseError& e, const std::string& prog) {
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
  const auto subs = app.get_subcommands();
  const CLI::App* sub = subs.empty() ? nullptr : subs.front();
  const std::string where = prog + (sub != nullptr ? " " + sub->get_name() : std::string());
  std::string msg = e.what();
  const std::vector<std::string> extra = app.remaining(true);
  std::string unknown_option, unknown_word;
  for (const auto& t : extra) {
    if (t.size() > 1 && t[0] == '-' && unknown_option.empty())
      unknown_option = t.substr(0, t.find('='));
    else if (unknown_word.empty())
      unknown_word = t;
  }
  if (sub == nullptr && !unknown_word.empty()) {
    std::vector<std::string> commands;
    for (const CLI::App* c : app.get_subcommands([](const CLI::App*) { return true; }))
      commands.push_back(c->get_name());
    const std::string near = cli::nearest_name(unknown_word, commands);
    msg = "unknown command '" + unknown_word + "'" +
          (near.empty() ? "" : " (did you mean " + near + "?)");
  } else if (!unknown_option.empty()) {
    std::string near = cli::nearest_name(unknown_option, option_names(sub ? sub : &app));
    if (!near.empty()) near = preferred_flag(sub ? sub : &app, near);
    msg = "unknown option " + unknown_option + " for `" + where + "`" +
          (near.empty() ? "" : " (did you mean " + near + "?)");
  } else if (!unknown_word.empty() && dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    msg = "unexpected argument '" + unknown_word + "' for `" + where + "`";
  } else if (sub == nullptr && dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
    msg = "give a command, e.g. `" + prog + " demo`";
  }
  std::fprintf(stderr, "seqrec: error: %s\nRun `%s --help` for the options.\n", msg.c_str(),
               where.c_str());
  return kExitUserError;
}

/// --threads: 0 (every core) or a count; anything else names the flag and the rule.
CLI::Validator threads_validator(int min) {
  return CLI::Validator(
      [min](std::string& s) -> std::string {
        size_t used = 0;
        long v = -1;
        try {
          v = std::stol(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != s.size() || used == 0 || v < min || v > 4096)
          return "expects " +
                 std::string(min == 0 ? "0 (every core) or a number of threads from 1"
                                      : "a number of threads from " + std::to_string(min)) +
                 " to 4096, got '" + s + "'";
        return std::string();
      },
      min == 0 ? "0..4096" : std::to_string(min) + "..4096");
}

/// Runs the chosen command; library errors become a message and an exit status.
int run_reporting_errors(const std::function<int()>& body) {
  try {
    return body();
  } catch (const seqrec::Error& e) {
    std::fprintf(stderr, "seqrec: error: %s\n", e.what());
    return kExitUserError;
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "seqrec: error: %s\n", e.what());
    return kExitUserError;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "seqrec: error: out of memory\n");
    return kExitOutOfMemory;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seqrec: internal error: %s\n", e.what());
    return kExitInternal;
  }
}

/// The options of the program itself (accepted after the subcommand too).
void add_global_options(CLI::App& app, GlobalOptions& g) {
  app.require_subcommand(1);
  // Global options (--threads, -q, --version) are accepted after the subcommand too: what a
  // subcommand does not know falls through to here. (serve has a --threads of its own.)
  app.fallthrough();
  app.set_version_flag(
      "--version", [] { return std::string("seqrec ") + SEQREC_VERSION + "\n" + isa::describe(); });
  app.add_option("--threads", g.threads, "threads to use (0 = all cores)")
      ->check(threads_validator(0));
  app.add_flag("-q,--quiet", g.quiet, "no progress output");
}

}  // namespace

int main(int argc, char** argv) {
  reexec_with_bounded_spinning(argv);
  try {
    isa::level();  // SEQREC_ISA checked (and oneDNN capped) before anything else runs
  } catch (const seqrec::Error& e) {
    std::fprintf(stderr, "seqrec: error: %s\n", e.what());
    return kExitUserError;
  }
  GlobalOptions g;
  g.prog = invocation_name(argc > 0 ? argv[0] : nullptr);
  CLI::App app{
      "seqrec: session-based and sequential recommendation (GRU4Rec, SASRec, "
      "baselines).\nRun `" +
      g.prog + " demo` for a tour on built-in synthetic data."};
  add_global_options(app, g);
  GenerateCommand generate(app);
  PrepareCommand prepare(app);
  TrainCommand train(app);
  EvalCommand eval(app);
  RecommendCommand recommend(app);
  InfoCommand info(app);
  ModelsCommand models(app);
  DemoCommand demo(app);
  CompareCommand compare(app);  // its options live in src/app/compare_cli.cpp
  TuneCommand tune(app);
  ServeCommand serve(app);

  // Line-buffered stdout keeps results and stderr progress in order when both are piped.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, e, g.prog);
  }
  return run_reporting_errors([&]() -> int {
    set_threads(g.threads);
    if (generate.chosen()) return generate.run(g);
    if (prepare.chosen()) return prepare.run(g);
    if (train.chosen()) return train.run(g);
    if (eval.chosen()) return eval.run(g);
    if (recommend.chosen()) return recommend.run(g);
    if (info.chosen()) return info.run(g);
    if (models.chosen()) return models.run(g);
    if (serve.chosen()) return serve.run(g);
    if (compare.chosen()) return compare.run(g.threads, g.quiet);
    if (tune.chosen()) return tune.run(g);
    if (demo.chosen()) return demo.run(g);
    return kExitOk;
  });
}
