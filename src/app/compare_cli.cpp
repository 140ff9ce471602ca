#include "app/compare_cli.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/compare.hpp"
#include "app/options.hpp"
#include "app/param_flags.hpp"
#include "report/report.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

namespace fs = std::filesystem;

namespace {

/// The specs of a table without the named ones (compare sets those itself).
std::vector<ParamSpec> without(std::vector<ParamSpec> specs, const std::string& name) {
  std::erase_if(specs, [&](const ParamSpec& s) { return s.name == name; });
  return specs;
}

/// The evaluation table with K = 5, 10, 20 by default (its "protocol" is set by compare).
std::vector<ParamSpec> compare_eval_specs() {
  std::vector<ParamSpec> specs = eval_option_specs();
  for (auto& s : specs)
    if (s.name == "cutoffs") s.default_value = "5,10,20";
  return specs;
}

}  // namespace

std::string own_command_line() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::string cur;
  for (char c : all) {
    if (c == '\0') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) args.push_back(cur);
  if (!args.empty()) args[0] = "seqrec";
  std::string s;
  for (const auto& a : args) {
    const bool plain = !a.empty() && a.find_first_of(" \t\"'$\\|;&<>()*?") == std::string::npos;
    s += (s.empty() ? "" : " ") + (plain ? a : "'" + a + "'");
  }
  return s;
}

struct CompareCommand::State {
  CLI::App* sub = nullptr;
  CompareOptions opt;
  bool no_curves = false;
  bool report_only = false;
  cli::ParamFlags read_flags, prep_flags, eval_flags, stop_flags, tune_flags, feature_flags;
};

namespace {

/// compare's early stopping: the headline metric, patience 3.
std::vector<ParamSpec> compare_stop_specs() {
  return early_stopping_option_specs("", 3);
}

/// The tuning table without what compare sets itself (--tune, --tune-time, --epochs, the seed).
std::vector<ParamSpec> compare_tune_specs() {
  std::vector<ParamSpec> specs = tune_option_specs();
  for (const char* n : {"trials", "time_budget", "epochs", "seed"}) specs = without(specs, n);
  return specs;
}

}  // namespace

CompareCommand::CompareCommand(CLI::App& app) : s_(std::make_unique<State>()) {
  auto* c = app.add_subcommand(
      "compare",
      "train several models on one data set and write a report (Markdown, HTML, SVG plots, "
      "JSON) comparing them under one protocol");
  s_->sub = c;
  CompareOptions& o = s_->opt;
  c->add_option("data", o.data,
                "a log file, a folder from `seqrec prepare`, or a folder of split files "
                "(*train_full*, *test*, optional *train_tr* and *train_valid*)");
  c->add_option("-o,--out", o.out_dir, "folder for the report")->required();
  c->add_option("--test", o.test_file,
                "with DATA a training file: its test file (an existing split)");
  c->add_option("--work", o.work_dir,
                "folder for the prepared split, model files, configs and logs [default: "
                "OUT/work]");
  c->add_option("--protocol", o.protocol,
                "session (every next event of test sessions) or sequential (leave-one-out "
                "per user); auto: the split's; for a log file the rule of `seqrec prepare "
                "--protocol auto` (sequential without timestamps or when 10% or more of the "
                "sequences span more than a day); session for given split files")
      ->check(CLI::IsMember({"auto", "session", "sequential"}))
      ->capture_default_str();
  c->add_option("--models", o.models,
                "comma-separated model types, or LABEL=TYPE to compare one type with several "
                "settings [default: pop,sr,vsknn,gru4rec (session); pop,sr,sasrec,gru4rec "
                "(sequential)]")
      ->delimiter(',');
  c->add_option("--seeds", o.seeds, "train every model with seeds 1..N")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  c->add_option("--epochs", o.epochs,
                "epochs of every model that trains in epochs (its `epochs` parameter) "
                "[default: each model's own]")
      ->check(CLI::Range(1, 1000000));
  c->add_option("--preset", o.presets,
                "MODEL=PRESET: a named parameter set (see `seqrec models`), or MODEL=none "
                "[default: gru4rec=rsc15; sasrec=ml1m (sequential) or amazon (session)]")
      ->delimiter(',');
  c->add_option("--config", o.configs,
                "MODEL=FILE: model parameters as name = value lines or JSON (after the "
                "preset); repeatable");
  c->add_option("--set", o.sets,
                "MODEL.PARAM=VALUE: one model parameter (applied last); "
                "repeatable, e.g. --set sasrec.loss=ce");
  c->add_option("--metric", o.metric,
                "headline metric for the plots and the learning curves [default: recall@20 "
                "(session), ndcg@10 (sequential)]");
  c->add_flag("--no-curves", s_->no_curves,
              "skip the validation runs that draw the learning curves (with --patience 0 "
              "only: early stopping needs them)");
  c->add_option("--tune", o.tune_trials,
                "tune every model that has parameters with N trials of `seqrec tune` (its "
                "default space, on the validation pair) before comparing it")
      ->check(CLI::Range(1, 1000000));
  c->add_option("--tune-time", o.tune_seconds,
                "with or instead of --tune: a wall-time budget in seconds for each model's "
                "tuning (the same CPU time for every model)")
      ->check(CLI::Range(1.0, 1e9));
  s_->stop_flags.add(c, compare_stop_specs(), "Early stopping", "", {.check = true});
  s_->tune_flags.add(c, compare_tune_specs(), "Tuning (--tune)", "", {.check = true});
  cli::add_force_flag(
      c, o.force,
      "write into an existing, non-empty OUT that holds no compare with these "
      "arguments (without it that is refused; the same compare run again continues "
      "where it stopped), and compare on a degenerate test set (fewer than 10 "
      "predictions or 0.1% of the events; without it that is refused before anything "
      "trains)");
  c->add_flag("--report-only", s_->report_only,
              "train nothing: write report.md, report.html and the plots again from "
              "OUT/results.json (e.g. after upgrading seqrec)");
  s_->eval_flags.add(c, without(compare_eval_specs(), "protocol"), "Evaluation");
  s_->prep_flags.add(c, without(prepare_option_specs(), "protocol"),
                     "Preprocessing (for a log file)");
  s_->read_flags.add(c, read_option_specs(), "Input format");
  s_->feature_flags.add(c, feature_option_specs(), "Item features");
  c->add_option("--features-for", o.feature_models,
                "labels of the models that train with --item-features [default: every model "
                "that uses item features: dssm, sasrec]")
      ->delimiter(',');
}

