// The sampler of `seqrec tune`: the Tree-structured Parzen Estimator (Bergstra, Bardenet,
// Bengio & Kégl, "Algorithms for Hyper-Parameter Optimization", NIPS 2011), written here
// from the paper. Each dimension is treated on its own (the independent TPE):
//
//  1. The first n_startup trials are drawn at random (uniform in each dimension's
//     coordinates, log-uniform for log ranges).
//  2. Afterwards the observed trials are split by a quantile gamma into the good ones (the
//     ceil(gamma * n) best results) and the rest. Per dimension, l(x) is a Parzen estimator
//     (a mixture of Gaussians truncated to the range, one per good trial, centred on its
//     value, with a bandwidth from the distance to its neighbours, plus a wide prior
//     component) and g(x) the same over the rest; a categorical dimension gets smoothed
//     frequencies instead.
//  3. n_candidates points are drawn from l, and the one with the largest l(x) / g(x)
//     (the sum over dimensions of log l - log g) is proposed.
//
// Every proposal draws from a random stream determined by (seed, trial number) alone, so
// that the same observations and the same seed give the same proposal: a tuning run
// resumed from its trials log continues the same sequence.
#pragma once

#include <cstdint>
#include <vector>

#include "tune/space.hpp"

namespace seqrec::tune {

/// One finished trial as the sampler sees it.
struct Observation {
  std::vector<double> x;  ///< coordinates (see tune/space.hpp)
  double value = 0;       ///< the result to maximise
  /// Pruned or failed trials rank below every completed one in the good/bad split, whatever
  /// their value (a pruned trial's value comes from fewer epochs).
  bool complete = true;
};

struct TpeOptions {
  uint64_t seed = 1;
  int n_startup = 10;     ///< random trials before the estimators take over
  double gamma = 0.25;    ///< share of the observations counted as good
  int n_candidates = 24;  ///< draws from l(x) per proposal
};

class TpeSampler {
 public:
  TpeSampler(SearchSpace space, TpeOptions options);
  /// The point to try as trial `trial` (0-based) after the observations `obs`; snapped to
  /// the space (tune::snap). Random while obs.size() < n_startup.
  std::vector<double> propose(const std::vector<Observation>& obs, uint64_t trial) const;
  /// A uniformly random point (what the startup trials use; random search is this alone).
  std::vector<double> random_point(uint64_t trial) const;
  const SearchSpace& space() const { return space_; }

 private:
  SearchSpace space_;
  TpeOptions o_;
};

}  // namespace seqrec::tune
