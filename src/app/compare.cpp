// seqrec compare: data once, every model over seeds in child processes, one evaluation.
#include "app/compare.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "app/checkpoint.hpp"
#include "app/options.hpp"
#include "app/param_flags.hpp"
#include "app/tune.hpp"
#include "app/workflow.hpp"
#include "core/isa.hpp"
#include "io/model_file.hpp"
#include "io/output_file.hpp"
#include "report/report.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/interrupt.hpp"
#include "seqrec/model.hpp"

extern char** environ;

namespace seqrec {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::string> default_compare_models(const std::string& protocol) {
  if (protocol == "sequential") return {"pop", "sr", "sasrec", "gru4rec"};
  return {"pop", "sr", "vsknn", "gru4rec"};
}

std::string default_compare_preset(const std::string& type, const std::string& protocol) {
  // GRU4Rec: the official small RSC15 setting (100 units, cross-entropy) fits both kinds
  // of data at a moderate cost. SASRec: the original ML-1M setting for user histories, the
  // original sparse-data setting (maxlen 50) for short sessions.
  if (type == "gru4rec") return "rsc15";
  if (type == "sasrec") return protocol == "sequential" ? "ml1m" : "amazon";
  return "";
}

std::string epochs_param(const std::string& type) {
  for (const ModelInfo& m : model_registry())
    if (m.type == type) return m.epochs_param;
  return "";
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

/// "LABEL=VALUE" -> (LABEL, VALUE); `what` names the option in errors.
std::pair<std::string, std::string> split_assignment(const std::string& s, char sep,
                                                     const std::string& what) {
  const auto at = s.find(sep);
  if (at == std::string::npos || at == 0 || at + 1 > s.size())
    throw InputError(what + ": expected " +
                     (sep == '=' ? std::string("MODEL=VALUE") : std::string("MODEL.PARAM=VALUE")) +
                     ", got '" + s + "'");
  return {s.substr(0, at), s.substr(at + 1)};
}

bool has_suffix_stem(const fs::path& p, const std::string& suffix) {
  const std::string stem = p.stem().string();
  if (stem == suffix) return true;
  return stem.size() > suffix.size() + 1 &&
         stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         (stem[stem.size() - suffix.size() - 1] == '_' ||
          stem[stem.size() - suffix.size() - 1] == '-' ||
          stem[stem.size() - suffix.size() - 1] == '.');
}

/// Finds the one file of `dir` whose name (without extension) is `names[i]` or ends with
/// "_" + names[i]; "" when none, InputError when several.
std::string find_split_file(const fs::path& dir, const std::vector<std::string>& names) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    for (const auto& n : names)
      if (has_suffix_stem(e.path(), n)) {
        found.push_back(e.path().string());
        break;
      }
  }
  if (found.size() > 1) {
    std::sort(found.begin(), found.end());
    std::string list;
    for (const auto& f : found) list += (list.empty() ? "" : ", ") + f;
    throw InputError(dir.string() + ": several files could be the '" + names.front() + "' part (" +
                     list + "); pass the training file as DATA and --test FILE");
  }
  return found.empty() ? "" : found.front();
}

/// Items of `log` mapped onto `items`; unknown items dropped and counted, sequences shorter
/// than `min_len` dropped and counted.
SequenceSet remap_to(const EventLog& log, const Vocab& items, int min_len, int64_t* dropped_events,
                     int64_t* dropped_seqs) {
  SequenceSet s = remap(log, items, dropped_events);
  SequenceSet out;
  *dropped_seqs = static_cast<int64_t>(log.seqs.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.length(i) < min_len) continue;
    out.push(s.ids[i], s.seq(i), s.seq_times(i));
  }
  *dropped_seqs -= static_cast<int64_t>(out.size());
  return out;
}

struct ResolvedData {
  std::string split_dir;
  std::string protocol;
  std::string note;
  std::string protocol_choice;      ///< CompareSetup::protocol_choice
  json detected = json::array();    ///< CompareSetup::detected
  bool degenerate_checked = false;  ///< prepare_split already checked the test set
};

void say(bool quiet, const std::string& s) {
  if (!quiet) std::fprintf(stderr, "compare: %s\n", s.c_str());
}

