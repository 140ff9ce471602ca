#include "app/tune.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "app/options.hpp"
#include "io/output_file.hpp"
#include "report/svg.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/interrupt.hpp"
#include "seqrec/model.hpp"
#include "tune/default_spaces.hpp"
#include "tune/pruner.hpp"
#include "tune/tpe.hpp"

namespace seqrec {

namespace fs = std::filesystem;
using json = nlohmann::json;
using tune::TrialRecord;

tune::SearchSpace default_space(const std::string& model) {
  const ModelInfo& info = find_model(model);
  for (const auto& [type, text] : tune::default_space_texts())
    if (type == info.type) {
      json doc;
      try {
        doc = json::parse(text);
      } catch (const json::exception& e) {
        throw Error("the built-in space of " + type + " is not JSON: " + e.what());
      }
      return tune::parse_space(doc, info.type, info.params, "tune/spaces/" + type + ".json");
    }
  throw InputError("model " + info.type + " has no default search space; give one with --space");
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) return nullptr;
  try {
    return json::parse(f);
  } catch (const json::exception&) {
    return nullptr;
  }
}

/// The score of a curve at `epoch`: the best value up to it (what early stopping keeps).
double best_up_to(const std::vector<std::pair<int, double>>& curve, int epoch) {
  double b = -std::numeric_limits<double>::infinity();
  for (const auto& [e, v] : curve)
    if (e <= epoch && std::isfinite(v)) b = std::max(b, v);
  return b;
}

