// evaluate(): builds the queries of a protocol, scores them in batches on all threads,
// ranks each target, and sums the metrics in a fixed order.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "eval/ranking.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/interrupt.hpp"

namespace seqrec {

namespace {

/// "@K" (built by append: GCC 12 warns falsely on "literal" + std::string).
std::string at_k(int k) {
  std::string s("@");
  s.append(std::to_string(k));
  return s;
}

using eval_detail::Scored;

/// One prediction: the next item after the first `len` events of test sequence `seq`.
struct Query {
  int32_t seq;
  int32_t len;
};

/// Buffers owned by one thread, allocated once and reused for every batch.
struct ThreadState {
  std::vector<float> scores;      // batch x n_items
  std::vector<uint8_t> mark;      // n_items: 1 = masked in the current row
  std::vector<uint8_t> in_seq;    // n_items: 1 = in the current sequence (sampled mode)
  std::vector<int32_t> best_pos;  // n_items: best top-K position ever given (coverage)
  std::vector<int32_t> masked;    // items masked in the current row
  std::vector<Scored> top;
  std::vector<std::span<const int32_t>> spans;
  std::vector<PrefixQuery> local;
};

/// Sums of one batch; merged in batch order so that results do not depend on threads.
struct BatchSums {
  MetricAccumulator acc;
  std::vector<double> pop;  // per cutoff: sum over predictions of the mean top-K popularity
  int64_t repeated = 0;     // predictions whose target occurs in its prefix
  // The breakdown: per target group, its metric sums, unscorable targets and the sums of
  // the chance level (expected recall@K and ndcg@K of a random ranking), per cutoff.
  std::vector<MetricAccumulator> groups;
  std::vector<int64_t> unscorable;
  std::vector<std::vector<double>> chance_recall, chance_ndcg;
};

std::vector<int> checked_cutoffs(const std::vector<int>& in) {
  std::vector<int> c;
  for (int k : in) {
    if (k < 1)
      throw InputError("evaluation cutoff K=" + std::to_string(k) + " is invalid: K must be >= 1");
    c.push_back(k);
  }
  if (c.empty()) throw InputError("no evaluation cutoffs given (e.g. 1,5,10,20)");
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

// Score buffers are capped at this many floats per thread (64 MiB); large catalogues get
// smaller batches.
constexpr int64_t kMaxBufferFloats = int64_t{1} << 24;

}  // namespace

std::string frequency_group_name(size_t g) {
  constexpr size_t n = std::size(kFrequencyGroupStarts);
  if (g >= n) throw Error("frequency group " + std::to_string(g) + " out of range");
  const int64_t lo = kFrequencyGroupStarts[g];
  if (g + 1 == n) return std::to_string(lo) + "+";
  const int64_t hi = kFrequencyGroupStarts[g + 1] - 1;
  return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
}

int64_t count_predictions(const SequenceSet& test, Protocol protocol) {
  int64_t n = 0;
  for (size_t s = 0; s < test.size(); ++s) {
    const int64_t len = test.length(s);
    if (len >= 2) n += protocol == Protocol::Session ? len - 1 : 1;
  }
  return n;
}

EvalResult evaluate(const Model& model, const SequenceSet& test, const EvalOptions& opt,
                    std::span<const int64_t> train_counts) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int> cutoffs = checked_cutoffs(opt.cutoffs);
  const int kmax = cutoffs.back();
  const size_t n_cut = cutoffs.size();
  if (opt.batch_size < 1)
    throw InputError("evaluation batch size must be >= 1, got " + std::to_string(opt.batch_size));
  if (opt.sampled_negatives < 0)
    throw InputError("sampled negatives must be >= 0, got " +
                     std::to_string(opt.sampled_negatives));
  if (opt.sampled_negatives > 0 && opt.protocol != Protocol::Sequential)
    throw InputError(
        "sampled negatives need the sequential protocol (the session protocol "
        "always ranks the full catalogue)");
  if (opt.exclude_seen < kExcludeSeenDefault || opt.exclude_seen > kExcludeSeenAll)
    throw InputError(
        "exclude_seen must be -1 (protocol default), 0 (none), 1 (except-target) or 2 (all), "
        "got " +
        std::to_string(opt.exclude_seen));
  const int exclude_mode = opt.exclude_seen != kExcludeSeenDefault ? opt.exclude_seen
                           : opt.protocol == Protocol::Sequential  ? kExcludeSeenExceptTarget
                                                                   : kExcludeSeenNone;
  const bool exclude_seen = exclude_mode != kExcludeSeenNone;
  const bool exclude_target = exclude_mode == kExcludeSeenAll;
  const bool sampled = opt.sampled_negatives > 0;
  const int n_neg = opt.sampled_negatives;

