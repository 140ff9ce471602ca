#include "train/session_batcher.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

namespace seqrec::train {

std::vector<int32_t> session_order_by_time(const SequenceSet& s) {
  std::vector<int32_t> ord(s.size());
  std::iota(ord.begin(), ord.end(), 0);
  if (!s.has_times()) return ord;
  std::vector<double> first(s.size(), std::numeric_limits<double>::infinity());
  for (size_t i = 0; i < s.size(); ++i)
    for (double t : s.seq_times(i)) first[i] = std::min(first[i], t);
  std::stable_sort(ord.begin(), ord.end(), [&](int32_t a, int32_t b) {
    return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)];
  });
  return ord;
}

int64_t count_training_pairs(const SequenceSet& s) {
  int64_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) n += std::max<int64_t>(0, s.length(i) - 1);
  return n;
}

SessionBatcher::SessionBatcher(const SequenceSet& data, std::span<const int32_t> order,
                               int64_t batch, bool stop_below_two)
    : data_(data), order_(order), stop_below_two_(stop_below_two) {
  const int64_t S = static_cast<int64_t>(order.size());
  batch_ = std::min(batch, S);
  for (int64_t b = 0; b < batch_; ++b) {
    const int32_t s = order_[static_cast<size_t>(b)];
    iter_.push_back(b);
    start_.push_back(data_.offsets[static_cast<size_t>(s)]);
    end_.push_back(data_.offsets[static_cast<size_t>(s) + 1]);
    origin_.push_back(-1);
  }
  maxiter_ = batch_ - 1;
  done_ = batch_ == 0;
  m_ = 0;
  i_ = 0;
  if (!done_) {
    m_ = std::numeric_limits<int64_t>::max();
    for (size_t b = 0; b < start_.size(); ++b) m_ = std::min(m_, end_[b] - start_[b]);
  }
}

bool SessionBatcher::advance_round() {
  const int64_t S = static_cast<int64_t>(order_.size());
  const size_t nb = start_.size();
  for (size_t b = 0; b < nb; ++b) start_[b] += m_ - 1;
  // Finished slots get the next session counters, in slot order.
  std::vector<char> finished(nb, 0);
  int64_t n_finished = 0;
  for (size_t b = 0; b < nb; ++b) {
    if (end_[b] - start_[b] <= 1) {
      finished[b] = 1;
      iter_[b] = maxiter_ + (++n_finished);
    }
  }
  maxiter_ += n_finished;
  int64_t n_valid = 0;
  for (size_t b = 0; b < nb; ++b) n_valid += iter_[b] < S;
  if (n_valid == 0) return false;
  for (size_t b = 0; b < nb; ++b) {
    if (finished[b] && iter_[b] < S) {
      const int32_t s = order_[static_cast<size_t>(iter_[b])];
      start_[b] = data_.offsets[static_cast<size_t>(s)];
      end_[b] = data_.offsets[static_cast<size_t>(s) + 1];
    }
  }
  if (stop_below_two_ && n_valid < 2) return false;
  // Reset finished slots, then delete the invalid ones keeping the order.
  size_t w = 0;
  for (size_t b = 0; b < nb; ++b) {
    if (finished[b]) origin_[b] = -1;
    if (iter_[b] >= S) continue;
    start_[w] = start_[b];
    end_[w] = end_[b];
    iter_[w] = iter_[b];
    origin_[w] = origin_[b];
    ++w;
  }
  start_.resize(w);
  end_.resize(w);
  iter_.resize(w);
  origin_.resize(w);
  m_ = std::numeric_limits<int64_t>::max();
  for (size_t b = 0; b < w; ++b) m_ = std::min(m_, end_[b] - start_[b]);
  i_ = 0;
  return true;
}

bool SessionBatcher::next() {
  if (done_) return false;
  while (i_ >= m_ - 1) {
    if (!advance_round()) {
      done_ = true;
      return false;
    }
  }
  const size_t nb = start_.size();
  changed_ = src_.size() != nb;
  for (size_t b = 0; b < nb && !changed_; ++b) changed_ = origin_[b] != static_cast<int32_t>(b);
  src_.assign(origin_.begin(), origin_.end());
  x_.resize(nb);
  y_.resize(nb);
  const int32_t* items = data_.items.data();
  for (size_t b = 0; b < nb; ++b) {
    const int64_t p = start_[b] + i_;
    x_[b] = items[p];
    y_[b] = items[p + 1];
    origin_[b] = static_cast<int32_t>(b);
  }
  ++i_;
  return true;
}

}  // namespace seqrec::train
