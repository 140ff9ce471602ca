// The generated catalogue and queries of the ANN benchmarks (bench/ann_bench_main.cc,
// bench/ann_faiss_main.cc): item vectors, output biases and session query vectors shaped
// like those of a trained GRU4Rec/SASRec output layer rather than pure noise.
//
// "clustered" (the default; what the figures in docs/performance.md use):
// - items belong to topics (n / 2000 of them, at least 64) of Zipf-like sizes; an item's
//   direction is its topic's centre plus noise (cosine about 0.75 to the centre), as trained
//   item embeddings group by genre, category or co-occurrence;
// - each item has a popularity (Zipf over a random order); its vector norm grows with log
//   popularity (x0.5 to x2) and its bias is 0.3 x standardised log popularity, as the output
//   layer of a trained model learns both (popular items score high for most sessions);
// - a query is a session vector: the mean direction of 1 to 6 items of one topic (a quarter
//   of the sessions also hold one item of another topic), plus noise, scaled to norm 4, as
//   a recurrent or attention encoder's state points towards what the session has seen.
// "gaussian": items, queries i.i.d. N(0, 1/d) per coordinate, bias N(0, 0.1^2): no
// structure at all, the hardest case for a graph index (for comparison only).
#pragma once

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace ann_bench {

struct Catalogue {
  int32_t n = 0, dim = 0;
  std::vector<float> items, bias;  // n x dim, n
  std::vector<float> queries;      // nq x dim
  int32_t nq = 0;
};

inline void normalise(float* v, int32_t d, float to = 1.0f) {
  double s = 0.0;
  for (int32_t k = 0; k < d; ++k) s += static_cast<double>(v[k]) * v[k];
  const float f = s > 0 ? static_cast<float>(to / std::sqrt(s)) : 0.0f;
  for (int32_t k = 0; k < d; ++k) v[k] *= f;
}

inline Catalogue generate(const std::string& kind, int32_t n, int32_t dim, int32_t nq,
                          uint32_t seed) {
  Catalogue c;
  c.n = n;
  c.dim = dim;
  c.nq = nq;
  c.items.resize(static_cast<size_t>(n) * dim);
  c.bias.resize(static_cast<size_t>(n));
  c.queries.resize(static_cast<size_t>(nq) * dim);
  const float inv_sqrt_d = 1.0f / std::sqrt(static_cast<float>(dim));
  constexpr int64_t kChunk = 1 << 14;
  if (kind == "gaussian") {
#pragma omp parallel for schedule(dynamic)
    for (int64_t lo = 0; lo < n; lo += kChunk) {
      std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(lo));
      std::normal_distribution<float> g(0.0f, 1.0f);
      for (int64_t i = lo; i < std::min<int64_t>(n, lo + kChunk); ++i) {
        for (int32_t k = 0; k < dim; ++k)
          c.items[static_cast<size_t>(i * dim + k)] = g(rng) * inv_sqrt_d;
        c.bias[static_cast<size_t>(i)] = 0.1f * g(rng);
      }
    }
    std::mt19937_64 rng(seed + 77);
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (float& x : c.queries) x = g(rng) * inv_sqrt_d;
    return c;
  }
  // Topics: centres of unit length, Zipf-like weights.
  const int32_t topics = std::max<int32_t>(64, n / 2000);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> centre(static_cast<size_t>(topics) * dim);
  for (float& x : centre) x = g(rng);
  for (int32_t t = 0; t < topics; ++t) normalise(centre.data() + static_cast<size_t>(t) * dim, dim);
  std::vector<double> tw(static_cast<size_t>(topics));
  for (int32_t t = 0; t < topics; ++t) tw[static_cast<size_t>(t)] = 1.0 / std::pow(t + 1.0, 0.8);
  // Item topic and popularity rank (a random permutation).
  std::vector<int32_t> topic(static_cast<size_t>(n)), rank(static_cast<size_t>(n));
  {
    std::discrete_distribution<int32_t> pick(tw.begin(), tw.end());
    for (auto& t : topic) t = pick(rng);
    std::iota(rank.begin(), rank.end(), 0);
    std::shuffle(rank.begin(), rank.end(), rng);
  }
  // Standardised log popularity: log(1 / (rank + 1)) over a Zipf law.
  std::vector<float> z(static_cast<size_t>(n));
  double mean = 0.0, sq = 0.0;
  for (int32_t i = 0; i < n; ++i) {
    const double l = -std::log(rank[static_cast<size_t>(i)] + 1.0);
    z[static_cast<size_t>(i)] = static_cast<float>(l);
    mean += l;
    sq += l * l;
  }
  mean /= n;
  const double sd = std::sqrt(std::max(1e-12, sq / n - mean * mean));
  for (float& x : z) x = static_cast<float>((x - mean) / sd);
#pragma omp parallel for schedule(dynamic)
  for (int64_t lo = 0; lo < n; lo += kChunk) {
    std::mt19937_64 r(seed * 1000003ULL + static_cast<uint64_t>(lo));
    std::normal_distribution<float> gg(0.0f, 1.0f);
    for (int64_t i = lo; i < std::min<int64_t>(n, lo + kChunk); ++i) {
      float* v = c.items.data() + i * dim;
      const float* ce = centre.data() + static_cast<size_t>(topic[static_cast<size_t>(i)]) * dim;
      for (int32_t k = 0; k < dim; ++k) v[k] = ce[k] + 0.9f * gg(r) * inv_sqrt_d;
      const float zi = std::clamp(z[static_cast<size_t>(i)], -2.8f, 2.8f);
      normalise(v, dim, std::exp(0.25f * zi));
      c.bias[static_cast<size_t>(i)] = 0.3f * zi;
    }
  }
  // Sessions: items of one topic (by popularity within it), sometimes one of another.
  std::vector<std::vector<int32_t>> by_topic(static_cast<size_t>(topics));
  for (int32_t i = 0; i < n; ++i)
    by_topic[static_cast<size_t>(topic[static_cast<size_t>(i)])].push_back(i);
  std::discrete_distribution<int32_t> pick_topic(tw.begin(), tw.end());
  std::uniform_int_distribution<int32_t> len(1, 6), any(0, n - 1);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::vector<float> q(static_cast<size_t>(dim)), dir(static_cast<size_t>(dim));
  for (int32_t j = 0; j < nq; ++j) {
    int32_t t = pick_topic(rng);
    while (by_topic[static_cast<size_t>(t)].empty()) t = pick_topic(rng);
    const auto& pool = by_topic[static_cast<size_t>(t)];
    std::fill(q.begin(), q.end(), 0.0f);
    const int32_t l = len(rng);
    for (int32_t e = 0; e < l; ++e) {
      // The more popular of two draws: sessions favour popular items.
      int32_t a = pool[rng() % pool.size()], b = pool[rng() % pool.size()];
      int32_t it = rank[static_cast<size_t>(a)] < rank[static_cast<size_t>(b)] ? a : b;
      if (e == l - 1 && l > 1 && u01(rng) < 0.25) it = any(rng);
      std::copy_n(c.items.data() + static_cast<size_t>(it) * dim, dim, dir.data());
      normalise(dir.data(), dim);
      for (int32_t k = 0; k < dim; ++k) q[static_cast<size_t>(k)] += dir[static_cast<size_t>(k)];
    }
    normalise(q.data(), dim);
    for (int32_t k = 0; k < dim; ++k) q[static_cast<size_t>(k)] += 0.5f * g(rng) * inv_sqrt_d;
    normalise(q.data(), dim, 4.0f);
    std::copy(q.begin(), q.end(), c.queries.begin() + static_cast<size_t>(j) * dim);
  }
  return c;
}

/// Resident and peak resident memory of this process (bytes), from /proc/self/status.
inline void memory(int64_t* rss, int64_t* hwm) {
  FILE* f = std::fopen("/proc/self/status", "r");
  *rss = *hwm = 0;
  if (!f) return;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    long long kb = 0;
    if (std::sscanf(line, "VmRSS: %lld kB", &kb) == 1) *rss = kb * 1024;
    if (std::sscanf(line, "VmHWM: %lld kB", &kb) == 1) *hwm = kb * 1024;
  }
  std::fclose(f);
}

/// Seconds on a monotonic clock.
inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// CPU time of the calling thread (s): unlike wall time, not inflated while other processes
/// hold the core.
inline double thread_cpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// The p-quantile (0..1) of v by rank (0 for an empty v).
inline double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace ann_bench
