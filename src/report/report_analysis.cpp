// analyse_comparison(): every number of the compare report, from the per-run results.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "core/text_format.hpp"
#include "eval/significance.hpp"
#include "report/report.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"

namespace seqrec {

using json = nlohmann::json;

namespace {

constexpr double kAlpha = 0.05;
constexpr double kHeadShare = 0.2;  // "popular" = the top 20% of catalogue items

std::string at_k(const std::string& name, int k) {
  std::string s = name;
  s.append("@");
  s.append(std::to_string(k));
  return s;
}

/// "hr@10" -> ("recall", 10); metric names in results are recall/mrr/ndcg.
std::pair<std::string, int> split_metric(const std::string& m) {
  const auto at = m.find('@');
  std::string name = m.substr(0, at);
  if (name == "hr") name = "recall";
  return {name, std::stoi(m.substr(at + 1))};
}

/// Mean and sample standard deviation (null for fewer than two values).
json mean_std(const std::vector<double>& v) {
  json j;
  if (v.empty()) return json{{"mean", nullptr}, {"std", nullptr}};
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  j["mean"] = mean;
  if (v.size() < 2) {
    j["std"] = nullptr;
  } else {
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    j["std"] = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return j;
}

json finite_or_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

json test_json(const PairedTest& t) {
  return {{"method", t.method},
          {"n", t.n},
          {"n_used", t.n_used},
          {"mean_diff", t.mean_diff},
          {"statistic", finite_or_null(t.statistic)},
          {"df", t.df},
          {"z", t.z},
          {"p", finite_or_null(t.p_value)}};
}

/// History-length buckets [lo, hi] (hi = -1: open) over prediction prefix lengths.
struct Bucket {
  int64_t lo, hi;
  int64_t n = 0;
  std::string label() const {
    if (hi < 0) return std::to_string(lo) + "+";
    if (lo == hi) return std::to_string(lo);
    return std::to_string(lo) + "–" + std::to_string(hi);
  }
  bool contains(int64_t len) const { return len >= lo && (hi < 0 || len <= hi); }
};

std::vector<Bucket> length_buckets(const std::vector<QueryRank>& q) {
  static const int64_t edges[] = {1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000};
  const size_t ne = sizeof edges / sizeof edges[0];
  std::vector<Bucket> b;
  for (size_t i = 0; i < ne; ++i) b.push_back({edges[i], i + 1 < ne ? edges[i + 1] - 1 : -1});
  for (const auto& r : q)
    for (auto& x : b)
      if (x.contains(r.len)) {
        ++x.n;
        break;
      }
  std::vector<Bucket> kept;
  for (const auto& x : b)
    if (x.n > 0) kept.push_back(x);
  // Buckets with few predictions say little: merge them into their lower neighbour (the
  // lowest one into its upper neighbour).
  const int64_t min_n =
      std::max<int64_t>(20, static_cast<int64_t>(std::ceil(0.005 * static_cast<double>(q.size()))));
  for (size_t i = kept.size(); i-- > 0 && kept.size() > 1;) {
    if (kept[i].n >= min_n) continue;
    if (i > 0) {
      kept[i - 1].hi = kept[i].hi;
      kept[i - 1].n += kept[i].n;
    } else {
      kept[1].lo = kept[0].lo;
      kept[1].n += kept[0].n;
    }
    kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return kept;
}

/// A command line with shell quoting where needed.
/// The program is shown as "seqrec" (its path is where this run found it).
std::string join_command(const std::vector<std::string>& argv) {
  std::string s;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = i == 0 ? std::string("seqrec") : argv[i];
    const bool plain = !a.empty() && a.find_first_of(" \t\"'$\\|;&<>()*?") == std::string::npos;
    s += (s.empty() ? "" : " ") + (plain ? a : "'" + a + "'");
  }
  return s;
}

/// The protocol in plain words, one sentence per aspect.
json describe_protocol(const CompareSetup& s, int64_t n_pred, int64_t n_seq, bool exclude_seen) {
  json d = json::array();
  const EvalOptions& e = s.eval;
  if (s.protocol == "sequential")
    d.push_back("Sequential (leave-one-out) protocol: for each of the " + grouped_count(n_seq) +
                " test users the last item of their history is predicted from all earlier "
                "items (" +
                grouped_count(n_pred) +
                " predictions). The models were trained on every history without its last "
                "item.");
  else
    d.push_back(
        "Session-based protocol: every next event of each test session is predicted "
        "from the events before it in that session (" +
        grouped_count(n_pred) + " predictions from " + grouped_count(n_seq) +
        " test sessions). The models were trained on the training sessions only.");
  // Why this protocol, and what preparing the data noticed (time unit, a forced split).
  if (!s.protocol_choice.empty()) d.push_back("Why this protocol: " + s.protocol_choice + ".");
  for (const auto& note : s.detected.is_array() ? s.detected : json::array()) {
    if (!note.is_string()) continue;
    const std::string n = note.get<std::string>();
    if (n.rfind("protocol:", 0) == 0) continue;  // said by "Why this protocol"
    d.push_back("Noticed while preparing the data: " + n + (n.ends_with('.') ? "" : "."));
  }
  if (e.sampled_negatives > 0)
    d.push_back("SAMPLED METRICS, NOT FULL RANKING: the target is ranked only against " +
                std::to_string(e.sampled_negatives) +
                " randomly sampled items outside the user's history (seed " +
                std::to_string(e.seed) +
                "). Sampled metrics are inflated and can order models differently from full "
                "ranking (Krichene & Rendle, KDD 2020): do not compare them with full-ranking "
                "figures.");
  else
    d.push_back("Full ranking: the target is ranked against all " + grouped_count(s.n_items) +
                " items of the catalogue; no negative sampling.");
  switch (e.ties) {
    case TieMode::Conservative:
      d.push_back(
          "Ties: items scored exactly equal to the target count as ranked above it "
          "(conservative), so constant or coarse scores gain nothing.");
      break;
    case TieMode::Standard:
      d.push_back(
          "Ties: the target is ranked above every item with an equal score "
          "(optimistic).");
      break;
    case TieMode::Median:
      d.push_back("Ties: the target is ranked in the middle of the items with an equal score.");
      break;
  }
  if (e.exclude_seen == kExcludeSeenAll)
    d.push_back(
        "Exclusions: every item that already occurs earlier in the sequence is removed from "
        "the ranking, the target too when it repeats one (--exclude-seen all), so such a "
        "prediction counts as a miss.");
  else if (exclude_seen)
    d.push_back(
        "Exclusions: items that already occur earlier in the sequence are removed from "
        "the ranking, except the target itself.");
  else
    d.push_back(
        "Exclusions: none; items already in the sequence stay in the ranking (repeats "
        "can be predicted).");
  std::string unknown =
      "Test events whose item never occurs in the training data cannot be "
      "predicted by any model and were removed before evaluation";
  int64_t removed = s.test_dropped_events;
  const json split = s.split.is_object() ? s.split : json::object();
  const json stats = split.value("stats", json::object());
  for (const auto& st : stats.is_object() ? stats.value("steps", json::array()) : json::array())
    if (st.value("step", "") == "test_unseen_items") removed += st.value("events_removed", 0LL);
  d.push_back(unknown + " (" + grouped_count(removed) + " events).");
  d.push_back(
      "Metrics, one target per prediction: Recall@K (= HR@K) is the share of "
      "predictions whose target is in the top K; MRR@K the mean of 1/rank (0 beyond "
      "K); NDCG@K the mean of 1/log2(rank + 1) (0 beyond K).");
  d.push_back("Every model is trained with seeds 1.." + std::to_string(s.seeds) +
              " on the same split and evaluated on the same predictions; tables show mean ± "
              "standard deviation over the seeds.");
  return d;
}

/// A model cut short: on its validation curve (evaluated epochs e_1..e_n, values v_1..v_n,
/// n >= 2) the best value is at one of the last two evaluated epochs and is at least
/// kStillImprovingGain (relative) above v_{max(1, n-3)}, the value three evaluations before
/// the last. Returns {best_epoch, last_epoch, gain, param, suggested_epochs, warning}, or
/// null when the curve does not say so.
constexpr double kStillImprovingGain = 0.01;
json still_improving(const json& curve, const std::string& label, const std::string& param) {
  std::vector<double> v;
  std::vector<int> ep;
  for (size_t i = 0; i < curve["values"].size(); ++i) {
    if (!curve["values"][i].is_number()) continue;
    v.push_back(curve["values"][i].get<double>());
    ep.push_back(curve["epochs"][i].get<int>());
  }
  const size_t n = v.size();
  if (n < 2) return nullptr;
  const size_t best = static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
  if (best + 2 < n) return nullptr;
  const double base = v[n >= 4 ? n - 4 : 0];
  const double gain = base > 0 ? (v[best] - base) / base : (v[best] > base ? 1.0 : 0.0);
  if (gain < kStillImprovingGain) return nullptr;
  const int last = ep.back(), suggested = std::max(2 * last, last + 1);
  const std::string how = param.empty()
                              ? "train it for longer"
                              : "give it more epochs with `--epochs " + std::to_string(suggested) +
                                    "` (every model) or `--set " + label + "." + param + "=" +
                                    std::to_string(suggested) + "` (this one)";
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.1f%%", 100 * gain);
  const std::string warning =
      label + " was still improving when training stopped: its validation " +
      curve["metric"].get<std::string>() + " was best at epoch " + std::to_string(ep[best]) +
      " of " + std::to_string(last) + " and rose " + pct + " over the last " +
      std::to_string(n >= 4 ? 3 : n - 1) +
      " evaluations, so its rank in this table may be too low; " + how + ".";
  return {{"best_epoch", ep[best]},        {"last_epoch", last}, {"gain", gain}, {"param", param},
          {"suggested_epochs", suggested}, {"warning", warning}};
}

}  // namespace

json analyse_comparison(const CompareSetup& setup, const std::vector<CompareModelResult>& models,
                        const SequenceSet& test, std::span<const int64_t> train_counts) {
  if (models.empty()) throw InputError("no models to compare");
  for (const auto& m : models)
    if (m.runs.empty()) throw Error("compare: model " + m.label + " has no runs");
  const std::vector<QueryRank>& ref = models.front().runs.front().eval.ranks;
  const size_t nq = ref.size();
  if (nq == 0) throw Error("compare: the evaluation kept no per-prediction ranks");
  for (const auto& m : models)
    for (const auto& r : m.runs) {
      const auto& q = r.eval.ranks;
      bool same = q.size() == nq;
      for (size_t i = 0; same && i < nq; ++i)
        same = q[i].seq == ref[i].seq && q[i].len == ref[i].len && q[i].target == ref[i].target;
      if (!same)
        throw Error("compare: " + m.label + " (seed " + std::to_string(r.seed) +
                    ") was evaluated on other predictions than " + models.front().label);
    }
  for (const auto& q : ref)
    if (q.target < 0 || static_cast<size_t>(q.target) >= train_counts.size() ||
        static_cast<size_t>(q.seq) >= test.size())
      throw Error("compare: a prediction refers to an unknown item or sequence");

  const bool sequential = setup.protocol == "sequential";
  std::vector<int> cutoffs = setup.eval.cutoffs;
  std::sort(cutoffs.begin(), cutoffs.end());
  cutoffs.erase(std::unique(cutoffs.begin(), cutoffs.end()), cutoffs.end());
  const std::string hit_label = sequential ? "HR" : "Recall";
  const std::vector<std::pair<std::string, RankMetric>> kinds{
      {"recall", RankMetric::Recall}, {"mrr", RankMetric::Mrr}, {"ndcg", RankMetric::Ndcg}};
  auto display = [&](const std::string& name, int k) {
    const std::string n = name == "recall" ? hit_label : name == "mrr" ? "MRR" : "NDCG";
    return at_k(n, k);
  };
  // Not a structured binding: lambdas below capture head_k, which clang 14 (the fuzz build)
  // does not allow for a binding.
  const std::pair<std::string, int> head = split_metric(setup.metric);
  const std::string& head_name = head.first;
  const int head_k = head.second;
  const std::string headline = at_k(head_name, head_k);
  const RankMetric head_metric = parse_rank_metric(head_name);

  json res;
  res["seqrec_version"] = setup.seqrec_version;
  res["generated"] = utc_now_text("%Y-%m-%d %H:%M UTC");
  res["command"] = setup.command_line;
  res["machine"] = setup.machine.is_object() ? setup.machine : json::object();
  res["machine"]["threads"] = setup.threads;
  res["headline"] = {{"metric", headline}, {"label", display(head_name, head_k)}};
  res["seeds"] = json::array();
  for (int s = 1; s <= setup.seeds; ++s) res["seeds"].push_back(s);
  res["epochs_override"] = setup.epochs_override > 0 ? json(setup.epochs_override) : json(nullptr);

  // Protocol.
  const EvalResult& e0 = models.front().runs.front().eval;
  res["protocol"] = {
      {"name", setup.protocol},
      {"evaluation", e0.protocol},
      {"full_ranking", setup.eval.sampled_negatives == 0},
      {"sampled_negatives", setup.eval.sampled_negatives},
      {"ties", e0.ties},
      {"exclude_seen", e0.exclude_seen},
      {"exclude_seen_mode", e0.exclude_seen_mode},
      {"n_repeated_targets", e0.n_repeated_targets},
      {"cutoffs", cutoffs},
      {"hit_name", hit_label},
      {"n_items", setup.n_items},
      {"n_predictions", e0.n_predictions},
      {"n_test_sequences", e0.n_sequences},
      {"test_events_dropped", setup.test_dropped_events},
      {"choice", setup.protocol_choice},
      {"detected", setup.detected.is_array() ? setup.detected : json::array()},
      {"description", describe_protocol(setup, e0.n_predictions, e0.n_sequences, e0.exclude_seen)}};

  // Data.
  const json split = setup.split.is_object() ? setup.split : json::object();
  json split_stats = split.value("stats", json::object());
  if (!split_stats.is_object()) split_stats = json::object();
  res["data"] = {{"name", setup.data_name},
                 {"note", setup.data_note},
                 {"split_dir", setup.split_dir},
                 {"input", split.value("input", "")},
                 {"n_items", setup.n_items},
                 {"parts", setup.stats.is_object() ? setup.stats : json::object()},
                 {"steps", split_stats.value("steps", json::array())},
                 {"options", split_stats.value("options", json::object())}};

  // Table columns.
  json columns = json::array();
  std::vector<std::tuple<std::string, RankMetric, int>> cols;
  for (int k : cutoffs)
    for (const auto& [name, kind] : kinds) {
      cols.emplace_back(at_k(name, k), kind, k);
      columns.push_back({{"metric", at_k(name, k)}, {"label", display(name, k)}});
    }
  res["columns"] = columns;

  // Per-prediction values averaged over seeds: v[model][column][query].
  const size_t nm = models.size(), nc = cols.size();
  std::vector<std::vector<std::vector<double>>> v(nm, std::vector<std::vector<double>>(nc));
  for (size_t m = 0; m < nm; ++m)
    for (size_t c = 0; c < nc; ++c) {
      auto& out = v[m][c];
      out.assign(nq, 0.0);
      const auto& [name, kind, k] = cols[c];
      for (const auto& run : models[m].runs)
        for (size_t q = 0; q < nq; ++q) out[q] += rank_metric(kind, run.eval.ranks[q].rank, k);
      for (double& x : out) x /= static_cast<double>(models[m].runs.size());
    }

  // Metric vs K grid.
  std::vector<int> ks{1, 2, 3, 5, 10, 15, 20, 25, 30, 40, 50};
  ks.insert(ks.end(), cutoffs.begin(), cutoffs.end());
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  const int kcap = std::max(50, cutoffs.back());
  std::erase_if(ks, [&](int k) { return k > kcap || k > std::max(1, setup.n_items); });

  // Buckets.
  const std::vector<Bucket> buckets = length_buckets(ref);
  std::vector<int> bucket_of(nq, -1);
  for (size_t q = 0; q < nq; ++q)
    for (size_t b = 0; b < buckets.size(); ++b)
      if (buckets[b].contains(ref[q].len)) {
        bucket_of[q] = static_cast<int>(b);
        break;
      }
  json jb = json::array();
  for (const auto& b : buckets)
    jb.push_back({{"label", b.label()},
                  {"min", b.lo},
                  {"max", b.hi < 0 ? json(nullptr) : json(b.hi)},
                  {"n", b.n},
                  {"share", static_cast<double>(b.n) / static_cast<double>(nq)}});
  res["by_length"] = {{"metric", headline},
                      {"what", sequential ? "history length (items before the target)"
                                          : "position in the session (events before the target)"},
                      {"buckets", jb}};

  const int32_t n_items = static_cast<int32_t>(train_counts.size());
  std::vector<int32_t> order(static_cast<size_t>(n_items));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return train_counts[static_cast<size_t>(a)] > train_counts[static_cast<size_t>(b)];
  });
  const int32_t head_n =
      std::max<int32_t>(1, static_cast<int32_t>(std::lround(kHeadShare * n_items)));
  std::vector<uint8_t> is_head(static_cast<size_t>(n_items), 0);
  int64_t head_events = 0, all_events = 0;
  for (int32_t i = 0; i < n_items; ++i) {
    const int32_t it = order[static_cast<size_t>(i)];
    all_events += train_counts[static_cast<size_t>(it)];
    if (i < head_n) {
      is_head[static_cast<size_t>(it)] = 1;
      head_events += train_counts[static_cast<size_t>(it)];
    }
  }
  int64_t head_q = 0;
  for (const auto& q : ref) head_q += is_head[static_cast<size_t>(q.target)];
  const double ev = std::max<double>(1.0, static_cast<double>(all_events));
  res["by_popularity"] = {
      {"metric", headline},
      {"definition", "popular = the " + std::to_string(head_n) + " most frequent training items (" +
                         std::to_string(static_cast<int>(kHeadShare * 100)) +
                         "% of the catalogue); long tail = the other " +
                         std::to_string(n_items - head_n) + " items"},
      {"groups",
       {{{"label", "popular"},
         {"items", head_n},
         {"train_event_share", static_cast<double>(head_events) / ev},
         {"n", head_q},
         {"share", static_cast<double>(head_q) / static_cast<double>(nq)}},
        {{"label", "long tail"},
         {"items", n_items - head_n},
         {"train_event_share", static_cast<double>(all_events - head_events) / ev},
         {"n", static_cast<int64_t>(nq) - head_q},
         {"share",
          static_cast<double>(static_cast<int64_t>(nq) - head_q) / static_cast<double>(nq)}}}}};