  const int32_t n_items = model.n_items();
  if (n_items <= 0) throw Error("model has no items (was it trained?)");
  if (!train_counts.empty() && static_cast<int64_t>(train_counts.size()) != n_items)
    throw InputError("training counts cover " + std::to_string(train_counts.size()) +
                     " items, the model has " + std::to_string(n_items));
  if (test.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw InputError("too many test sequences (" + std::to_string(test.size()) + ")");

  // Callers remap test sets onto the model's vocabulary; anything else is a bug upstream.
  for (size_t s = 0; s < test.size(); ++s) {
    for (int32_t it : test.seq(s)) {
      if (it < 0 || it >= n_items)
        throw Error("test sequence '" + test.ids[s] + "' (index " + std::to_string(s) +
                    ") holds item index " + std::to_string(it) + " outside [0, " +
                    std::to_string(n_items) + "): remap the test set to the model's items first");
    }
  }

  // The queries, grouped by sequence and in prefix order.
  std::vector<Query> queries;
  int64_t n_sequences = 0;
  for (size_t s = 0; s < test.size(); ++s) {
    const int64_t len = test.length(s);
    if (len < 2) continue;
    if (len > std::numeric_limits<int32_t>::max())
      throw InputError("test sequence '" + test.ids[s] + "' is too long");
    ++n_sequences;
    const int32_t si = static_cast<int32_t>(s);
    if (opt.protocol == Protocol::Session) {
      for (int32_t l = 1; l < len; ++l) queries.push_back({si, l});
    } else {
      queries.push_back({si, static_cast<int32_t>(len - 1)});
    }
  }
  const int64_t n_queries = static_cast<int64_t>(queries.size());
  if (n_queries == 0)
    throw InputError("test set has no predictable events: none of its " +
                     std::to_string(test.size()) +
                     " sequences has 2 or more events over items known to the model, so "
                     "there is nothing to predict (0 predictions)");

  // Popularity of each item relative to the most popular one.
  std::vector<double> pop;
  if (!train_counts.empty()) {
    int64_t max_count = 0;
    for (int64_t c : train_counts) max_count = std::max(max_count, c);
    pop.resize(static_cast<size_t>(n_items), 0.0);
    if (max_count > 0)
      for (int32_t i = 0; i < n_items; ++i)
        pop[static_cast<size_t>(i)] = static_cast<double>(train_counts[static_cast<size_t>(i)]) /
                                      static_cast<double>(max_count);
  }

  // The breakdown's groups: warm/cold (a split with cold items), then training frequency.
  const bool breakdown = opt.breakdown == 1 || (opt.breakdown < 0 && !opt.cold_items.empty());
  const bool by_cold = breakdown && !opt.cold_items.empty();
  const bool by_freq = breakdown && !train_counts.empty();
  constexpr size_t kFreqGroups = std::size(kFrequencyGroupStarts);
  const size_t n_groups = (by_cold ? 2 : 0) + (by_freq ? kFreqGroups : 0);
  std::vector<uint8_t> is_cold;
  if (by_cold) {
    is_cold.assign(static_cast<size_t>(n_items), 0);
    for (int32_t it : opt.cold_items) {
      if (it < 0 || it >= n_items)
        throw Error("cold item index " + std::to_string(it) + " outside [0, " +
                    std::to_string(n_items) + ")");
      is_cold[static_cast<size_t>(it)] = 1;
    }
  }
  auto freq_group = [&](int32_t target) {
    const int64_t c = train_counts[static_cast<size_t>(target)];
    size_t g = 0;
    while (g + 1 < kFreqGroups && c >= kFrequencyGroupStarts[g + 1]) ++g;
    return g;
  };
  // 1 / log2(r + 1) summed over r = 1..k, for the chance level of NDCG@K.
  std::vector<double> dcg_prefix(static_cast<size_t>(kmax) + 1, 0.0);
  for (int r = 1; r <= kmax; ++r)
    dcg_prefix[static_cast<size_t>(r)] =
        dcg_prefix[static_cast<size_t>(r - 1)] + 1.0 / std::log2(static_cast<double>(r) + 1.0);

  const int64_t batch =
      std::max<int64_t>(1, std::min<int64_t>(opt.batch_size, kMaxBufferFloats / n_items));
  const int64_t n_batches = (n_queries + batch - 1) / batch;

  ThreadScope thread_scope(opt.threads, ZeroThreads::AllCores);  // 0 = all cores, as documented
  const int nt = std::max(1, num_threads());
  std::vector<std::unique_ptr<ThreadState>> states(static_cast<size_t>(nt));
  std::vector<BatchSums> sums(static_cast<size_t>(n_batches));
  // Per-prediction ranks (optional): each batch writes its own slots.
  std::vector<QueryRank> ranks;
  if (opt.keep_ranks) ranks.resize(static_cast<size_t>(n_queries));

  Progress progress("evaluate", n_queries, "predictions", opt.progress);
  std::atomic<int64_t> done{0};
  int64_t reported = 0;  // touched by thread 0 only
  std::atomic<bool> failed{false};
  constexpr float kMasked = -std::numeric_limits<float>::infinity();

  auto run_batch = [&](int64_t b, ThreadState& st) {
    check_interrupt("evaluation");  // seqrec/interrupt.hpp: a host asked to stop
    const int64_t qb = b * batch, qe = std::min(n_queries, qb + batch);
    const int64_t rows = qe - qb;

    // The spans this batch needs, each cut at its longest prefix: a model never sees a
    // target it is asked to predict.
    st.spans.clear();
    st.local.clear();
    int32_t last_seq = -1;
    for (int64_t q = qb; q < qe; ++q) {
      const Query& qu = queries[static_cast<size_t>(q)];
      if (qu.seq != last_seq) {
        st.spans.push_back(test.seq(static_cast<size_t>(qu.seq)).first(0));
        last_seq = qu.seq;
      }
      const int32_t li = static_cast<int32_t>(st.spans.size()) - 1;
      auto& sp = st.spans.back();
      if (static_cast<size_t>(qu.len) > sp.size())
        sp = test.seq(static_cast<size_t>(qu.seq)).first(static_cast<size_t>(qu.len));
      st.local.push_back({li, qu.len});
    }
    float* buf = st.scores.data();
    model.score(std::span<const std::span<const int32_t>>(st.spans),
                std::span<const PrefixQuery>(st.local), buf);

    BatchSums& out = sums[static_cast<size_t>(b)];
    out.acc = MetricAccumulator(cutoffs);
    out.pop.assign(n_cut, 0.0);
    if (n_groups > 0) {
      out.groups.assign(n_groups, MetricAccumulator(cutoffs));
      out.unscorable.assign(n_groups, 0);
      out.chance_recall.assign(n_groups, std::vector<double>(n_cut, 0.0));
      out.chance_ndcg.assign(n_groups, std::vector<double>(n_cut, 0.0));
    }
    for (int64_t r = 0; r < rows; ++r) {
      const Query& qu = queries[static_cast<size_t>(qb + r)];
      const auto seq = test.seq(static_cast<size_t>(qu.seq));
      const int32_t target = seq[static_cast<size_t>(qu.len)];
      float* row = buf + r * n_items;
      const float t = row[target];
      const auto c = eval_detail::count_row(row, n_items, t);
      if (c.nan > 0) throw Error("model produced NaN scores");
      int64_t gt = c.gt, eq = c.eq;

      // Exclusion: items of the prefix other than the target leave the ranking; under
      // "all" the target too when it is one of them, which makes the prediction a miss.
      bool repeated = false;
      if (exclude_seen) {
        for (size_t p = 0; p < static_cast<size_t>(qu.len); ++p) {
          const int32_t it = seq[p];
          if (it == target) repeated = true;
          if (it == target || st.mark[static_cast<size_t>(it)] != 0) continue;
          st.mark[static_cast<size_t>(it)] = 1;
          st.masked.push_back(it);
          const float v = row[it];
          gt -= v > t;
          eq -= v == t;
          row[it] = kMasked;
        }
      } else {
        for (size_t p = 0; p < static_cast<size_t>(qu.len) && !repeated; ++p)
          repeated = seq[p] == target;
      }
      out.repeated += repeated;
      // Candidates the target is ranked among (the chance level of the breakdown).
      int64_t candidates = n_items - static_cast<int64_t>(st.masked.size());
      const bool target_excluded = exclude_target && repeated;
      if (target_excluded) {
        st.mark[static_cast<size_t>(target)] = 1;
        st.masked.push_back(target);
        row[target] = kMasked;
      }

      if (sampled) {
        // SASRec's rule: each negative uniform over the catalogue, redrawn while it is in
        // the sequence (the target included); negatives may repeat.
        int32_t distinct = 0;
        for (int32_t it : seq) {
          distinct += st.in_seq[static_cast<size_t>(it)] == 0;
          st.in_seq[static_cast<size_t>(it)] = 1;
        }
        gt = 0;
        eq = 1;
        if (distinct < n_items) {
          eval_detail::SplitMix64 rng(
              eval_detail::sequence_seed(opt.seed, static_cast<uint64_t>(qu.seq)));
          for (int k = 0; k < n_neg; ++k) {
            int32_t it;
            do {
              it = rng.below(n_items);
            } while (st.in_seq[static_cast<size_t>(it)] != 0);
            const float v = row[it];
            gt += v > t;
            eq += v == t;
          }
        }
        for (int32_t it : seq) st.in_seq[static_cast<size_t>(it)] = 0;
      }
      // An excluded target is not in the ranking at all: beyond every cutoff.
      const double rank = target_excluded ? std::numeric_limits<double>::infinity()
                                          : eval_detail::rank_from_counts(gt, eq, opt.ties);
      out.acc.add_rank(rank);
      if (n_groups > 0) {
        if (sampled) candidates = n_neg + 1;
        const bool unscorable = !train_counts.empty() &&
                                train_counts[static_cast<size_t>(target)] == 0 &&
                                !model.scores_untrained_item(target);
        auto add = [&](size_t g) {
          out.groups[g].add_rank(rank);
          out.unscorable[g] += unscorable;
          const double cand = static_cast<double>(std::max<int64_t>(candidates, 1));
          for (size_t k = 0; k < n_cut; ++k) {
            const int64_t top = std::min<int64_t>(cutoffs[k], candidates);
            out.chance_recall[g][k] += static_cast<double>(top) / cand;
            out.chance_ndcg[g][k] += dcg_prefix[static_cast<size_t>(top)] / cand;
          }
        };
        if (by_cold) add(is_cold[static_cast<size_t>(target)] ? 1 : 0);
        if (by_freq) add((by_cold ? 2 : 0) + freq_group(target));
      }
      if (!ranks.empty()) ranks[static_cast<size_t>(qb + r)] = {qu.seq, qu.len, target, rank};

      // What the model would recommend (masked items left out), for coverage/popularity.
      eval_detail::select_top_k(row, n_items, kmax, exclude_seen ? st.mark.data() : nullptr,
                                st.top);
      // avg_pop@K: mean relative popularity of the first K recommendations (of all of
      // them when fewer than K items could be recommended).
      double cum = 0;
      size_t ci = 0;
      const size_t got = st.top.size();
      for (size_t p = 0; p < got; ++p) {
        const int32_t it = st.top[p].item;
        int32_t& bp = st.best_pos[static_cast<size_t>(it)];
        bp = std::min(bp, static_cast<int32_t>(p));
        if (!pop.empty()) cum += pop[static_cast<size_t>(it)];
        for (; ci < n_cut && static_cast<size_t>(cutoffs[ci]) == p + 1; ++ci)
          out.pop[ci] += cum / static_cast<double>(p + 1);
      }
      if (got > 0)
        for (; ci < n_cut; ++ci) out.pop[ci] += cum / static_cast<double>(got);

      for (int32_t it : st.masked) st.mark[static_cast<size_t>(it)] = 0;
      st.masked.clear();
    }
    return rows;
  };

  parallel_for(
      n_batches,
      [&](int64_t begin, int64_t end, int tid) {
        auto& slot = states[static_cast<size_t>(tid)];
        if (!slot) {
          slot = std::make_unique<ThreadState>();
          slot->scores.resize(static_cast<size_t>(batch * n_items));
          slot->mark.assign(static_cast<size_t>(n_items), 0);
          if (sampled) slot->in_seq.assign(static_cast<size_t>(n_items), 0);
          slot->best_pos.assign(static_cast<size_t>(n_items), std::numeric_limits<int32_t>::max());
          slot->top.reserve(static_cast<size_t>(kmax));
          slot->spans.reserve(static_cast<size_t>(batch));
          slot->local.reserve(static_cast<size_t>(batch));
        }
        for (int64_t b = begin; b < end; ++b) {
          if (failed.load(std::memory_order_relaxed)) return;
          int64_t rows;
          try {
            rows = run_batch(b, *slot);
          } catch (...) {
            failed = true;
            throw;
          }
          const int64_t now = done.fetch_add(rows) + rows;
          if (tid == 0) {
            progress.add(now - reported);
            reported = now;
          }
        }
      },
      1);
  progress.add(n_queries - reported);
  progress.finish();

  // Merge in batch order: the same sums whatever the number of threads.
  MetricAccumulator acc(cutoffs);
  std::vector<double> pop_sum(n_cut, 0.0);
  int64_t repeated = 0;
  std::vector<MetricAccumulator> group_acc(n_groups, MetricAccumulator(cutoffs));
  std::vector<int64_t> group_unscorable(n_groups, 0);
  std::vector<std::vector<double>> chance_recall(n_groups, std::vector<double>(n_cut, 0.0)),
      chance_ndcg = chance_recall;
  for (const BatchSums& s : sums) {
    acc.merge(s.acc);
    for (size_t g = 0; g < n_groups; ++g) {
      group_acc[g].merge(s.groups[g]);
      group_unscorable[g] += s.unscorable[g];
      for (size_t k = 0; k < n_cut; ++k) {
        chance_recall[g][k] += s.chance_recall[g][k];
        chance_ndcg[g][k] += s.chance_ndcg[g][k];
      }
    }
    for (size_t k = 0; k < n_cut; ++k) pop_sum[k] += s.pop[k];
    repeated += s.repeated;
  }
  std::vector<int32_t> best_pos(static_cast<size_t>(n_items), std::numeric_limits<int32_t>::max());
  for (const auto& st : states) {
    if (!st) continue;
    for (size_t i = 0; i < best_pos.size(); ++i)
      best_pos[i] = std::min(best_pos[i], st->best_pos[i]);
  }

  EvalResult res;
  res.protocol = protocol_name(opt.protocol);
  if (sampled) res.protocol += "-sampled-" + std::to_string(n_neg);
  res.ties = ties_name(opt.ties);
  res.exclude_seen = exclude_seen;
  res.exclude_seen_mode = exclude_seen_name(exclude_mode);
  res.n_repeated_targets = repeated;
  res.sampled_negatives = n_neg;
  res.n_sequences = n_sequences;
  res.n_predictions = acc.n;
  const double n = static_cast<double>(acc.n);
  for (size_t k = 0; k < n_cut; ++k) {
    const std::string at = at_k(cutoffs[k]);
    res.metrics["recall" + at] = acc.hits[k] / n;
    if (opt.protocol == Protocol::Sequential) res.metrics["hr" + at] = acc.hits[k] / n;
    res.metrics["mrr" + at] = acc.rr[k] / n;
    res.metrics["ndcg" + at] = acc.ndcg[k] / n;
    int64_t covered = 0;
    for (int32_t bp : best_pos) covered += bp < cutoffs[k];
    res.metrics["coverage" + at] = static_cast<double>(covered) / static_cast<double>(n_items);
    if (!pop.empty()) res.metrics["avg_pop" + at] = pop_sum[k] / n;
  }
  for (size_t g = 0; g < n_groups; ++g) {
    TargetGroup tg;
    if (by_cold && g < 2) {
      tg.kind = "cold_split";
      tg.name = g == 0 ? "warm" : "cold";
    } else {
      tg.kind = "train_frequency";
      tg.name = frequency_group_name(g - (by_cold ? 2 : 0));
    }
    const MetricAccumulator& a = group_acc[g];
    tg.n_predictions = a.n;
    tg.n_unscorable = group_unscorable[g];
    tg.scorable = a.n == 0 || tg.n_unscorable < a.n;
    if (a.n > 0) {
      const double gn = static_cast<double>(a.n);
      for (size_t k = 0; k < n_cut; ++k) {
        const std::string at = at_k(cutoffs[k]);
        tg.chance["recall" + at] = chance_recall[g][k] / gn;
        tg.chance["ndcg" + at] = chance_ndcg[g][k] / gn;
        if (!tg.scorable) continue;
        tg.metrics["recall" + at] = a.hits[k] / gn;
        if (opt.protocol == Protocol::Sequential) tg.metrics["hr" + at] = a.hits[k] / gn;
        tg.metrics["mrr" + at] = a.rr[k] / gn;
        tg.metrics["ndcg" + at] = a.ndcg[k] / gn;
      }
    }
    res.groups.push_back(std::move(tg));
  }
  res.ranks = std::move(ranks);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace seqrec