/// Makes sure there is a seqrec split folder for `opt.data`: uses a prepared one in place,
/// converts given split files, or prepares a log file.
ResolvedData resolve_data(const CompareOptions& opt, const std::string& work) {
  ResolvedData r;
  const fs::path data(opt.data);
  std::error_code ec;
  if (!fs::exists(data, ec)) throw InputError("'" + opt.data + "' does not exist");
  const std::string want = opt.protocol;
  if (want != "auto" && want != "session" && want != "sequential")
    throw InputError("--protocol: expected auto, session or sequential, got '" + want + "'");

  if (fs::is_directory(data) && fs::exists(data / "split.json")) {
    if (!opt.test_file.empty())
      throw InputError("--test: '" + opt.data + "' is already a split folder with its test.tsv");
    std::ifstream f(data / "split.json");
    json split;
    try {
      split = json::parse(f);
    } catch (const json::exception& e) {
      throw InputError((data / "split.json").string(), 0, std::string("invalid JSON: ") + e.what());
    }
    r.protocol = split.is_object() ? split.value("protocol", std::string("session")) : "session";
    if (r.protocol != "session" && r.protocol != "sequential")
      throw InputError((data / "split.json").string(), 0,
                       "unknown protocol '" + r.protocol + "' (session or sequential)");
    if (want != "auto" && want != r.protocol)
      throw InputError("'" + opt.data + "' was prepared for the " + r.protocol + " protocol, not " +
                       want + "; prepare it again with `seqrec prepare --protocol " + want +
                       "` or pass the log file");
    r.split_dir = opt.data;
    r.note = "the split folder " + opt.data + " (written by `seqrec prepare`), used as it is";
    // How `seqrec prepare` came to this protocol, when its split.json says so.
    const json stats = split.is_object() ? split.value("stats", json::object()) : json::object();
    const json pc = stats.is_object() ? stats.value("protocol_choice", json()) : json();
    r.protocol_choice = "the protocol of the split folder (split.json)";
    if (pc.is_object() && pc.value("requested", std::string()) == "auto")
      r.protocol_choice +=
          ", chosen by `seqrec prepare --protocol auto`: " + pc.value("reason", std::string());
    else if (pc.is_object() && pc.contains("requested"))
      r.protocol_choice += ", prepared with --protocol " + pc.value("requested", std::string());
    if (stats.is_object() && stats.value("detected", json()).is_array())
      r.detected = stats["detected"];
    return r;
  }

  std::string train_file, test_file, tr_file, valid_file;
  if (fs::is_directory(data)) {
    if (!opt.test_file.empty())
      throw InputError("--test goes with a training file, but '" + opt.data + "' is a folder");
    train_file = find_split_file(data, {"train_full", "train"});
    test_file = find_split_file(data, {"test"});
    if (train_file.empty() || test_file.empty())
      throw InputError(opt.data +
                       ": not a split folder (no split.json) and no *train_full* and *test* "
                       "files in it; pass a log file, a folder from `seqrec prepare`, or a "
                       "training file with --test FILE");
    tr_file = find_split_file(data, {"train_tr"});
    valid_file = find_split_file(data, {"train_valid", "valid"});
    if (tr_file.empty() != valid_file.empty()) tr_file.clear(), valid_file.clear();
  } else if (!opt.test_file.empty()) {
    train_file = opt.data;
    test_file = opt.test_file;
  }

  const std::string split_dir = (fs::path(work) / "split").string();
  const ReadOptions ro = to_read_options(opt.read_cfg);
  if (!train_file.empty()) {
    // An existing split: the training file's items are the catalogue (as GRU4Rec does).
    r.protocol = want == "auto" ? "session" : want;
    say(opt.quiet, "reading the given split: " + train_file + " -> " + test_file);
    EventLog train = read_events(train_file, ro);
    PreparedSplit sp;
    sp.protocol = r.protocol;
    sp.items = train.items;
    sp.train_full = train.seqs;
    int64_t dropped_events = 0, dropped_seqs = 0;
    json steps = json::array();
    {
      EventLog test = read_events(test_file, ro);
      sp.test = remap_to(test, sp.items, 2, &dropped_events, &dropped_seqs);
      steps.push_back({{"step", "test_unseen_items"},
                       {"events_removed", dropped_events},
                       {"sequences_removed", dropped_seqs}});
      if (sp.test.size() == 0)
        throw InputError(test_file, 0,
                         "no test sequence has 2 or more events over items of the training "
                         "file");
    }
    if (!tr_file.empty()) {
      EventLog tr = read_events(tr_file, ro);
      EventLog va = read_events(valid_file, ro);
      int64_t e1 = 0, s1 = 0, e2 = 0, s2 = 0;
      sp.train_tr = remap_to(tr, sp.items, 1, &e1, &s1);
      sp.valid = remap_to(va, sp.items, 2, &e2, &s2);
      steps.push_back({{"step", "validation_pair"},
                       {"train_tr_unknown_events_removed", e1},
                       {"valid_unknown_events_removed", e2},
                       {"valid_sequences_removed", s2}});
    } else {
      sp.train_tr = sp.train_full;  // no validation pair given: no learning curves
    }
    sp.stats = {{"protocol", r.protocol},
                {"source", train_file},
                {"given_files",
                 {{"train_full", train_file},
                  {"test", test_file},
                  {"train_tr", tr_file},
                  {"valid", valid_file}}},
                {"steps", steps},
                {"n_items", sp.items.size()},
                {"parts",
                 {{"train_full", sequence_stats(sp.train_full)},
                  {"test", sequence_stats(sp.test)},
                  {"train_tr", sequence_stats(sp.train_tr)},
                  {"valid", sequence_stats(sp.valid)}}},
                {"warnings", json::array()}};
    write_split(split_dir, sp, train_file);
    r.split_dir = split_dir;
    r.protocol_choice = want == "auto"
                            ? "session, the default for a split given as files (--protocol "
                              "sequential evaluates the last item of each test sequence instead)"
                            : "as asked (--protocol " + want + ")";
    r.note = "the split given as files: training " + fs::path(train_file).filename().string() +
             ", test " + fs::path(test_file).filename().string() +
             (tr_file.empty() ? std::string(" (no validation pair)")
                              : ", validation " + fs::path(tr_file).filename().string() + " -> " +
                                    fs::path(valid_file).filename().string()) +
             "; the catalogue is the training file's items, test events with other items "
             "removed";
    return r;
  }

  // A log file: prepared here exactly as `seqrec prepare` does (the same protocol rule,
  // time-unit detection, degenerate-test-set check and notes).
  ReadInfo info;
  say(opt.quiet, "reading " + opt.data);
  EventLog log = read_events(opt.data, ro, &info);
  Config pc = opt.prepare_cfg;
  pc.set("protocol", want, "compare --protocol");
  PrepareOptions po = to_prepare_options(pc);
  po.force = opt.force;
  PreparedSplit sp = prepare_split(log, po, &info);
  r.protocol = sp.protocol;
  r.degenerate_checked = true;
  r.detected = sp.stats.value("detected", json::array());
  for (const auto& d : r.detected) say(opt.quiet, d.get<std::string>());
  const json choice = sp.stats.value("protocol_choice", json::object());
  const std::string reason = choice.value("reason", std::string());
  if (want == "auto")
    r.protocol_choice = "chosen by --protocol auto: " + reason;
  else
    r.protocol_choice = "as asked (--protocol " + want + ")" +
                        (choice.value("auto_would_choose", want) != want
                             ? "; --protocol auto would choose " +
                                   choice.value("auto_would_choose", std::string()) + ": " + reason
                             : std::string());
  sp.stats["options"] = pc.to_json();
  sp.stats["input"] = fs::absolute(opt.data).string();
  // A read from the binary cache has no layout to tell, only the format detected earlier.
  const std::string layout = info.from_cache ? std::string(format_name(info.format)) +
                                                   " format, read from seqrec's binary cache"
                                             : info.layout;
  sp.stats["layout"] = layout;
  write_split(split_dir, sp, opt.data);
  r.split_dir = split_dir;
  r.note = "the log file " + fs::path(opt.data).filename().string() + " (" + layout +
           "), prepared by `seqrec compare` for the " + r.protocol + " protocol (" +
           r.protocol_choice + ")";
  return r;
}

/// A model entry of the comparison with its resolved configuration.
struct ModelPlan {
  std::string label, type, preset, config_file;
  Config config;
  bool features = false;  ///< trains with the --item-features file
};