std::string param_list(const json& params) {
  std::string s;
  for (auto it = params.begin(); it != params.end(); ++it)
    s += (s.empty() ? "" : ", ") + it.key() + "=" +
         (it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
  return s;
}

/// The starting configuration as a point of the space: each searched parameter's value in
/// `base`, snapped to its dimension (a value that is not one of a categorical dimension's
/// choices, or not a number for a range, is drawn at random instead).
std::vector<double> base_point(const tune::SearchSpace& space, const Config& base,
                               const tune::TpeSampler& sampler) {
  std::vector<double> x = sampler.random_point(0);
  for (size_t d = 0; d < space.dims.size(); ++d) {
    const tune::Dimension& dim = space.dims[d];
    const std::string& raw = base.raw(dim.name);
    if (dim.kind == tune::DimKind::Categorical) {
      for (size_t i = 0; i < dim.choices.size(); ++i)
        if (dim.choices[i] == raw) x[d] = static_cast<double>(i);
      continue;
    }
    if (raw.empty() || raw.find(',') != std::string::npos) continue;
    try {
      x[d] = tune::snap(dim, std::stod(raw));
    } catch (const std::exception&) {
      // not a number: the random draw stays
    }
  }
  return x;
}

/// Mean of the values of the trials with each choice / in each of up to 5 equal-count bins.
void effect_plots(const std::vector<TrialRecord>& trials, const tune::SearchSpace& space,
                  const std::string& metric,
                  std::vector<std::pair<std::string, std::string>>& out) {
  for (size_t di = 0; di < space.dims.size(); ++di) {
    const tune::Dimension& d = space.dims[di];
    std::vector<std::pair<double, double>> pts;  // (coordinate, value)
    for (const auto& t : trials)
      if (t.has_value() && di < t.x.size()) pts.emplace_back(t.x[di], t.value);
    if (pts.size() < 2) continue;
    const std::string file = "effect_" + d.name + ".svg";
    const std::string caption = "mean validation " + metric +
                                " of the trials (pruned ones at "
                                "the epoch they stopped), " +
                                std::to_string(pts.size()) + " trials";
    if (d.kind == tune::DimKind::Categorical) {
      svg::BarChart c;
      c.title = d.name;
      c.y.label = metric;
      svg::Series s{"mean " + metric, svg::palette(0), {}, {}, {}, {}};
      for (size_t k = 0; k < d.n_choices(); ++k) {
        double sum = 0;
        int n = 0;
        for (const auto& [x, v] : pts)
          if (static_cast<size_t>(x) == k) sum += v, ++n;
        c.groups.push_back(d.choices[k]);
        c.group_notes.push_back(std::to_string(n) + " trials");
        s.y.push_back(n ? sum / n : std::nan(""));
      }
      c.series.push_back(s);
      out.emplace_back(file, svg::bar_chart(c, caption));
    } else {
      std::sort(pts.begin(), pts.end());
      const size_t bins = std::min<size_t>(5, pts.size());
      svg::LineChart c;
      c.title = d.name;
      c.x.label = d.name + (d.log ? " (log)" : "");
      c.x.log = d.log;
      c.x.include_zero = false;
      c.y.label = metric;
      c.y.include_zero = false;
      svg::Series mean{"mean per bin", svg::palette(0), {}, {}, {}, {}};
      svg::Series best{"best per bin", svg::palette(1), {}, {}, {}, {}};
      for (size_t b = 0; b < bins; ++b) {
        const size_t lo = b * pts.size() / bins, hi = (b + 1) * pts.size() / bins;
        double sx = 0, sy = 0, my = -1e300;
        for (size_t i = lo; i < hi; ++i)
          sx += pts[i].first, sy += pts[i].second, my = std::max(my, pts[i].second);
        const double n = static_cast<double>(hi - lo);
        mean.x.push_back(sx / n);
        mean.y.push_back(sy / n);
        best.x.push_back(sx / n);
        best.y.push_back(my);
      }
      c.series = {mean, best};
      out.emplace_back(file, svg::line_charts({c}, caption, 1, 480));
    }
  }
}

std::string md_escape(std::string s) {
  std::string o;
  for (char c : s) {
    if (c == '|')
      o += "\\|";
    else
      o += c;
  }
  return o;
}

void write_report(const TuneOptions& opt, const tune::SearchSpace& space, const TuneResult& r,
                  const json& summary) {
  std::vector<std::pair<std::string, std::string>> plots;
  const auto& trials = r.trials;
  {  // best so far
    svg::LineChart c;
    c.title = "best validation " + r.metric + " so far";
    c.x.label = "trial";
    c.x.include_zero = false;
    c.y.label = r.metric;
    c.y.include_zero = false;
    svg::Series best{"best so far", svg::palette(0), {}, {}, {}, {}};
    svg::Series each{"trial", svg::palette(1), {}, {}, {}, {}};
    double b = -std::numeric_limits<double>::infinity();
    for (const auto& t : trials) {
      if (t.has_value()) b = std::max(b, t.value);
      best.x.push_back(t.number);
      best.y.push_back(std::isfinite(b) ? b : std::nan(""));
      each.x.push_back(t.number);
      each.y.push_back(t.has_value() ? t.value : std::nan(""));
    }
    c.series = {best, each};
    if (!trials.empty()) plots.emplace_back("best_so_far.svg", svg::line_charts({c}, "", 1, 600));
  }
  effect_plots(trials, space, r.metric, plots);
  {  // validation curves of the trials
    svg::LineChart c;
    c.title = "validation curves";
    c.x.label = "epoch";
    c.y.label = r.metric;
    c.y.include_zero = false;
    for (const auto& t : trials) {
      if (t.curve.size() < 2) continue;
      svg::Series s{"trial " + std::to_string(t.number) + (t.pruned() ? " (pruned)" : ""),
                    svg::palette(static_cast<size_t>(t.number)),
                    {},
                    {},
                    {},
                    {}};
      for (const auto& [e, v] : t.curve) s.x.push_back(e), s.y.push_back(v);
      c.series.push_back(s);
    }
    if (!c.series.empty() && c.series.size() <= 40)
      plots.emplace_back("curves.svg", svg::line_charts({c}, "", 1, 600));
  }
  std::string md = "# seqrec tune: " + opt.model + " on " +
                   fs::path(opt.data).lexically_normal().filename().string() + "\n\n";
  if (!opt.command_line.empty()) md += "```\n" + opt.command_line + "\n```\n\n";
  md += std::to_string(trials.size()) + " trials (" + std::to_string(summary["pruned"].get<int>()) +
        " pruned, " + std::to_string(summary["failed"].get<int>()) +
        " failed), validation metric " + r.metric +
        " on the split's validation pair (train_tr -> "
        "valid; the test set is never used), " +
        fmt("%.0f", summary["seconds"].get<double>()) +
        " s of trials in all. Space: " + space.source + ". Sampler: TPE (seed " +
        std::to_string(summary["seed"].get<int64_t>()) + ", " +
        std::to_string(summary["n_startup"].get<int64_t>()) + " random startup trials)" +
        (summary["prune"].get<bool>() ? "; pruning: rungs at epochs " + summary["rungs"].dump() +
                                            ", eta " + summary["eta"].dump()
                                      : "; no pruning") +
        ".\n\n";
  if (r.best >= 0) {
    const TrialRecord& b = trials[static_cast<size_t>(r.best)];
    md += "## Best configuration\n\nTrial " + std::to_string(b.number) + ": validation " +
          r.metric + " = " + fmt("%.4f", b.value) +
          (b.best_epoch > 0 ? " at epoch " + std::to_string(b.best_epoch) : std::string()) +
          ". Written to `best.json` (every parameter of " + opt.model +
          "; its epoch count is the best epoch, the number to train the full training data "
          "for):\n\n```json\n" +
          r.best_params.dump(2) + "\n```\n\nUse it with `seqrec train " + "DATA -m " + opt.model +
          " --config best.json` or `seqrec compare DATA --config " + opt.model + "=best.json`.\n\n";
  }
  md += "## Trials\n\n| # | state | " + r.metric +
        " | best epoch | epochs | seconds | parameters |\n"
        "|---:|:---|---:|---:|---:|---:|:---|\n";
  for (const auto& t : trials)
    md += "| " + std::to_string(t.number) + " | " + t.state + " | " +
          (t.has_value() ? fmt("%.4f", t.value) : std::string("–")) + " | " +
          std::to_string(t.best_epoch) + " | " + std::to_string(t.epochs) + " | " +
          fmt("%.1f", t.seconds) + " | " +
          md_escape(param_list(t.params) + (t.error.empty() ? "" : " (error: " + t.error + ")")) +
          " |\n";
  md += "\n## Plots\n\n";
  for (const auto& [file, svg] : plots) {
    md += "![" + file + "](" + file + ")\n\n";
    io::write_file((fs::path(opt.out_dir) / file).string(), svg);
  }
  io::write_file((fs::path(opt.out_dir) / "report.md").string(), md);
}

}  // namespace

