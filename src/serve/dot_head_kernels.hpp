// The scoring passes of PackedDotHead (dot_head.hpp): the register-tiled pass over the item
// blocks (into score rows, or fused with the per-query selection) and the exact rescoring,
// compiled once per instruction-set level (core/isa.hpp) and chosen at run time. Every
// level computes the same arithmetic (fma chains in the same order, exact int32 dot
// products), so the results do not depend on the level. Internal to src/serve.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "core/isa.hpp"
#include "serve/dot_head.hpp"

namespace seqrec::serve::detail {

constexpr int32_t kLanes = 16;  // items per block
constexpr int32_t kRows = 8;    // queries per register tile
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

/// The largest float <= x - window (x itself when window == 0).
inline float lower_threshold(float x, double window) {
  if (window == 0.0) return x;
  const double t = static_cast<double>(x) - window;
  if (std::isnan(t)) return kNegInf;  // keep everything rather than nothing
  float f = static_cast<float>(t);
  while (static_cast<double>(f) > t) f = std::nextafter(f, kNegInf);
  return f;
}

/// The float pass: queries are float vectors.
struct TileF32 {
  using Query = const float*;
  const float* panels;  // blocks x dim x 16
  const float* bias;
  int32_t dim;
  int32_t n;  // items
};

/// The int8 pass: items as int8 with a scale each, queries quantised to int8 too (offset by
/// 128 to unsigned bytes, packed 4 to a word) with a scale each; the dot product is exact in
/// int32 (VNNI's vpdpbusd, or the same in plain C++).
struct QueryI8 {
  const uint32_t* u = nullptr;  // dim4 / 4 words: 4 consecutive (q_k / sq + 128) bytes
  float sq = 0.0f;              // the query's scale
};
struct TileI8 {
  using Query = QueryI8;
  const int8_t* panels;  // blocks x (dim4 / 4) x 16 items x 4 consecutive k
  const float* bias;
  const float* scale;
  const int32_t* corr;  // 128 x sum_k m_ik: the offset's contribution, subtracted
  int32_t dim4;
  int32_t n;
};

/// The bf16 pass: items and queries rounded to bfloat16 (the upper 16 bits of a float),
/// packed two consecutive weights to a 32-bit word (k = 2g in the low half, 2g + 1 in the
/// high half: the operand layout of AVX512-BF16's vdpbf16ps), multiplied in pairs and
/// summed in float. Each product of two bf16 values is exact in float; the sums round
/// (their order may differ between the vdpbf16ps tile and the others: the error bound of
/// PackedDotHead covers any order).
struct QueryBf16 {
  const uint32_t* u = nullptr;  // dim2 / 2 words of 2 bf16
};
struct TileBf16 {
  using Query = QueryBf16;
  const uint32_t* panels;  // blocks x (dim2 / 2) x 16 items, a word of 2 bf16 each
  const float* bias;
  int32_t dim2;  // dim rounded up to even
  int32_t n;
};

/// Writes whole score rows.
struct StoreSink {
  float* const* out;
};

/// The fused selection of one query: keeps every item whose score is >= thr, where thr
/// follows the keep-th best score seen so far (minus the window), so that at the end the
/// kept items are a superset of those within `window` of the keep-th best overall.
struct RowSelect {
  float thr = kNegInf;
  int32_t keep = 1;
  double window = 0.0;
  std::vector<float> heap;  // min-heap of the `keep` best scores so far
  std::vector<std::pair<int32_t, float>>* out = nullptr;

  void start(const HeadQuery& q, int32_t keep_at_most) {
    thr = kNegInf;
    keep = std::clamp<int32_t>(q.keep, 1, keep_at_most);
    window = q.window;
    heap.clear();
    out = q.out;
    out->clear();
  }
  void compact() {
    const float t = thr;
    out->erase(
        std::remove_if(out->begin(), out->end(), [t](const auto& c) { return !(c.second >= t); }),
        out->end());
  }
  /// Scores s[0, 16) of items first.. with `mask` the lanes that reached thr.
  void offer(int32_t first, const float* s, uint32_t mask) {
    while (mask != 0) {
      const int j = __builtin_ctz(mask);
      mask &= mask - 1;
      const float v = s[j];
      if (!(v >= thr)) continue;  // thr rose within this block
      out->emplace_back(first + j, v);
      if (static_cast<int32_t>(heap.size()) < keep) {
        heap.push_back(v);
        std::push_heap(heap.begin(), heap.end(), std::greater<float>());
        if (static_cast<int32_t>(heap.size()) == keep) thr = lower_threshold(heap.front(), window);
      } else if (v > heap.front()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
        heap.back() = v;
        std::push_heap(heap.begin(), heap.end(), std::greater<float>());
        thr = lower_threshold(heap.front(), window);
      }
    }
    if (out->size() > 4 * static_cast<size_t>(keep) + 256) compact();
  }
};

struct SelectSink {
  RowSelect* rows;
};

/// One pass of n queries over every item: the float pass (f32, queries qf) or the int8
/// pass (i8, queries qi; the other tile is null), either writing the scores into out[r]
/// (n_items floats each) or, when rows is not null, fused with the selection of each
/// query's candidates (rows[r]; out is then unused).
SEQREC_DISPATCH(void, head_pass,
                (const TileF32* f32, const TileI8* i8, int32_t blocks, int32_t n,
                 const float* const* qf, const QueryI8* qi, float* const* out, RowSelect* rows));

/// The bf16 pass of n queries qb (see head_pass): with vdpbf16ps where the CPU has
/// AVX512-BF16 and the level is the highest (avx512_vnni), else the same products and sums
/// with bf16 widened to float by a shift (AVX-512, AVX2 or portable code).
SEQREC_DISPATCH(void, head_pass_bf16,
                (const TileBf16* t, int32_t blocks, int32_t n, const QueryBf16* qb,
                 float* const* out, RowSelect* rows));

/// Exact scores (dot_head.hpp) of the m items ids[] for query q, from the float matrix
/// items (n_items x dim, row-major) and item_bias (null: 0).
SEQREC_DISPATCH(void, head_exact,
                (const float* items, const float* item_bias, int32_t n_items, int32_t dim,
                 const float* q, const int32_t* ids, size_t m, float* out));

}  // namespace seqrec::serve::detail
