// seqrec: the command-line program. Subcommands only parse options and call the library;
// errors thrown inside become a message on stderr and a non-zero exit code.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "app/checkpoint.hpp"
#include "app/compare_cli.hpp"
#include "app/options.hpp"
#include "app/param_flags.hpp"
#include "app/workflow.hpp"
#include "core/isa.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "io/model_file.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/model.hpp"
#include "serve/http/server.hpp"

using namespace seqrec;
namespace fs = std::filesystem;

namespace {

using cli::dashed;
using cli::ParamFlags;

/// Config from defaults, then an optional config file, then flags (flags win).
Config build_config(const std::vector<ParamSpec>& specs, const std::string& config_file,
                    const ParamFlags& flags, bool allow_foreign_keys = false) {
  Config c(specs);
  if (!config_file.empty()) c.load_file(config_file);
  auto unknown = flags.apply(c);
  if (!unknown.empty() && !allow_foreign_keys)
    throw InputError("--" + dashed(unknown.front()) + " does not apply here");
  return c;
}

void print_json_file(const std::string& path, const nlohmann::json& j) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) throw IoError("cannot write '" + path + "'");
    f << j.dump(2) << "\n";
    if (!f) throw IoError("cannot write '" + path + "'");
  }
  fs::rename(tmp, path);
}

std::string fmt_bytes(int64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  return buf;
}

// ---------------------------------------------------------------------------------------
struct GlobalOptions {
  int threads = 0;
  bool quiet = false;
  std::string prog = "seqrec";  ///< how to run this binary again, for printed hints
};

/// The exit statuses, one table (docs/cli.md): 130 and other 128+N come from the shell when a
/// signal ends the process.
enum ExitCode : int { kExitOk = 0, kExitUserError = 1, kExitInternal = 2, kExitOutOfMemory = 3 };

/// A folder as the user named it, with exactly one trailing slash ("split/" -> "split/",
/// "split" -> "split/"), for messages that print it as a folder.
std::string folder_display(std::string d) {
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d == "/" ? d : d + "/";
}

int run_generate(const Config& c, const std::string& out, const GlobalOptions& g) {
  Progress p("generate", 0, "events", false);
  EventLog log = generate_sessions(to_generate_options(c));
  std::string f = c.get_string("out_format");
  write_events(out, log.seqs, log.items, parse_format(f));
  std::fprintf(stderr, "wrote %s: %lld events, %zu sessions, %d items (%s format) in %.1f s\n",
               out.c_str(), static_cast<long long>(log.seqs.n_events()), log.seqs.size(),
               log.items.size(), f.c_str(), p.elapsed_seconds());
  return 0;
}

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

int run_prepare(const std::string& input, const std::string& out_dir, const Config& read_cfg,
                const Config& prep_cfg, bool force, const GlobalOptions& g) {
  Progress p("prepare", 0, "", false);
  check_split_folder(out_dir, force);
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
  return 0;
}

