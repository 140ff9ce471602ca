// Scoring for the server: a model's dot-product output layer (DotProductHead: score(i) =
// bias[i] + <q, items[i]>) repacked for scoring several queries in one pass over the item
// matrix, and an exact top-K on top of it.
//
// Why: a GRU4Rec or SASRec request is dominated by its output layer, a matrix-vector
// product over the whole catalogue (40k items x 100 floats = 16 MB for GRU4Rec), which is
// bound by memory bandwidth: one query streams the matrix from memory, and 8 queries cost
// little more than one (the matrix is read once, each panel reused from L1 for every
// query). The ScoreBatcher (score_batcher.hpp) gathers concurrent requests into such
// batches.
//
// Exact scores. The exact score of item i for query q is defined as computed here, in
// float: acc = 0; acc = fma(q[k], items[i][k], acc) for k = 0..dim-1; acc + bias[i]. It
// does not depend on the batch, the other queries, the instruction set or the precision
// below: a request gets bit-identical results alone or in any batch. (The model's own
// score() may differ from it in the last bits: another summation order.)
//
// Precision of the first pass:
// - Fp32: the matrix in float (4 bytes a weight); the pass gives the exact scores.
// - Int8 (default): each item's vector quantised to int8 with its own scale (max |w| /
//   127; 1 byte a weight, a quarter of the memory traffic). The pass gives approximate
//   scores a(i) with |a(i) - exact(i)| <= R(q), a rigorous bound (error_bound()); the query
//   is quantised to int8 as well (its own scale), so that the pass is an exact int32 dot
//   product (AVX512-VNNI vpdpbusd: 64 multiply-adds an instruction). Every
//   item whose a(i) is within 2R of the K-th best eligible a is kept (a superset of the true
//   top K: if T is the first pass's top K and a_K its worst, each t in T has exact(t) >=
//   a_K - R, so the K-th best exact score is >= a_K - R, and an item i of the true top K
//   has exact(i) >= a_K - R, hence a(i) >= a_K - 2R), rescored exactly from the model's
//   float matrix, and the top K selected among them. Results are identical to Fp32's; only
//   the work differs (about 40 items rescored per request on a trained GRU4Rec with 40k
//   items, 60 on SASRec; at worst, when nearly every score is that close, every eligible
//   item is).
// - Bf16: each weight rounded to bfloat16 (the upper half of a float: 8 significant bits;
//   2 bytes a weight, half the traffic of Fp32), the query too; the pass multiplies them
//   in pairs (exact products) and sums in float (AVX512-BF16 vdpbf16ps: 32 multiply-adds an
//   instruction; elsewhere the same with the halves widened by a shift). Its bound R(q)
//   (error_bound()) comes from Cauchy-Schwarz: |q|_2 max_i |w_i - bf16(w_i)|_2 for the
//   weights, |q - bf16(q)|_2 max_i |bf16(w_i)|_2 for the query, plus the float sums (in
//   any order), so it is about 2^-8 |q|_2 max_i |w_i|_2, several times tighter than
//   Int8's; then the same window, exact rescoring and results as Int8 (fewer items
//   rescored).
//
// Fused top-K. select() does not write score rows: each query's 16 scores of a block are
// compared, in registers, with a threshold that follows its keep-th best score so far (minus
// the window); the few blocks with a score above it hand those items to a small heap and a
// candidate list. With keep = K + (excluded and forbidden items), the K-th best eligible
// score is >= the final keep-th best score, so the candidates hold every item within the
// window of it; top_k() then applies the filters, the window and the rescoring.
//
// Layout: the items in blocks of 16, 64-byte aligned, the last block padded with zeros. A
// float block is dim x 16 weights (item j of the block at column j); an int8 block is
// dim/4 groups (dim rounded up to a multiple of 4) of 16 items x 4 consecutive weights,
// the operand layout of vpdpbusd; a bf16 block is dim/2 groups (dim rounded up to even) of
// 16 items x 2 consecutive weights (a 32-bit word each, k = 2g in its low half), the
// operand layout of vdpbf16ps.
//
// Memory per item (the repacked copy; the model's float matrix stays, for the rescoring):
// Fp32 4 dim + 4 bytes (the bias), Int8 dim + 12 (dim rounded up to a multiple of 4; bias,
// scale, offset correction), Bf16 2 dim + 4 (dim rounded up to even).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "seqrec/model.hpp"
#include "serve/topk.hpp"