std::vector<ModelPlan> plan_models(const CompareOptions& opt, const std::string& protocol) {
  std::vector<std::string> entries = opt.models;
  if (entries.empty()) entries = default_compare_models(protocol);
  std::vector<ModelPlan> plans;
  std::set<std::string> labels;
  for (const auto& e : entries) {
    ModelPlan p;
    const auto eq = e.find('=');
    p.label = eq == std::string::npos ? e : e.substr(0, eq);
    const std::string type = eq == std::string::npos ? e : e.substr(eq + 1);
    if (p.label.empty() || type.empty())
      throw InputError("--models: empty entry in '" + e + "' (use TYPE or LABEL=TYPE)");
    for (char ch : p.label)
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-'))
        throw InputError("--models: label '" + p.label +
                         "' may only hold letters, digits, '_' and '-'");
    p.type = find_model(type).type;
    if (!labels.insert(p.label).second)
      throw InputError("--models: '" + p.label +
                       "' appears twice; give the second one a label, e.g. " + p.label +
                       "2=" + p.type);
    p.preset = default_compare_preset(p.type, protocol);
    plans.push_back(std::move(p));
  }
  auto find_plan = [&](const std::string& label, const std::string& what) -> ModelPlan& {
    for (auto& p : plans)
      if (p.label == label) return p;
    std::string known;
    for (const auto& p : plans) known += (known.empty() ? "" : ", ") + p.label;
    throw InputError(what + ": '" + label + "' is not one of the compared models (" + known + ")");
  };
  const bool have_features =
      !opt.feature_cfg.specs().empty() && !opt.feature_cfg.get_string("item_features").empty();
  if (!opt.feature_models.empty() && !have_features)
    throw InputError("--features-for needs --item-features FILE");
  if (have_features) {
    if (opt.feature_models.empty()) {
      for (auto& p : plans) p.features = model_uses_item_features(p.type);
    } else {
      for (const auto& label : opt.feature_models) {
        ModelPlan& p = find_plan(label, "--features-for");
        if (!model_uses_item_features(p.type))
          throw InputError("--features-for: model '" + p.label + "' (" + p.type +
                           ") does not use item features (dssm and sasrec do)");
        p.features = true;
      }
    }
  }
  for (const auto& s : opt.presets) {
    auto [label, name] = split_assignment(s, '=', "--preset");
    find_plan(label, "--preset").preset = name == "none" ? "" : name;
  }
  for (const auto& s : opt.configs) {
    auto [label, file] = split_assignment(s, '=', "--model-config");
    find_plan(label, "--model-config").config_file = file;
  }
  for (auto& p : plans) {
    const ModelInfo& info = find_model(p.type);
    p.config = model_config(info, p.preset, p.config_file);
    if (const std::string ep = epochs_param(p.type); opt.epochs > 0 && !ep.empty())
      p.config.set(ep, std::to_string(opt.epochs), "--epochs");
  }
  for (const auto& s : opt.sets) {
    auto [lhs, value] = split_assignment(s, '=', "--set");
    auto [label, param] = split_assignment(lhs, '.', "--set");
    ModelPlan& p = find_plan(label, "--set");
    if (!p.config.has(param))
      throw InputError("--set " + s + ": '" + param + "' is not a parameter of model '" + p.type +
                       "' (see `seqrec models`)");
    p.config.set(param, value, "--set " + s);
  }
  return plans;
}

/// The result of a child process.
struct ChildResult {
  int exit_code = 0;
  double seconds = 0;
  int64_t peak_rss_bytes = 0;
};

/// Runs `argv` with stdout and stderr going to `log_path` and waits for it; the peak RSS
/// is the kernel's ru_maxrss of that child (kilobytes on Linux). While it runs, every line
/// the child writes to the log is passed to `on_line` (if set), so that its progress shows.
ChildResult run_child(const std::vector<std::string>& argv, const std::string& log_path,
                      const std::function<void(const std::string&)>& on_line) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw IoError("cannot start '" + argv[0] + "': " + std::strerror(rc));
  // The log is read as it grows: whole lines are passed on, a partial one waits.
  const int log_fd = on_line ? ::open(log_path.c_str(), O_RDONLY) : -1;
  std::string pending;
  auto drain = [&] {
    if (log_fd < 0) return;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(log_fd, buf, sizeof buf)) > 0) {
      pending.append(buf, static_cast<size_t>(n));
      size_t start = 0, end;
      while ((end = pending.find_first_of("\r\n", start)) != std::string::npos) {
        if (end > start) on_line(pending.substr(start, end - start));
        start = end + 1;
      }
      pending.erase(0, start);
    }
  };
  int status = 0;
  struct rusage ru {};
  // An interrupt request (the Python binding's Ctrl-C, seqrec/interrupt.hpp) stops the child:
  // SIGTERM, then SIGKILL if it is still running a second later.
  std::optional<std::chrono::steady_clock::time_point> stopped;
  bool killed = false;
  for (;;) {
    const pid_t w = wait4(pid, &status, WNOHANG, &ru);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      if (log_fd >= 0) ::close(log_fd);
      throw IoError(std::string("waiting for a training process: ") + std::strerror(errno));
    }
    drain();
    if (interrupt_requested()) {
      const auto now = std::chrono::steady_clock::now();
      if (!stopped) {
        ::kill(pid, SIGTERM);
        stopped = now;
      } else if (!killed && now - *stopped > std::chrono::seconds(1)) {
        ::kill(pid, SIGKILL);
        killed = true;
      }
    }
    if (w == 0) ::poll(nullptr, 0, 50);  // the child runs on: look again in 50 ms
  }
  drain();
  if (!pending.empty() && on_line) on_line(pending);
  if (log_fd >= 0) ::close(log_fd);
  if (stopped) throw Interrupted("comparison interrupted");
  ChildResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.peak_rss_bytes = static_cast<int64_t>(ru.ru_maxrss) * 1024;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

/// FNV-1a 64 of a file's bytes, in hex ("" when it cannot be read).
std::string file_checksum(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  uint64_t h = model_file::kFnvOffset;
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h = model_file::fnv1a64(buf.data(), static_cast<size_t>(f.gcount()), h);
  }
  char hex[24];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

/// What decides a training's result, recorded next to its model file when it finishes
/// (WORK/models/TAG.done.json): a later compare that would run the same training reuses
/// the model instead. The program path is left out (a rebuilt binary in another place
/// trains the same); its version is kept.
json training_key(const std::vector<std::string>& argv, const json& config, const json& data) {
  return {{"arguments", std::vector<std::string>(argv.begin() + 1, argv.end())},
          {"config", config},
          {"data", data},
          {"seqrec_version", SEQREC_VERSION}};
}

json read_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return nullptr;
  try {
    return json::parse(f);
  } catch (const json::exception&) {
    return nullptr;  // a record cut short by an interruption: as if there were none
  }
}

/// The finished-training record at `done_path` when it matches `key` and its model file
/// (if `check_model`) still has the recorded size and checksum; null otherwise.
json reusable_training(const std::string& done_path, const json& key, const std::string& model_path,
                       bool check_model) {
  json rec = read_json_file(done_path);
  if (!rec.is_object() || rec.value("key", json()) != key) return nullptr;
  if (check_model) {
    std::error_code ec;
    const auto size = fs::file_size(model_path, ec);
    if (ec || static_cast<int64_t>(size) != rec.value("model_bytes", int64_t{-1}) ||
        file_checksum(model_path) != rec.value("model_fnv1a64", std::string()))
      return nullptr;
  }
  return rec;
}