int run_train(const std::string& data, const std::string& type, const std::string& out,
              const std::string& preset, const std::string& config_file,
              const ParamFlags& model_flags, bool validation, const Config& read_cfg, uint64_t seed,
              bool monitor, const std::string& monitor_metric, int patience, CheckpointOptions ckpt,
              const GlobalOptions& g) {
  // "recall@20" -> metric name and K for the validation runs.
  const auto at = monitor_metric.find('@');
  if (at == std::string::npos)
    throw InputError("--valid-metric expects NAME@K such as recall@20, got '" + monitor_metric +
                     "'");
  // hr@K equals recall@K with one target; the session protocol only reports recall@K.
  const std::string valid_metric =
      monitor_metric.rfind("hr@", 0) == 0 ? "recall" + monitor_metric.substr(2) : monitor_metric;
  int valid_k = 0;
  try {
    valid_k = std::stoi(monitor_metric.substr(at + 1));
  } catch (const std::exception&) {
  }
  if (valid_k <= 0) throw InputError("--valid-metric: K must be a positive integer");
  const std::string metric_name = monitor_metric.substr(0, at);
  if (metric_name != "recall" && metric_name != "mrr" && metric_name != "ndcg" &&
      metric_name != "hr")
    throw InputError("--valid-metric: unknown metric '" + metric_name +
                     "' (recall, hr, mrr or ndcg)");
  if (patience > 0 && !monitor) throw InputError("--patience needs --monitor");
  const ModelInfo& info = find_model(type);
  Config cfg = model_config(info, preset, config_file);
  for (const auto& name : model_flags.apply(cfg)) {
    std::vector<std::string> own;
    for (const auto& p : info.params) own.push_back(dashed(p.name));
    const std::string near = cli::nearest_name(dashed(name), own);
    throw InputError("--" + dashed(name) + " is not a parameter of model '" + type + "'" +
                     (near.empty() ? "" : " (did you mean --" + near + "?)") + " (see `" + g.prog +
                     " models`)");
  }
  if (fs::exists(out) && fs::is_directory(out))
    throw InputError("--out '" + out + "' is a folder; give a model file name");
  if (!ckpt.resume.empty() && ckpt.path.empty()) ckpt.path = ckpt.resume;  // keep checkpointing
  check_train_paths(out, ckpt);
  TrainData td = load_train_data(data, validation ? SplitPart::Valid : SplitPart::Test,
                                 to_read_options(read_cfg));
  std::fprintf(stderr, "training %s on %s: %zu sequences, %lld events, %d items\n", type.c_str(),
               td.source.c_str(), td.train.size(), static_cast<long long>(td.train.n_events()),
               td.items.size());
  FitContext ctx;
  ctx.threads = g.threads;
  ctx.seed = seed;
  ctx.progress = !g.quiet;
  // Validation after every epoch (iterative models): on valid.tsv of the split.
  nlohmann::json history = nlohmann::json::array();
  TestData valid;
  std::vector<int64_t> counts;
  EvalOptions veo;
  if (monitor) {
    if (!validation)
      throw InputError(
          "--monitor needs --validation (it evaluates on valid.tsv while training "
          "on train_tr.tsv; the test set is never used for model selection)");
    valid = load_test_data(data, SplitPart::Valid, td.items, to_read_options(read_cfg));
    counts = item_counts(td.train, td.items.size());
    veo = to_eval_options(Config(eval_option_specs()), td.protocol);
    veo.cutoffs = {valid_k};
    veo.threads = g.threads;
    veo.progress = false;
    ctx.patience = patience;
    ctx.validate = [&](const Model& m, int epoch) {
      EvalResult r = evaluate(m, valid.test, veo, counts);
      const double v = r.metrics.at(valid_metric);
      progress_break_line();  // the epoch's progress bar may still be on this line
      std::fprintf(stderr, "epoch %d: validation %s = %.4f\n", epoch, valid_metric.c_str(), v);
      history.push_back({{"epoch", epoch}, {"metrics", r.metrics}});
      return v;
    };
  }
  // What besides the configuration decides the result: a resumed run must match it.
  ckpt.run = {{"seed", seed},
              {"validation", validation},
              {"monitor", monitor},
              {"valid_metric", monitor ? monitor_metric : ""},
              {"patience", patience}};
  if (monitor) ckpt.run["valid_data"] = data_fingerprint(td.items, valid.test);
  ckpt.threads = g.threads;
  ckpt.progress = !g.quiet;
  ModelBundle b = train_model_checkpointed(type, cfg, td, ctx, ckpt, &history);
  save_model(out, b);
  std::printf("trained %s in %.2f s (peak RSS %s); model written to %s\n", type.c_str(),
              b.meta.value("train_seconds", 0.0),
              fmt_bytes(b.meta.value("train_peak_rss_bytes", 0LL)).c_str(), out.c_str());
  return 0;
}

int run_eval(const std::string& model_path, const std::string& data, const Config& ecfg,
             const Config& read_cfg, bool validation, const std::string& json_out,
             const GlobalOptions& g) {
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
  if (!json_out.empty()) {
    nlohmann::json j = r.to_json();
    j["model"] = {{"file", model_path},
                  {"type", b.model->type()},
                  {"config", b.model->config().to_json()},
                  {"n_items", b.items.size()}};
    j["test"] = {{"source", td.source}, {"stats", sequence_stats(td.test)}};
    j["train"] = b.meta;
    print_json_file(json_out, j);
    std::fprintf(stderr, "metrics written to %s\n", json_out.c_str());
  }
  return 0;
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string t;
  while (in >> t) out.push_back(t);
  return out;
}

