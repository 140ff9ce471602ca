// The evaluator's row scans (ranking.hpp), compiled once per instruction-set level: counts
// against the target and the top-K threshold scan. Every level counts exactly, so every
// level gives the same ranks and lists.
#include <immintrin.h>

#include "core/isa_begin.hpp"
#include "eval/ranking.hpp"

namespace seqrec::eval_detail::SEQREC_ISA_NS {

RowCounts count_row(const float* s, int64_t n, float t) {
  int64_t gt = 0, eq = 0, nan = 0;
  int64_t i = 0;
  // Lanes count at most n / 4 < 2^31 (rows hold n_items <= 2^31 - 1 scores).
#if SEQREC_ISA_VARIANT == 2
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
#elif SEQREC_ISA_VARIANT == 1
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
#else
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

void select_top_k(const float* s, int32_t n, int k, const uint8_t* mark, std::vector<Scored>& out) {
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
#if SEQREC_ISA_VARIANT == 2
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_loadu_ps(s + i);
      uint32_t m = _mm512_cmp_ps_mask(v, _mm512_set1_ps(thr), _CMP_GT_OQ);
      while (m != 0) {
        take(i + __builtin_ctz(m));
        m &= m - 1;
      }
    }
#elif SEQREC_ISA_VARIANT == 1
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(s + i);
      uint32_t m = static_cast<uint32_t>(
          _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(thr), _CMP_GT_OQ)));
      while (m != 0) {
        take(i + __builtin_ctz(m));
        m &= m - 1;
      }
    }
#else
    for (; i + 4 <= n; i += 4) {
      uint32_t m = static_cast<uint32_t>(
          _mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(s + i), _mm_set1_ps(thr))));
      while (m != 0) {
        take(i + __builtin_ctz(m));
        m &= m - 1;
      }
    }
#endif
    for (; i < n; ++i) take(i);
    if (static_cast<int>(out.size()) > k) detail::shrink_to_best(out, k);
  }
  std::sort(out.begin(), out.end(), ranks_before);
}

}  // namespace seqrec::eval_detail::SEQREC_ISA_NS

#include "core/isa_end.hpp"
