// Evaluation results as JSON and as a text table.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "seqrec/eval.hpp"

namespace seqrec {

nlohmann::json TargetGroup::to_json() const {
  nlohmann::json j = {{"kind", kind},
                      {"name", name},
                      {"n_predictions", n_predictions},
                      {"n_unscorable", n_unscorable},
                      {"scorable", scorable}};
  if (scorable) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [k, v] : metrics) m[k] = v;
    j["metrics"] = m;
  } else {
    j["metrics"] = nullptr;
    j["cannot_score"] =
        "the model cannot score items without training events (it knows items by their id "
        "only)";
  }
  nlohmann::json c = nlohmann::json::object();
  for (const auto& [k, v] : chance) c[k] = v;
  j["chance"] = c;
  return j;
}

nlohmann::json EvalResult::to_json() const {
  nlohmann::json j;
  j["protocol"] = protocol;
  j["ties"] = ties;
  j["exclude_seen"] = exclude_seen;
  j["exclude_seen_mode"] = exclude_seen_mode;
  j["n_repeated_targets"] = n_repeated_targets;
  j["sampled_negatives"] = sampled_negatives;
  j["n_sequences"] = n_sequences;
  j["n_predictions"] = n_predictions;
  j["n_skipped_unknown"] = n_skipped_unknown;
  j["seconds"] = seconds;
  nlohmann::json m = nlohmann::json::object();
  for (const auto& [k, v] : metrics) m[k] = v;
  j["metrics"] = m;
  // Every metric also at the top level, for j["recall@20"].
  for (const auto& [k, v] : metrics) j[k] = v;
  if (!groups.empty()) {
    nlohmann::json g = nlohmann::json::array();
    for (const auto& tg : groups) g.push_back(tg.to_json());
    j["groups"] = g;
  }
  return j;
}

namespace {

/// "@K" (built by append: GCC 12 warns falsely on "literal" + std::string).
std::string at_k(int k) {
  std::string s("@");
  s.append(std::to_string(k));
  return s;
}

std::string fmt_metric(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", it->second);
  return buf;
}

bool is_sequential(const EvalResult& r) {
  return r.protocol.rfind("sequential", 0) == 0;
}

/// The exclusion rule in words, with how many targets it touches.
std::string describe_exclusion(const EvalResult& r) {
  std::string s;
  if (r.exclude_seen_mode == "all")
    s = "all seen items excluded (--exclude-seen all: a repeated target counts as a miss)";
  else if (r.exclude_seen_mode == "except-target" ||
           (r.exclude_seen_mode.empty() && r.exclude_seen))
    s = "seen items excluded except the target (--exclude-seen except-target)";
  else
    s = "seen items kept (--exclude-seen none)";
  s += "; " + std::to_string(r.n_repeated_targets) + " of " + std::to_string(r.n_predictions) +
       " targets repeat an earlier item";
  return s;
}

std::string describe(const EvalResult& r) {
  std::string s = "protocol " + r.protocol + ", ties " + r.ties + ", " + describe_exclusion(r);
  if (r.sampled_negatives > 0)
    s += " (SAMPLED: target ranked among " + std::to_string(r.sampled_negatives) +
         " random negatives, not the full catalogue)";
  return s;
}

}  // namespace

