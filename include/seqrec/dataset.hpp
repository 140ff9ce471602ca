// Interaction data in memory: an item vocabulary and sequences of item indices.
//
// Ids in the user's files are arbitrary tokens; seqrec maps them to dense int32 indices
// (0..n-1, in order of first appearance) and keeps the tokens so that every result speaks
// the user's original ids.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace seqrec {

/// Tokens <-> dense indices, in order of first appearance.
class Vocab {
 public:
  /// Index of `token`, adding it if new.
  int32_t add(std::string_view token);
  /// Index of `token`, or -1.
  int32_t find(std::string_view token) const;
  const std::string& token(int32_t index) const { return tokens_[static_cast<size_t>(index)]; }
  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  void reserve(size_t n);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> index_;
};

/// Sequences in CSR layout. A sequence is a session (session-based protocol) or a user's
/// history (sequential protocol); its events are in time order.
struct SequenceSet {
  std::vector<std::string> ids;    ///< original session/user id of each sequence
  std::vector<int64_t> offsets{0}; ///< size() + 1 entries
  std::vector<int32_t> items;      ///< dense item index of each event
  std::vector<double> times;       ///< seconds, one per event (empty when the data had none)

  size_t size() const { return ids.size(); }
  int64_t n_events() const { return offsets.back(); }
  bool has_times() const { return !times.empty(); }
  int64_t length(size_t i) const { return offsets[i + 1] - offsets[i]; }
  std::span<const int32_t> seq(size_t i) const {
    return {items.data() + offsets[i], static_cast<size_t>(length(i))};
  }
  std::span<const double> seq_times(size_t i) const {
    if (times.empty()) return {};
    return {times.data() + offsets[i], static_cast<size_t>(length(i))};
  }
  /// Appends one sequence; `t` is empty or as long as `s` (and must match has_times()).
  void push(std::string id, std::span<const int32_t> s, std::span<const double> t = {});
  void clear();
};

/// Data as read from a file: item vocabulary + sequences over it.
struct EventLog {
  Vocab items;
  SequenceSet seqs;
  std::string source;  ///< where it came from (for messages)
};

/// Rewrites `log` over the vocabulary `target`: events whose item is not in `target` are
/// dropped (their number is returned in `dropped`), sequences left empty are removed.
SequenceSet remap(const EventLog& log, const Vocab& target, int64_t* dropped);

/// Number of events of each item index (size n_items).
std::vector<int64_t> item_counts(const SequenceSet& s, int32_t n_items);

}  // namespace seqrec
