// Early stopping of hopeless trials in `seqrec tune`, in the manner of successive halving
// and its asynchronous form ASHA (Li et al., "A System for Massively Parallel
// Hyperparameter Tuning", MLSys 2020): rungs at epochs min_epochs * eta^k; a trial that
// reaches a rung is stopped there unless its validation score is among the top 1/eta of
// the scores every trial so far had at that rung (itself included). The first min_trials
// trials to reach a rung always pass it, so that a rung compares against a few results.
//
// The score of a trial at an epoch is the best validation score it had up to that epoch
// (the weights early stopping would keep).
#pragma once

#include <map>
#include <vector>

namespace seqrec::tune {

struct PrunerOptions {
  int min_epochs = 1;  ///< the first rung (ASHA's minimum resource r)
  double eta = 3;      ///< reduction factor: rungs at min_epochs * eta^k, keep the top 1/eta
  int min_trials = 3;  ///< trials that pass a rung before it stops any
};

class RungPruner {
 public:
  explicit RungPruner(PrunerOptions o = {});
  /// Whether `epoch` is a rung.
  bool is_rung(int epoch) const;
  /// The rungs up to `max_epoch`, in order.
  std::vector<int> rungs(int max_epoch) const;
  /// Records the score of trial `trial` at rung `epoch` and says whether it stops there.
  /// Calling it again for the same (trial, epoch) replaces the score.
  bool report(int trial, int epoch, double score);
  /// Records a score without a decision (the trials of a log read back on resume).
  void record(int trial, int epoch, double score);
  /// The scores recorded at a rung.
  std::vector<double> scores_at(int epoch) const;

 private:
  PrunerOptions o_;
  std::map<int, std::map<int, double>> rungs_;  ///< epoch -> trial -> score
};

}  // namespace seqrec::tune