std::string format_results_table(const std::vector<std::pair<std::string, EvalResult>>& rows,
                                 const std::vector<int>& cutoffs_in) {
  std::vector<int> cutoffs;
  for (int k : cutoffs_in)
    if (k >= 1) cutoffs.push_back(k);
  std::sort(cutoffs.begin(), cutoffs.end());
  cutoffs.erase(std::unique(cutoffs.begin(), cutoffs.end()), cutoffs.end());
  if (rows.empty()) return "(no results)\n";

  bool same_setup = true, sequential = true;
  for (const auto& [name, r] : rows) {
    if (describe(r) != describe(rows.front().second)) same_setup = false;
    if (!is_sequential(r)) sequential = false;
  }
  const std::string hit = sequential ? "HR" : "Recall";

  std::vector<std::string> header{"Model"};
  for (int k : cutoffs) {
    const std::string at = at_k(k);
    header.push_back(hit + at);
    header.push_back("MRR" + at);
    header.push_back("NDCG" + at);
  }
  const int kmax = cutoffs.empty() ? 0 : cutoffs.back();
  const std::string atmax = at_k(kmax);
  if (kmax > 0) {
    header.push_back("Cov" + atmax);
    header.push_back("Pop" + atmax);
  }
  header.push_back("Preds");
  header.push_back("Seconds");
  if (!same_setup) header.push_back("Protocol");

  std::vector<std::vector<std::string>> table{header};
  for (const auto& [name, r] : rows) {
    std::vector<std::string> line{name};
    for (int k : cutoffs) {
      const std::string at = at_k(k);
      line.push_back(fmt_metric(r.metrics, "recall" + at));
      line.push_back(fmt_metric(r.metrics, "mrr" + at));
      line.push_back(fmt_metric(r.metrics, "ndcg" + at));
    }
    if (kmax > 0) {
      line.push_back(fmt_metric(r.metrics, "coverage" + atmax));
      line.push_back(fmt_metric(r.metrics, "avg_pop" + atmax));
    }
    line.push_back(std::to_string(r.n_predictions));
    char sec[32];
    std::snprintf(sec, sizeof sec, "%.2f", r.seconds);
    line.push_back(sec);
    if (!same_setup) line.push_back(describe(r));
    table.push_back(std::move(line));
  }

  std::vector<size_t> width(header.size(), 0);
  for (const auto& line : table)
    for (size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());

  std::string out;
  if (same_setup) out += describe(rows.front().second) + "\n";
  out += "Cov = catalogue coverage, Pop = mean relative training popularity of the top-" +
         std::to_string(kmax) + "\n";
  for (const auto& line : table) {
    std::string s;
    for (size_t c = 0; c < line.size(); ++c) {
      const std::string& cell = line[c];
      const std::string pad(width[c] - cell.size(), ' ');
      // Names and the protocol column left-aligned, numbers right-aligned.
      if (c == 0 || (!same_setup && c + 1 == line.size()))
        s += cell + pad;
      else
        s += pad + cell;
      if (c + 1 < line.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out += s + "\n";
  }
  return out;
}

std::string format_groups_table(const std::vector<std::pair<std::string, EvalResult>>& rows,
                                const std::vector<int>& cutoffs_in) {
  std::vector<int> cutoffs;
  for (int k : cutoffs_in)
    if (k >= 1) cutoffs.push_back(k);
  std::sort(cutoffs.begin(), cutoffs.end());
  cutoffs.erase(std::unique(cutoffs.begin(), cutoffs.end()), cutoffs.end());
  bool any = false, sequential = true;
  for (const auto& [name, r] : rows) {
    any = any || !r.groups.empty();
    if (!is_sequential(r)) sequential = false;
  }
  if (!any || cutoffs.empty()) return "";
  const std::string hit = sequential ? "HR" : "Recall";
  const std::string kmax = at_k(cutoffs.back());
  std::vector<std::string> header{"Model", "Targets", "Preds"};
  for (int k : cutoffs) {
    header.push_back(hit + at_k(k));
    header.push_back("NDCG" + at_k(k));
  }
  header.push_back("Chance " + hit + kmax);
  std::vector<std::vector<std::string>> table{header};
  bool unscorable = false;
  for (const auto& [name, r] : rows) {
    for (const TargetGroup& g : r.groups) {
      std::vector<std::string> line{name,
                                    g.kind == "cold_split" ? g.name : "train events " + g.name,
                                    std::to_string(g.n_predictions)};
      for (int k : cutoffs) {
        if (!g.scorable) {
          line.push_back("cannot score");
          line.push_back("-");
          unscorable = true;
        } else {
          line.push_back(fmt_metric(g.metrics, "recall" + at_k(k)));
          line.push_back(fmt_metric(g.metrics, "ndcg" + at_k(k)));
        }
      }
      line.push_back(fmt_metric(g.chance, "recall" + kmax));
      table.push_back(std::move(line));
    }
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& line : table)
    for (size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
  std::string out =
      "By target: warm/cold (the split's cold items) and the target's number of training "
      "events; chance = a random ranking of the same candidates\n";
  for (const auto& line : table) {
    std::string s;
    for (size_t c = 0; c < line.size(); ++c) {
      const std::string pad(width[c] - line[c].size(), ' ');
      s += c < 2 ? line[c] + pad : pad + line[c];
      if (c + 1 < line.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out += s + "\n";
  }
  if (unscorable)
    out +=
        "cannot score: the model knows items by their id only, and these targets have no "
        "training event\n";
  return out;
}

}  // namespace seqrec