CompareCommand::~CompareCommand() = default;

bool CompareCommand::chosen() const {
  return s_->sub->parsed();
}

int CompareCommand::run(int threads, bool quiet) {
  CompareOptions o = s_->opt;
  if (s_->report_only) {
    const std::string path = (fs::path(o.out_dir) / "results.json").string();
    std::ifstream f(path);
    if (!f) throw InputError("--report-only: cannot read '" + path + "'");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path, 0, std::string("invalid JSON: ") + e.what());
    }
    try {
      write_compare_report(j, o.out_dir);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path, 0, std::string("not a results.json of seqrec compare: ") + e.what());
    }
    if (!quiet) std::fprintf(stderr, "compare: report written again from %s\n", path.c_str());
    return 0;
  }
  if (o.data.empty()) throw InputError("compare: give the data (a log file or a split folder)");
  o.threads = threads;
  o.quiet = quiet;
  o.curves = !s_->no_curves;
  o.read_cfg = Config(read_option_specs());
  o.prepare_cfg = Config(prepare_option_specs());
  o.eval_cfg = Config(compare_eval_specs());
  o.stop_cfg = Config(compare_stop_specs());
  o.tune_cfg = Config(tune_option_specs());
  o.feature_cfg = Config(feature_option_specs());
  Config tune_flags_cfg(compare_tune_specs());
  const std::pair<cli::ParamFlags*, Config*> tables[] = {
      {&s_->read_flags, &o.read_cfg},     {&s_->prep_flags, &o.prepare_cfg},
      {&s_->eval_flags, &o.eval_cfg},     {&s_->stop_flags, &o.stop_cfg},
      {&s_->tune_flags, &tune_flags_cfg}, {&s_->feature_flags, &o.feature_cfg}};
  for (const auto& [flags, cfg] : tables)
    for (const auto& name : flags->apply(*cfg))
      throw InputError("--" + cli::dashed(name) + " does not apply here");
  for (const auto& sp : compare_tune_specs())
    o.tune_cfg.set(sp.name, tune_flags_cfg.raw(sp.name), "--" + cli::dashed(sp.name));
  std::error_code ec;
  o.seqrec_binary = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec)
    throw Error("compare: cannot find the seqrec executable (/proc/self/exe): " + ec.message());
  o.command_line = own_command_line();
  run_compare(o);
  return 0;
}

}  // namespace seqrec
