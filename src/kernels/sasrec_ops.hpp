// Small building blocks of SASRec training: a counter-free random stream for dropout and
// sampling, a vectorisable exp, dropout masks, and the element-wise activations with their
// backward passes. Everything here is header-only so that the compiler can inline and
// vectorise the loops that use it.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/rng.hpp"
#include "kernels/fast_math.hpp"

namespace seqrec::kernels {

/// seqrec's random stream (src/core/rng.hpp) with SASRec's draws: 32-bit integers and
/// float32 uniforms. A stream is determined by (seed, a, b) alone, so per-sequence streams
/// give the same numbers whatever the chunking or threads.
class SasRng : public Rng {
 public:
  explicit SasRng(uint64_t seed = 42, uint64_t a = 0, uint64_t b = 0) {
    // SASRec's own stream derivation from (seed, a, b), kept so its runs stay reproducible.
    uint64_t x = seed ^ (a * 0xD1342543DE82EF95ULL);
    uint64_t y = x;
    reseed(splitmix64(y) ^ (b * 0xAF251AF3B0F025B5ULL));
  }
  uint32_t below(uint32_t n) { return below32(n); }
  float uniform() { return uniform_float(); }
};

/// e^x for float, vectorisable: fast_exp of kernels/fast_math.hpp (clamped to [-87.3, 88] so
/// the result is always finite; a clamp above ln(FLT_MAX) would build an infinite 2^k).
inline float sas_exp(float x) {
  return fast_exp(x);
}

/// max_j x[j] (n >= 1). GCC does not vectorise a float max reduction without
/// -ffinite-math-only, so this uses its vector extension (8 lanes).
inline float sas_max(const float* x, int64_t n) {
  typedef float v8 __attribute__((vector_size(32)));
  float r = x[0];
  int64_t j = 0;
  if (n >= 8) {
    v8 m;
    std::memcpy(&m, x, sizeof m);
    for (j = 8; j + 8 <= n; j += 8) {
      v8 v;
      std::memcpy(&v, x + j, sizeof v);
      m = v > m ? v : m;
    }
    r = m[0];
    for (int u = 1; u < 8; ++u) r = m[u] > r ? m[u] : r;
  }
  for (; j < n; ++j) r = x[j] > r ? x[j] : r;
  return r;
}

/// x[j] <- e^(x[j] - shift) for j < n; returns the sum (16 lanes, vectorised).
inline float sas_exp_inplace_sum(float* x, int64_t n, float shift) {
  float acc[16] = {};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int u = 0; u < 16; ++u) {
      const float e = sas_exp(x[j + u] - shift);
      x[j + u] = e;
      acc[u] += e;
    }
  float r = 0;
  for (; j < n; ++j) {
    const float e = sas_exp(x[j] - shift);
    x[j] = e;
    r += e;
  }
  for (int u = 0; u < 16; ++u) r += acc[u];
  return r;
}

/// sum_j a[j] b[j] (16 lanes, vectorised).
inline float sas_dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int u = 0; u < 16; ++u) acc[u] += a[j + u] * b[j + u];
  float r = 0;
  for (; j < n; ++j) r += a[j] * b[j];
  for (int u = 0; u < 16; ++u) r += acc[u];
  return r;
}

/// log(1 + e^x) in float, vectorisable: max(x, 0) + log(1 + t) with t = e^-|x| in (0, 1],
/// log(1 + t) = 2 atanh(s), s = t / (2 + t) <= 1/3, by its series to s^11 (rel. error
/// < 2e-7).
inline float sas_softplus(float x) {
  const float ax = x < 0 ? -x : x;
  const float t = sas_exp(-ax);
  const float s = t / (2.0f + t);
  const float s2 = s * s;
  float p = 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return (x > 0 ? x : 0.0f) + 2.0f * s * p;
}

inline float sas_sigmoid(float x) {
  return 1.0f / (1.0f + sas_exp(-x));
}

/// log(1 + e^x) computed without overflow (double: used for loss values only).
inline double sas_softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

/// The splitmix64 finaliser: a bijective 64-bit mix, the core of the counter-based streams.
inline uint64_t sas_hash64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

/// A key derived from a parent key and an index (counter-based streams: dropout masks
/// depend only on (seed, step, sequence, layer, row), never on chunking or threads).
inline uint64_t sas_derive_key(uint64_t key, uint64_t index) {
  return sas_hash64(key ^ sas_hash64(index + 0x9E3779B97F4A7C15ULL));
}

/// Dropout threshold on 16 random bits: an element is kept when bits >= thr, which has
/// probability 1 - p with p rounded to a multiple of 2^-16.
inline uint32_t sas_dropout_threshold(float p) {
  return static_cast<uint32_t>(p * 65536.0f + 0.5f);
}

/// Fills mask[0..n) with 1 (kept) or 0 (dropped): element i uses bits 16(i%4).. of
/// sas_hash64(key + (i/4) * golden). Vectorises (no sequential state).
inline void sas_dropout_mask(uint64_t key, float p, int64_t n, uint8_t* mask) {
  const uint32_t thr = sas_dropout_threshold(p);
  const int64_t nb = n / 4;
  for (int64_t b = 0; b < nb; ++b) {
    const uint64_t r = sas_hash64(key + static_cast<uint64_t>(b) * 0x9E3779B97F4A7C15ULL);
    mask[4 * b] = static_cast<uint32_t>(r & 0xFFFF) >= thr;
    mask[4 * b + 1] = static_cast<uint32_t>((r >> 16) & 0xFFFF) >= thr;
    mask[4 * b + 2] = static_cast<uint32_t>((r >> 32) & 0xFFFF) >= thr;
    mask[4 * b + 3] = static_cast<uint32_t>(r >> 48) >= thr;
  }
  if (nb * 4 < n) {
    uint64_t r = sas_hash64(key + static_cast<uint64_t>(nb) * 0x9E3779B97F4A7C15ULL);
    for (int64_t i = nb * 4; i < n; ++i, r >>= 16)
      mask[i] = static_cast<uint32_t>(r & 0xFFFF) >= thr;
  }
}

/// x[i] *= mask[i] ? scale : 0  (inverted dropout, scale = 1/(1-p)).
inline void sas_apply_mask(float* x, const uint8_t* mask, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) x[i] = mask[i] ? x[i] * scale : 0.0f;
}

/// GELU with the exact erf form (PyTorch's default): sas_gelu(x) = x Phi(x).
inline float sas_gelu(float x) {
  return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
}
/// d gelu / dx = Phi(x) + x phi(x).
inline float sas_gelu_grad(float x) {
  const float cdf = 0.5f * (1.0f + std::erf(x * 0.70710678118654752f));
  const float pdf = 0.39894228040143268f * std::exp(-0.5f * x * x);
  return cdf + x * pdf;
}

}  // namespace seqrec::kernels