/// Written last, after the model file: an interruption before this leaves no record.
void record_training(const std::string& done_path, json rec) {
  io::write_file(done_path, rec.dump(2) + "\n");
}

std::string tail_of(const std::string& path, size_t lines) {
  std::ifstream f(path);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(f, line)) {
    // Progress bars redraw with \r: keep what a terminal would show.
    const auto cr = line.rfind('\r');
    if (cr != std::string::npos) line = line.substr(cr + 1);
    all.push_back(line);
  }
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += "    " + all[i] + "\n";
  return out;
}

/// Reference training rates (events trained per second, 2 threads) from docs/performance.md,
/// for the estimate printed before a compare starts. GRU4Rec, rsc15 preset: ~55k events/s.
/// SASRec on ML-1M (1.0M events, ml1m preset): 12.3 s per epoch with full cross-entropy
/// (~80k events/s), 2.3-3.1 s with the sampled losses (~350k events/s). Models without an
/// epoch parameter fit in one pass over the events (~2M events/s).
double reference_rate(const std::string& type, const Config& config, bool iterative) {
  if (type == "gru4rec") return 55e3;
  if (type == "sasrec")
    return config.has("loss") && config.get_string("loss") == "ce" ? 80e3 : 350e3;
  return iterative ? 50e3 : 2e6;
}

/// Epochs of a model configuration (its type's epoch parameter), or 0 for one pass.
int64_t epochs_of(const std::string& type, const Config& c) {
  const std::string ep = epochs_param(type);
  return ep.empty() ? 0 : c.get_int(ep);
}

std::string fmt_duration(double s) {
  char buf[48];
  if (s < 90)
    std::snprintf(buf, sizeof buf, "%.0f s", s);
  else if (s < 5400)
    std::snprintf(buf, sizeof buf, "%.0f min", s / 60);
  else
    std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  return buf;
}

/// The arguments that define a compare: a re-run with the same ones may continue in the
/// same folder (OUT/compare.json); the thread count is one of them because the training
/// commands carry it. Quietness and the report's command line are not.
json compare_identity(const CompareOptions& opt) {
  auto abs = [](const std::string& p) {
    return p.empty() ? p : fs::absolute(fs::path(p)).lexically_normal().string();
  };
  std::vector<std::string> configs;
  for (const auto& c : opt.configs) {
    const auto eq = c.find('=');
    configs.push_back(eq == std::string::npos ? c : c.substr(0, eq + 1) + abs(c.substr(eq + 1)));
  }
  return {{"data", abs(opt.data)},
          {"test", abs(opt.test_file)},
          {"work", abs(opt.work_dir)},
          {"protocol", opt.protocol},
          {"models", opt.models},
          {"presets", opt.presets},
          {"configs", configs},
          {"sets", opt.sets},
          {"epochs", opt.epochs},
          {"seeds", opt.seeds},
          {"curves", opt.curves},
          {"early_stopping", opt.stop_cfg.specs().empty() ? json() : opt.stop_cfg.to_json()},
          {"tune", opt.tune_trials},
          {"tune_time", opt.tune_seconds},
          {"tuning", (opt.tune_trials > 0 || opt.tune_seconds > 0) && !opt.tune_cfg.specs().empty()
                         ? opt.tune_cfg.to_json()
                         : json()},
          {"metric", opt.metric},
          {"threads", opt.threads},
          {"input_format", opt.read_cfg.to_json()},
          {"preprocessing", opt.prepare_cfg.to_json()},
          {"evaluation", opt.eval_cfg.to_json()},
          {"item_features",
           opt.feature_cfg.specs().empty() || opt.feature_cfg.get_string("item_features").empty()
               ? json()
               : json{{"file", abs(opt.feature_cfg.get_string("item_features"))},
                      {"options", opt.feature_cfg.to_json()},
                      {"for", opt.feature_models}}}};
}

/// Refuses an existing, non-empty OUT that does not hold a compare with these arguments
/// (unless --force); records the arguments in OUT/compare.json. Returns whether OUT holds
/// an earlier run of this same compare.
bool claim_out_dir(const CompareOptions& opt) {
  const fs::path out(opt.out_dir);
  const fs::path id_path = out / "compare.json";
  const json identity = compare_identity(opt);
  std::error_code ec;
  bool same = false;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec))
      throw InputError("-o " + opt.out_dir + ": exists and is not a folder");
    if (!fs::is_empty(out, ec)) {
      const json prev = read_json_file(id_path.string());
      const json prev_args = prev.is_object() ? prev.value("arguments", json()) : json();
      same = prev_args == identity;
      // A compare that stopped before any training finished (e.g. on a mistyped model
      // name) left only what it can make again: a corrected command may take it over.
      const bool nothing_trained = prev.is_object() && !prev.value("trained", true);
      if (!same && !opt.force && !nothing_trained) {
        std::string why;
        if (!prev_args.is_object()) {
          why = "it is not a folder written by `seqrec compare` (no compare.json)";
        } else {
          for (auto it = identity.begin(); it != identity.end(); ++it)
            if (prev_args.value(it.key(), json()) != it.value()) {
              why = "it holds a compare with other arguments (" + it.key() + ": " +
                    prev_args.value(it.key(), json()).dump() + " there, " + it.value().dump() +
                    " now)";
              break;
            }
          if (why.empty()) why = "it holds a compare with other arguments";
        }
        throw InputError("-o " + opt.out_dir + ": the folder is not empty and " + why +
                         "; choose a new or empty folder, run the same compare again to "
                         "continue it, or add --force to write into it anyway (files of the "
                         "same names are replaced; trainings recorded with identical "
                         "arguments are reused)");
      }
    }
  }
  fs::create_directories(out);
  io::write_file(
      id_path.string(),
      json{{"written_by", "seqrec compare"}, {"arguments", identity}, {"trained", false}}.dump(2) +
          "\n");
  return same;
}

/// Notes in OUT/compare.json that a training finished (or was reused): from then on the
/// folder belongs to this compare's arguments.
void mark_out_dir_trained(const CompareOptions& opt) {
  const fs::path id_path = fs::path(opt.out_dir) / "compare.json";
  json id = read_json_file(id_path.string());
  if (!id.is_object() || id.value("trained", false)) return;
  id["trained"] = true;
  io::write_file(id_path.string(), id.dump(2) + "\n");
}

