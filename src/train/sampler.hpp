// Negative sampling. GRU4Rec's (spec §5): items drawn with probability proportional to
// support^alpha from a precomputed store of rows of K samples, one row per training step,
// regenerated when used up. SASRec's `pop` sampling: items drawn with probability
// proportional to their training count, one 53-bit uniform per draw.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/rng.hpp"

namespace seqrec::train {

/// The float32 CDF of p_i ~ c_i^alpha (computed in float64, last entry forced to 1) and an
/// O(1) expected-time inverse: draw(u) is the smallest i with F_i > u, exactly what the
/// official binary search returns, found through a guide table over u.
class ItemSampler {
 public:
  ItemSampler() = default;
  /// Throws InputError when no item has positive weight.
  ItemSampler(std::span<const int64_t> counts, double alpha);
  int32_t draw(float u) const;
  /// The reference binary search (for tests).
  int32_t draw_binary(float u) const;
  const std::vector<float>& cdf() const { return cdf_; }

 private:
  std::vector<float> cdf_;
  std::vector<int32_t> guide_;  // guide_[b] = draw_binary(b / G), b in [0, G]
  int32_t guide_bits_ = 0;
};

/// Rows of K samples; next() hands out the next row and regenerates the whole store (with
/// fresh draws) once every row has been used. Generation is parallel and deterministic:
/// row r of generation g uses its own stream derived from (seed, g, r).
class SampleStore {
 public:
  SampleStore() = default;
  /// rows = max(1, store_size / K) (the official sample_cache_max_size // n_sample).
  SampleStore(ItemSampler sampler, int64_t n_sample, int64_t store_size, uint64_t seed);
  const int32_t* next();
  int64_t n_sample() const { return k_; }
  int64_t rows() const { return rows_; }
  int64_t generations() const { return generation_; }
  /// Rows of the current generation handed out so far (rows() before the first next()).
  int64_t position() const { return pos_; }
  /// Puts the store where a store with the same sampler, sizes and seed stood after
  /// `generations` generations and `position` rows of the last one (a checkpoint): that
  /// generation is drawn again, so the rows that follow are the same. Throws Error when the
  /// pair is impossible for this store.
  void restore(int64_t generations, int64_t position);
  const ItemSampler& sampler() const { return sampler_; }

 private:
  void generate();
  ItemSampler sampler_;
  int64_t k_ = 0, rows_ = 0, pos_ = 0, generation_ = 0;
  uint64_t seed_ = 0;
  std::vector<int32_t> store_;
};

/// Items with probability p_i = c_i / sum(c) (c the training counts), drawn by inverting the
/// float64 CDF: draw() is the smallest i with F_i > u for u = rng.uniform() (53 bits), the
/// last item if rounding leaves none. SASRec's `sampling = pop`.
class PopularitySampler {
 public:
  PopularitySampler() = default;
  /// Throws InputError when `counts` is empty or sums to 0.
  explicit PopularitySampler(std::span<const int64_t> counts);
  int32_t draw(Rng& rng) const;
  /// ln(max(1, c_i) / sum(c)): the log-probability used by the logQ correction (a count
  /// of 0 is read as 1, so that the log stays finite).
  double log_probability(int32_t item) const;

 private:
  std::vector<double> cdf_;
  std::vector<int64_t> counts_;
  double total_ = 0.0;
};

}  // namespace seqrec::train