/// Top-K for one session given as original item ids.
nlohmann::json recommend_one(const ModelBundle& b, const std::vector<std::string>& tokens, int k,
                             bool exclude_seen, std::vector<float>& scores) {
  nlohmann::json res;
  std::vector<int32_t> seq;
  std::vector<std::string> unknown;
  for (const auto& t : tokens) {
    int32_t i = b.items.find(t);
    if (i < 0)
      unknown.push_back(t);
    else
      seq.push_back(i);
  }
  res["unknown_items"] = unknown;
  if (seq.empty()) {
    res["error"] = "no known items in the session";
    return res;
  }
  const int32_t n = b.model->n_items();
  scores.resize(static_cast<size_t>(n));
  std::span<const int32_t> sp(seq);
  std::vector<std::span<const int32_t>> seqs{sp};
  PrefixQuery q{0, static_cast<int32_t>(seq.size())};
  b.model->score(seqs, std::span<const PrefixQuery>(&q, 1), scores.data());
  if (exclude_seen)
    for (int32_t i : seq) scores[static_cast<size_t>(i)] = -std::numeric_limits<float>::infinity();
  std::vector<int32_t> idx(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  const int kk = std::min<int>(k, n);
  auto better = [&](int32_t a, int32_t c) {
    return scores[a] > scores[c] || (scores[a] == scores[c] && a < c);
  };
  std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(), better);
  nlohmann::json items = nlohmann::json::array();
  for (int r = 0; r < kk; ++r) {
    const int32_t i = idx[static_cast<size_t>(r)];
    if (exclude_seen && std::isinf(scores[i]) && scores[i] < 0) break;
    items.push_back({{"item", b.items.token(i)}, {"score", scores[i]}});
  }
  res["items"] = items;
  return res;
}

int run_recommend(const std::string& model_path, const std::string& session,
                  const std::string& input, int k, const std::string& exclude, bool json,
                  const GlobalOptions& g) {
  if (k <= 0) throw InputError("-k must be at least 1, got " + std::to_string(k));
  ModelBundle b = load_model(model_path);
  bool excl = exclude == "auto" ? b.meta.value("protocol", "") == "sequential" : exclude == "true";
  std::vector<float> scores;
  auto emit = [&](const std::string& label, const nlohmann::json& r) {
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
  };
  if (!session.empty()) {
    if (!json) std::printf("rank\titem\tscore\n");
    nlohmann::json r = recommend_one(b, split_ws(session), k, excl, scores);
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
    nlohmann::json r = recommend_one(b, toks, k, excl, scores);
    if (json) r["line"] = lineno;
    emit(json ? "" : std::to_string(lineno) + "\t", r);
  }
  return 0;
}

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

/// The settings the demo trains each model with: the official rsc15 preset for GRU4Rec
/// (the synthetic data imitates RSC15 clicks), and for SASRec a history window and epoch
/// budget that fit short sessions and a run of a minute or two.
Config demo_config(const std::string& type) {
  Config c = default_config(type);
  const ModelInfo& info = find_model(type);
  for (const auto& p : info.presets)
    if (type == "gru4rec" && p.name == "rsc15")
      for (const auto& [k, v] : p.values) c.set(k, v, "demo");
  if (type == "sasrec") {
    c.set("maxlen", "20", "demo");
    c.set("epochs", "15", "demo");
    c.set("loss", "ce", "demo");
  }
  return c;
}