/// The machine the timings come from: CPU model, instruction-set level, logical cores, load
/// average now.
json machine_info() {
  json m;
  std::ifstream cpu("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpu, line))
    if (line.rfind("model name", 0) == 0) {
      const auto c = line.find(':');
      if (c != std::string::npos) m["cpu"] = line.substr(line.find_first_not_of(" \t", c + 1));
      break;
    }
  // The instruction-set level the kernels ran at: timings on one machine differ by level
  // (SEQREC_ISA can lower it).
  m["isa"] = isa::describe();
  m["logical_cpus"] = static_cast<int64_t>(sysconf(_SC_NPROCESSORS_ONLN));
  std::ifstream la("/proc/loadavg");
  double l1 = 0;
  if (la >> l1) m["load_average_1min_at_start"] = l1;
  return m;
}

/// The test set of a split compare did not prepare itself (a prepare'd folder, given files)
/// checked as `seqrec prepare` checks the splits it writes (prepare_split): fewer than
/// kMinTestPredictions predictions or under kMinTestEventShare of the split's events is
/// refused before anything trains, unless --force. Returns the sentence for the report when
/// forced, "" when the test set is fine.
std::string check_test_set(const CompareOptions& opt, const std::string& protocol,
                           const TrainData& td, const TestData& test) {
  const bool session = protocol == "session";
  const int64_t preds = count_predictions(test.test, parse_protocol(protocol));
  const int64_t total = session ? td.train.n_events() + test.test.n_events()
                                : td.train.n_events() + static_cast<int64_t>(test.test.size());
  const double share =
      total > 0 ? static_cast<double>(test.test.n_events()) / static_cast<double>(total) : 0.0;
  if (preds >= kMinTestPredictions && share >= kMinTestEventShare) return "";
  const int64_t n = static_cast<int64_t>(test.test.size());
  const std::string what =
      "degenerate test set: the test set holds " + std::to_string(n) +
      (session ? (n == 1 ? " session" : " sessions") : (n == 1 ? " sequence" : " sequences")) +
      " over the catalogue's items: " + std::to_string(preds) +
      (preds == 1 ? " prediction, " : " predictions, ") + fmt("%.2f", 100.0 * share) +
      "% of the split's " + std::to_string(total) + " events (seqrec asks for at least " +
      std::to_string(kMinTestPredictions) + " predictions and " +
      fmt("%.1f", 100.0 * kMinTestEventShare) + "% of the events)";
  const std::string fix =
      "prepare the log again with `seqrec prepare` (which says what it detected) or pass the "
      "log file itself";
  if (!opt.force)
    throw InputError(test.source, 0,
                     what + "; metrics on it would mean nothing. To change it: " + fix +
                         "; --force compares on it anyway");
  return "forced: " + what + "; compared anyway because of --force (to change it: " + fix + ")";
}

void write_text(const std::string& path, const std::string& text) {
  io::write_file(path, text);
}

}  // namespace

/// The breakdown of every model's runs (EvalResult::groups: warm/cold targets, training
/// frequency of the target) as results.json "target_groups": per model and group, each
/// metric's mean and std over the seeds; null metrics for a group the model cannot score.
json target_groups_json(const std::vector<CompareModelResult>& results, size_t n_cold) {
  json out = {{"cold_items", static_cast<int64_t>(n_cold)}, {"models", json::array()}};
  for (const auto& mr : results) {
    if (mr.runs.empty() || mr.runs.front().eval.groups.empty()) continue;
    json groups = json::array();
    const auto& first = mr.runs.front().eval.groups;
    for (size_t g = 0; g < first.size(); ++g) {
      const TargetGroup& g0 = first[g];
      json j = {{"kind", g0.kind},
                {"name", g0.name},
                {"n_predictions", g0.n_predictions},
                {"n_unscorable", g0.n_unscorable},
                {"scorable", g0.scorable}};
      json chance = json::object();
      for (const auto& [k, v] : g0.chance) chance[k] = v;
      j["chance"] = chance;
      if (!g0.scorable) {
        j["metrics"] = nullptr;
        j["cannot_score"] =
            "the model knows items by their id only and these targets have no training event";
      } else {
        json ms = json::object();
        for (const auto& [k, v0] : g0.metrics) {
          std::vector<double> xs;
          for (const auto& run : mr.runs)
            if (g < run.eval.groups.size() && run.eval.groups[g].metrics.count(k))
              xs.push_back(run.eval.groups[g].metrics.at(k));
          double mean = 0, var = 0;
          for (double x : xs) mean += x;
          mean /= static_cast<double>(std::max<size_t>(xs.size(), 1));
          for (double x : xs) var += (x - mean) * (x - mean);
          json m = {{"mean", mean}, {"n", static_cast<int64_t>(xs.size())}};
          if (xs.size() > 1) m["std"] = std::sqrt(var / static_cast<double>(xs.size() - 1));
          ms[k] = m;
        }
        j["metrics"] = ms;
      }
      groups.push_back(j);
    }
    out["models"].push_back({{"label", mr.label}, {"type", mr.type}, {"groups", groups}});
  }
  return out;
}

