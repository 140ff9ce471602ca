#include "app/options.hpp"

#include <cstdlib>
#include <set>
#include <sstream>

#include "seqrec/error.hpp"

namespace seqrec {

std::vector<ParamSpec> read_option_specs() {
  return {
      param_choice(
          "format", "auto", {"auto", "tsv", "inter", "sequences", "pairs"},
          "input format: auto, tsv (delimited columns), inter (RecBole), sequences (one per "
          "line), pairs (user item, in time order)"),
      param_string(
          "delimiter", "auto",
          "column delimiter of delimited files: auto, tab, comma, semicolon, space, or the "
          "character itself"),
      param_choice("header", "auto", {"auto", "true", "false"},
                   "whether the first line is a header"),
      param_string("session_col", "",
                   "session/user column: a name or a 0-based index (default: detected)"),
      param_string("item_col", "", "item column: a name or a 0-based index (default: detected)"),
      param_string("time_col", "",
                   "time column: a name, a 0-based index, or 'none' (default: detected)"),
      param_choice(
          "time_unit", "auto", {"auto", "s", "ms", "us", "ns", "days"},
          "unit of the time column; auto: seconds, unless their median lies beyond the year "
          "2200, then milliseconds, microseconds or nanoseconds (the smallest that fits)"),
      param_choice("sequence_ids", "auto", {"auto", "true", "false"},
                   "one-sequence-per-line files: whether the first token of a line is its id"),
      param_string("cache_dir", "",
                   "folder for the binary cache of parsed logs (default: $XDG_CACHE_HOME/seqrec or "
                   "~/.cache/seqrec; 'none' disables it)"),
  };
}

std::vector<ParamSpec> feature_option_specs() {
  const FeatureReadOptions d;
  return {
      param_string("item_features", "",
                   "item feature file: a delimited table with a header, MovieLens movies.dat, a "
                   "RecBole .item file or an item -> [attribute ids] JSON object "
                   "(docs/file-formats.md#feature-files); used by dssm and sasrec"),
      param_string("feature_columns", d.columns,
                   "roles of the feature file's columns, NAME=ROLE,... with ROLE id, cat, "
                   "multi[:SEP], text, num, num_seq[:SEP] or skip (default: detected)"),
      param_int("text_buckets", exact_text(d.text_buckets), static_cast<double>(kMinTextBuckets),
                static_cast<double>(kMaxTextBuckets),
                "hash space of text features (letter trigrams and words)"),
      param_choice("text_grams", "both", {"both", "trigrams", "words"},
                   "text features: DSSM letter trigrams of #word#, the words, or both"),
      param_bool("title_year", d.title_year ? "true" : "false",
                 "MovieLens movies.dat: the (year) of a title becomes the feature year=YYYY"),
  };
}

FeatureReadOptions to_feature_read_options(const Config& c) {
  FeatureReadOptions o;
  o.columns = c.get_string("feature_columns");
  o.text_buckets = c.get_int("text_buckets");
  const std::string& g = c.get_string("text_grams");
  o.text_trigrams = g != "words";
  o.text_words = g != "trigrams";
  o.title_year = c.get_bool("title_year");
  return o;
}

std::vector<ParamSpec> generate_option_specs() {
  const GenerateOptions d;  // the defaults live in the struct (seqrec/data.hpp)
  return {
      param_int("events", exact_text(d.n_events), 1, 2e9, "number of events to generate"),
      param_int("items", exact_text(d.n_items), 2, 2e9, "catalogue size"),
      param_float("zipf", exact_text(d.zipf_exponent), 0, 5,
                  "popularity exponent: p(item of rank r) ~ 1/r^zipf"),
      param_float("mean_length", exact_text(d.mean_length), 1, 1e6, "mean session length"),
      param_float("follow_prob", exact_text(d.follow_prob), 0, 1,
                  "probability that the next item follows the current item's transitions"),
      param_int("successors", exact_text(d.n_successors), 1, 1000, "likely next items per item"),
      param_float("days", exact_text(d.days), 0.001, 36500, "time span of the log in days"),
      param_int("seed", std::to_string(d.seed), 0, 9.2e18, "random seed"),
      param_choice("out_format", "tsv", {"tsv", "inter", "sequences", "pairs"}, "output format"),
  };
}

std::vector<ParamSpec> prepare_option_specs() {
  const PrepareOptions d;  // the defaults live in the structs (seqrec/data.hpp)
  const SessionSplitOptions& ss = d.session;
  const SequentialSplitOptions& sq = d.sequential;
  return {
      param_choice(
          "protocol", d.protocol, {"auto", "session", "sequential"},
          "session: GRU4Rec time split; sequential: leave-one-out per user; auto: sequential "
          "when there are no timestamps or at least 10% of the sequences span more than a "
          "day (user histories), else session"),
      param_int("min_session_length", exact_text(ss.min_session_length), 1, 1e9,
                "session protocol: drop sessions shorter than this (before and after the item "
                "filter)"),
      param_int("min_item_support", exact_text(ss.min_item_support), 1, 1e12,
                "session protocol: drop items with fewer events"),
      param_float("test_days", exact_text(ss.test_seconds / 86400.0), 1e-9, 1e6,
                  "session protocol: test = sessions ending in the last N days"),
      param_float("valid_days", exact_text(ss.valid_seconds / 86400.0), 1e-9, 1e6,
                  "session protocol: validation = the same split applied inside train"),
      param_int("user_core", exact_text(sq.user_core), 0, 1e9,
                "sequential protocol: k-core, users need at least this many events"),
      param_int("item_core", exact_text(sq.item_core), 0, 1e9,
                "sequential protocol: k-core, items need at least this many events"),
      param_bool("remove_repeats", ss.remove_repeats ? "true" : "false",
                 "collapse consecutive repeats of the same item in a sequence"),
      param_float("cold_items", exact_text(d.cold_items), 0, 0.99,
                  "cold-start protocol: hold this fraction of the catalogue's items (drawn "
                  "with --seed) out of training; they stay test targets (0 = off; "
                  "docs/evaluation.md#cold-start)"),
      param_int("seed", std::to_string(d.seed), 0, 9.2e18,
                "random seed of prepare's random choices (the cold items)"),
  };
}

std::vector<ParamSpec> eval_option_specs() {
  const EvalOptions d;  // the defaults live in the struct (seqrec/eval.hpp)
  std::string cutoffs;
  for (int k : d.cutoffs) cutoffs += (cutoffs.empty() ? "" : ",") + std::to_string(k);
  return {
      param_choice("protocol", "auto", {"auto", "session", "sequential"},
                   "session (every next event), sequential (last item of each sequence), or auto "
                   "(the split's protocol; session for a plain file)"),
      param_int_list("cutoffs", cutoffs, 1, 1e6, "list lengths K for the metrics"),
      param_choice("ties", ties_name(d.ties), {"conservative", "standard", "median"},
                   "ranking of items scored equal to the target: conservative (target below them), "
                   "standard (above), median"),
      param_choice(
          "exclude_seen", "auto", {"auto", "none", "except-target", "all", "true", "false"},
          "which of the sequence's earlier items leave the ranking: none; except-target (all "
          "but the target, so a target that repeats one stays rankable); all (every one, so "
          "a repeated target counts as a miss, as in S3-Rec's code); auto: except-target for "
          "sequential, none for session (true = except-target, false = none)"),
      param_int("sampled", std::to_string(d.sampled_negatives), 0, 1e6,
                "rank the target among this many sampled negatives instead of the full catalogue "
                "(sequential protocol; reported as sampled)"),
      param_int("eval_batch", std::to_string(d.batch_size), 1, 1e6,
                "predictions scored per model call"),
      param_int("eval_seed", std::to_string(d.seed), 0, 9.2e18, "seed of the sampled negatives"),
      param_choice("breakdown", "auto", {"auto", "true", "false"},
                   "metrics by target group too: warm and cold targets (splits with cold "
                   "items) and the target's training frequency; auto: when the split has cold "
                   "items"),
  };
}

std::vector<ParamSpec> early_stopping_option_specs(const std::string& default_metric,
                                                   int default_patience) {
  return {
      param_string("valid_metric", default_metric,
                   "metric watched on the validation split after every epoch (monitoring, early "
                   "stopping, tuning), e.g. recall@20, mrr@20, ndcg@10" +
                       std::string(default_metric.empty()
                                       ? "; empty: the protocol's headline metric (recall@20 "
                                         "for sessions, ndcg@10 for sequences)"
                                       : "")),
      param_int("patience", std::to_string(default_patience), 0, 1e6,
                "stop after this many validations without improvement and keep the best "
                "epoch (0 = never stop early)"),
  };
}

std::vector<ParamSpec> tune_option_specs() {
  return {
      param_int("trials", "20", 1, 1e6, "trials to run (a resumed tune counts those it has)"),
      param_float("time_budget", "0", 0, 1e9,
                  "wall-time budget in seconds: no trial starts after it, a running one stops "
                  "(0 = none)"),
      param_int("seed", "1", 0, 9.2e18, "seed of the sampler and of every trial's training"),
      param_int("epochs", "0", 0, 1e6,
                "epoch budget of every trial of an iterative model (0 = the model's own, from "
                "its defaults, preset or --config)"),
      param_bool("prune", "true",
                 "stop hopeless trials at rungs (epochs min_epochs * eta^k) unless they are in "
                 "the top 1/eta of the trials that reached the rung (ASHA)"),
      param_float("eta", "3", 1, 100, "pruning: reduction factor of the rungs").open_min(),
      param_int("min_epochs", "1", 1, 1e6, "pruning: the first rung"),
      param_int("rung_trials", "3", 1, 1e6,
                "pruning: the first N trials to reach a rung always pass it"),
      param_bool("start_from_base", "true",
                 "trial 0 tries the starting configuration (the model's defaults, --preset, "
                 "--config) at the nearest point of the space, so that the best trial is never "
                 "worse on validation than where the search started"),
      param_int("n_startup", "10", 0, 1e6, "TPE: random trials before the model-based ones"),
      param_float("gamma", "0.25", 0, 1, "TPE: share of the trials counted as good")
          .open_min()
          .open_max(),
      param_int("candidates", "24", 1, 1e6, "TPE: candidates drawn from l(x) per trial"),
  };
}

std::vector<ParamSpec> concat_specs(std::vector<ParamSpec> a, const std::vector<ParamSpec>& b) {
  std::set<std::string> names;
  for (const auto& s : a) names.insert(s.name);
  for (const auto& s : b) {
    if (!names.insert(s.name).second)
      throw Error("internal: option '" + s.name + "' declared twice");
    a.push_back(s);
  }
  return a;
}

ReadOptions to_read_options(const Config& c) {
  ReadOptions o;
  const std::string f = c.get_string("format");
  o.format = f == "auto" ? Format::Auto : parse_format(f);
  std::string d = c.get_string("delimiter");
  if (d == "auto")
    d = "";
  else if (d == "tab" || d == "\\t")
    d = "\t";
  else if (d == "comma")
    d = ",";
  else if (d == "semicolon")
    d = ";";
  else if (d == "space")
    d = " ";
  else if (d.size() != 1)
    throw InputError("--delimiter: expected one character or tab/comma/semicolon/space, got '" + d +
                     "'");
  o.delimiter = d;
  const std::string h = c.get_string("header");
  o.header = h == "auto" ? -1 : (h == "true" ? 1 : 0);
  o.session_col = c.get_string("session_col");
  o.item_col = c.get_string("item_col");
  o.time_col = c.get_string("time_col");
  const std::string u = c.get_string("time_unit");
  o.time_scale = u == "ms" ? 1e-3 : u == "us" ? 1e-6 : u == "ns" ? 1e-9 : u == "days" ? 86400 : 1;
  o.detect_time_unit = u == "auto";
  const std::string s = c.get_string("sequence_ids");
  o.sequence_ids = s == "auto" ? -1 : (s == "true" ? 1 : 0);
  std::string cache = c.get_string("cache_dir");
  if (cache.empty()) {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
      cache = std::string(x) + "/seqrec";
    else if (const char* home = std::getenv("HOME"); home && *home)
      cache = std::string(home) + "/.cache/seqrec";
  }
  if (cache == "none") cache.clear();
  o.cache_dir = cache;
  return o;
}

GenerateOptions to_generate_options(const Config& c) {
  GenerateOptions g;
  g.n_events = c.get_int("events");
  g.n_items = static_cast<int32_t>(c.get_int("items"));
  g.zipf_exponent = c.get_float("zipf");
  g.mean_length = c.get_float("mean_length");
  g.follow_prob = c.get_float("follow_prob");
  g.n_successors = static_cast<int32_t>(c.get_int("successors"));
  g.days = c.get_float("days");
  g.seed = static_cast<uint64_t>(c.get_int("seed"));
  return g;
}

SessionSplitOptions to_session_split_options(const Config& c) {
  SessionSplitOptions s;
  s.min_session_length = static_cast<int>(c.get_int("min_session_length"));
  s.min_item_support = static_cast<int>(c.get_int("min_item_support"));
  s.test_seconds = c.get_float("test_days") * 86400.0;
  s.valid_seconds = c.get_float("valid_days") * 86400.0;
  s.remove_repeats = c.get_bool("remove_repeats");
  return s;
}

SequentialSplitOptions to_sequential_split_options(const Config& c) {
  SequentialSplitOptions s;
  s.user_core = static_cast<int>(c.get_int("user_core"));
  s.item_core = static_cast<int>(c.get_int("item_core"));
  s.remove_repeats = c.get_bool("remove_repeats");
  return s;
}

PrepareOptions to_prepare_options(const Config& c) {
  PrepareOptions p;
  p.protocol = c.get_string("protocol");
  p.session = to_session_split_options(c);
  p.sequential = to_sequential_split_options(c);
  p.cold_items = c.get_float("cold_items");
  p.seed = static_cast<uint64_t>(c.get_int("seed"));
  return p;
}

EvalOptions to_eval_options(const Config& c, const std::string& split_protocol) {
  EvalOptions e;
  std::string p = c.get_string("protocol");
  if (p == "auto") p = split_protocol.empty() ? "session" : split_protocol;
  e.protocol = parse_protocol(p);
  e.cutoffs.clear();
  for (int64_t k : c.get_int_list("cutoffs")) e.cutoffs.push_back(static_cast<int>(k));
  e.ties = parse_ties(c.get_string("ties"));
  e.exclude_seen = parse_exclude_seen(c.get_string("exclude_seen"));
  e.sampled_negatives = static_cast<int>(c.get_int("sampled"));
  if (e.sampled_negatives > 0 && e.protocol != Protocol::Sequential)
    throw InputError("--sampled applies to the sequential protocol only");
  e.batch_size = static_cast<int>(c.get_int("eval_batch"));
  e.seed = static_cast<uint64_t>(c.get_int("eval_seed"));
  const std::string& b = c.get_string("breakdown");
  e.breakdown = b == "auto" ? -1 : b == "true" ? 1 : 0;
  return e;
}

}  // namespace seqrec