  // Per model.
  json jm = json::array();
  json warnings = json::array();
  // A degenerate test set compared anyway (--force): said next to the ranking it decides.
  for (const auto& note : setup.detected.is_array() ? setup.detected : json::array())
    if (note.is_string() && note.get<std::string>().rfind("forced: ", 0) == 0)
      warnings.push_back(
          "the metrics come from a degenerate test set and say little about the models (" +
          note.get<std::string>().substr(8) + ")");
  for (size_t m = 0; m < nm; ++m) {
    const CompareModelResult& mr = models[m];
    json j;
    j["label"] = mr.label;
    j["type"] = mr.type;
    j["preset"] = mr.preset;
    j["config_file"] = mr.config_file;
    j["config"] = mr.config;
    j["config_changes"] = mr.config_changes;
    json runs = json::array();
    std::map<std::string, std::vector<double>> per_metric;
    std::vector<double> fit, proc, evs, rss, bytes;
    for (const auto& r : mr.runs) {
      json metrics = json::object();
      for (const auto& [k, x] : r.eval.metrics) {
        if (k.rfind("hr@", 0) == 0) continue;  // = recall@K
        metrics[k] = x;
        per_metric[k].push_back(x);
      }
      const std::string cmd = join_command(r.command);
      runs.push_back({{"seed", r.seed},
                      {"metrics", metrics},
                      {"fit_seconds", r.fit_seconds},
                      {"process_seconds", r.process_seconds},
                      {"eval_seconds", r.eval.seconds},
                      {"peak_rss_bytes", r.peak_rss_bytes},
                      {"model_bytes", r.model_bytes},
                      {"n_predictions", r.eval.n_predictions},
                      {"command", cmd}});
      fit.push_back(r.fit_seconds);
      proc.push_back(r.process_seconds);
      evs.push_back(r.eval.seconds);
      rss.push_back(static_cast<double>(r.peak_rss_bytes));
      bytes.push_back(static_cast<double>(r.model_bytes));
      // The per-prediction ranks must reproduce the evaluator's own sums.
      for (const auto& [name, kind, k] : cols) {
        double sum = 0;
        for (const auto& q : r.eval.ranks) sum += rank_metric(kind, q.rank, k);
        const double mine = sum / static_cast<double>(nq);
        const auto it = r.eval.metrics.find(name);
        if (it == r.eval.metrics.end() || std::fabs(it->second - mine) > 1e-9)
          throw Error("compare: per-prediction ranks of " + mr.label + " do not reproduce " + name);
      }
    }
    j["runs"] = runs;
    json agg = json::object();
    for (const auto& [k, vals] : per_metric) {
      agg[k] = mean_std(vals);
      agg[k]["values"] = vals;
    }
    j["metrics"] = agg;
    json rss_j = mean_std(rss);
    rss_j["max"] = *std::max_element(rss.begin(), rss.end());
    j["cost"] = {{"fit_seconds", mean_std(fit)},
                 {"process_seconds", mean_std(proc)},
                 {"eval_seconds", mean_std(evs)},
                 {"peak_rss_bytes", rss_j},
                 {"model_bytes", mean_std(bytes)}};

    // Metric vs K (mean over seeds).
    json mk = {{"k", ks}};
    for (const auto& [name, kind] : kinds) {
      std::vector<double> ys;
      for (int k : ks) {
        double tot = 0;
        for (const auto& r : mr.runs) {
          double sum = 0;
          for (const auto& q : r.eval.ranks) sum += rank_metric(kind, q.rank, k);
          tot += sum / static_cast<double>(nq);
        }
        ys.push_back(tot / static_cast<double>(mr.runs.size()));
      }
      mk[name] = ys;
    }
    j["metric_vs_k"] = mk;

    // Buckets: the headline metric per seed, then mean ± std over seeds.
    auto grouped = [&](auto group_of, size_t n_groups) {
      std::vector<std::vector<double>> per_seed(n_groups);
      for (const auto& r : mr.runs) {
        std::vector<double> sum(n_groups, 0.0), cnt(n_groups, 0.0);
        for (size_t q = 0; q < nq; ++q) {
          const int g = group_of(q);
          if (g < 0) continue;
          sum[static_cast<size_t>(g)] += rank_metric(head_metric, r.eval.ranks[q].rank, head_k);
          cnt[static_cast<size_t>(g)] += 1;
        }
        for (size_t g = 0; g < n_groups; ++g)
          if (cnt[g] > 0) per_seed[g].push_back(sum[g] / cnt[g]);
      }
      json out = json::array();
      for (size_t g = 0; g < n_groups; ++g) out.push_back(mean_std(per_seed[g]));
      return out;
    };
    j["by_length"] = grouped([&](size_t q) { return bucket_of[q]; }, buckets.size());
    j["by_popularity"] =
        grouped([&](size_t q) { return is_head[static_cast<size_t>(ref[q].target)] ? 0 : 1; }, 2);

    // Learning curve.
    if (mr.curve.is_array() && !mr.curve.empty()) {
      json epochs = json::array(), vals = json::array();
      int best_epoch = 0;
      double best = -1;
      for (const auto& h : mr.curve) {
        const json met = h.value("metrics", json::object());
        double x = std::nan("");
        if (met.contains(headline))
          x = met[headline].get<double>();
        else if (head_name == "recall" && met.contains(at_k("hr", head_k)))
          x = met[at_k("hr", head_k)].get<double>();
        const int ep = h.value("epoch", 0);
        epochs.push_back(ep);
        vals.push_back(finite_or_null(x));
        if (std::isfinite(x) && x > best) {
          best = x;
          best_epoch = ep;
        }
      }
      const std::string cmd = join_command(mr.curve_command);
      j["curve"] = {{"metric", headline},       {"epochs", epochs},   {"values", vals},
                    {"best_epoch", best_epoch}, {"best_value", best}, {"command", cmd}};
      const json still = still_improving(j["curve"], mr.label, epochs_param(mr.type));
      if (!still.is_null()) {
        j["still_improving"] = still;
        warnings.push_back(still["warning"]);
      }
    } else {
      j["curve"] = nullptr;
    }
    j["curve_note"] = mr.curve_note;
    // Convergence (docs/compare.md): epochs, best epoch, and a warning for a model whose
    // validation metric was still improving when its epoch budget ended.
    j["convergence"] = mr.convergence;
    if (mr.convergence.is_object() && mr.convergence.value("still_improving", json()) == true &&
        !j.contains("still_improving")) {
      const std::string ep = epochs_param(mr.type);
      const int64_t budget = mr.convergence.value("epoch_budget", int64_t{0});
      warnings.push_back(
          mr.label + " was still improving at the end of its epoch budget: its validation " +
          mr.convergence.value("metric", std::string()) + " was best at the last epoch (" +
          std::to_string(budget) +
          "), so it did not converge and its rank may be too low; "
          "give it more epochs with `--epochs " +
          std::to_string(2 * budget) + "`" +
          (ep.empty()
               ? std::string()
               : " or `--set " + mr.label + "." + ep + "=" + std::to_string(2 * budget) + "`") +
          ".");
    }
    j["tuning"] = mr.tuning;
    jm.push_back(j);
  }

