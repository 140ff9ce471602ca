// generate_sessions: synthetic click sessions with Zipf popularity, item-to-item
// transitions, long-tailed session lengths and plausible timestamps.
//
// Everything random comes from one splitmix64/xoshiro256** stream and hand-written
// distributions, so the same seed gives the same log on every platform and compiler.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

namespace {

// Walker's alias method: O(1) draws from a discrete distribution.
class AliasTable {
 public:
  explicit AliasTable(const std::vector<double>& w) : prob_(w.size()), alias_(w.size()) {
    const size_t n = w.size();
    const double sum = std::accumulate(w.begin(), w.end(), 0.0);
    std::vector<double> scaled(n);
    std::vector<uint32_t> small, large;
    for (size_t i = 0; i < n; ++i) {
      scaled[i] = w[i] * static_cast<double>(n) / sum;
      (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
      const uint32_t s = small.back(), l = large.back();
      small.pop_back();
      prob_[s] = scaled[s];
      alias_[s] = l;
      scaled[l] -= 1.0 - scaled[s];
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (uint32_t i : large) prob_[i] = 1.0, alias_[i] = i;
    for (uint32_t i : small) prob_[i] = 1.0, alias_[i] = i;
  }
  uint32_t draw(Rng& rng) const {
    const auto i = static_cast<uint32_t>(rng.below(prob_.size()));
    return rng.uniform() < prob_[i] ? i : alias_[i];
  }

 private:
  std::vector<double> prob_;
  std::vector<uint32_t> alias_;
};

constexpr double kEpoch = 1767225600.0;  // 2026-01-01T00:00:00Z
constexpr int32_t kItemIdBase = 100001;  // item tokens are 100001, 100002, ...
constexpr int64_t kSessionIdBase = 1;

}  // namespace

EventLog generate_sessions(const GenerateOptions& opt) {
  if (opt.n_events < 1) throw InputError("generate: n_events must be >= 1");
  if (opt.n_items < 2) throw InputError("generate: n_items must be >= 2");
  if (!(opt.zipf_exponent >= 0.0) || opt.zipf_exponent > 10.0)
    throw InputError("generate: zipf_exponent must be in [0, 10]");
  if (!(opt.mean_length >= 1.0) || opt.mean_length > 1e6)
    throw InputError("generate: mean_length must be >= 1");
  if (!(opt.follow_prob >= 0.0 && opt.follow_prob <= 1.0))
    throw InputError("generate: follow_prob must be in [0, 1]");
  if (opt.n_successors < 1) throw InputError("generate: n_successors must be >= 1");
  if (!(opt.days > 0.0) || opt.days > 36500.0)
    throw InputError("generate: days must be in (0, 36500]");

  Rng rng(opt.seed);
  const auto n_items = static_cast<uint32_t>(opt.n_items);

  // Popularity: rank r has weight 1/(r+1)^s; ranks are assigned to item numbers by a
  // random permutation so that popular items are scattered over the id range.
  std::vector<uint32_t> rank_to_item(n_items);
  std::iota(rank_to_item.begin(), rank_to_item.end(), 0u);
  for (uint32_t i = n_items - 1; i > 0; --i)
    std::swap(rank_to_item[i], rank_to_item[rng.below(i + 1)]);
  std::vector<double> w(n_items);
  for (uint32_t r = 0; r < n_items; ++r)
    w[r] = std::pow(static_cast<double>(r) + 1.0, -opt.zipf_exponent);
  const AliasTable popularity(w);
  // Successor candidates come from a flatter popularity (exponent halved): popular-ish
  // but item-specific.
  for (uint32_t r = 0; r < n_items; ++r)
    w[r] = std::pow(static_cast<double>(r) + 1.0, -0.5 * opt.zipf_exponent);
  const AliasTable flat(w);
  std::vector<double>().swap(w);

  // Each item's successors, with weights 1/(k+1) for the k-th.
  const auto n_succ = static_cast<uint32_t>(std::min<int64_t>(opt.n_successors, n_items - 1));
  std::vector<uint32_t> succ(static_cast<size_t>(n_items) * n_succ);
  for (uint32_t i = 0; i < n_items; ++i) {
    uint32_t* row = succ.data() + static_cast<size_t>(i) * n_succ;
    for (uint32_t k = 0; k < n_succ; ++k) {
      uint32_t c;
      int tries = 0;
      do {
        c = rank_to_item[flat.draw(rng)];
        if (++tries > 32) c = static_cast<uint32_t>(rng.below(n_items));
      } while (c == i || std::find(row, row + k, c) != row + k);
      row[k] = c;
    }
  }
  std::vector<double> succ_w(n_succ);
  for (uint32_t k = 0; k < n_succ; ++k) succ_w[k] = 1.0 / (k + 1.0);
  const AliasTable successor(succ_w);

  // Session lengths: 1 + floor(Y), Y log-normal(mu, sigma=1) with E[Y] = mean - 0.5, so
  // that E[length] ~= mean; about a fifth of the sessions have length 1 when mean = 4.
  const double sigma = 1.0;
  const double ey = std::max(opt.mean_length - 0.5, 1e-3);
  const double mu = std::log(ey) - 0.5 * sigma * sigma;
  const auto max_len = static_cast<int64_t>(std::max(50.0, 60.0 * opt.mean_length));
  std::vector<int32_t> lengths;
  lengths.reserve(static_cast<size_t>(static_cast<double>(opt.n_events) / opt.mean_length * 1.1) +
                  16);
  int64_t total = 0;
  while (total < opt.n_events) {
    int64_t len = 1;
    if (opt.mean_length > 1.0) {
      const double y = std::exp(mu + sigma * rng.normal());
      len = 1 + static_cast<int64_t>(std::min(y, static_cast<double>(max_len)));
    }
    len = std::min({len, max_len, opt.n_events - total});
    lengths.push_back(static_cast<int32_t>(len));
    total += len;
  }

  EventLog log;
  log.source = "generated(seed=" + std::to_string(opt.seed) + ")";
  SequenceSet& out = log.seqs;
  const size_t n_sessions = lengths.size();
  out.ids.reserve(n_sessions);
  out.offsets.reserve(n_sessions + 1);
  out.items.reserve(static_cast<size_t>(opt.n_events));
  out.times.reserve(static_cast<size_t>(opt.n_events));
  std::vector<int32_t> vocab_index(n_items, -1);  // item number -> index in log.items
  char tok[24];
  const double span = opt.days * 86400.0;
  for (size_t s = 0; s < n_sessions; ++s) {
    // Stratified start times keep session ids in chronological order.
    double t =
        kEpoch + span * (static_cast<double>(s) + rng.uniform()) / static_cast<double>(n_sessions);
    out.ids.push_back(std::to_string(kSessionIdBase + static_cast<int64_t>(s)));
    uint32_t cur = rank_to_item[popularity.draw(rng)];
    for (int32_t k = 0; k < lengths[s]; ++k) {
      if (k > 0) {
        if (rng.uniform() < opt.follow_prob) {
          cur = succ[static_cast<size_t>(cur) * n_succ + successor.draw(rng)];
        } else {
          cur = rank_to_item[popularity.draw(rng)];
        }
        // Gaps between clicks: log-normal, median ~40 s, from seconds to many minutes.
        t += 1.0 + std::exp(std::log(40.0) + 1.0 * rng.normal());
      }
      int32_t& vi = vocab_index[cur];
      if (vi < 0) {
        const int n = std::snprintf(tok, sizeof tok, "%d", kItemIdBase + static_cast<int32_t>(cur));
        vi = log.items.add(std::string_view(tok, static_cast<size_t>(n)));
      }
      out.items.push_back(vi);
      out.times.push_back(std::round(t * 1000.0) / 1000.0);  // millisecond resolution
    }
    out.offsets.push_back(static_cast<int64_t>(out.items.size()));
  }
  return log;
}

}  // namespace seqrec