json run_compare(const CompareOptions& opt) {
  const auto t_start = std::chrono::steady_clock::now();
  if (opt.out_dir.empty()) throw InputError("--out: give a folder for the report");
  if (opt.seeds < 1 || opt.seeds > 1000)
    throw InputError("--seeds must be between 1 and 1000, got " + std::to_string(opt.seeds));
  if (opt.epochs < 0) throw InputError("--epochs must be >= 1");
  if (opt.seqrec_binary.empty() || !fs::exists(opt.seqrec_binary))
    throw Error("compare: the seqrec executable '" + opt.seqrec_binary + "' was not found");
  const std::string work =
      opt.work_dir.empty() ? (fs::path(opt.out_dir) / "work").string() : opt.work_dir;
  if (claim_out_dir(opt))
    say(opt.quiet, opt.out_dir +
                       " holds an earlier run of this same compare: trainings it finished are "
                       "reused");
  for (const char* sub : {"models", "configs", "logs"})
    fs::create_directories(fs::path(work) / sub);

  const ResolvedData rd = resolve_data(opt, work);
  std::vector<ModelPlan> plans = plan_models(opt, rd.protocol);

  // The data every model shares.
  const ReadOptions ro = to_read_options(opt.read_cfg);
  TrainData td = load_train_data(rd.split_dir, SplitPart::Test, ro);
  TestData test = load_test_data(rd.split_dir, SplitPart::Test, td.items, ro);
  TestData valid = load_test_data(rd.split_dir, SplitPart::Valid, td.items, ro);
  const std::vector<int64_t> counts = item_counts(td.train, td.items.size());

  // A degenerate test set stops here, before anything trains (a log file was checked by
  // prepare_split already, with the same rule and --force).
  std::string forced_note;
  if (!rd.degenerate_checked) {
    forced_note = check_test_set(opt, rd.protocol, td, test);
    if (!forced_note.empty()) say(opt.quiet, forced_note);
  } else {
    for (const auto& d : rd.detected)
      if (d.get<std::string>().rfind("forced:", 0) == 0) forced_note = d.get<std::string>();
  }

  CompareSetup setup;
  setup.protocol = rd.protocol;
  setup.protocol_choice = rd.protocol_choice;
  setup.detected = rd.detected;
  if (!rd.degenerate_checked && !forced_note.empty()) {
    // This check's own note replaces one `seqrec prepare --force` left in split.json.
    json kept = json::array();
    for (const auto& d : setup.detected)
      if (!d.is_string() || d.get<std::string>().rfind("forced:", 0) != 0) kept.push_back(d);
    kept.push_back(forced_note);
    setup.detected = kept;
  }
  setup.data_note = rd.note;
  {
    fs::path dp = fs::path(opt.data);
    if (!dp.has_filename()) dp = dp.parent_path();  // "folder/"
    setup.data_name = dp.filename().string();
  }
  setup.split = td.split;
  setup.split_dir = rd.split_dir;
  setup.n_items = td.items.size();
  setup.test_dropped_events = test.dropped_events;
  // What the trainings' results depend on besides their command and configuration.
  json train_data_key, valid_data_key;
  {
    TrainData tr = load_train_data(rd.split_dir, SplitPart::Valid, ro);
    train_data_key = data_fingerprint(td.items, td.train);
    valid_data_key = {{"train_tr", data_fingerprint(tr.items, tr.train)},
                      {"valid", data_fingerprint(tr.items, valid.test)}};
    setup.stats = {{"train_full", sequence_stats(td.train)},
                   {"test", sequence_stats(test.test)},
                   {"train_tr", sequence_stats(tr.train)},
                   {"valid", sequence_stats(valid.test)}};
  }
  EvalOptions eo = to_eval_options(opt.eval_cfg, rd.protocol);
  eo.protocol = parse_protocol(rd.protocol);
  eo.threads = opt.threads;
  eo.progress = false;
  eo.keep_ranks = true;
  setup.eval = eo;
  std::string metric = opt.metric;
  if (metric.empty()) metric = rd.protocol == "sequential" ? "ndcg@10" : "recall@20";
  parse_metric_at_k(metric, "--metric");  // checked before anything runs
  setup.metric = metric;
  setup.seeds = opt.seeds;
  setup.epochs_override = opt.epochs;
  setup.threads = opt.threads;
  setup.command_line = opt.command_line;
  setup.seqrec_version = SEQREC_VERSION;
  setup.machine = machine_info();

  int64_t valid_predictable = 0;
  for (size_t s = 0; s < valid.test.size(); ++s) valid_predictable += valid.test.length(s) >= 2;

  say(opt.quiet,
      rd.protocol + " protocol on " + rd.split_dir + ": " + std::to_string(td.train.size()) +
          " training sequences, " + std::to_string(td.items.size()) + " items, " +
          std::to_string(test.test.size()) + " test sequences; " + std::to_string(plans.size()) +
          " models x " + std::to_string(opt.seeds) + " seeds");

  // Before anything trains: an estimate of the whole run from reference rates, replaced by
  // the measured time of a model's first run for its other runs (docs/compare.md).
  const int64_t train_events = td.train.n_events();
  struct RunsLeft {
    double reference = 0;  ///< seconds per run from the reference rate
    double measured = -1;  ///< seconds of this model's first training run, once known
    int left = 0;
  };
  std::vector<RunsLeft> left(plans.size());
  // Callers that leave the early-stopping table empty (the Python binding) get its defaults.
  const Config stop_cfg =
      opt.stop_cfg.specs().empty() ? Config(early_stopping_option_specs("", 3)) : opt.stop_cfg;
  const int patience = static_cast<int>(stop_cfg.get_int("patience"));
  std::string valid_metric = stop_cfg.get_string("valid_metric");
  if (valid_metric.empty()) valid_metric = metric;
  parse_metric_at_k(valid_metric, "--valid-metric");
  // Early stopping needs the validation run of every model that trains in epochs.
  const bool validation_runs = (opt.curves || patience > 0) && valid_predictable > 0;
  {
    std::string parts;
    double total = 0;
    for (size_t i = 0; i < plans.size(); ++i) {
      const int64_t ep = epochs_of(plans[i].type, plans[i].config);
      // The reference rates are 2-thread figures; one thread trains about half as fast.
      const double rate =
          reference_rate(plans[i].type, plans[i].config, ep > 0) * (opt.threads == 1 ? 0.5 : 1.0);
      // + 1 s per run: starting the process and reading the split.
      left[i].reference = static_cast<double>(train_events) * std::max<int64_t>(ep, 1) / rate + 1;
      left[i].left =
          opt.seeds + (validation_runs && (opt.curves || (patience > 0 && ep > 0)) ? 1 : 0);
      total += left[i].reference * left[i].left;
      parts += (parts.empty() ? "" : ", ") + plans[i].label + " " +
               fmt_duration(left[i].reference * left[i].left);
    }
    say(opt.quiet, "estimated time: about " + fmt_duration(total) + " (" + parts +
                       "): " + std::to_string(train_events) +
                       " training events x epochs / a reference rate per model (docs/compare.md), "
                       "times the runs (seeds" +
                       (validation_runs ? std::string(" + 1 validation run") : std::string()) +
                       "); a rough figure, revised with measured times as models finish");
  }
  auto time_left = [&] {
    double t = 0;
    for (const auto& l : left) t += (l.measured >= 0 ? l.measured : l.reference) * l.left;
    return t;
  };

  std::vector<CompareModelResult> results;
  const int total_runs = static_cast<int>(plans.size()) * opt.seeds;
  int run_no = 0;
  const std::string threads = std::to_string(opt.threads);
  for (size_t pi = 0; pi < plans.size(); ++pi) {
    ModelPlan& p = plans[pi];
    const std::string ep_param = epochs_param(p.type);
    CompareModelResult mr;
    // --tune: the model's default space searched on the validation pair first; the model is
    // then compared with the best configuration found (its epoch budget left as it was, so
    // that early stopping below decides the epochs as for every other model).
    const bool tuning = opt.tune_trials > 0 || opt.tune_seconds > 0;
    if (tuning && valid_predictable == 0)
      say(opt.quiet, "not tuning " + p.label +
                         ": the split has no validation pair to tune on (--tune needs one)");
    if (tuning && valid_predictable > 0 && !default_space(p.type).dims.empty()) {
      const fs::path tdir = fs::path(work) / "tune";
      fs::create_directories(tdir);
      const std::string base_path = (tdir / (p.label + ".base.json")).string();
      write_text(base_path, p.config.to_json().dump(2) + "\n");
      TuneOptions to;
      to.data = rd.split_dir;
      to.model = p.type;
      to.out_dir = (tdir / p.label).string();
      to.config_file = base_path;
      to.tune_cfg = opt.tune_cfg.specs().empty() ? Config(tune_option_specs()) : opt.tune_cfg;
      to.tune_cfg.set("trials", std::to_string(opt.tune_trials > 0 ? opt.tune_trials : 1000000),
                      "--tune");
      to.tune_cfg.set("time_budget", exact_text(opt.tune_seconds), "--tune-time");
      to.stop_cfg = stop_cfg;
      to.stop_cfg.set("valid_metric", valid_metric, "--valid-metric");
      to.read_cfg = opt.read_cfg;
      to.threads = opt.threads;
      to.quiet = opt.quiet;
      say(opt.quiet, "tuning " + p.label + " (" + p.type + ") on the validation pair: " +
                         (opt.tune_trials > 0 ? std::to_string(opt.tune_trials) + " trials"
                                              : std::string("trials")) +
                         (opt.tune_seconds > 0 ? ", at most " + fmt("%.0f", opt.tune_seconds) + " s"
                                               : std::string()) +
                         " in " + to.out_dir);
      const TuneResult tr = run_tune(to);
      const std::string budget_text = ep_param.empty() ? "" : p.config.raw(ep_param);
      p.config.from_json(tr.best_config, tr.best_config_path);
      if (!ep_param.empty()) p.config.set(ep_param, budget_text, "compare");
      const auto& best = tr.trials[static_cast<size_t>(tr.best)];
      mr.tuning = {{"trials", tr.trials.size()},
                   {"metric", tr.metric},
                   {"best_value", best.value},
                   {"best_trial", best.number},
                   {"params", tr.best_params},
                   {"folder", to.out_dir},
                   {"seconds", [&] {
                      double t = 0;
                      for (const auto& x : tr.trials) t += x.seconds;
                      return t;
                    }()}};
    }
    mr.label = p.label;
    mr.type = p.type;
    mr.preset = p.preset;
    mr.config_file = p.config_file;
    mr.config = p.config.to_json();
    mr.config_changes = json::object();
    const json defaults = default_config(p.type).to_json();
    for (auto it = mr.config.begin(); it != mr.config.end(); ++it)
      if (!defaults.contains(it.key()) || defaults[it.key()] != it.value())
        mr.config_changes[it.key()] = it.value();
    const std::string cfg_path = (fs::path(work) / "configs" / (p.label + ".json")).string();
    write_text(cfg_path, mr.config.dump(2) + "\n");
    const int64_t epoch_budget = epochs_of(p.type, p.config);

    // The child reports its progress into its log (no -q); compare passes the lines on.
    // `final_epochs` > 0 replaces the epoch budget (the best epoch of the validation run).
    auto train_argv = [&](int seed, const std::string& model_path, bool validation,
                          int64_t final_epochs) {
      std::vector<std::string> a{opt.seqrec_binary,
                                 "--threads",
                                 threads,
                                 "train",
                                 rd.split_dir,
                                 "-m",
                                 p.type,
                                 "--config",
                                 cfg_path,
                                 "--seed",
                                 std::to_string(seed),
                                 "-o",
                                 model_path};
      const std::string cache = opt.read_cfg.get_string("cache_dir");
      if (!cache.empty()) a.insert(a.end(), {"--cache-dir", cache});
      if (validation) {
        a.insert(a.end(), {"--validation", "--monitor", "--valid-metric", valid_metric});
        if (patience > 0 && epoch_budget > 0)
          a.insert(a.end(), {"--patience", std::to_string(patience)});
      }
      if (p.features) {
        for (const auto& sp : feature_option_specs()) {
          std::string v = opt.feature_cfg.raw(sp.name);
          if (sp.name == "item_features") v = fs::absolute(fs::path(v)).lexically_normal().string();
          a.insert(a.end(), {"--" + cli::dashed(sp.name), v});
        }
      }
      if (final_epochs > 0) {
        std::string flag = "--" + ep_param;
        std::replace(flag.begin(), flag.end(), '_', '-');
        a.insert(a.end(), {flag, std::to_string(final_epochs)});
      }
      return a;
    };
    // The child's first and last lines ("training TYPE on ...", "trained TYPE in ...") say
    // what compare's own lines say; its progress, epoch and validation lines are passed on.
    std::function<void(const std::string&)> forward;
    if (!opt.quiet)
      forward = [&](const std::string& line) {
        if (line.rfind("training " + p.type + " on ", 0) == 0 ||
            line.rfind("trained " + p.type + " in ", 0) == 0)
          return;
        std::fprintf(stderr, "compare:       %s: %s\n", p.label.c_str(), line.c_str());
      };

    json valid_history;  // the validation run's [{"epoch", "metrics"}], if it ran
    // The validation run first (train_tr -> valid, the test set never looked at): the
    // learning curve, and with early stopping the epoch count of the seed runs.
    const bool this_validation_run =
        validation_runs && (opt.curves || (patience > 0 && epoch_budget > 0));
    if (!this_validation_run) {
      mr.curve_note = valid_predictable == 0
                          ? "the split has no validation pair, so no learning curve"
                          : "learning curves were turned off (--no-curves)";
    } else {
      const std::string tag = p.label + "-validation";
      const std::string model_path = (fs::path(work) / "models" / (tag + ".seqrec")).string();
      const std::string log_path = (fs::path(work) / "logs" / (tag + ".log")).string();
      const std::string done_path = (fs::path(work) / "models" / (tag + ".done.json")).string();
      mr.curve_command = train_argv(1, model_path, true, 0);
      const json key = training_key(mr.curve_command, mr.config, valid_data_key);
      // The record holds the curve itself: the model file is not needed afterwards.
      json prev = reusable_training(done_path, key, model_path, false);
      json hist;
      if (!prev.is_null()) {
        hist = prev.value("validation_history", json::array());
        say(opt.quiet, "      validation run of " + p.label +
                           ": reusing the learning curve of an earlier run with the same "
                           "arguments");
      } else {
        say(opt.quiet, "      validation run of " + p.label +
                           (patience > 0 && epoch_budget > 0
                                ? " (early stopping on " + valid_metric + ", patience " +
                                      std::to_string(patience) + ") ..."
                                : std::string(" for its learning curve ...")));
        fs::remove(done_path);
        const ChildResult cr = run_child(mr.curve_command, log_path, forward);
        if (cr.exit_code != 0)
          throw Error("the validation run of " + p.label + " failed with exit code " +
                      std::to_string(cr.exit_code) + "; the end of " + log_path + ":\n" +
                      tail_of(log_path, 8));
        ModelBundle b = load_model(model_path);
        hist = b.meta.value("validation_history", json::array());
        record_training(done_path, {{"key", key},
                                    {"validation_history", hist},
                                    {"process_seconds", cr.seconds},
                                    {"peak_rss_bytes", cr.peak_rss_bytes}});
        if (hist.empty()) fs::remove(model_path);
      }
      --left[pi].left;
      valid_history = hist;
      if (hist.empty()) {
        mr.curve = nullptr;
        mr.curve_note = "the model is fitted in one pass (no epochs)";
      } else if (!opt.curves) {
        // The run chose the epoch count (early stopping); the report draws no curve.
        mr.curve = nullptr;
        mr.curve_note =
            "learning curves were turned off (--no-curves); the validation run still chose "
            "the epoch count (early stopping)";
      } else {
        mr.curve = hist;
        mr.curve_note =
            "validation run: trained on train_tr, " + valid_metric + " on valid after every epoch";
      }
    }
    // Convergence: what the validation run says about the epoch budget.
    int64_t final_epochs = 0;
    if (epoch_budget > 0) {
      json c = {{"epoch_budget", epoch_budget}, {"patience", patience}, {"metric", valid_metric}};
      const std::string key = parse_metric_at_k(valid_metric, "--valid-metric").result_key();
      int best_epoch = 0, last_epoch = 0;
      double best = -1;
      if (valid_history.is_array())
        for (const auto& h : valid_history) {
          const json met = h.value("metrics", json::object());
          const int e = h.value("epoch", 0);
          last_epoch = std::max(last_epoch, e);
          if (met.contains(key) && met[key].is_number() && met[key].get<double>() > best) {
            best = met[key].get<double>();
            best_epoch = e;
          }
        }
      if (best_epoch > 0) {
        const bool stopped = last_epoch < epoch_budget;
        c["epochs_run"] = last_epoch;
        c["best_epoch"] = best_epoch;
        c["best_value"] = best;
        c["stopped_early"] = stopped;
        c["still_improving"] = !stopped && best_epoch == last_epoch;
        if (patience > 0) {
          final_epochs = best_epoch;
          c["policy"] =
              "early stopping on the validation pair, then the full training data "
              "for the best epoch count";
          c["final_epochs"] = best_epoch;
        } else {
          c["policy"] = "the whole epoch budget (--patience 0)";
          c["final_epochs"] = epoch_budget;
        }
      } else {
        c["policy"] = "the whole epoch budget";
        c["final_epochs"] = epoch_budget;
        c["still_improving"] = nullptr;
        c["note"] = valid_predictable == 0 ? "the split has no validation pair: no early stopping"
                                           : "no validation run (--no-curves with --patience 0)";
      }
      mr.convergence = c;
    }

    for (int seed = 1; seed <= opt.seeds; ++seed) {
      ++run_no;
      const std::string tag = p.label + "-seed" + std::to_string(seed);
      const std::string model_path = (fs::path(work) / "models" / (tag + ".seqrec")).string();
      const std::string log_path = (fs::path(work) / "logs" / (tag + ".log")).string();
      const std::string done_path = (fs::path(work) / "models" / (tag + ".done.json")).string();
      CompareRun run;
      run.seed = seed;
      run.command = train_argv(seed, model_path, false, final_epochs);
      const json key = training_key(run.command, mr.config, train_data_key);
      const std::string head = "[" + std::to_string(run_no) + "/" + std::to_string(total_runs) +
                               "] " + p.label + " (" + p.type +
                               (p.preset.empty() ? "" : ", preset " + p.preset) + "), seed " +
                               std::to_string(seed);
      const json prev = reusable_training(done_path, key, model_path, true);
      if (!prev.is_null()) {
        run.process_seconds = prev.value("process_seconds", 0.0);
        run.peak_rss_bytes = prev.value("peak_rss_bytes", int64_t{0});
        say(opt.quiet, head +
                           ": reusing the model an earlier run of this compare trained with "
                           "the same arguments (" +
                           model_path + ")");
      } else {
        say(opt.quiet, head + ": training ...");
        fs::remove(done_path);
        const ChildResult cr = run_child(run.command, log_path, forward);
        if (cr.exit_code != 0)
          throw Error("training " + p.label + " (seed " + std::to_string(seed) +
                      ") failed with exit code " + std::to_string(cr.exit_code) + "; the end of " +
                      log_path + ":\n" + tail_of(log_path, 8));
        run.process_seconds = cr.seconds;
        run.peak_rss_bytes = cr.peak_rss_bytes;
        record_training(done_path,
                        {{"key", key},
                         {"model_bytes", static_cast<int64_t>(fs::file_size(model_path))},
                         {"model_fnv1a64", file_checksum(model_path)},
                         {"process_seconds", cr.seconds},
                         {"peak_rss_bytes", cr.peak_rss_bytes}});
        if (left[pi].measured < 0) left[pi].measured = cr.seconds;
      }
      --left[pi].left;
      mark_out_dir_trained(opt);
      run.model_bytes = static_cast<int64_t>(fs::file_size(model_path));
      ModelBundle b = load_model(model_path);
      if (b.items.tokens() != td.items.tokens())
        throw Error("model " + model_path + " has a different catalogue than the split");
      run.fit_seconds = b.meta.value("train_seconds", 0.0);
      run.eval = evaluate_bundle(b, test, eo);
      say(opt.quiet, "      fit " + fmt("%.2f", run.fit_seconds) + " s (process " +
                         fmt("%.2f", run.process_seconds) + " s, peak RSS " +
                         fmt("%.0f", run.peak_rss_bytes / 1048576.0) + " MiB), evaluated in " +
                         fmt("%.2f", run.eval.seconds) + " s: " + metric + " = " +
                         fmt("%.4f", run.eval.metrics.count(metric) ? run.eval.metrics.at(metric)
                                                                    : std::nan("")) +
                         "; about " + fmt_duration(time_left()) + " of training left (estimate)");
      mr.runs.push_back(std::move(run));
    }

    results.push_back(std::move(mr));
  }

  json res = analyse_comparison(setup, results, test.test, counts);
  if (!results.empty() && !results.front().runs.empty() &&
      !results.front().runs.front().eval.groups.empty())
    res["target_groups"] = target_groups_json(results, test.cold_items.size());
  {
    std::ifstream la("/proc/loadavg");
    double l1 = 0;
    if (la >> l1) res["machine"]["load_average_1min_at_end"] = l1;
  }
  res["total_seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  write_compare_report(res, opt.out_dir);
  for (const auto& w : res["warnings"]) say(opt.quiet, "warning: " + w.get<std::string>());
  say(opt.quiet, "report written to " + (fs::path(opt.out_dir) / "report.md").string() + " and " +
                     (fs::path(opt.out_dir) / "report.html").string() + " (" +
                     fmt("%.0f", res["total_seconds"].get<double>()) + " s in all)");
  return res;
}

}  // namespace seqrec