namespace seqrec::serve {

enum class HeadPrecision { Fp32, Int8, Bf16 };

/// One query of PackedDotHead::select().
struct HeadQuery {
  const float* q = nullptr;                               ///< dim floats
  int32_t keep = 20;                                      ///< see select()
  double window = 0.0;                                    ///< see select()
  std::vector<std::pair<int32_t, float>>* out = nullptr;  ///< the candidates
};

/// "fp32" / "int8" / "bf16" (InputError for anything else), and back.
HeadPrecision parse_head_precision(const std::string& s);
const char* head_precision_name(HeadPrecision p);

class PackedDotHead {
 public:
  /// Copies and repacks `head` for n_items items (InputError when dim < 1 or n < 1). The
  /// model must outlive this object and keep head.items/head.bias unchanged (Int8 and Bf16
  /// rescore from them). InputError for a non-finite weight (Int8, Bf16).
  PackedDotHead(const DotProductHead& head, int32_t n_items, HeadPrecision precision);
  ~PackedDotHead();
  PackedDotHead(const PackedDotHead&) = delete;
  PackedDotHead& operator=(const PackedDotHead&) = delete;

  int32_t dim() const { return dim_; }
  int32_t n_items() const { return n_; }
  HeadPrecision precision() const { return precision_; }
  /// Bytes held (the repacked copy).
  int64_t bytes() const;

  /// The first pass for n queries: out[r][0, n_items) for query q[r][0, dim); exact scores
  /// (Fp32) or within error_bound(q[r]) of them (Int8, Bf16). Rows may be anywhere; a query's row
  /// does not depend on the other queries. Thread-safe.
  void score(int32_t n, const float* const* q, float* const* out) const;
  /// Largest |score() - exact| for query q over all items (0 for Fp32; infinite when q is
  /// not finite).
  double error_bound(const float* q) const;
  /// Exact scores of `items` for query q into out[0, items.size()).
  void exact(const float* q, std::span<const int32_t> items, float* out) const;
  /// The fused pass for n queries: scores every item and keeps, per query, every item whose
  /// first-pass score is within its `window` of the `keep`-th best (a superset: see
  /// select()'s comment in the .cpp), into *out as (item, first-pass score), unordered. The
  /// score rows never exist in memory. Thread-safe.
  void select(int32_t n, const HeadQuery* const* queries) const;
  /// The exact top k, as select_top_k() orders and filters them, from the candidates of
  /// select() run with keep >= k + |excluded| + |forbidden| and window = 2 error_bound(q)
  /// (cand is consumed). The filter's allow-list is not supported here (top_k_among()).
  /// `rescored` (optional) receives the number of items scored exactly (Int8, Bf16).
  std::vector<std::pair<int32_t, float>> top_k(const float* q,
                                               std::vector<std::pair<int32_t, float>>& cand,
                                               double window, int32_t k, const TopKFilter& filter,
                                               int64_t* rescored = nullptr) const;
  /// The exact top k among `items` only (an allow-list), without a pass: each of them is
  /// scored exactly.
  std::vector<std::pair<int32_t, float>> top_k_among(const float* q, std::span<const int32_t> items,
                                                     int32_t k, const TopKFilter& filter) const;

 private:
  double error_bound_bf16(const float* q) const;

  HeadPrecision precision_;
  int32_t n_ = 0, dim_ = 0, blocks_ = 0;
  int32_t dim4_ = 0;              // dim_ rounded up to a multiple of 4 (Int8)
  int32_t dim2_ = 0;              // dim_ rounded up to even (Bf16)
  void* panels_ = nullptr;        // blocks_ x dim_ x 16 floats, blocks_ x dim4_ x 16 int8,
                                  // or blocks_ x dim2_ / 2 x 16 words of 2 bf16
  float* bias_ = nullptr;         // blocks_ x 16
  float* scale_ = nullptr;        // blocks_ x 16 (Int8)
  int32_t* corr_ = nullptr;       // blocks_ x 16 (Int8): 128 x the sum of the item's weights
  const float* items_ = nullptr;  // the model's matrix (n_ x dim_), for exact()
  const float* item_bias_ = nullptr;
  double max_scale_ = 0.0, max_abs_w_ = 0.0, max_abs_bias_ = 0.0, max_quant_err_ = 0.0,
         max_l1_ = 0.0;
  // Bf16: max_i |w_i - bf16(w_i)|_2, max_i |w_i|_2, max_i |bf16(w_i)|_2.
  double max_err_l2_ = 0.0, max_l2_ = 0.0, max_bf_l2_ = 0.0;
};

}  // namespace seqrec::serve
