// V-SKNN, vector-multiplication session kNN (Ludewig & Jannach 2018; session-rec's
// VMContextKNN). The current session is a vector of position weights over its items; a
// training session that shares items with it is a neighbour with similarity
// sum(weights of shared items) / #distinct current items; the k most similar among the
// sample_size most recent candidate sessions vote for their items, each vote decayed by how
// far back in the current session the neighbour's most recent shared item lies.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <utility>

#include "core/progress.hpp"
#include "core/rng.hpp"
#include "models/model_base.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

namespace {

std::vector<ParamSpec> vsknn_params() {
  return {
      param_int("k", "100", 1, 1e9, "number of neighbour sessions that vote"),
      param_int("sample_size", "500", 0, 1e9,
                "candidate neighbours: at most this many of the training sessions sharing an "
                "item with the current one (0 = all of them)"),
      param_choice("sampling", "recent", {"recent", "random"},
                   "which candidates when more sessions qualify: recent (latest session end "
                   "times) or random (seeded by the prefix, so repeatable)"),
      param_choice("similarity", "vec", {"vec", "cosine", "jaccard"},
                   "vec: sum of the current session's position weights over shared items / "
                   "#distinct current items; cosine: that sum / (sqrt(sum of squared weights) "
                   "sqrt(#neighbour items)); jaccard: |shared| / |union| (ignores weights)"),
      param_choice("weighting", "div", decay_names(),
                   "weight of the item at 1-based position p of the current session of "
                   "length L: div p/L, linear max(0, 1-0.1(L-p)), same 1, log "
                   "1/log10(L-p+1.7), quadratic (p/L)^2"),
      param_choice("weighting_score", "div", decay_names(),
                   "decay of a neighbour's votes by the step s (1 = last event) of the most "
                   "recent current item it shares: div 1/s, linear max(0, 1-0.1s), same 1, "
                   "log 1/log10(s+1.7), quadratic 1/s^2"),
      param_float("idf_weighting", "0", 0, 1e9,
                  "w > 0 multiplies each vote for item i by (1 + w idf(i)), idf(i) = "
                  "ln(#training sessions / #training events of i); 0 = off"),
      param_bool("remind", "true", "let neighbours vote for items already in the current session"),
      param_bool("pop_tiebreak", "true",
                 "add 1e-6 x count/max count to every score, so that items no neighbour votes "
                 "for (and other ties) rank by popularity instead of all tying"),
  };
}

enum class Sampling { Recent, Random };
enum class Similarity { Vec, Cosine, Jaccard };

// Per-thread working memory, reused across queries and models. Marks hold the generation
// of the query that last touched an entry, so nothing O(n_sessions) is cleared per query.
struct Scratch {
  std::vector<uint32_t> sess_mark, item_mark, acc_mark;  // sess_mark by recency rank
  std::vector<double> item_w, acc;
  std::vector<int32_t> item_last;  // last 1-based position of the item in the prefix
  std::vector<int32_t> cand, touched, distinct;
  struct Neighbour {
    double sim;
    int32_t rank;  // recency rank of the session (0 = most recent)
    int32_t last_pos;
  };
  std::vector<Neighbour> neigh;
  using Cursor = std::pair<int32_t, std::pair<int64_t, int64_t>>;  // (rank, (pos, end))
  std::vector<Cursor> heap;
  uint32_t gen = 0;

  void begin(size_t n_sessions, size_t n_items) {
    if (sess_mark.size() < n_sessions) sess_mark.resize(n_sessions, 0);
    if (item_mark.size() < n_items) {
      item_mark.resize(n_items, 0);
      acc_mark.resize(n_items, 0);
      item_w.resize(n_items, 0.0);
      acc.resize(n_items, 0.0);
      item_last.resize(n_items, 0);
    }
    if (++gen == 0) {  // wrapped: forget every mark
      std::fill(sess_mark.begin(), sess_mark.end(), 0);
      std::fill(item_mark.begin(), item_mark.end(), 0);
      std::fill(acc_mark.begin(), acc_mark.end(), 0);
      gen = 1;
    }
    cand.clear();
    touched.clear();
    distinct.clear();
    neigh.clear();
    heap.clear();
  }
};

class VsknnModel final : public ModelBase {
 public:
  explicit VsknnModel(const Config& c) : ModelBase(c) { read_params(); }
  std::string type() const override { return "vsknn"; }

