// Top-K selection over a score row with exclusions and an optional allow-list: higher score
// first, equal scores by ascending item index. The one top-K of the Recommender, and so of
// `seqrec serve` and `seqrec recommend`.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace seqrec::serve {

struct TopKFilter {
  std::span<const int32_t> excluded;   ///< the session's items (exclude_seen)
  std::span<const int32_t> forbidden;  ///< never recommended
  /// When `has_allowed`, only these (sorted ascending, unique) may be recommended.
  bool has_allowed = false;
  std::span<const int32_t> allowed;
  /// Drop items whose score is -infinity (the Recommender does when it excludes seen items).
  bool drop_neg_inf = false;
};

/// The best min(k, eligible) items of scores[0, n) as (index, score), best first. NaN
/// scores are never selected. Overwrites the excluded and forbidden entries of `scores`
/// with NaN.
std::vector<std::pair<int32_t, float>> select_top_k(float* scores, int32_t n, int32_t k,
                                                    const TopKFilter& filter);

}  // namespace seqrec::serve