/// The main job: synthetic data -> session split -> every model -> one table.
int run_demo(const Config& gen_cfg, const std::string& out_dir, const std::string& models,
             const GlobalOptions& g) {
  Progress total("demo", 0, "", false);
  fs::create_directories(out_dir);
  GenerateOptions go = to_generate_options(gen_cfg);
  std::printf("seqrec demo: generating %lld synthetic events over %d items (seed %llu)\n",
              static_cast<long long>(go.n_events), go.n_items,
              static_cast<unsigned long long>(go.seed));
  EventLog log = generate_sessions(go);
  const std::string log_path = (fs::path(out_dir) / "events.tsv").string();
  write_events(log_path, log.seqs, log.items, Format::Delimited);
  PreparedSplit split = prepare_session(log, SessionSplitOptions{});
  const std::string split_dir = (fs::path(out_dir) / "split").string();
  write_split(split_dir, split, log_path);
  std::printf(
      "session split in %s: train %zu sessions / %lld events, test %zu sessions / "
      "%lld events, %d items\n\n",
      folder_display(split_dir).c_str(), split.train_full.size(),
      static_cast<long long>(split.train_full.n_events()), split.test.size(),
      static_cast<long long>(split.test.n_events()), split.items.size());

  std::vector<std::string> types;
  if (models.empty() || models == "all") {
    for (const auto& m : model_registry()) types.push_back(m.type);
  } else {
    std::stringstream ss(models);
    std::string t;
    while (std::getline(ss, t, ',')) types.push_back(find_model(t).type);
  }
  ReadOptions ro;
  TrainData td = load_train_data(split_dir, SplitPart::Test, ro);
  std::vector<std::pair<std::string, EvalResult>> rows;
  EvalOptions eo;
  eo.cutoffs = {5, 10, 20};
  eo.threads = g.threads;
  eo.progress = !g.quiet;
  std::vector<double> train_secs;
  for (const auto& type : types) {
    FitContext ctx;
    ctx.threads = g.threads;
    ctx.progress = !g.quiet;
    ModelBundle b = train_model(type, demo_config(type), td, ctx);
    const std::string model_path = (fs::path(out_dir) / (type + ".seqrec")).string();
    save_model(model_path, b);
    TestData test = load_test_data(split_dir, SplitPart::Test, b.items, ro);
    EvalResult r = evaluate_bundle(b, test, eo);
    std::fprintf(stderr, "%s: trained in %.2f s, evaluated in %.2f s\n", type.c_str(),
                 b.meta.value("train_seconds", 0.0), r.seconds);
    rows.emplace_back(type, r);
  }
  std::printf("%s", format_results_table(rows, eo.cutoffs).c_str());
  // The table in words: who won, what the two numbers mean, and why simple rules can win
  // on this data.
  const int k = eo.cutoffs.back();
  const std::string rk = "recall@" + std::to_string(k), mk = "mrr@" + std::to_string(k);
  auto metric_of = [](const EvalResult& r, const std::string& m) {
    const auto it = r.metrics.find(m);
    return it == r.metrics.end() ? 0.0 : it->second;
  };
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return metric_of(rows[a].second, rk) > metric_of(rows[b].second, rk);
  });
  const auto& best = rows[order.front()];
  const double best_recall = metric_of(best.second, rk), best_mrr = metric_of(best.second, mk);
  std::printf("\nBest by Recall@%d: %s (%.4f)", k, best.first.c_str(), best_recall);
  for (size_t i = 1; i < order.size(); ++i)
    std::printf("%s %s %.4f", i == 1 ? ", then" : ",", rows[order[i]].first.c_str(),
                metric_of(rows[order[i]].second, rk));
  std::printf(".\n");
  std::printf(
      "What the numbers mean: every test session is replayed click by click, and before each "
      "click the model ranks all %d items.\n"
      "  Recall@%d = the share of next clicks found in the model's top %d: %s's %.4f means "
      "%.0f%% of next clicks were in its top %d.\n"
      "  MRR@%d = the mean of 1/rank of the next click (0 when it is not in the top %d; 1 "
      "would be always first): %s's %.4f means the next clicks it found sat at a typical "
      "(harmonic mean) rank of %.1f.\n",
      split.items.size(), k, k, best.first.c_str(), best_recall, 100 * best_recall, k, k, k,
      best.first.c_str(), best_mrr, best_mrr > 0 ? best_recall / best_mrr : 0.0);
  std::printf(
      "Why simple rules can win here: the generator picks each next click either among %d "
      "fixed successors of the current item (item-to-item transitions, probability %.2f) or "
      "at random by popularity; nothing depends on earlier clicks. Sequential rules (sr) and "
      "session kNN (vsknn) count exactly those transitions, so on this data they are hard to "
      "beat; GRU4Rec and SASRec earn their cost on real logs with longer-range patterns "
      "(try `seqrec compare` on your own data).\n",
      go.n_successors, go.follow_prob);
  const std::string first_model = (fs::path(out_dir) / (types.front() + ".seqrec")).string();
  std::printf(
      "\nmodels saved in %s (try: %s recommend --model %s --session \"%s\")\ntotal %.1f s\n",
      folder_display(out_dir).c_str(), g.prog.c_str(), first_model.c_str(),
      split.items.token(0).c_str(), total.elapsed_seconds());
  return 0;
}

}  // namespace

