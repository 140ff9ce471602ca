// Row kernels of the evaluator: counting scores against the target, the tie rule, and
// partial top-K selection. Internal to src/eval (and its tests).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/isa.hpp"
#include "seqrec/eval.hpp"

namespace seqrec::eval_detail {

/// Counts of one score row against the target score t.
struct RowCounts {
  int64_t gt = 0;   ///< #{i : s_i > t}
  int64_t eq = 0;   ///< #{i : s_i == t}, the target itself included
  int64_t nan = 0;  ///< #{i : s_i is NaN}
};

/// One pass over a float row: 16 (AVX-512), 8 (AVX2) or 4 (baseline, SSE) at a time (chosen at run
/// time, core/isa.hpp) compares at a time with per-lane integer counters; exact, so every path
/// gives the same counts.
SEQREC_DISPATCH(RowCounts, count_row, (const float* s, int64_t n, float t));

/// Rank from the counts (eq includes the target): conservative = gt + eq,
/// standard = 1 + gt, median = 1 + gt + (eq - 1) / 2.
inline double rank_from_counts(int64_t gt, int64_t eq, TieMode ties) {
  switch (ties) {
    case TieMode::Conservative:
      return static_cast<double>(gt + eq);
    case TieMode::Standard:
      return static_cast<double>(1 + gt);
    case TieMode::Median:
      return 1.0 + static_cast<double>(gt) + 0.5 * static_cast<double>(eq - 1);
  }
  return static_cast<double>(gt + eq);
}

/// Entry of a top-K list: score and item index.
struct Scored {
  float score;
  int32_t item;
};

/// Recommendation order: higher score first, then lower item index.
inline bool ranks_before(const Scored& a, const Scored& b) {
  return a.score > b.score || (a.score == b.score && a.item < b.item);
}

namespace detail {
/// Keeps the best k of `buf` (k < buf.size()) and returns the score of the k-th.
inline float shrink_to_best(std::vector<Scored>& buf, int k) {
  std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.end(), ranks_before);
  buf.resize(static_cast<size_t>(k));
  float worst = buf.front().score;
  for (const Scored& e : buf) worst = std::min(worst, e.score);
  return worst;
}
}  // namespace detail

/// The best k entries of s[0..n) in recommendation order, skipping i with mark[i] != 0
/// (mark may be null). Masked entries must also hold -inf in s (the scan tests scores
/// first and looks at mark only for candidates). The row must hold no NaN. `out` is
/// reused (no allocation once large enough).
///
/// Method: a threshold scan. After the first k entries, an entry is a candidate only if
/// its score beats `thr`, the k-th best score among the candidates kept so far; entries
/// come in increasing index order, so one that merely ties `thr` ranks after k kept
/// entries and can never enter. Candidates are appended to a buffer that is cut back to
/// the best k (nth_element) whenever it fills, which raises `thr`. The scan compares 16
/// (AVX-512), 8 (AVX2) or 4 (baseline, SSE) at a time (chosen at run time, core/isa.hpp) scores at
/// once and visits only the lanes that pass.
SEQREC_DISPATCH(void, select_top_k,
                (const float* s, int32_t n, int k, const uint8_t* mark, std::vector<Scored>& out));

/// splitmix64: the per-sequence generator of the sampled protocol (small state, cheap to
/// seed, so every sequence gets its own stream from (seed, index)).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix(state_);
  }
  /// Uniform in [0, n) by multiply-shift (bias < n / 2^64, negligible).
  int32_t below(int32_t n) {
    return static_cast<int32_t>(
        (static_cast<unsigned __int128>(next()) * static_cast<uint64_t>(n)) >> 64);
  }

 private:
  uint64_t state_;
};

/// Seed of sequence `index`'s stream under the run seed.
inline uint64_t sequence_seed(uint64_t seed, uint64_t index) {
  return SplitMix64::mix(seed * 0x9e3779b97f4a7c15ULL +
                         SplitMix64::mix(index + 0x632be59bd9b4e019ULL));
}

}  // namespace seqrec::eval_detail
