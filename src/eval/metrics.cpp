// Names of protocols and tie modes, the rank of a target, and metric sums.
#include <cmath>
#include <string>

#include "eval/ranking.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"

namespace seqrec {

int parse_exclude_seen(const std::string& s) {
  if (s == "auto") return kExcludeSeenDefault;
  if (s == "none" || s == "false") return kExcludeSeenNone;
  if (s == "except-target" || s == "true") return kExcludeSeenExceptTarget;
  if (s == "all") return kExcludeSeenAll;
  throw InputError("unknown exclude_seen mode '" + s +
                   "' (valid: auto, none, except-target, all; true/false mean "
                   "except-target/none)");
}

const char* exclude_seen_name(int mode) {
  switch (mode) {
    case kExcludeSeenNone:
      return "none";
    case kExcludeSeenExceptTarget:
      return "except-target";
    case kExcludeSeenAll:
      return "all";
  }
  return "?";
}

Protocol parse_protocol(const std::string& s) {
  if (s == "session") return Protocol::Session;
  if (s == "sequential") return Protocol::Sequential;
  throw InputError("unknown evaluation protocol '" + s + "' (valid: session, sequential)");
}

TieMode parse_ties(const std::string& s) {
  if (s == "conservative") return TieMode::Conservative;
  if (s == "standard") return TieMode::Standard;
  if (s == "median") return TieMode::Median;
  throw InputError("unknown tie mode '" + s + "' (valid: conservative, standard, median)");
}

const char* protocol_name(Protocol p) {
  switch (p) {
    case Protocol::Session:
      return "session";
    case Protocol::Sequential:
      return "sequential";
  }
  return "?";
}

const char* ties_name(TieMode t) {
  switch (t) {
    case TieMode::Conservative:
      return "conservative";
    case TieMode::Standard:
      return "standard";
    case TieMode::Median:
      return "median";
  }
  return "?";
}

double target_rank(std::span<const float> scores, int32_t target, TieMode ties,
                   std::span<const uint8_t> mask) {
  const int64_t n = static_cast<int64_t>(scores.size());
  if (target < 0 || target >= n)
    throw Error("target item " + std::to_string(target) + " is outside the score row [0, " +
                std::to_string(n) + ")");
  if (!mask.empty() && mask.size() != scores.size())
    throw Error("mask has " + std::to_string(mask.size()) + " entries, scores have " +
                std::to_string(n));
  const float t = scores[static_cast<size_t>(target)];
  if (std::isnan(t)) throw Error("model produced NaN scores");
  int64_t gt = 0, eq = 0, nan = 0;
  if (mask.empty()) {
    const auto c = eval_detail::count_row(scores.data(), n, t);
    gt = c.gt;
    eq = c.eq;
    nan = c.nan;
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float v = scores[static_cast<size_t>(i)];
      nan += std::isnan(v);
      if (mask[static_cast<size_t>(i)] != 0 && i != target) continue;
      gt += v > t;
      eq += v == t;
    }
  }
  if (nan > 0) throw Error("model produced NaN scores");
  return eval_detail::rank_from_counts(gt, eq, ties);
}

double rank_metric(RankMetric m, double rank, int k) {
  if (rank > k) return 0.0;
  switch (m) {
    case RankMetric::Recall:
      return 1.0;
    case RankMetric::Mrr:
      return 1.0 / rank;
    case RankMetric::Ndcg:
      return 1.0 / std::log2(rank + 1.0);
  }
  return 0.0;
}

RankMetric parse_rank_metric(const std::string& name) {
  if (name == "recall" || name == "hr") return RankMetric::Recall;
  if (name == "mrr") return RankMetric::Mrr;
  if (name == "ndcg") return RankMetric::Ndcg;
  throw InputError("unknown metric '" + name + "' (recall, hr, mrr or ndcg)");
}

std::string MetricAtK::result_key() const {
  return (metric == RankMetric::Recall ? std::string("recall") : name) + "@" + std::to_string(k);
}

MetricAtK parse_metric_at_k(const std::string& text, const std::string& what) {
  const auto at = text.find('@');
  if (at == std::string::npos)
    throw InputError(what + " expects NAME@K such as recall@20 or ndcg@10, got '" + text + "'");
  MetricAtK m;
  try {
    m.k = std::stoi(text.substr(at + 1));
  } catch (const std::exception&) {
    m.k = 0;
  }
  if (m.k <= 0) throw InputError(what + ": K must be a positive integer, got '" + text + "'");
  m.name = text.substr(0, at);
  try {
    m.metric = parse_rank_metric(m.name);
  } catch (const InputError& e) {
    throw InputError(what + ": " + e.what());
  }
  return m;
}

MetricAccumulator::MetricAccumulator(std::vector<int> cutoffs_in)
    : cutoffs(std::move(cutoffs_in)),
      hits(cutoffs.size(), 0.0),
      rr(cutoffs.size(), 0.0),
      ndcg(cutoffs.size(), 0.0) {}

void MetricAccumulator::add_rank(double rank) {
  ++n;
  // One relevant item: ideal DCG = 1, so NDCG = 1 / log2(rank + 1).
  const double inv = 1.0 / rank;
  const double gain = 1.0 / std::log2(rank + 1.0);
  for (size_t k = 0; k < cutoffs.size(); ++k) {
    if (rank <= cutoffs[k]) {
      hits[k] += 1.0;
      rr[k] += inv;
      ndcg[k] += gain;
    }
  }
}

void MetricAccumulator::merge(const MetricAccumulator& o) {
  if (o.cutoffs != cutoffs) throw Error("MetricAccumulator::merge: different cutoffs");
  n += o.n;
  for (size_t k = 0; k < cutoffs.size(); ++k) {
    hits[k] += o.hits[k];
    rr[k] += o.rr[k];
    ndcg[k] += o.ndcg[k];
  }
}

}  // namespace seqrec
