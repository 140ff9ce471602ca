// Sequential Rules (Ludewig & Jannach 2018; session-rec's SequentialRules): the weight of
// the rule a -> b sums, over training sessions, weight(j - i) for every pair of positions
// i < j <= i + steps holding a and b. A prefix is scored by the rules of its last item.
#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "models/model_base.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

namespace {

std::vector<ParamSpec> sr_params() {
  return {
      param_int("steps", "10", 1, 1000,
                "rules link each item to the items at most this many positions after it in "
                "a training session"),
      param_choice("weighting", "div", decay_names(),
                   "weight of a pair d positions apart: div 1/d, linear max(0, 1-0.1d), same "
                   "1, log 1/log10(d+1.7), quadratic 1/d^2"),
      param_int("max_rules", "0", 0, 2147483647,
                "keep only this many heaviest rules per item (0 = keep all; session-rec "
                "prunes to 20)"),
      param_bool("self_rules", "true",
                 "count pairs whose two positions hold the same item, i.e. rules a -> a "
                 "(session-rec does; false skips them, which ranks repeat clicks last)"),
      param_bool("pop_tiebreak", "true",
                 "add 1e-6 x count/max count to every score, so that items without a rule "
                 "(and other ties) rank by popularity instead of all tying"),
  };
}

class SrModel final : public ModelBase {
 public:
  using ModelBase::ModelBase;
  std::string type() const override { return "sr"; }

  void fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) override {
    check_training_data(train, n_items, "sr");
    const int64_t steps = config_.get_int("steps");
    const Decay decay = parse_decay(config_.get_string("weighting"));
    const int64_t max_rules = config_.get_int("max_rules");
    const bool self_rules = config_.get_bool("self_rules");
    n_items_ = n_items;
    counts_ = count_items(train, n_items);

    // Occurrences of each item (event positions, ascending) and each event's sequence end,
    // so that every row (source item) can be built independently of the others.
    const int64_t n_events = train.n_events();
    std::vector<int64_t> occ_off(static_cast<size_t>(n_items) + 1, 0);
    for (int32_t it : train.items) ++occ_off[static_cast<size_t>(it) + 1];
    for (size_t i = 1; i < occ_off.size(); ++i) occ_off[i] += occ_off[i - 1];
    std::vector<int64_t> occ(static_cast<size_t>(n_events));
    std::vector<int64_t> seq_end(static_cast<size_t>(n_events));
    {
      std::vector<int64_t> fill(occ_off.begin(), occ_off.end() - 1);
      for (size_t s = 0; s < train.size(); ++s) {
        for (int64_t p = train.offsets[s]; p < train.offsets[s + 1]; ++p) {
          seq_end[static_cast<size_t>(p)] = train.offsets[s + 1];
          occ[static_cast<size_t>(fill[static_cast<size_t>(train.items[p])]++)] = p;
        }
      }
    }
    std::vector<double> wtab(static_cast<size_t>(steps) + 1, 0.0);
    for (int64_t d = 1; d <= steps; ++d) wtab[static_cast<size_t>(d)] = distance_weight(decay, d);

    // Rows are built block by block (each block in parallel, rows kept in order), so peak
    // memory is the finished CSR plus one block of rows.
    rule_off_.assign(1, 0);
    rule_col_.clear();
    rule_val_.clear();
    Progress bar("sr rules", n_events, "events", ctx.progress);
    const int32_t block = 2048;
    std::vector<std::vector<std::pair<int32_t, float>>> rows;
    for (int32_t b0 = 0; b0 < n_items; b0 += block) {
      const int32_t b1 = std::min(n_items, b0 + block);
      rows.assign(static_cast<size_t>(b1 - b0), {});
      parallel_for(
          b1 - b0,
          [&](int64_t begin, int64_t end, int) {
            thread_local std::vector<double> acc;
            thread_local std::vector<int32_t> touched;
            if (acc.size() < static_cast<size_t>(n_items)) acc.assign(n_items, 0.0);
            for (int64_t r = begin; r < end; ++r) {
              const int32_t a = b0 + static_cast<int32_t>(r);
              touched.clear();
              for (int64_t k = occ_off[a]; k < occ_off[a + 1]; ++k) {
                const int64_t i = occ[static_cast<size_t>(k)];
                const int64_t last = std::min(seq_end[static_cast<size_t>(i)] - 1, i + steps);
                for (int64_t j = i + 1; j <= last; ++j) {
                  const int32_t bi = train.items[static_cast<size_t>(j)];
                  if (bi == a && !self_rules) continue;
                  double& slot = acc[static_cast<size_t>(bi)];
                  if (slot == 0.0) touched.push_back(bi);
                  slot += wtab[static_cast<size_t>(j - i)];
                }
              }
              auto& row = rows[static_cast<size_t>(r)];
              row.reserve(touched.size());
              for (int32_t c : touched) {
                const double v = acc[static_cast<size_t>(c)];
                acc[static_cast<size_t>(c)] = 0.0;
                if (v > 0.0) row.emplace_back(c, static_cast<float>(v));
              }
              if (max_rules > 0 && static_cast<int64_t>(row.size()) > max_rules) {
                std::nth_element(row.begin(), row.begin() + max_rules, row.end(),
                                 [](const auto& x, const auto& y) {
                                   return x.second != y.second ? x.second > y.second
                                                               : x.first < y.first;
                                 });
                row.resize(static_cast<size_t>(max_rules));
              }
              std::sort(row.begin(), row.end());
            }
          },
          16);
      for (int32_t a = b0; a < b1; ++a) {
        for (const auto& [c, v] : rows[static_cast<size_t>(a - b0)]) {
          rule_col_.push_back(c);
          rule_val_.push_back(v);
        }
        rule_off_.push_back(static_cast<int64_t>(rule_col_.size()));
      }
      bar.add(occ_off[b1] - occ_off[b0]);
      bar.set_note(std::to_string(rule_col_.size()) + " rules");
    }
    rows.clear();
    bar.finish();
    finalize();
  }

  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override {
    const size_t n = static_cast<size_t>(n_items_);
    for (size_t q = 0; q < queries.size(); ++q) {
      const auto prefix = query_prefix(seqs, queries[q]);
      float* row = out + q * n;
      std::memcpy(row, tiebreak_.data(), n * sizeof(float));
      const int32_t last = prefix.back();
      if (last < 0 || last >= n_items_) continue;
      for (int64_t k = rule_off_[last]; k < rule_off_[last + 1]; ++k) {
        const int32_t c = rule_col_[static_cast<size_t>(k)];
        row[c] = rule_val_[static_cast<size_t>(k)] + tiebreak_[static_cast<size_t>(c)];
      }
    }
  }

