// SASRec's popularity sampler (train/sampler.hpp): the inverse of the float64 CDF of the
// training counts on the stream's 53-bit uniforms, never an item without events, and the
// log-probabilities of the logQ correction.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.hpp"
#include "seqrec/error.hpp"
#include "train/sampler.hpp"

using namespace seqrec;

TEST(PopularitySampler, InvertsTheCountCdfOnTheStreamsUniforms) {
  const std::vector<int64_t> counts{0, 1, 3, 0, 4};
  const train::PopularitySampler s(counts);
  // The reference: smallest i with F_i > u, F the normalised running sum of the counts.
  std::vector<double> cdf;
  double acc = 0;
  for (int64_t c : counts) cdf.push_back(acc += static_cast<double>(c));
  for (double& x : cdf) x /= acc;
  Rng a(11, 2, 3), b(11, 2, 3);
  std::vector<int64_t> seen(counts.size(), 0);
  for (int i = 0; i < 8000; ++i) {
    const int32_t got = s.draw(a);
    const double u = b.uniform();
    const auto want = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
    ASSERT_EQ(got, std::min<int64_t>(want, 4)) << "draw " << i;
    ++seen[static_cast<size_t>(got)];
  }
  EXPECT_EQ(seen[0], 0);
  EXPECT_EQ(seen[3], 0);
  EXPECT_NEAR(static_cast<double>(seen[4]) / 8000, 0.5, 0.03);
  EXPECT_NEAR(static_cast<double>(seen[1]) / 8000, 0.125, 0.03);
}

TEST(PopularitySampler, LogProbabilitiesReadACountOfZeroAsOne) {
  const train::PopularitySampler s(std::vector<int64_t>{0, 1, 3});
  EXPECT_DOUBLE_EQ(s.log_probability(0), std::log(0.25));
  EXPECT_DOUBLE_EQ(s.log_probability(2), std::log(0.75));
  EXPECT_THROW(train::PopularitySampler(std::vector<int64_t>{0, 0}), InputError);
}
