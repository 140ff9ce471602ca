// Row kernels of the evaluator: counting scores against the target, the tie rule, and
// partial top-K selection. Internal to src/eval (and its tests).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#include "seqrec/eval.hpp"

namespace seqrec::eval_detail {

/// Counts of one score row against the target score t.
struct RowCounts {
  int64_t gt = 0;   ///< #{i : s_i > t}
  int64_t eq = 0;   ///< #{i : s_i == t}, the target itself included
  int64_t nan = 0;  ///< #{i : s_i is NaN}
};

/// One pass over a float row: 16 (AVX-512), 8 (AVX2) or 4 (SSE2) compares at a time with
/// per-lane integer counters; exact, so every path gives the same counts.
inline RowCounts count_row(const float* s, int64_t n, float t) {
  int64_t gt = 0, eq = 0, nan = 0;
  int64_t i = 0;
  // Lanes count at most n / 4 < 2^31 (rows hold n_items <= 2^31 - 1 scores).
#if defined(__AVX512F__)
  {
    const __m512 tv = _mm512_set1_ps(t);
    const __m512i one = _mm512_set1_epi32(1);
    __m512i g = _mm512_setzero_si512(), q = g, z = g;
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_loadu_ps(s + i);
      g = _mm512_mask_add_epi32(g, _mm512_cmp_ps_mask(v, tv, _CMP_GT_OQ), g, one);
      q = _mm512_mask_add_epi32(q, _mm512_cmp_ps_mask(v, tv, _CMP_EQ_OQ), q, one);
      z = _mm512_mask_add_epi32(z, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), z, one);
    }
    // (Stored and summed: GCC 12 warns falsely inside _mm512_reduce_add_epi32.)
    alignas(64) int32_t lg[16], lq[16], lz[16];
    _mm512_store_si512(lg, g);
    _mm512_store_si512(lq, q);
    _mm512_store_si512(lz, z);
    for (int l = 0; l < 16; ++l) {
      gt += lg[l];
      eq += lq[l];
      nan += lz[l];
    }
  }
#elif defined(__AVX2__)
  {
    // A true compare is all ones (-1 as int32): subtracting it counts.
    const __m256 tv = _mm256_set1_ps(t);
    __m256i g = _mm256_setzero_si256(), q = g, z = g;
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(s + i);
      g = _mm256_sub_epi32(g, _mm256_castps_si256(_mm256_cmp_ps(v, tv, _CMP_GT_OQ)));
      q = _mm256_sub_epi32(q, _mm256_castps_si256(_mm256_cmp_ps(v, tv, _CMP_EQ_OQ)));
      z = _mm256_sub_epi32(z, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    }
    alignas(32) int32_t lg[8], lq[8], lz[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lg), g);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lq), q);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lz), z);
    for (int l = 0; l < 8; ++l) {
      gt += lg[l];
      eq += lq[l];
      nan += lz[l];
    }
  }
#elif defined(__SSE2__)
  {
    const __m128 tv = _mm_set1_ps(t);
    __m128i g = _mm_setzero_si128(), q = g, z = g;
    for (; i + 4 <= n; i += 4) {
      const __m128 v = _mm_loadu_ps(s + i);
      g = _mm_sub_epi32(g, _mm_castps_si128(_mm_cmpgt_ps(v, tv)));
      q = _mm_sub_epi32(q, _mm_castps_si128(_mm_cmpeq_ps(v, tv)));
      z = _mm_sub_epi32(z, _mm_castps_si128(_mm_cmpunord_ps(v, v)));
    }
    alignas(16) int32_t lg[4], lq[4], lz[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(lg), g);
    _mm_store_si128(reinterpret_cast<__m128i*>(lq), q);
    _mm_store_si128(reinterpret_cast<__m128i*>(lz), z);
    for (int l = 0; l < 4; ++l) {
      gt += lg[l];
      eq += lq[l];
      nan += lz[l];
    }
  }
#endif
  for (; i < n; ++i) {
    const float v = s[i];
    gt += v > t;
    eq += v == t;
    nan += v != v;
  }
  return {gt, eq, nan};
}

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
/// (AVX-512), 8 (AVX2) or 4 (SSE2) scores at once and visits only the lanes that pass.
inline void select_top_k(const float* s, int32_t n, int k, const uint8_t* mark,
                         std::vector<Scored>& out) {
  out.clear();
  if (k <= 0 || n <= 0) return;
  const size_t cap = std::max<size_t>(4 * static_cast<size_t>(k), 64);
  if (out.capacity() < cap) out.reserve(cap);
  int32_t i = 0;
  for (; i < n && static_cast<int>(out.size()) < k; ++i) {
    if (mark == nullptr || mark[i] == 0) out.push_back({s[i], i});
  }
  if (static_cast<int>(out.size()) == k) {
    float thr = out.front().score;
    for (const Scored& e : out) thr = std::min(thr, e.score);
    auto take = [&](int32_t j) {
      if (s[j] > thr && (mark == nullptr || mark[j] == 0)) {
        out.push_back({s[j], j});
        if (out.size() >= cap) thr = detail::shrink_to_best(out, k);
      }
    };
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_loadu_ps(s + i);
      uint32_t m = _mm512_cmp_ps_mask(v, _mm512_set1_ps(thr), _CMP_GT_OQ);
      while (m != 0) {
        take(i + __builtin_ctz(m));
        m &= m - 1;
      }
    }
#elif defined(__AVX2__)
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(s + i);
      uint32_t m = static_cast<uint32_t>(
          _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(thr), _CMP_GT_OQ)));
      while (m != 0) {
        take(i + __builtin_ctz(m));
        m &= m - 1;
      }
    }
#elif defined(__SSE2__)
    for (; i + 4 <= n; i += 4) {
      uint32_t m = static_cast<uint32_t>(
          _mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(s + i), _mm_set1_ps(thr))));
      while (m != 0) {
        take(i + __builtin_ctz(m));
        m &= m - 1;
      }
    }
#else
    // Portable path: test blocks of 16 with a vectorisable count first.
    for (; i + 16 <= n; i += 16) {
      int32_t c = 0;
      for (int32_t j = i; j < i + 16; ++j) c += s[j] > thr;
      if (c > 0)
        for (int32_t j = i; j < i + 16; ++j) take(j);
    }
#endif
    for (; i < n; ++i) take(i);
    if (static_cast<int>(out.size()) > k) detail::shrink_to_best(out, k);
  }
  std::sort(out.begin(), out.end(), ranks_before);
}

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