  void save(TensorWriter& w) const override {
    w.add<int64_t>("item_counts", std::span<const int64_t>(counts_));
    w.add<int64_t>("rule_offsets", std::span<const int64_t>(rule_off_));
    w.add<int32_t>("rule_items", std::span<const int32_t>(rule_col_));
    w.add<float>("rule_weights", std::span<const float>(rule_val_));
  }

  void load(const TensorReader& r) override {
    const auto counts = read_vector<int64_t>(r, "item_counts");
    if (counts.empty()) bad_tensor(r, "item_counts", "is empty");
    const int64_t n = static_cast<int64_t>(counts.size());
    const auto off = read_vector<int64_t>(r, "rule_offsets", n + 1);
    const auto col = read_vector<int32_t>(r, "rule_items");
    const auto val = read_vector<float>(r, "rule_weights", static_cast<int64_t>(col.size()));
    check_offsets(r, "rule_offsets", off, static_cast<int64_t>(col.size()));
    check_indices(r, "rule_items", col, n);
    counts_.assign(counts.begin(), counts.end());
    rule_off_.assign(off.begin(), off.end());
    rule_col_.assign(col.begin(), col.end());
    rule_val_.assign(val.begin(), val.end());
    n_items_ = static_cast<int32_t>(n);
    finalize();
  }

 private:
  void finalize() { tiebreak_ = popularity_tiebreak(counts_, config_.get_bool("pop_tiebreak")); }

  std::vector<int64_t> counts_;
  std::vector<int64_t> rule_off_{0};
  std::vector<int32_t> rule_col_;
  std::vector<float> rule_val_;
  std::vector<float> tiebreak_;
};

}  // namespace

ModelInfo sr_model_info() {
  return {"sr",
          "sequential rules (Ludewig & Jannach 2018): next items that followed the last item "
          "within a few steps in training sessions, weighted by distance",
          sr_params(), [](const Config& c) { return std::make_unique<SrModel>(c); }};
}

}  // namespace seqrec