  void fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) override {
    check_training_data(train, n_items, "vsknn");
    Progress bar("vsknn index", train.n_events(), "events", ctx.progress);
    n_items_ = n_items;
    counts_ = count_items(train, n_items);
    // Sessions as sets of items (first-appearance order), ending time = time of the last
    // event (session-rec), or the sequence's index when the data has no times.
    sess_off_.assign(1, 0);
    sess_items_.clear();
    sess_time_.clear();
    std::vector<uint32_t> seen(static_cast<size_t>(n_items), 0);
    uint32_t stamp = 0;
    for (size_t s = 0; s < train.size(); ++s) {
      const auto seq = train.seq(s);
      if (seq.empty()) continue;
      ++stamp;
      for (int32_t it : seq) {
        if (seen[static_cast<size_t>(it)] == stamp) continue;
        seen[static_cast<size_t>(it)] = stamp;
        sess_items_.push_back(it);
      }
      sess_off_.push_back(static_cast<int64_t>(sess_items_.size()));
      sess_time_.push_back(train.has_times() ? train.seq_times(s).back() : static_cast<double>(s));
      bar.add(static_cast<int64_t>(seq.size()));
    }
    bar.finish();
    finalize();
  }

  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override {
    thread_local Scratch scratch;
    const size_t n = static_cast<size_t>(n_items_);
    for (size_t q = 0; q < queries.size(); ++q) {
      score_one(query_prefix(seqs, queries[q]), out + q * n, scratch);
    }
  }

  void save(TensorWriter& w) const override {
    w.add<int64_t>("item_counts", std::span<const int64_t>(counts_));
    w.add<int64_t>("session_offsets", std::span<const int64_t>(sess_off_));
    w.add<int32_t>("session_items", std::span<const int32_t>(sess_items_));
    w.add<double>("session_times", std::span<const double>(sess_time_));
  }

  void load(const TensorReader& r) override {
    const auto counts = read_vector<int64_t>(r, "item_counts");
    if (counts.empty()) bad_tensor(r, "item_counts", "is empty");
    const auto off = read_vector<int64_t>(r, "session_offsets");
    if (off.empty()) bad_tensor(r, "session_offsets", "is empty");
    const auto items = read_vector<int32_t>(r, "session_items");
    const auto times =
        read_vector<double>(r, "session_times", static_cast<int64_t>(off.size()) - 1);
    check_offsets(r, "session_offsets", off, static_cast<int64_t>(items.size()));
    check_indices(r, "session_items", items, static_cast<int64_t>(counts.size()));
    counts_.assign(counts.begin(), counts.end());
    sess_off_.assign(off.begin(), off.end());
    sess_items_.assign(items.begin(), items.end());
    sess_time_.assign(times.begin(), times.end());
    n_items_ = static_cast<int32_t>(counts_.size());
    finalize();
  }

 private:
  void read_params() {
    k_ = config_.get_int("k");
    sample_size_ = config_.get_int("sample_size");
    sampling_ = config_.get_string("sampling") == "random" ? Sampling::Random : Sampling::Recent;
    const std::string& sim = config_.get_string("similarity");
    similarity_ = sim == "cosine"    ? Similarity::Cosine
                  : sim == "jaccard" ? Similarity::Jaccard
                                     : Similarity::Vec;
    weighting_ = parse_decay(config_.get_string("weighting"));
    weighting_score_ = parse_decay(config_.get_string("weighting_score"));
    idf_weighting_ = config_.get_float("idf_weighting");
    remind_ = config_.get_bool("remind");
  }

