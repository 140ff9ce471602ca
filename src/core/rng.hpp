// The random stream of seqrec: xoshiro256** seeded through splitmix64. One generator for
// the data generator, training (dropout masks, negative samples, shuffling) and sampled
// evaluation. Streams derived from (seed, a, b) alone let parallel work draw the same
// numbers whatever the number of threads or the chunking.
#pragma once

#include <cmath>
#include <cstdint>

namespace seqrec {

/// splitmix64: advances `x` and returns the next output (also a good 64-bit mixer).
inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 42) { reseed(seed); }
  /// A stream determined by (seed, a, b) alone (a: purpose, b: index such as epoch/step).
  Rng(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t x = seed;
    const uint64_t s1 = splitmix64(x) ^ (a * 0xD1342543DE82EF95ULL);
    x = s1;
    const uint64_t s2 = splitmix64(x) ^ (b * 0xAF251AF3B0F025B5ULL);
    reseed(s2);
  }
  void reseed(uint64_t seed) {
    for (auto& v : s_) v = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform float in [0, 1) with 24 random bits (a float32 draw).
  float uniform_float() { return static_cast<float>(next() >> 40) * 0x1.0p-24f; }
  /// Uniform integer in [0, n) (multiply-shift; bias < n / 2^64).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<__uint128_t>(next()) * n) >> 64);
  }
  /// Uniform integer in [0, n) from 32 random bits (faster; bias < n / 2^32).
  uint32_t below32(uint32_t n) {
    return static_cast<uint32_t>((static_cast<uint64_t>(next() >> 32) * n) >> 32);
  }
  /// Standard normal (Box-Muller, one value per call).
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  /// Exponential with the given mean.
  double exponential(double mean) { return -mean * std::log(1.0 - uniform()); }
  uint64_t* state() { return s_; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace seqrec
