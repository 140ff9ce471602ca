// Session-parallel mini-batches of GRU4Rec (spec §2).
//
// B slots each step through one session an event at a time; when a slot's session ends,
// the next session (in order of first-event time) takes the slot and its hidden state
// restarts from zero. At the end of the epoch slots without a new session are deleted,
// so the batch shrinks. The batcher yields steps; the model follows the slot layout
// through src(): row r of a step continues row src()[r] of the previous step, or starts
// from a zero state when src()[r] < 0.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "seqrec/dataset.hpp"

namespace seqrec::train {

/// Sessions sorted by the time of their first event (the minimum time); ties, and all
/// sessions when the data has no times, keep their index order.
std::vector<int32_t> session_order_by_time(const SequenceSet& s);

/// Number of (event, next event) pairs, i.e. training targets of a full epoch.
int64_t count_training_pairs(const SequenceSet& s);

class SessionBatcher {
 public:
  /// `batch` slots (capped at the number of sessions, see docs/gru4rec.md: the official
  /// code crashes when there are fewer sessions than slots). `stop_below_two` is the
  /// official rule for n_sample == 0: the epoch ends once fewer than 2 sessions remain.
  SessionBatcher(const SequenceSet& data, std::span<const int32_t> order, int64_t batch,
                 bool stop_below_two);

  /// Moves to the next training step; false when the epoch is over.
  bool next();
  int64_t n() const { return static_cast<int64_t>(x_.size()); }
  const int32_t* x() const { return x_.data(); }  ///< input items, one per row
  const int32_t* y() const { return y_.data(); }  ///< target items
  /// True when the layout differs from the previous step's (always on the first step).
  bool changed() const { return changed_; }
  const int32_t* src() const { return src_.data(); }
  int64_t batch() const { return batch_; }

 private:
  bool advance_round();  // the end-of-round bookkeeping; false when the epoch ends

  const SequenceSet& data_;
  std::span<const int32_t> order_;
  int64_t batch_ = 0;
  bool stop_below_two_ = false;
  int64_t maxiter_ = 0;
  std::vector<int64_t> start_, end_, iter_;
  std::vector<int32_t> origin_;  // per slot: row in the last emitted step, -1 = reset
  int64_t m_ = 0, i_ = 0;        // current round: steps 0..m-2
  bool done_ = false, changed_ = false;
  std::vector<int32_t> x_, y_, src_;
};

}  // namespace seqrec::train