  // Derived state: the item -> sessions index (most recent first), idf and tie-breaker.
  void finalize() {
    const size_t n = static_cast<size_t>(n_items_);
    const int64_t n_sess = static_cast<int64_t>(sess_time_.size());
    tiebreak_ = popularity_tiebreak(counts_, config_.get_bool("pop_tiebreak"));
    tiebreak_d_.assign(tiebreak_.begin(), tiebreak_.end());
    idf_.assign(n, 0.0);
    for (size_t i = 0; i < n; ++i) {
      if (counts_[i] > 0) {
        idf_[i] = std::log(static_cast<double>(n_sess) / static_cast<double>(counts_[i]));
      }
    }
    // Sessions from most to least recent (ties: the later sequence first), then a counting
    // sort by item keeps that order inside every item's list.
    std::vector<int32_t> order(static_cast<size_t>(n_sess));
    std::iota(order.begin(), order.end(), 0);
    std::vector<double> key(sess_time_);
    for (double& t : key) {
      if (std::isnan(t)) t = -std::numeric_limits<double>::infinity();  // keeps the order strict
    }
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      const double ta = key[static_cast<size_t>(a)], tb = key[static_cast<size_t>(b)];
      return ta != tb ? ta > tb : a > b;
    });
    order_ = std::move(order);
    item_off_.assign(n + 1, 0);
    for (int32_t it : sess_items_) ++item_off_[static_cast<size_t>(it) + 1];
    for (size_t i = 1; i <= n; ++i) item_off_[i] += item_off_[i - 1];
    item_ranks_.assign(sess_items_.size(), 0);
    std::vector<int64_t> fill(item_off_.begin(), item_off_.end() - 1);
    for (int32_t r = 0; r < static_cast<int32_t>(n_sess); ++r) {
      const int32_t s = order_[static_cast<size_t>(r)];
      for (int64_t p = sess_off_[s]; p < sess_off_[s + 1]; ++p) {
        const auto it = static_cast<size_t>(sess_items_[static_cast<size_t>(p)]);
        item_ranks_[static_cast<size_t>(fill[it]++)] = r;
      }
    }
  }

  // Candidate neighbours: every session holding an item of the prefix, limited to
  // sample_size by recency (a k-way merge of the items' recency-sorted lists that stops at
  // sample_size distinct sessions) or by a seeded random draw.
  void gather_candidates(Scratch& sc) const {
    const uint32_t gen = sc.gen;
    const bool limited = sample_size_ > 0;
    if (sampling_ == Sampling::Recent && limited) {
      // Min-heap of (recency rank, cursor, end), one entry per item list; the smallest rank
      // is the most recent session.
      auto& heap = sc.heap;
      const auto later = std::greater<Scratch::Cursor>();
      for (int32_t it : sc.distinct) {
        const int64_t b = item_off_[it], e = item_off_[it + 1];
        if (b < e) {
          heap.push_back({item_ranks_[static_cast<size_t>(b)], {b, e}});
          std::push_heap(heap.begin(), heap.end(), later);
        }
      }
      while (!heap.empty() && static_cast<int64_t>(sc.cand.size()) < sample_size_) {
        std::pop_heap(heap.begin(), heap.end(), later);
        auto& [r, range] = heap.back();
        if (sc.sess_mark[static_cast<size_t>(r)] != gen) {
          sc.sess_mark[static_cast<size_t>(r)] = gen;
          sc.cand.push_back(r);
        }
        if (++range.first < range.second) {
          r = item_ranks_[static_cast<size_t>(range.first)];
          std::push_heap(heap.begin(), heap.end(), later);
        } else {
          heap.pop_back();
        }
      }
      return;
    }
    for (int32_t it : sc.distinct) {
      for (int64_t p = item_off_[it]; p < item_off_[it + 1]; ++p) {
        const int32_t r = item_ranks_[static_cast<size_t>(p)];
        if (sc.sess_mark[static_cast<size_t>(r)] == gen) continue;
        sc.sess_mark[static_cast<size_t>(r)] = gen;
        sc.cand.push_back(r);
      }
    }
    if (limited && static_cast<int64_t>(sc.cand.size()) > sample_size_) {
      // Random sample: partial Fisher-Yates over the candidates in a canonical order, seeded
      // by the prefix's distinct items, so a prefix always gets the same neighbours.
      std::sort(sc.cand.begin(), sc.cand.end());
      uint64_t seed = 0x5EED5EED5EEDull;
      for (int32_t it : sc.distinct) seed = seed * 1000003ull + static_cast<uint64_t>(it);
      for (int64_t i = 0; i < sample_size_; ++i) {
        const uint64_t span = sc.cand.size() - static_cast<size_t>(i);
        const size_t j = static_cast<size_t>(i) + static_cast<size_t>(splitmix64(seed) % span);
        std::swap(sc.cand[static_cast<size_t>(i)], sc.cand[j]);
      }
      sc.cand.resize(static_cast<size_t>(sample_size_));
    }
  }

  void score_one(std::span<const int32_t> prefix, float* row, Scratch& sc) const {
    const size_t n = static_cast<size_t>(n_items_);
    std::memcpy(row, tiebreak_.data(), n * sizeof(float));
    sc.begin(sess_time_.size(), n);
    const uint32_t gen = sc.gen;
    // Position weights of the prefix; a repeated item keeps its last position's weight.
    // Items outside the catalogue are skipped (they cannot be in any training session).
    const int64_t len = static_cast<int64_t>(prefix.size());
    for (int64_t p = 1; p <= len; ++p) {
      const int32_t it = prefix[static_cast<size_t>(p - 1)];
      if (it < 0 || it >= n_items_) continue;
      if (sc.item_mark[static_cast<size_t>(it)] != gen) {
        sc.item_mark[static_cast<size_t>(it)] = gen;
        sc.distinct.push_back(it);
      }
      sc.item_w[static_cast<size_t>(it)] = position_weight(weighting_, p, len);
      sc.item_last[static_cast<size_t>(it)] = static_cast<int32_t>(p);
    }
    if (sc.distinct.empty()) return;
    const double n_distinct = static_cast<double>(sc.distinct.size());
    double sq_norm = 0.0;
    for (int32_t it : sc.distinct) sq_norm += sc.item_w[it] * sc.item_w[it];

    gather_candidates(sc);

    for (int32_t r : sc.cand) {
      const int32_t s = order_[static_cast<size_t>(r)];
      double dot = 0.0;
      int64_t shared = 0;
      int32_t last_pos = 0;
      const int64_t b = sess_off_[s], e = sess_off_[s + 1];
      for (int64_t p = b; p < e; ++p) {
        const auto it = static_cast<size_t>(sess_items_[static_cast<size_t>(p)]);
        if (sc.item_mark[it] != gen) continue;
        dot += sc.item_w[it];
        ++shared;
        last_pos = std::max(last_pos, sc.item_last[it]);
      }
      double sim = 0.0;
      switch (similarity_) {
        case Similarity::Vec:
          sim = dot / n_distinct;
          break;
        case Similarity::Cosine:
          sim = dot / (std::sqrt(sq_norm) * std::sqrt(static_cast<double>(e - b)));
          break;
        case Similarity::Jaccard:
          sim = static_cast<double>(shared) /
                (n_distinct + static_cast<double>(e - b) - static_cast<double>(shared));
          break;
      }
      if (sim > 0.0) sc.neigh.push_back({sim, r, last_pos});
    }
    // Top k by similarity; equal similarities go to the more recent session.
    const size_t kk = std::min(sc.neigh.size(), static_cast<size_t>(k_));
    std::partial_sort(sc.neigh.begin(), sc.neigh.begin() + kk, sc.neigh.end(),
                      [&](const Scratch::Neighbour& x, const Scratch::Neighbour& y) {
                        if (x.sim != y.sim) return x.sim > y.sim;
                        return x.rank < y.rank;
                      });
    for (size_t i = 0; i < kk; ++i) {
      const Scratch::Neighbour& nb = sc.neigh[i];
      const double decay = distance_weight(weighting_score_, len - nb.last_pos + 1);
      const int32_t s = order_[static_cast<size_t>(nb.rank)];
      for (int64_t p = sess_off_[s]; p < sess_off_[s + 1]; ++p) {
        const auto it = static_cast<size_t>(sess_items_[static_cast<size_t>(p)]);
        if (!remind_ && sc.item_mark[it] == gen) continue;
        double v = nb.sim;
        if (idf_weighting_ > 0.0) v = v + v * idf_[it] * idf_weighting_;
        v *= decay;
        if (sc.acc_mark[it] != gen) {
          sc.acc_mark[it] = gen;
          sc.acc[it] = 0.0;
          sc.touched.push_back(static_cast<int32_t>(it));
        }
        sc.acc[it] += v;
      }
    }
    for (int32_t it : sc.touched) {
      row[it] = static_cast<float>(sc.acc[static_cast<size_t>(it)] +
                                   tiebreak_d_[static_cast<size_t>(it)]);
    }
  }

  // Parameters.
  int64_t k_ = 100, sample_size_ = 500;
  Sampling sampling_ = Sampling::Recent;
  Similarity similarity_ = Similarity::Vec;
  Decay weighting_ = Decay::Div, weighting_score_ = Decay::Div;
  double idf_weighting_ = 0.0;
  bool remind_ = true;
  // Learned state (saved).
  std::vector<int64_t> counts_;
  std::vector<int64_t> sess_off_{0};
  std::vector<int32_t> sess_items_;
  std::vector<double> sess_time_;
  // Derived on fit/load.
  std::vector<int32_t> order_;  // sessions from most to least recent (index = recency rank)
  std::vector<int64_t> item_off_;
  std::vector<int32_t> item_ranks_;  // recency ranks of each item's sessions, ascending
  std::vector<double> idf_;
  std::vector<float> tiebreak_;
  std::vector<double> tiebreak_d_;
};

}  // namespace

ModelInfo vsknn_model_info() {
  return {"vsknn",
          "V-SKNN session kNN (Ludewig & Jannach 2018): recent training sessions sharing "
          "items with the current one vote for their items, weighted by similarity and recency",
          vsknn_params(), [](const Config& c) { return std::make_unique<VsknnModel>(c); }};
}

}  // namespace seqrec
