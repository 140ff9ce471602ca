// The random stream of GRU4Rec training (dropout masks, negative samples): xoshiro256**
// seeded through splitmix64. Streams are derived from (seed, purpose, index) so that
// parallel work draws the same numbers whatever the number of threads.
#pragma once

#include <cstdint>

namespace seqrec::train {

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 42) { reseed(seed); }
  /// A stream determined by (seed, a, b) alone.
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
  /// Uniform float in [0, 1) with 24 random bits (a float32 draw).
  float uniform_float() { return static_cast<float>(next() >> 40) * 0x1.0p-24f; }
  uint64_t* state() { return s_; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace seqrec::train
