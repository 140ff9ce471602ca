// Scoring for the server: a model's dot-product output layer (DotProductHead: score(i) =
// bias[i] + <q, items[i]>) repacked for scoring several queries in one pass over the item
// matrix.
//
// Why: a GRU4Rec or SASRec request is dominated by its output layer, a matrix-vector
// product over the whole catalogue (40k items x 100 floats = 16 MB for GRU4Rec), which is
// bound by memory bandwidth: one query streams the matrix from memory, and 8 queries cost
// little more than one (the matrix is read once, each panel reused from L1 for every
// query). The ScoreBatcher (score_batcher.hpp) gathers concurrent requests into such
// batches.
//
// Layout: the items in blocks of 16; a block is dim x 16 floats (item j of the block at
// column j), 64-byte aligned, the last block padded with zeros. A query's score for item i
// is computed as acc = 0; acc = fma(q[k], items[i][k], acc) for k = 0..dim-1; acc + bias[i]
// (in float, k ascending), whatever the batch, the other queries or the instruction set:
// a query gets bit-identical scores alone or in any batch.
#pragma once

#include <cstdint>
#include <memory>

#include "seqrec/model.hpp"

namespace seqrec::serve {

class PackedDotHead {
 public:
  /// Copies and repacks `head` for n_items items (InputError when dim < 1 or n < 1).
  PackedDotHead(const DotProductHead& head, int32_t n_items);
  ~PackedDotHead();
  PackedDotHead(const PackedDotHead&) = delete;
  PackedDotHead& operator=(const PackedDotHead&) = delete;

  int32_t dim() const { return dim_; }
  int32_t n_items() const { return n_; }
  /// Bytes held (the repacked copy).
  int64_t bytes() const;

  /// Scores every item for `n` queries: out[r][0, n_items) for query q[r][0, dim). Rows
  /// may be anywhere; a query's row does not depend on the other queries. Thread-safe.
  void score(int32_t n, const float* const* q, float* const* out) const;

 private:
  int32_t n_ = 0, dim_ = 0, blocks_ = 0;
  float* panels_ = nullptr;  // blocks_ x dim_ x 16
  float* bias_ = nullptr;    // blocks_ x 16
};

}  // namespace seqrec::serve
