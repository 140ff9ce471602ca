#include "train/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "seqrec/error.hpp"

namespace seqrec::train {

ItemSampler::ItemSampler(std::span<const int64_t> counts, double alpha) {
  const size_t n = counts.size();
  if (n == 0) throw InputError("negative sampling needs at least one item");
  std::vector<double> p(n);
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    p[i] = std::pow(static_cast<double>(counts[i]), alpha);
    total += p[i];
  }
  if (!(total > 0.0) || !std::isfinite(total))
    throw InputError("negative sampling: no item has a positive sampling weight");
  cdf_.resize(n);
  double cum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cum += p[i];
    cdf_[i] = static_cast<float>(cum / total);
  }
  cdf_[n - 1] = 1.0f;
  // Guide table with about 2 entries per item (at most 2^22).
  guide_bits_ = 10;
  while (guide_bits_ < 22 && (int64_t{1} << guide_bits_) < 2 * static_cast<int64_t>(n))
    ++guide_bits_;
  const int64_t G = int64_t{1} << guide_bits_;
  guide_.resize(static_cast<size_t>(G + 1));
  for (int64_t b = 0; b <= G; ++b) {
    const float u = static_cast<float>(b) * std::ldexp(1.0f, -guide_bits_);  // exact
    guide_[static_cast<size_t>(b)] = b == G ? static_cast<int32_t>(n - 1) : draw_binary(u);
  }
}

int32_t ItemSampler::draw_binary(float u) const {
  // Smallest i with F_i > u (F is non-decreasing and F_{n-1} = 1 > u).
  size_t lo = 0, hi = cdf_.size();
  while (lo != hi) {
    const size_t mid = (lo + hi) / 2;
    if (cdf_[mid] <= u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return static_cast<int32_t>(std::min(lo, cdf_.size() - 1));
}

int32_t ItemSampler::draw(float u) const {
  // u in [b/G, (b+1)/G): the answer lies in [guide[b], guide[b+1]] because draw_binary is
  // monotone in u.
  const int64_t b = static_cast<int64_t>(u * static_cast<float>(int64_t{1} << guide_bits_));
  size_t lo = static_cast<size_t>(guide_[static_cast<size_t>(b)]);
  size_t hi = static_cast<size_t>(guide_[static_cast<size_t>(b) + 1]);
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (cdf_[mid] <= u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return static_cast<int32_t>(lo);
}

SampleStore::SampleStore(ItemSampler sampler, int64_t n_sample, int64_t store_size, uint64_t seed)
    : sampler_(std::move(sampler)), k_(n_sample), seed_(seed) {
  if (k_ <= 0) return;
  rows_ = std::max<int64_t>(1, store_size / k_);
  store_.resize(static_cast<size_t>(rows_ * k_));
  pos_ = rows_;  // generated on first use
}

void SampleStore::generate() {
  const uint64_t gen = static_cast<uint64_t>(generation_++);
  int32_t* out = store_.data();
  const int64_t k = k_;
  parallel_for(
      rows_,
      [&](int64_t b, int64_t e, int) {
        for (int64_t r = b; r < e; ++r) {
          Rng rng(seed_, gen, static_cast<uint64_t>(r));
          int32_t* row = out + r * k;
          for (int64_t i = 0; i < k; ++i) row[i] = sampler_.draw(rng.uniform_float());
        }
      },
      64);
  pos_ = 0;
}

void SampleStore::restore(int64_t generations, int64_t position) {
  const bool ok = k_ <= 0 ? generations == 0 && position == 0
                          : generations >= 0 && position >= 0 && position <= rows_ &&
                                (generations > 0 || position == rows_);
  if (!ok)
    throw Error("negative sample store: position " + std::to_string(position) + " of generation " +
                std::to_string(generations) + " is impossible for a store of " +
                std::to_string(rows_) + " rows");
  if (k_ <= 0) return;
  if (generations > 0) {
    generation_ = generations - 1;
    generate();  // generation `generations`, as the interrupted run drew it
  } else {
    generation_ = 0;
  }
  pos_ = position;
}

const int32_t* SampleStore::next() {
  if (k_ <= 0) return nullptr;
  if (pos_ >= rows_) generate();
  return store_.data() + (pos_++) * k_;
}

PopularitySampler::PopularitySampler(std::span<const int64_t> counts)
    : counts_(counts.begin(), counts.end()) {
  cdf_.resize(counts.size());
  double acc = 0;
  for (size_t i = 0; i < counts.size(); ++i) cdf_[i] = acc += static_cast<double>(counts[i]);
  if (!(acc > 0.0)) throw InputError("popularity sampling: no item has a training event");
  for (auto& x : cdf_) x /= acc;
  total_ = acc;
}

int32_t PopularitySampler::draw(Rng& rng) const {
  const double u = rng.uniform();  // Rng's 53-bit double (SasRng hides it with a float one)
  const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  return static_cast<int32_t>(
      std::min<int64_t>(it - cdf_.begin(), static_cast<int64_t>(cdf_.size()) - 1));
}

double PopularitySampler::log_probability(int32_t item) const {
  return std::log(std::max<double>(1.0, static_cast<double>(counts_[static_cast<size_t>(item)])) /
                  total_);
}

}  // namespace seqrec::train
