#include "tune/tpe.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/rng.hpp"

namespace seqrec::tune {

namespace {

constexpr uint64_t kStreamTpe = 0x7470650000000001ULL;
constexpr double kPi = 3.14159265358979323846;

/// A dimension in the coordinates the estimator works in: log(value) for log ranges.
struct Axis {
  double lo, hi;
  bool log;
  double to(double x) const { return log ? std::log(x) : x; }
  double from(double u) const { return log ? std::exp(u) : u; }
};

Axis axis_of(const Dimension& d) {
  if (d.log) return {std::log(d.low), std::log(d.high), true};
  // An int or stepped range covers half a step beyond its ends, so that the end values are
  // as likely as the others once snapped.
  const double half = d.step > 0 ? d.step / 2 : (d.kind == DimKind::Int ? 0.5 : 0.0);
  return {d.low - half, d.high + half, false};
}

double normal_cdf(double z) {
  return 0.5 * std::erfc(-z / std::sqrt(2.0));
}

/// A Parzen estimator over one numeric axis: Gaussians truncated to [lo, hi].
struct Parzen {
  std::vector<double> mu, sigma, weight;
  double lo, hi;

  Parzen(std::vector<double> points, double lo_, double hi_) : lo(lo_), hi(hi_) {
    const double range = hi - lo;
    // The prior: one wide component in the middle of the range.
    std::sort(points.begin(), points.end());
    const size_t n = points.size();
    const double min_bw = range / std::min(100.0, static_cast<double>(n) + 1.0);
    for (size_t i = 0; i < n; ++i) {
      // The bandwidth of a point: the larger gap to its neighbours (the range's ends for
      // the outer points), clipped to [range / min(100, n + 1), range].
      const double left = i > 0 ? points[i] - points[i - 1] : points[i] - lo;
      const double right = i + 1 < n ? points[i + 1] - points[i] : hi - points[i];
      mu.push_back(points[i]);
      sigma.push_back(std::clamp(std::max(left, right), min_bw, range));
      weight.push_back(1.0);
    }
    mu.push_back((lo + hi) / 2);
    sigma.push_back(range);
    weight.push_back(1.0);
    const double total = std::accumulate(weight.begin(), weight.end(), 0.0);
    for (double& w : weight) w /= total;
  }

  double log_density(double u) const {
    double p = 0;
    for (size_t i = 0; i < mu.size(); ++i) {
      const double z = (u - mu[i]) / sigma[i];
      const double mass = normal_cdf((hi - mu[i]) / sigma[i]) - normal_cdf((lo - mu[i]) / sigma[i]);
      p += weight[i] * std::exp(-0.5 * z * z) / (sigma[i] * std::sqrt(2 * kPi)) /
           std::max(mass, 1e-12);
    }
    return std::log(std::max(p, 1e-300));
  }

  double sample(Rng& rng) const {
    double r = rng.uniform(), acc = 0;
    size_t c = mu.size() - 1;
    for (size_t i = 0; i < weight.size(); ++i) {
      acc += weight[i];
      if (r < acc) {
        c = i;
        break;
      }
    }
    for (int tries = 0; tries < 64; ++tries) {
      const double u = mu[c] + sigma[c] * rng.normal();
      if (u >= lo && u <= hi) return u;
    }
    return std::clamp(mu[c], lo, hi);
  }
};

/// Smoothed frequencies of a categorical dimension: (count + 1) / (n + k).
std::vector<double> frequencies(const std::vector<double>& idx, size_t k) {
  std::vector<double> p(k, 1.0);
  for (double x : idx) p[static_cast<size_t>(x)] += 1.0;
  const double total = static_cast<double>(idx.size() + k);
  for (double& v : p) v /= total;
  return p;
}

}  // namespace

TpeSampler::TpeSampler(SearchSpace space, TpeOptions options)
    : space_(std::move(space)), o_(options) {}

std::vector<double> TpeSampler::random_point(uint64_t trial) const {
  Rng rng(o_.seed, kStreamTpe, trial);
  std::vector<double> x;
  for (const auto& d : space_.dims) {
    if (d.kind == DimKind::Categorical) {
      x.push_back(static_cast<double>(rng.below(d.n_choices())));
      continue;
    }
    const Axis a = axis_of(d);
    x.push_back(snap(d, a.from(a.lo + (a.hi - a.lo) * rng.uniform())));
  }
  return x;
}

std::vector<double> TpeSampler::propose(const std::vector<Observation>& obs, uint64_t trial) const {
  if (static_cast<int>(obs.size()) < std::max(o_.n_startup, 1) || space_.dims.empty())
    return random_point(trial);
  // Best first: completed trials by value, then the pruned and failed ones by value.
  std::vector<size_t> order(obs.size());
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](size_t i) {
    const double v =
        std::isfinite(obs[i].value) ? obs[i].value : -std::numeric_limits<double>::infinity();
    return std::make_pair(obs[i].complete ? 1 : 0, v);
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
  const size_t n_good =
      std::clamp<size_t>(static_cast<size_t>(std::ceil(o_.gamma * static_cast<double>(obs.size()))),
                         1, obs.size() - 1);

  Rng rng(o_.seed, kStreamTpe, trial);
  const size_t nd = space_.dims.size();
  const int nc = std::max(o_.n_candidates, 1);
  std::vector<std::vector<double>> cand(static_cast<size_t>(nc), std::vector<double>(nd));
  std::vector<double> score(static_cast<size_t>(nc), 0.0);
  for (size_t di = 0; di < nd; ++di) {
    const Dimension& d = space_.dims[di];
    std::vector<double> good, bad;
    for (size_t r = 0; r < order.size(); ++r)
      (r < n_good ? good : bad).push_back(obs[order[r]].x[di]);
    if (d.kind == DimKind::Categorical) {
      const std::vector<double> pl = frequencies(good, d.n_choices());
      const std::vector<double> pg = frequencies(bad, d.n_choices());
      for (int c = 0; c < nc; ++c) {
        double r = rng.uniform(), acc = 0;
        size_t k = pl.size() - 1;
        for (size_t i = 0; i < pl.size(); ++i) {
          acc += pl[i];
          if (r < acc) {
            k = i;
            break;
          }
        }
        cand[static_cast<size_t>(c)][di] = static_cast<double>(k);
        score[static_cast<size_t>(c)] += std::log(pl[k]) - std::log(pg[k]);
      }
      continue;
    }
    const Axis a = axis_of(d);
    std::vector<double> gu, bu;
    for (double x : good) gu.push_back(a.to(x));
    for (double x : bad) bu.push_back(a.to(x));
    const Parzen l(gu, a.lo, a.hi), g(bu, a.lo, a.hi);
    for (int c = 0; c < nc; ++c) {
      const double u = l.sample(rng);
      const double x = snap(d, a.from(u));
      const double us = std::clamp(a.to(x), a.lo, a.hi);  // scored where it is snapped to
      cand[static_cast<size_t>(c)][di] = x;
      score[static_cast<size_t>(c)] += l.log_density(us) - g.log_density(us);
    }
  }
  const size_t best =
      static_cast<size_t>(std::max_element(score.begin(), score.end()) - score.begin());
  return cand[best];
}

}  // namespace seqrec::tune
