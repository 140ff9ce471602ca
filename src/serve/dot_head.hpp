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
//   scores a(i) with |a(i) - exact(i)| <= R(q), a rigorous bound (error_bound()). top_k()
//   then keeps every item whose a(i) is within 2R of the K-th best a (a superset of the
//   true top K: see top_k()), rescores those exactly from the model's float matrix and
//   selects among them. Results are identical to Fp32's; only the work differs (about 30
//   items rescored per request on a trained GRU4Rec with 40k items; at worst, when nearly
//   every score is that close, every eligible item is rescored).
//
// Layout: the items in blocks of 16; a block is dim x 16 weights (item j of the block at
// column j), 64-byte aligned, the last block padded with zeros.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "seqrec/model.hpp"
#include "serve/topk.hpp"

namespace seqrec::serve {

enum class HeadPrecision { Fp32, Int8 };

/// "fp32" / "int8" (InputError for anything else), and back.
HeadPrecision parse_head_precision(const std::string& s);
const char* head_precision_name(HeadPrecision p);

class PackedDotHead {
 public:
  /// Copies and repacks `head` for n_items items (InputError when dim < 1 or n < 1). The
  /// model must outlive this object and keep head.items/head.bias unchanged (Int8 rescores
  /// from them).
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
  /// (Fp32) or within error_bound(q[r]) of them (Int8). Rows may be anywhere; a query's row
  /// does not depend on the other queries. Thread-safe.
  void score(int32_t n, const float* const* q, float* const* out) const;
  /// Largest |score() - exact| for query q over all items (0 for Fp32; infinite when q is
  /// not finite).
  double error_bound(const float* q) const;
  /// Exact scores of `items` for query q into out[0, items.size()).
  void exact(const float* q, std::span<const int32_t> items, float* out) const;
  /// The best min(k, eligible) items by exact score, as select_top_k() orders and filters
  /// them, from the first pass's `row` of query q (which it modifies like select_top_k).
  /// `rescored` (optional) receives the number of items scored exactly (Int8).
  std::vector<std::pair<int32_t, float>> top_k(const float* q, float* row, int32_t k,
                                               const TopKFilter& filter,
                                               int64_t* rescored = nullptr) const;

 private:
  HeadPrecision precision_;
  int32_t n_ = 0, dim_ = 0, blocks_ = 0;
  void* panels_ = nullptr;        // blocks_ x dim_ x 16 floats or int8
  float* bias_ = nullptr;         // blocks_ x 16
  float* scale_ = nullptr;        // blocks_ x 16 (Int8)
  const float* items_ = nullptr;  // the model's matrix (n_ x dim_), for exact()
  const float* item_bias_ = nullptr;
  double max_scale_ = 0.0, max_abs_w_ = 0.0, max_abs_bias_ = 0.0, max_quant_err_ = 0.0;
};

}  // namespace seqrec::serve