  // Best per column and paired tests against it.
  json sig = {{"alpha", kAlpha},
              {"primary", "paired t-test (two-sided)"},
              {"secondary", "Wilcoxon signed-rank test (two-sided)"},
              {"correction", "Holm's method over the models compared with the best of each column"},
              {"unit", "per-prediction metric values, averaged over the seeds of each model"},
              {"columns", json::array()}};
  for (size_t c = 0; c < nc; ++c) {
    std::vector<double> means(nm);
    for (size_t m = 0; m < nm; ++m)
      means[m] = std::accumulate(v[m][c].begin(), v[m][c].end(), 0.0) / static_cast<double>(nq);
    size_t best = 0;
    for (size_t m = 1; m < nm; ++m)
      if (means[m] > means[best]) best = m;
    json bests = json::array();
    for (size_t m = 0; m < nm; ++m)
      if (means[m] == means[best]) bests.push_back(models[m].label);
    std::vector<PairedTest> tt, ww;
    std::vector<size_t> others;
    for (size_t m = 0; m < nm; ++m) {
      if (m == best) continue;
      others.push_back(m);
      tt.push_back(paired_t_test(v[best][c], v[m][c]));
      ww.push_back(wilcoxon_signed_rank(v[best][c], v[m][c]));
    }
    std::vector<double> pt, pw;
    for (const auto& t : tt) pt.push_back(t.p_value);
    for (const auto& w : ww) pw.push_back(w.p_value);
    const auto ht = holm_adjust(pt), hw = holm_adjust(pw);
    json tests = json::array();
    for (size_t i = 0; i < others.size(); ++i) {
      const bool significant = std::isfinite(ht[i]) && ht[i] < kAlpha;
      tests.push_back({{"model", models[others[i]].label},
                       {"t_test", test_json(tt[i])},
                       {"wilcoxon", test_json(ww[i])},
                       {"p_t_holm", finite_or_null(ht[i])},
                       {"p_wilcoxon_holm", finite_or_null(hw[i])},
                       {"significant", significant}});
    }
    const auto& [name, kind, k] = cols[c];
    sig["columns"].push_back({{"metric", name},
                              {"label", display(name.substr(0, name.find('@')), k)},
                              {"best", models[best].label},
                              {"best_all", bests},
                              {"tests", tests}});
  }
  res["significance"] = sig;
  res["models"] = jm;
  res["warnings"] = warnings;
  return res;
}

}  // namespace seqrec
