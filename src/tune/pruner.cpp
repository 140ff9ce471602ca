#include "tune/pruner.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "seqrec/error.hpp"

namespace seqrec::tune {

RungPruner::RungPruner(PrunerOptions o) : o_(o) {
  if (o_.min_epochs < 1) throw InputError("pruning: the first rung must be at epoch 1 or later");
  if (!(o_.eta > 1)) throw InputError("pruning: eta must be greater than 1");
}

bool RungPruner::is_rung(int epoch) const {
  for (double r = o_.min_epochs; r <= epoch + 1e-9; r *= o_.eta)
    if (static_cast<int>(std::lround(r)) == epoch) return true;
  return false;
}

std::vector<int> RungPruner::rungs(int max_epoch) const {
  std::vector<int> out;
  for (double r = o_.min_epochs; r <= max_epoch + 1e-9; r *= o_.eta) {
    const int e = static_cast<int>(std::lround(r));
    if (out.empty() || out.back() != e) out.push_back(e);
  }
  return out;
}

void RungPruner::record(int trial, int epoch, double score) {
  if (std::isfinite(score)) rungs_[epoch][trial] = score;
}

std::vector<double> RungPruner::scores_at(int epoch) const {
  std::vector<double> out;
  if (auto it = rungs_.find(epoch); it != rungs_.end())
    for (const auto& [t, s] : it->second) out.push_back(s);
  return out;
}

bool RungPruner::report(int trial, int epoch, double score) {
  if (!is_rung(epoch)) return false;
  if (!std::isfinite(score)) return true;  // a NaN score is no better than any
  record(trial, epoch, score);
  std::vector<double> s = scores_at(epoch);
  if (static_cast<int>(s.size()) <= o_.min_trials) return false;  // the first ones run on
  std::sort(s.begin(), s.end(), std::greater<>());
  const size_t keep =
      std::max<size_t>(1, static_cast<size_t>(std::floor(static_cast<double>(s.size()) / o_.eta)));
  return score < s[keep - 1];
}

}  // namespace seqrec::tune
