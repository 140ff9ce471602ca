#include "serve/topk.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace seqrec::serve {

namespace {

struct Better {
  bool operator()(const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) const {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  }
};

}  // namespace

std::vector<std::pair<int32_t, float>> select_top_k(float* scores, int32_t n, int32_t k,
                                                    const TopKFilter& filter) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int32_t i : filter.excluded)
    if (i >= 0 && i < n) scores[i] = nan;
  for (int32_t i : filter.forbidden)
    if (i >= 0 && i < n) scores[i] = nan;
  std::vector<std::pair<int32_t, float>> heap;
  if (k <= 0) return heap;
  heap.reserve(static_cast<size_t>(k));
  const float neg_inf = -std::numeric_limits<float>::infinity();
  // A heap whose top is the worst kept item (Better as "less"). Candidates come in
  // ascending index order, so one with the same score as the worst kept never wins.
  auto offer = [&](int32_t i) {
    const float s = scores[i];
    if (std::isnan(s) || (filter.drop_neg_inf && s == neg_inf)) return;
    if (static_cast<int32_t>(heap.size()) < k) {
      heap.emplace_back(i, s);
      std::push_heap(heap.begin(), heap.end(), Better{});
    } else if (s > heap.front().second) {
      std::pop_heap(heap.begin(), heap.end(), Better{});
      heap.back() = {i, s};
      std::push_heap(heap.begin(), heap.end(), Better{});
    }
  };
  if (filter.has_allowed) {
    for (int32_t i : filter.allowed)
      if (i >= 0 && i < n) offer(i);
  } else {
    // Until the heap is full every eligible item goes in; then only those above the worst,
    // found 16 at a time with one vectorised comparison per block (most blocks have none).
    int32_t i = 0;
    for (; i < n && static_cast<int32_t>(heap.size()) < k; ++i) offer(i);
    constexpr int32_t kBlock = 16;
    for (; i + kBlock <= n; i += kBlock) {
      const float threshold = heap.front().second;
      const float* block = scores + i;
      bool any = false;
      for (int32_t j = 0; j < kBlock; ++j) any |= block[j] > threshold;
      if (!any) continue;
      for (int32_t j = 0; j < kBlock; ++j)
        if (block[j] > heap.front().second) offer(i + j);
    }
    for (; i < n; ++i)
      if (scores[i] > heap.front().second) offer(i);
  }
  std::sort_heap(heap.begin(), heap.end(), Better{});
  return heap;
}

}  // namespace seqrec::serve
