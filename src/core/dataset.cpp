// Vocab, SequenceSet and the helpers that move sequences between vocabularies.
#include "seqrec/dataset.hpp"

#include <limits>
#include <string>

#include "seqrec/error.hpp"

namespace seqrec {

int32_t Vocab::add(std::string_view token) {
  auto it = index_.find(token);
  if (it != index_.end()) return it->second;
  if (tokens_.size() >= static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw InputError("too many distinct ids: more than 2^31-1 (2147483647) are not supported");
  }
  auto index = static_cast<int32_t>(tokens_.size());
  tokens_.emplace_back(token);
  index_.emplace(tokens_.back(), index);
  return index;
}

int32_t Vocab::find(std::string_view token) const {
  auto it = index_.find(token);
  return it == index_.end() ? -1 : it->second;
}

void Vocab::reserve(size_t n) {
  tokens_.reserve(n);
  index_.reserve(n);
}

void SequenceSet::push(std::string id, std::span<const int32_t> s, std::span<const double> t) {
  if (!t.empty() && t.size() != s.size()) {
    throw InputError("SequenceSet::push: " + std::to_string(t.size()) + " times for " +
                     std::to_string(s.size()) + " items (sequence '" + id + "')");
  }
  // has_times() is decided by the first non-empty sequence; later ones must agree.
  if (n_events() > 0 && has_times() != !t.empty() && !s.empty()) {
    throw InputError(
        "SequenceSet::push: sequence '" + id + "' " +
        (t.empty() ? "has no times but the set has" : "has times but the set has none"));
  }
  ids.push_back(std::move(id));
  items.insert(items.end(), s.begin(), s.end());
  times.insert(times.end(), t.begin(), t.end());
  offsets.push_back(static_cast<int64_t>(items.size()));
}

void SequenceSet::clear() {
  ids.clear();
  offsets.assign(1, 0);
  items.clear();
  times.clear();
}

SequenceSet remap(const EventLog& log, const Vocab& target, int64_t* dropped) {
  const SequenceSet& in = log.seqs;
  std::vector<int32_t> map(static_cast<size_t>(log.items.size()));
  for (int32_t i = 0; i < log.items.size(); ++i)
    map[static_cast<size_t>(i)] = target.find(log.items.token(i));
  SequenceSet out;
  const bool with_times = in.has_times();
  out.items.reserve(in.items.size());
  if (with_times) out.times.reserve(in.times.size());
  int64_t n_dropped = 0;
  for (size_t s = 0; s < in.size(); ++s) {
    const size_t before = out.items.size();
    for (int64_t e = in.offsets[s]; e < in.offsets[s + 1]; ++e) {
      const int32_t it = in.items[static_cast<size_t>(e)];
      const int32_t m =
          (it >= 0 && it < static_cast<int32_t>(map.size())) ? map[static_cast<size_t>(it)] : -1;
      if (m < 0) {
        ++n_dropped;
        continue;
      }
      out.items.push_back(m);
      if (with_times) out.times.push_back(in.times[static_cast<size_t>(e)]);
    }
    if (out.items.size() > before) {
      out.ids.push_back(in.ids[s]);
      out.offsets.push_back(static_cast<int64_t>(out.items.size()));
    }
  }
  if (dropped) *dropped = n_dropped;
  return out;
}

std::vector<int64_t> item_counts(const SequenceSet& s, int32_t n_items) {
  std::vector<int64_t> counts(static_cast<size_t>(n_items > 0 ? n_items : 0), 0);
  for (int32_t it : s.items) {
    if (it >= 0 && it < n_items) ++counts[static_cast<size_t>(it)];
  }
  return counts;
}

}  // namespace seqrec