TuneResult run_tune(const TuneOptions& opt) {
  const auto t_start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  auto say = [&](const std::string& s) {
    if (!opt.quiet) std::fprintf(stderr, "tune: %s\n", s.c_str());
  };
  if (opt.out_dir.empty()) throw InputError("tune: give an output folder (-o)");
  const ModelInfo& info = find_model(opt.model);
  const fs::path data(opt.data);
  std::error_code ec;
  if (!fs::is_directory(data, ec) || !fs::exists(data / "split.json", ec))
    throw InputError("tune: '" + opt.data +
                     "' is not a split folder from `seqrec prepare`; tune searches on the "
                     "split's validation pair (train_tr.tsv -> valid.tsv)");
  const tune::SearchSpace space = opt.space_file.empty()
                                      ? default_space(info.type)
                                      : tune::load_space(opt.space_file, info.type, info.params);
  const Config& tc = opt.tune_cfg;
  const int n_trials = static_cast<int>(tc.get_int("trials"));
  const double budget = tc.get_float("time_budget");
  const uint64_t seed = static_cast<uint64_t>(tc.get_int("seed"));
  const bool prune = tc.get_bool("prune");
  tune::TpeOptions to;
  to.seed = seed;
  to.n_startup = static_cast<int>(tc.get_int("n_startup"));
  to.gamma = tc.get_float("gamma");
  to.n_candidates = static_cast<int>(tc.get_int("candidates"));
  tune::PrunerOptions po;
  po.min_epochs = static_cast<int>(tc.get_int("min_epochs"));
  po.eta = tc.get_float("eta");
  po.min_trials = static_cast<int>(tc.get_int("rung_trials"));
  const int patience = static_cast<int>(opt.stop_cfg.get_int("patience"));
  const bool start_from_base = tc.get_bool("start_from_base");

  // The base configuration of every trial; checked once before anything trains.
  Config base = model_config(info, opt.preset, opt.config_file);
  for (const auto& [k, v] : space.fixed) base.set(k, v, space.source + ": fixed." + k);
  const std::string ep_param = info.epochs_param;
  if (const int64_t e = tc.get_int("epochs"); e > 0 && !ep_param.empty())
    base.set(ep_param, std::to_string(e), "--epochs");
  const int epoch_budget = ep_param.empty() ? 0 : static_cast<int>(base.get_int(ep_param));

  // The validation pair.
  const ReadOptions ro = to_read_options(opt.read_cfg);
  TrainData tr = load_train_data(opt.data, SplitPart::Valid, ro);
  TestData valid;
  try {
    valid = load_test_data(opt.data, SplitPart::Valid, tr.items, ro);
  } catch (const Error& e) {
    throw InputError("tune: '" + opt.data + "' has no validation split (" + e.what() +
                     "); prepare it with a validation period (`seqrec prepare --valid-days N`)");
  }
  const Protocol protocol = parse_protocol(tr.protocol.empty() ? "session" : tr.protocol);
  if (count_predictions(valid.test, protocol) == 0)
    throw InputError("tune: '" + opt.data +
                     "' has no validation split (valid.tsv gives 0 predictions over the "
                     "items of train_tr.tsv); prepare it with a validation period "
                     "(`seqrec prepare --valid-days N`) or a sequential split");
  std::string metric_text = opt.stop_cfg.get_string("valid_metric");
  if (metric_text.empty()) metric_text = protocol == Protocol::Sequential ? "ndcg@10" : "recall@20";
  const MetricAtK metric = parse_metric_at_k(metric_text, "--valid-metric");
  EvalOptions eo = to_eval_options(Config(eval_option_specs()), tr.protocol);
  eo.cutoffs = {metric.k};
  eo.threads = opt.threads;
  eo.progress = false;
  const std::vector<int64_t> counts = item_counts(tr.train, tr.items.size());

  // The folder: a new one, or one holding this same tune (which then continues).
  const fs::path out(opt.out_dir);
  const json identity = {
      {"model", info.type},
      {"data", fs::absolute(data).lexically_normal().string()},
      {"space", space.to_json()},
      {"preset", opt.preset},
      {"config_file",
       opt.config_file.empty() ? std::string() : fs::absolute(opt.config_file).string()},
      {"base_config", base.to_json()},
      {"seed", seed},
      {"valid_metric", metric.result_key()},
      {"patience", patience},
      {"start_from_base", start_from_base},
      {"sampler",
       {{"n_startup", to.n_startup}, {"gamma", to.gamma}, {"candidates", to.n_candidates}}},
      {"pruning",
       {{"prune", prune},
        {"min_epochs", po.min_epochs},
        {"eta", po.eta},
        {"rung_trials", po.min_trials}}}};
  const std::string id_path = (out / "tune.json").string();
  const std::string log_path = (out / "trials.jsonl").string();
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec))
      throw InputError("-o " + opt.out_dir + ": exists and is not a folder");
    if (!fs::is_empty(out, ec)) {
      const json prev = read_json(id_path);
      if (!prev.is_object())
        throw InputError("-o " + opt.out_dir +
                         ": the folder is not empty and holds no tune (no tune.json); choose a "
                         "new or empty folder");
      const json args = prev.value("arguments", json());
      if (args != identity) {
        std::string what = "other arguments";
        for (auto it = identity.begin(); it != identity.end(); ++it)
          if (args.value(it.key(), json()) != it.value()) {
            what = it.key() + " differs";
            break;
          }
        throw InputError("-o " + opt.out_dir + ": the folder holds a tune with other arguments (" +
                         what + "); run the same command to continue it, or choose a new folder");
      }
    }
  }
  fs::create_directories(out);
  io::write_file(id_path,
                 json{{"written_by", "seqrec tune"}, {"arguments", identity}}.dump(2) + "\n");

  TuneResult res;
  res.metric = metric.result_key();
  res.trials = tune::read_trials(log_path, space);
  res.resumed = static_cast<int>(res.trials.size());
  tune::RungPruner pruner(po);
  for (const auto& t : res.trials)
    for (int r : pruner.rungs(t.epochs)) pruner.record(t.number, r, best_up_to(t.curve, r));
  if (res.resumed > 0)
    say("continuing the tune in " + opt.out_dir + ": " + std::to_string(res.resumed) +
        " trials read back from " + log_path);
  const tune::TpeSampler sampler(space, to);
  say(info.type + " on " + opt.data + ": " + std::to_string(tr.train.size()) +
      " training sequences (train_tr), validation " + res.metric + "; " +
      std::to_string(space.dims.size()) + " parameters searched (" + space.source + "), " +
      std::to_string(n_trials) + " trials" +
      (budget > 0 ? ", time budget " + fmt("%.0f", budget) + " s" : std::string()) +
      (epoch_budget > 0 ? ", up to " + std::to_string(epoch_budget) + " epochs each"
                        : std::string()));

  bool budget_spent = false;
  bool interrupted = false;
  // A model without parameters to search (pop) needs one trial only.
  const int want = space.dims.empty() ? std::min(n_trials, 1) : n_trials;
  for (int t = static_cast<int>(res.trials.size()); t < want; ++t) {
    if (budget > 0 && elapsed() >= budget) {
      budget_spent = true;
      break;
    }
    if (interrupt_requested()) {
      interrupted = true;
      break;
    }
    std::vector<tune::Observation> obs;
    for (const auto& r : res.trials)
      obs.push_back({r.x, r.has_value() ? r.value : std::nan(""), r.state == "complete"});
    TrialRecord rec;
    rec.number = t;
    rec.x = t == 0 && start_from_base ? base_point(space, base, sampler)
                                      : sampler.propose(obs, static_cast<uint64_t>(t));
    rec.params = json::object();
    Config cfg = base;
    for (size_t d = 0; d < space.dims.size(); ++d) {
      rec.params[space.dims[d].name] = tune::value_json(space.dims[d], rec.x[d]);
      cfg.set(space.dims[d].name, tune::value_text(space.dims[d], rec.x[d]), "trial");
    }
    const auto t0 = std::chrono::steady_clock::now();
    bool pruned = false, stopped = false;
    int last_epoch = 0;
    FitContext ctx;
    ctx.threads = opt.threads;
    ctx.seed = seed;
    ctx.progress = false;
    ctx.patience = patience;
    ctx.validate = [&](const Model& m, int epoch) {
      EvalResult er = evaluate(m, valid.test, eo, counts);
      const double v = er.metrics.at(res.metric);
      rec.curve.emplace_back(epoch, v);
      return v;
    };
    ctx.after_epoch = [&](int epoch, double) {
      last_epoch = epoch;
      if (prune && pruner.report(t, epoch, best_up_to(rec.curve, epoch))) {
        pruned = true;
        return false;
      }
      if (budget > 0 && elapsed() >= budget) {
        stopped = true;
        return false;
      }
      return true;
    };
    try {
      std::unique_ptr<Model> model = create_model(info.type, cfg);
      model->fit(tr.train, tr.items.size(), ctx);
      if (rec.curve.empty()) {  // a one-pass model: one evaluation of the fitted model
        EvalResult er = evaluate(*model, valid.test, eo, counts);
        rec.curve.emplace_back(0, er.metrics.at(res.metric));
      }
      rec.state = pruned ? "pruned" : stopped ? "stopped" : "complete";
    } catch (const Interrupted&) {
      interrupted = true;
      break;  // the unfinished trial is not logged: a resumed tune runs it again
    } catch (const std::exception& e) {
      rec.state = "failed";
      rec.error = e.what();
    }
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rec.epochs = last_epoch;
    rec.value = std::nan("");
    for (const auto& [e, v] : rec.curve)
      if (std::isfinite(v) && (!std::isfinite(rec.value) || v > rec.value)) {
        rec.value = v;
        rec.best_epoch = e;
      }
    tune::append_trial(log_path, rec);
    res.trials.push_back(rec);
    const int bi = tune::best_trial(res.trials);
    say("trial " + std::to_string(t) + " " + rec.state + ": " + res.metric + " " +
        (rec.has_value() ? fmt("%.4f", rec.value) : std::string("–")) +
        (rec.epochs > 0 ? " (best epoch " + std::to_string(rec.best_epoch) + " of " +
                              std::to_string(rec.epochs) + ")"
                        : std::string()) +
        " in " + fmt("%.1f", rec.seconds) + " s; best so far " +
        (bi >= 0 ? fmt("%.4f", res.trials[static_cast<size_t>(bi)].value) + " (trial " +
                       std::to_string(bi) + ")"
                 : std::string("none")) +
        (rec.error.empty() ? "" : "; error: " + rec.error) + "\n      " + param_list(rec.params));
    if (stopped) budget_spent = true;
    if (stopped) break;
  }

  // The outcome.
  res.best = tune::best_trial(res.trials);
  int pruned_n = 0, failed_n = 0, complete_n = 0;
  double secs = 0;
  for (const auto& t : res.trials) {
    pruned_n += t.pruned();
    failed_n += t.state == "failed";
    complete_n += t.state == "complete";
    secs += t.seconds;
  }
  json summary = {{"model", info.type},
                  {"data", opt.data},
                  {"metric", res.metric},
                  {"space", space.to_json()},
                  {"space_source", space.source},
                  {"trials", res.trials.size()},
                  {"complete", complete_n},
                  {"pruned", pruned_n},
                  {"failed", failed_n},
                  {"seconds", secs},
                  {"seed", seed},
                  {"n_startup", to.n_startup},
                  {"prune", prune},
                  {"eta", po.eta},
                  {"rungs", prune ? json(pruner.rungs(std::max(epoch_budget, 1))) : json::array()},
                  {"epoch_budget", epoch_budget},
                  {"patience", patience},
                  {"time_budget", budget},
                  {"budget_spent", budget_spent},
                  {"interrupted", interrupted}};
  if (res.best >= 0) {
    const TrialRecord& b = res.trials[static_cast<size_t>(res.best)];
    Config best = base;
    for (size_t d = 0; d < space.dims.size(); ++d)
      best.set(space.dims[d].name, tune::value_text(space.dims[d], b.x[d]), "best trial");
    // The retraining rule (docs/compare.md): the full training data for the best epoch count.
    if (!ep_param.empty() && b.best_epoch > 0)
      best.set(ep_param, std::to_string(b.best_epoch), "best trial");
    res.best_params = b.params;
    res.best_config = best.to_json();
    res.best_config_path = (out / "best.json").string();
    io::write_file(res.best_config_path, res.best_config.dump(2) + "\n");
    summary["best"] = {{"trial", b.number},
                       {"value", b.value},
                       {"best_epoch", b.best_epoch},
                       {"state", b.state},
                       {"params", b.params},
                       {"config", res.best_config},
                       {"config_file", res.best_config_path}};
  }
  json tj = json::array();
  for (const auto& t : res.trials) tj.push_back(t.to_json());
  summary["trial_records"] = tj;
  io::write_file((out / "tune_result.json").string(), summary.dump(2) + "\n");
  write_report(opt, space, res, summary);

  if (interrupted)
    throw Interrupted("tune interrupted: " + std::to_string(res.trials.size()) +
                      " finished trials kept in " + log_path +
                      "; run the same command again to continue");
  if (budget > 0 && complete_n + pruned_n == 0)
    throw InputError(
        "--time-budget " + fmt("%g", budget) + " s is too small for one trial of " + info.type +
        (res.trials.empty()
             ? std::string(": no trial could start")
             : ": trial 0 was stopped after " + std::to_string(res.trials[0].epochs) + " of " +
                   std::to_string(epoch_budget) + " epochs (" + fmt("%.1f", res.trials[0].seconds) +
                   " s)") +
        "; raise --time-budget or lower --epochs (the trials log " + log_path + " keeps what ran)");
  if (res.best < 0)
    throw Error("tune: no trial gave a validation score (every one failed; see " + log_path + ")");
  say("best: trial " + std::to_string(res.trials[static_cast<size_t>(res.best)].number) + ", " +
      res.metric + " " + fmt("%.4f", res.trials[static_cast<size_t>(res.best)].value) + " (" +
      param_list(res.best_params) + "); written to " + res.best_config_path + "; report " +
      (out / "report.md").string());
  return res;
}

}  // namespace seqrec