namespace {

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
    const std::string near = cli::nearest_name(unknown_option, option_names(sub ? sub : &app));
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

}  // namespace

int main(int argc, char** argv) {
  reexec_with_bounded_spinning(argv);
  try {
    isa::level();  // SEQREC_ISA checked (and oneDNN capped) before anything else runs
  } catch (const seqrec::Error& e) {
    std::fprintf(stderr, "seqrec: error: %s\n", e.what());
    return 1;
  }
  GlobalOptions g;
  g.prog = invocation_name(argc > 0 ? argv[0] : nullptr);
  CLI::App app{
      "seqrec: session-based and sequential recommendation (GRU4Rec, SASRec, "
      "baselines).\nRun `" +
      g.prog + " demo` for a tour on built-in synthetic data."};
  app.require_subcommand(1);
  // Global options (--threads, -q, --version) are accepted after the subcommand too: what a
  // subcommand does not know falls through to here. (serve has a --threads of its own.)
  app.fallthrough();
  app.set_version_flag(
      "--version", [] { return std::string("seqrec ") + SEQREC_VERSION + "\n" + isa::describe(); });
  app.add_option("--threads", g.threads, "threads to use (0 = all cores)")
      ->check(threads_validator(0));
  app.add_flag("-q,--quiet", g.quiet, "no progress output");

  // generate
  auto* gen = app.add_subcommand("generate", "write a synthetic session log");
  std::string gen_out, gen_config;
  ParamFlags gen_flags;
  gen->add_option("-o,--out", gen_out, "output file")->required();
  gen->add_option("--config", gen_config, "file of name = value lines (flags win)");
  gen_flags.add(gen, generate_option_specs(), "Generator");

  // prepare
  auto* prep = app.add_subcommand("prepare", "filter a log and split it for evaluation");
  std::string prep_in, prep_out, prep_config;
  bool prep_force = false;
  ParamFlags prep_read_flags, prep_flags;
  prep->add_option("input", prep_in, "interaction log")->required();
  prep->add_option("-o,--out", prep_out, "output folder for the split (new or empty)")->required();
  prep->add_flag("--force", prep_force,
                 "write into a non-empty folder, and write a degenerate split (a test set with "
                 "fewer than 10 predictions or 0.1% of the events) instead of refusing");
  prep->add_option("--config", prep_config, "file of name = value lines (flags win)");
  prep_flags.add(prep, prepare_option_specs(), "Preprocessing");
  prep_read_flags.add(prep, read_option_specs(), "Input format");

  // train
  auto* train = app.add_subcommand("train", "train a model and write a model file");
  std::string train_data, train_model_type, train_out, train_config, train_preset;
  bool train_valid = false;
  uint64_t train_seed = 42;
  bool train_monitor = false;
  std::string train_valid_metric = "recall@20";
  int train_patience = 0;
  CheckpointOptions train_ckpt;
  ParamFlags train_read_flags, model_flags;
  train->add_option("data", train_data, "a split folder from `seqrec prepare`, or a log file")
      ->required();
  train->add_option("-m,--model", train_model_type, "model type (see `seqrec models`)")->required();
  train->add_option("-o,--out", train_out, "model file to write")->required();
  train->add_option("--preset", train_preset,
                    "a named parameter set of the model (see `seqrec models`)");
  train->add_option("--config", train_config, "model parameters, name = value lines or JSON");
  train->add_flag("--validation", train_valid, "train on train_tr (the validation run)");
  train->add_option("--seed", train_seed, "random seed");
  train->add_flag("--monitor", train_monitor,
                  "evaluate on valid.tsv after every epoch (with --validation; iterative models)");
  train->add_option("--valid-metric", train_valid_metric,
                    "metric watched by --monitor and --patience, e.g. recall@20, mrr@20, ndcg@10");
  train
      ->add_option("--patience", train_patience,
                   "with --monitor: stop after this many epochs without improvement and keep "
                   "the best epoch (0 = never stop early)")
      ->check(CLI::Range(0, 1000000));
  train->add_option("--checkpoint", train_ckpt.path,
                    "write a training checkpoint to this file after every epoch (atomically; "
                    "see docs/cli.md)");
  train->add_option("--resume", train_ckpt.resume,
                    "continue the training saved in this checkpoint (same data, parameters and "
                    "seed; it keeps being updated unless --checkpoint names another file)");
  for (const auto& m : model_registry())
    model_flags.add(train, m.params, "Model parameters", "[" + m.type + "] ");
  train_read_flags.add(train, read_option_specs(), "Input format");

  // eval
  auto* ev = app.add_subcommand("eval", "evaluate a model file on test data");
  std::string ev_model, ev_data, ev_json, ev_config;
  bool ev_valid = false;
  ParamFlags ev_flags, ev_read_flags;
  ev->add_option("-m,--model", ev_model, "model file")->required();
  ev->add_option("data", ev_data, "a split folder (uses test.tsv) or a log file")->required();
  ev->add_option("--json", ev_json, "also write the metrics as JSON to this file");
  ev->add_flag("--validation", ev_valid, "evaluate on valid.tsv instead of test.tsv");
  ev->add_option("--config", ev_config, "file of name = value lines (flags win)");
  ev_flags.add(ev, eval_option_specs(), "Evaluation");
  ev_read_flags.add(ev, read_option_specs(), "Input format");

  // recommend
  auto* rec = app.add_subcommand("recommend", "top-K next items for a session");
  std::string rec_model, rec_session, rec_input = "-", rec_exclude = "auto";
  int rec_k = 20;
  bool rec_json = false;
  rec->add_option("-m,--model", rec_model, "model file")->required();
  rec->add_option("-s,--session", rec_session,
                  "the session's item ids in order, space separated (otherwise one session "
                  "per line from --input)");
  rec->add_option("-i,--input", rec_input, "file of sessions, one per line ('-' = stdin)");
  rec->add_option("-k", rec_k, "number of items to recommend");
  rec->add_option("--exclude-seen", rec_exclude,
                  "drop the session's own items (auto: yes for sequential models)")
      ->check(CLI::IsMember({"auto", "true", "false"}));
  rec->add_flag("--json", rec_json, "one JSON object per session");

  // info, models, demo
  auto* info = app.add_subcommand("info", "print a model file's metadata");
  std::string info_model;
  bool info_json = false;
  info->add_option("model", info_model, "model file")->required();
  info->add_flag("--json", info_json, "as JSON");
  bool info_items = false;
  info->add_flag("--items", info_items,
                 "print the item vocabulary (the original ids, one per line, in model order)");
  auto* models = app.add_subcommand("models", "list model types and their parameters");
  auto* demo = app.add_subcommand(
      "demo", "the main job: generate data, train every model, print the comparison");
  std::string demo_out = "seqrec-demo", demo_models = "all";
  ParamFlags demo_flags;
  demo->add_option("-o,--out", demo_out, "output folder");
  demo->add_option("--models", demo_models, "comma-separated model types, or all");
  demo_flags.add(demo, generate_option_specs(), "Generator");

  // compare (its options live in src/app/compare_cli.cpp)
  CompareCommand compare_cmd(app);

  // serve (the HTTP server: options -> ServeOptions -> src/serve)
  auto* srv = app.add_subcommand("serve",
                                 "serve recommendations over HTTP/JSON with live "
                                 "session state (see docs/http-api.md)");
  seqrec::serve::http::ServeOptions serve_opts;
  double serve_mem_mib = 1024.0;
  std::string serve_head_storage = "int8";
  {
    auto& h = serve_opts.http;
    auto& r = serve_opts.recommender;
    srv->add_option("model", serve_opts.model_path, "model file")->required();
    srv->add_option("--host", h.host, "address to listen on (0.0.0.0 = every interface)")
        ->capture_default_str();
    srv->add_option("--port", h.port, "port (0 = any free port; see --port-file)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    srv->add_option("--threads", h.threads,
                    "worker threads running requests (default: 2 x cores, at least 8); "
                    "not a limit on connections")
        ->check(threads_validator(1))
        ->capture_default_str();
    srv->add_option("--max-connections", h.max_connections,
                    "open connections at most (beyond: 503 and closed)")
        ->check(CLI::Range(1, 10000000))
        ->capture_default_str();
    srv->add_option("--keep-alive", h.keep_alive_seconds,
                    "seconds after which an idle keep-alive connection is closed")
        ->check(CLI::Range(0.001, 1e6))
        ->capture_default_str();
    srv->add_option("--read-timeout", h.read_timeout_seconds,
                    "seconds within which a started request must be complete (else 408)")
        ->check(CLI::Range(0.001, 1e6))
        ->capture_default_str();
    srv->add_option("--write-timeout", h.write_timeout_seconds,
                    "seconds a client may take to read a response before it is dropped")
        ->check(CLI::Range(0.001, 1e6))
        ->capture_default_str();
    srv->add_option("--max-sessions", r.max_sessions,
                    "live sessions at most (least recently used evicted first)")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
        ->capture_default_str();
    srv->add_option("--session-ttl", r.session_ttl_seconds,
                    "seconds after which an idle session is dropped (0 = never)")
        ->check(CLI::Range(0.0, 1e9))
        ->capture_default_str();
    srv->add_option("--max-session-memory", serve_mem_mib,
                    "MiB of session state at most (least recently used evicted first)")
        ->check(CLI::Range(0.001, 1e9))
        ->capture_default_str();
    srv->add_option("--max-history", r.max_history,
                    "events kept per session for scoring and exclusion (at least the "
                    "model's context length)")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    srv->add_option("--max-body", h.max_body, "largest request body in bytes (larger: 413)")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 34))
        ->capture_default_str();
    srv->add_option("--default-k", r.default_k, "K when a request gives none")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    srv->add_option("--max-k", r.max_k, "largest K a request may ask for")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    srv->add_option("--session-shards", r.shards,
                    "independently locked parts of the session table (0 = automatic)")
        ->check(CLI::Range(0, 4096))
        ->capture_default_str();
    srv->add_option("--max-batch", r.max_batch,
                    "GRU4Rec/SASRec: concurrent requests scored in one pass over the item "
                    "matrix at most (1 = each alone)")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    srv->add_option("--batch-lanes", r.batch_lanes, "GRU4Rec/SASRec: scoring passes run at once")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    srv->add_option("--head-storage", serve_head_storage,
                    "GRU4Rec/SASRec: int8 (a quarter of the memory traffic, candidates "
                    "rescored exactly) or fp32; the same results")
        ->check(CLI::IsMember({"int8", "fp32"}))
        ->capture_default_str();
    srv->add_option("--port-file", serve_opts.port_file,
                    "write the port to this file once listening");
    srv->add_flag("--access-log", h.access_log, "one line per request on stderr");
  }

  // Line-buffered stdout keeps results and stderr progress in order when both are piped.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, e, g.prog);
  }

  try {
    set_threads(g.threads);
    if (*gen)
      return run_generate(build_config(generate_option_specs(), gen_config, gen_flags), gen_out, g);
    if (*prep) {
      Config rc = build_config(read_option_specs(), "", prep_read_flags);
      Config pc = build_config(prepare_option_specs(), prep_config, prep_flags);
      return run_prepare(prep_in, prep_out, rc, pc, prep_force, g);
    }
    if (*train) {
      Config rc = build_config(read_option_specs(), "", train_read_flags);
      return run_train(train_data, train_model_type, train_out, train_preset, train_config,
                       model_flags, train_valid, rc, train_seed, train_monitor, train_valid_metric,
                       train_patience, train_ckpt, g);
    }
    if (*ev) {
      Config rc = build_config(read_option_specs(), "", ev_read_flags);
      Config ec = build_config(eval_option_specs(), ev_config, ev_flags);
      return run_eval(ev_model, ev_data, ec, rc, ev_valid, ev_json, g);
    }
    if (*rec)
      return run_recommend(rec_model, rec_session, rec_input, rec_k, rec_exclude, rec_json, g);
    if (*info) return run_info(info_model, info_json, info_items, g);
    if (*models) return run_models();
    if (*srv) {
      serve_opts.recommender.max_session_bytes = static_cast<int64_t>(serve_mem_mib * 1048576.0);
      serve_opts.recommender.head_storage = serve_head_storage == "fp32"
                                                ? seqrec::RecommenderOptions::HeadStorage::Fp32
                                                : seqrec::RecommenderOptions::HeadStorage::Int8;
      serve_opts.quiet = g.quiet;
      return seqrec::serve::http::serve(serve_opts);
    }
    if (compare_cmd.chosen()) return compare_cmd.run(g.threads, g.quiet);
    if (*demo)
      return run_demo(build_config(generate_option_specs(), "", demo_flags), demo_out, demo_models,
                      g);
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
  return kExitOk;
}
