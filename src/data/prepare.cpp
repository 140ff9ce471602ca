// The two preprocessing pipelines (session-based GRU4Rec split, sequential leave-one-out),
// sequence statistics and write_split.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "core/text_format.hpp"
#include "data/text_util.hpp"
#include "io/output_file.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

using namespace data_detail;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Keeps sequence s when keep_seq(s) and, inside it, event e when keep_event(e); sequences
// left empty are dropped.
template <class KeepSeq, class KeepEvent>
SequenceSet filter(const SequenceSet& in, KeepSeq keep_seq, KeepEvent keep_event) {
  SequenceSet out;
  const bool with_times = in.has_times();
  out.items.reserve(in.items.size());
  if (with_times) out.times.reserve(in.times.size());
  for (size_t s = 0; s < in.size(); ++s) {
    if (!keep_seq(s)) continue;
    const size_t before = out.items.size();
    for (int64_t e = in.offsets[s]; e < in.offsets[s + 1]; ++e) {
      const auto ue = static_cast<size_t>(e);
      if (!keep_event(ue)) continue;
      out.items.push_back(in.items[ue]);
      if (with_times) out.times.push_back(in.times[ue]);
    }
    if (out.items.size() > before) {
      out.ids.push_back(in.ids[s]);
      out.offsets.push_back(static_cast<int64_t>(out.items.size()));
    }
  }
  return out;
}

SequenceSet collapse_repeats(const SequenceSet& in) {
  return filter(
      in, [](size_t) { return true; },
      [&](size_t e) {
        // An event repeats its predecessor when both are in the same sequence.
        if (e == 0 || in.items[e] != in.items[e - 1]) return true;
        const auto it =
            std::upper_bound(in.offsets.begin(), in.offsets.end(), static_cast<int64_t>(e));
        return *(it - 1) == static_cast<int64_t>(e);  // first event of its sequence
      });
}

SequenceSet drop_short(const SequenceSet& in, int64_t min_len) {
  return filter(
      in, [&](size_t s) { return in.length(s) >= min_len; }, [](size_t) { return true; });
}

json step_json(const char* name, const SequenceSet& before, const SequenceSet& after) {
  return {{"step", name},
          {"sequences_removed", static_cast<int64_t>(before.size() - after.size())},
          {"events_removed", before.n_events() - after.n_events()}};
}

int32_t max_item(const SequenceSet& s) {
  int32_t m = -1;
  for (int32_t it : s.items) m = std::max(m, it);
  return m;
}

double seq_max_time(const SequenceSet& s, size_t i) {
  double m = -std::numeric_limits<double>::infinity();
  for (double t : s.seq_times(i)) m = std::max(m, t);
  return m;
}

// Splits `in` by time: sessions whose last event is at or after tmax - seconds go to
// *late, the others to *early.
void time_split(const SequenceSet& in, double seconds, SequenceSet* early, SequenceSet* late,
                double* tmax_out) {
  double tmax = -std::numeric_limits<double>::infinity();
  std::vector<double> last(in.size());
  for (size_t s = 0; s < in.size(); ++s) {
    last[s] = seq_max_time(in, s);
    tmax = std::max(tmax, last[s]);
  }
  const double cut = tmax - seconds;
  *early = filter(
      in, [&](size_t s) { return last[s] < cut; }, [](size_t) { return true; });
  *late = filter(
      in, [&](size_t s) { return last[s] >= cut; }, [](size_t) { return true; });
  *tmax_out = tmax;
}

// Restricts `in` to items with keep[item] and drops sequences shorter than 2.
SequenceSet restrict_items(const SequenceSet& in, const std::vector<char>& keep,
                           int64_t* events_removed) {
  SequenceSet f = filter(
      in, [](size_t) { return true; },
      [&](size_t e) { return keep[static_cast<size_t>(in.items[e])] != 0; });
  *events_removed = in.n_events() - f.n_events();
  return drop_short(f, 2);
}

std::vector<char> present(const SequenceSet& s, int32_t n_items) {
  std::vector<char> p(static_cast<size_t>(n_items), 0);
  for (int32_t it : s.items) p[static_cast<size_t>(it)] = 1;
  return p;
}

// Renumbers items to a new vocabulary (first appearance in `order`), returns old -> new.
std::vector<int32_t> build_catalogue(const SequenceSet& order, const Vocab& old, Vocab* items) {
  std::vector<int32_t> map(static_cast<size_t>(old.size()), -1);
  for (int32_t it : order.items) {
    auto& m = map[static_cast<size_t>(it)];
    if (m < 0) m = items->add(old.token(it));
  }
  return map;
}

void apply_map(SequenceSet* s, const std::vector<int32_t>& map) {
  for (auto& it : s->items) it = map[static_cast<size_t>(it)];
}

std::string seconds_text(double s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g s (%.3g days)", s, s / 86400.0);
  return buf;
}

}  // namespace

nlohmann::json sequence_stats(const SequenceSet& s) {
  json j;
  j["sequences"] = static_cast<int64_t>(s.size());
  j["events"] = s.n_events();
  const int32_t mi = max_item(s);
  int64_t distinct = 0;
  if (mi >= 0) {
    std::vector<char> seen(static_cast<size_t>(mi) + 1, 0);
    for (int32_t it : s.items) {
      if (it >= 0 && !seen[static_cast<size_t>(it)]) seen[static_cast<size_t>(it)] = 1, ++distinct;
    }
  }
  j["items"] = distinct;
  std::vector<int64_t> len(s.size());
  for (size_t i = 0; i < s.size(); ++i) len[i] = s.length(i);
  static const char* kBuckets[] = {"1", "2", "3", "4", "5-9", "10-19", "20-49", "50-99", "100+"};
  std::vector<int64_t> hist(9, 0);
  for (int64_t l : len) {
    int b = l <= 4    ? static_cast<int>(l) - 1
            : l < 10  ? 4
            : l < 20  ? 5
            : l < 50  ? 6
            : l < 100 ? 7
                      : 8;
    if (b >= 0) ++hist[static_cast<size_t>(b)];
  }
  json h = json::object();
  for (size_t b = 0; b < 9; ++b) h[kBuckets[b]] = hist[b];
  json L;
  if (len.empty()) {
    L = {{"min", 0}, {"max", 0}, {"mean", 0.0}, {"median", 0.0}};
  } else {
    std::sort(len.begin(), len.end());
    const size_t n = len.size();
    const double median = n % 2 ? static_cast<double>(len[n / 2])
                                : 0.5 * static_cast<double>(len[n / 2 - 1] + len[n / 2]);
    L = {{"min", len.front()},
         {"max", len.back()},
         {"mean", static_cast<double>(s.n_events()) / static_cast<double>(n)},
         {"median", median}};
  }
  j["length"] = L;
  j["length_histogram"] = h;
  if (s.has_times() && !s.times.empty()) {
    const auto [lo, hi] = std::minmax_element(s.times.begin(), s.times.end());
    j["time_min"] = *lo;
    j["time_max"] = *hi;
  }
  return j;
}

PreparedSplit prepare_session(const EventLog& log, const SessionSplitOptions& opt) {
  const std::string& src = log.source;
  if (!log.seqs.has_times()) {
    throw InputError(src, 0,
                     "the session protocol needs timestamps, and this data has none; give a file "
                     "with a time column or use the sequential protocol");
  }
  if (!(opt.test_seconds > 0)) throw InputError("test_seconds must be > 0");
  if (opt.min_session_length < 1 || opt.min_item_support < 0) {
    throw InputError("min_session_length must be >= 1 and min_item_support >= 0");
  }
  PreparedSplit out;
  out.protocol = "session";
  json steps = json::array();
  const int32_t n_items = log.items.size();
  SequenceSet cur = log.seqs;
  if (opt.remove_repeats) {
    SequenceSet next = collapse_repeats(cur);
    steps.push_back(step_json("remove_consecutive_repeats", cur, next));
    cur = std::move(next);
  }
  const int64_t n_input = static_cast<int64_t>(cur.size());
  int64_t n_short = 0;
  for (size_t s = 0; s < cur.size(); ++s) n_short += cur.length(s) < opt.min_session_length;
  {
    SequenceSet next = drop_short(cur, opt.min_session_length);
    json j = step_json("min_session_length", cur, next);
    j["min_session_length"] = opt.min_session_length;
    steps.push_back(j);
    cur = std::move(next);
  }
  if (cur.size() == 0) {
    throw InputError(src, 0,
                     "no session has at least " + std::to_string(opt.min_session_length) +
                         " events (all " + std::to_string(n_input) + " sessions are shorter" +
                         (opt.min_session_length == 2 ? ": only sessions of length 1" : "") + ")");
  }
  {
    const auto counts = item_counts(cur, n_items);
    int64_t items_removed = 0;
    for (size_t i = 0; i < counts.size(); ++i)
      items_removed += counts[i] > 0 && counts[i] < opt.min_item_support;
    SequenceSet next = filter(
        cur, [](size_t) { return true; },
        [&](size_t e) {
          return counts[static_cast<size_t>(cur.items[e])] >= opt.min_item_support;
        });
    json j = step_json("min_item_support", cur, next);
    j["min_item_support"] = opt.min_item_support;
    j["items_removed"] = items_removed;
    steps.push_back(j);
    cur = std::move(next);
  }
  if (cur.size() == 0) {
    throw InputError(src, 0,
                     "no item has at least " + std::to_string(opt.min_item_support) +
                         " events (min_item_support): nothing is left; lower the item support");
  }
  {
    SequenceSet next = drop_short(cur, opt.min_session_length);
    json j = step_json("min_session_length_again", cur, next);
    steps.push_back(j);
    cur = std::move(next);
  }
  if (cur.size() == 0) {
    throw InputError(src, 0,
                     "after removing items with fewer than " +
                         std::to_string(opt.min_item_support) + " events no session has " +
                         std::to_string(opt.min_session_length) + " events left");
  }

  SequenceSet train, test;
  double tmax;
  time_split(cur, opt.test_seconds, &train, &test, &tmax);
  if (train.size() == 0) {
    throw InputError(src, 0,
                     "all " + std::to_string(cur.size()) + " sessions end within the last " +
                         seconds_text(opt.test_seconds) +
                         " of the log, so nothing is left for training; lower test_seconds");
  }
  if (test.size() == 0) {
    throw InputError(src, 0,
                     "no session ends within the last " + seconds_text(opt.test_seconds) +
                         " of the log: the test set is empty");
  }
  steps.push_back({{"step", "time_split_test"},
                   {"tmax", tmax},
                   {"test_seconds", opt.test_seconds},
                   {"train_sessions", static_cast<int64_t>(train.size())},
                   {"test_sessions", static_cast<int64_t>(test.size())}});

  const auto map = build_catalogue(train, log.items, &out.items);
  apply_map(&train, map);
  {
    // Items unseen in training become -1; drop them, then test sessions shorter than 2.
    SequenceSet t = filter(
        test, [](size_t) { return true; },
        [&](size_t e) { return map[static_cast<size_t>(test.items[e])] >= 0; });
    const int64_t unseen = test.n_events() - t.n_events();
    apply_map(&t, map);
    SequenceSet t2 = drop_short(t, 2);
    steps.push_back({{"step", "test_unseen_items"},
                     {"events_removed", unseen},
                     {"sequences_removed", static_cast<int64_t>(test.size() - t2.size())}});
    test = std::move(t2);
  }
  if (test.size() == 0) {
    throw InputError(src, 0,
                     "the test set is empty after removing items unseen in training and test "
                     "sessions shorter than 2");
  }

  // Validation: the same split inside train_full.
  SequenceSet train_tr, valid;
  if (opt.valid_seconds > 0) {
    double tmax_tr;
    time_split(train, opt.valid_seconds, &train_tr, &valid, &tmax_tr);
    const auto keep = present(train_tr, out.items.size());
    int64_t removed = 0;
    const size_t n_valid = valid.size();
    valid = restrict_items(valid, keep, &removed);
    steps.push_back({{"step", "time_split_valid"},
                     {"tmax", tmax_tr},
                     {"valid_seconds", opt.valid_seconds},
                     {"train_tr_sessions", static_cast<int64_t>(train_tr.size())},
                     {"valid_unseen_events_removed", removed},
                     {"valid_sessions_removed", static_cast<int64_t>(n_valid - valid.size())}});
  } else {
    train_tr = train;
  }

  out.train_full = std::move(train);
  out.test = std::move(test);
  out.train_tr = std::move(train_tr);
  out.valid = std::move(valid);
  json warnings = json::array();
  if (out.valid.size() == 0) warnings.push_back("the validation set is empty");
  if (out.train_tr.size() == 0) warnings.push_back("train_tr is empty");
  out.stats = {{"protocol", "session"},
               {"source", src},
               {"options",
                {{"min_session_length", opt.min_session_length},
                 {"min_item_support", opt.min_item_support},
                 {"test_seconds", opt.test_seconds},
                 {"valid_seconds", opt.valid_seconds},
                 {"remove_repeats", opt.remove_repeats}}},
               {"input", sequence_stats(log.seqs)},
               {"steps", steps},
               {"n_items", out.items.size()},
               {"parts",
                {{"train_full", sequence_stats(out.train_full)},
                 {"test", sequence_stats(out.test)},
                 {"train_tr", sequence_stats(out.train_tr)},
                 {"valid", sequence_stats(out.valid)}}},
               {"warnings", warnings}};
  return out;
}

PreparedSplit prepare_sequential(const EventLog& log, const SequentialSplitOptions& opt) {
  const std::string& src = log.source;
  if (opt.user_core < 0 || opt.item_core < 0)
    throw InputError("user_core and item_core must be >= 0");
  PreparedSplit out;
  out.protocol = "sequential";
  json steps = json::array();
  const int32_t n_items = log.items.size();
  SequenceSet cur = log.seqs;
  if (opt.remove_repeats) {
    SequenceSet next = collapse_repeats(cur);
    steps.push_back(step_json("remove_consecutive_repeats", cur, next));
    cur = std::move(next);
  }
  // Iterative k-core: drop items with fewer than item_core events and users with fewer than
  // user_core events until neither removes anything.
  {
    const SequenceSet before = cur;
    int iterations = 0;
    while (true) {
      ++iterations;
      const auto counts = item_counts(cur, n_items);
      bool change = false;
      for (int64_t c : counts) change = change || (c > 0 && c < opt.item_core);
      for (size_t s = 0; s < cur.size() && !change; ++s) change = cur.length(s) < opt.user_core;
      if (!change) break;
      SequenceSet next = filter(
          cur, [&](size_t s) { return cur.length(s) >= opt.user_core; },
          [&](size_t e) { return counts[static_cast<size_t>(cur.items[e])] >= opt.item_core; });
      cur = std::move(next);
    }
    const auto c0 = present(before, n_items), c1 = present(cur, n_items);
    int64_t items_removed = 0;
    for (size_t i = 0; i < c0.size(); ++i) items_removed += c0[i] && !c1[i];
    json j = step_json("k_core", before, cur);
    j["user_core"] = opt.user_core;
    j["item_core"] = opt.item_core;
    j["iterations"] = iterations;
    j["items_removed"] = items_removed;
    steps.push_back(j);
  }
  if (cur.size() == 0) {
    throw InputError(src, 0,
                     "nothing is left after the k-core filter (users need " +
                         std::to_string(opt.user_core) + " events, items " +
                         std::to_string(opt.item_core) + "); lower user_core/item_core");
  }
  const auto map = build_catalogue(cur, log.items, &out.items);
  apply_map(&cur, map);
  int64_t short_users = 0;
  for (size_t s = 0; s < cur.size(); ++s) {
    const auto seq = cur.seq(s);
    const auto t = cur.seq_times(s);
    const size_t n = seq.size();
    auto head = [&](size_t k) { return std::span<const int32_t>(seq.data(), k); };
    auto thead = [&](size_t k) {
      return t.empty() ? std::span<const double>() : std::span<const double>(t.data(), k);
    };
    if (n < 3) {  // too short to hold out anything: training only
      ++short_users;
      out.train_full.push(cur.ids[s], head(n), thead(n));
      out.train_tr.push(cur.ids[s], head(n), thead(n));
      continue;
    }
    out.test.push(cur.ids[s], head(n), thead(n));
    out.train_full.push(cur.ids[s], head(n - 1), thead(n - 1));
    out.valid.push(cur.ids[s], head(n - 1), thead(n - 1));
    out.train_tr.push(cur.ids[s], head(n - 2), thead(n - 2));
  }
  steps.push_back({{"step", "leave_one_out"},
                   {"users_with_fewer_than_3_events_train_only", short_users},
                   {"test_users", static_cast<int64_t>(out.test.size())}});
  if (out.test.size() == 0) {
    throw InputError(src, 0, "no user has 3 or more events: nothing to hold out for testing");
  }
  out.stats = {{"protocol", "sequential"},
               {"source", src},
               {"options",
                {{"user_core", opt.user_core},
                 {"item_core", opt.item_core},
                 {"remove_repeats", opt.remove_repeats}}},
               {"input", sequence_stats(log.seqs)},
               {"steps", steps},
               {"n_items", out.items.size()},
               {"parts",
                {{"train_full", sequence_stats(out.train_full)},
                 {"test", sequence_stats(out.test)},
                 {"train_tr", sequence_stats(out.train_tr)},
                 {"valid", sequence_stats(out.valid)}}},
               {"warnings", json::array()}};
  return out;
}

namespace {

// Training part without cold events; sequences left shorter than 2 are dropped.
SequenceSet without_cold(const SequenceSet& in, const std::vector<char>& cold, int64_t* events,
                         int64_t* seqs) {
  SequenceSet f = filter(
      in, [](size_t) { return true; },
      [&](size_t e) { return cold[static_cast<size_t>(in.items[e])] == 0; });
  SequenceSet out = drop_short(f, 2);
  *events = in.n_events() - f.n_events();
  *seqs = static_cast<int64_t>(in.size() - out.size());
  return out;
}

// Sequential test/validation part: the history (all but the last event) loses its cold
// events, the target (the last event) stays; sequences left shorter than 2 are dropped.
SequenceSet history_without_cold(const SequenceSet& in, const std::vector<char>& cold,
                                 int64_t* events, int64_t* seqs) {
  SequenceSet out;
  std::vector<int32_t> items;
  std::vector<double> times;
  int64_t removed = 0, dropped = 0;
  for (size_t s = 0; s < in.size(); ++s) {
    const auto seq = in.seq(s);
    const auto t = in.seq_times(s);
    items.clear();
    times.clear();
    for (size_t i = 0; i < seq.size(); ++i) {
      if (i + 1 < seq.size() && cold[static_cast<size_t>(seq[i])] != 0) {
        ++removed;
        continue;
      }
      items.push_back(seq[i]);
      if (!t.empty()) times.push_back(t[i]);
    }
    if (items.size() < 2) {
      ++dropped;
      continue;
    }
    out.push(in.ids[s], items, times);
  }
  *events = removed;
  *seqs = dropped;
  return out;
}

// Targets of a part that are cold: session, every event after the first; sequential, the
// last event of each sequence of 2 or more.
int64_t cold_targets(const SequenceSet& part, const std::vector<char>& cold, bool session) {
  int64_t n = 0;
  for (size_t s = 0; s < part.size(); ++s) {
    const auto seq = part.seq(s);
    if (seq.size() < 2) continue;
    if (session) {
      for (size_t i = 1; i < seq.size(); ++i) n += cold[static_cast<size_t>(seq[i])] != 0;
    } else {
      n += cold[static_cast<size_t>(seq.back())] != 0;
    }
  }
  return n;
}

}  // namespace

void apply_cold_items(PreparedSplit* split, double fraction, uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0))
    throw InputError("cold_items: expected a fraction in [0, 1), got " + std::to_string(fraction));
  if (fraction == 0.0) return;
  const int32_t n_items = split->items.size();
  const auto n_cold = static_cast<int32_t>(std::llround(fraction * n_items));
  if (n_cold < 1)
    throw InputError("cold_items " + std::to_string(fraction) + " of the " +
                     std::to_string(n_items) +
                     " items of the catalogue rounds to no item; raise the fraction");
  if (n_cold >= n_items)
    throw InputError("cold_items " + std::to_string(fraction) + " of the " +
                     std::to_string(n_items) + " items leaves no warm item; lower the fraction");
  // Partial Fisher-Yates over the catalogue indices: the same items for the same catalogue
  // and seed, whatever else changes.
  std::vector<int32_t> perm(static_cast<size_t>(n_items));
  for (int32_t i = 0; i < n_items; ++i) perm[static_cast<size_t>(i)] = i;
  Rng rng(seed, 0xC01D, 0);
  for (int32_t i = 0; i < n_cold; ++i) {
    const auto j = i + static_cast<int32_t>(rng.below(static_cast<uint64_t>(n_items - i)));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  std::vector<int32_t> cold_list(perm.begin(), perm.begin() + n_cold);
  std::sort(cold_list.begin(), cold_list.end());
  std::vector<char> cold(static_cast<size_t>(n_items), 0);
  for (int32_t it : cold_list) cold[static_cast<size_t>(it)] = 1;

  const bool session = split->protocol == "session";
  json j = {{"step", "cold_items"},
            {"fraction", fraction},
            {"seed", seed},
            {"count", n_cold},
            {"catalogue", n_items}};
  int64_t ev = 0, sq = 0;
  split->train_full = without_cold(split->train_full, cold, &ev, &sq);
  j["train_full_events_removed"] = ev;
  j["train_full_sequences_dropped"] = sq;
  split->train_tr = without_cold(split->train_tr, cold, &ev, &sq);
  j["train_tr_events_removed"] = ev;
  j["train_tr_sequences_dropped"] = sq;
  if (!session) {
    split->test = history_without_cold(split->test, cold, &ev, &sq);
    j["test_history_events_removed"] = ev;
    j["test_sequences_dropped"] = sq;
    split->valid = history_without_cold(split->valid, cold, &ev, &sq);
    j["valid_history_events_removed"] = ev;
    j["valid_sequences_dropped"] = sq;
  }
  j["test_cold_targets"] = cold_targets(split->test, cold, session);
  j["test_targets"] = split_predictions(split->test, split->protocol);
  j["valid_cold_targets"] = cold_targets(split->valid, cold, session);
  j["valid_targets"] = split_predictions(split->valid, split->protocol);
  if (split->train_full.size() == 0)
    throw InputError("cold_items " + std::to_string(fraction) +
                     ": no training sequence of 2 or more events is left once the cold items' "
                     "events are removed; lower the fraction");
  split->cold_items = std::move(cold_list);
  json& st = split->stats;
  st["steps"].push_back(j);
  j.erase("step");
  j["file"] = "cold_items.tsv";
  st["cold_items"] = j;
  st["parts"] = {{"train_full", sequence_stats(split->train_full)},
                 {"test", sequence_stats(split->test)},
                 {"train_tr", sequence_stats(split->train_tr)},
                 {"valid", sequence_stats(split->valid)}};
  if (split->train_tr.size() == 0) st["warnings"].push_back("train_tr is empty");
}

namespace {

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, share < 0.01 ? "%.2g%%" : "%.1f%%", 100.0 * share);
  return buf;
}

std::string days_text(double seconds) {
  char buf[48];
  const double d = seconds / 86400.0;
  std::snprintf(buf, sizeof buf, "%g day%s", d, d == 1.0 ? "" : "s");
  return buf;
}

/// "1 session", "2 sessions", "1,234 predictions".
std::string count_of(int64_t n, const std::string& noun) {
  return grouped_count(n) + " " + noun + (n == 1 ? "" : "s");
}

template <class T>
double median_of(std::vector<T> v) {
  if (v.empty()) return 0.0;
  const size_t n = v.size();
  std::sort(v.begin(), v.end());
  return n % 2 ? static_cast<double>(v[n / 2])
               : 0.5 * (static_cast<double>(v[n / 2 - 1]) + static_cast<double>(v[n / 2]));
}

}  // namespace

ProtocolChoice choose_protocol(const SequenceSet& seqs) {
  ProtocolChoice c;
  const int64_t n_seqs = static_cast<int64_t>(seqs.size());
  if (!seqs.has_times()) {
    c.protocol = "sequential";
    c.reason = "the data have no timestamps, which the session protocol needs";
    c.facts = {{"timestamps", false}, {"sequences", n_seqs}};
    return c;
  }
  int64_t n = 0, long_span = 0;
  std::vector<int64_t> lens;
  std::vector<double> spans;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto t = seqs.seq_times(s);
    if (t.size() < 2) continue;
    const auto [lo, hi] = std::minmax_element(t.begin(), t.end());
    const double span = *hi - *lo;
    ++n;
    long_span += span > kSessionSpanSeconds;
    lens.push_back(static_cast<int64_t>(t.size()));
    spans.push_back(span);
  }
  const double share = n > 0 ? static_cast<double>(long_span) / static_cast<double>(n) : 0.0;
  c.user_histories = n > 0 && share >= kUserHistoryShare;
  c.protocol = c.user_histories ? "sequential" : "session";
  c.facts = {{"timestamps", true},
             {"sequences", n_seqs},
             {"sequences_with_2_or_more_events", n},
             {"spanning_more_than_a_day", long_span},
             {"share_spanning_more_than_a_day", share},
             {"user_history_share_threshold", kUserHistoryShare},
             {"median_length", median_of(lens)},
             {"median_span_days", median_of(spans) / 86400.0}};
  c.reason =
      grouped_count(long_span) + " of the " + grouped_count(n) +
      " sequences with 2 or more events (" + percent(share) +
      ") span more than a day, so they look like " +
      (c.user_histories
           ? "user histories, not sessions (the rule: " + percent(kUserHistoryShare) + " or more)"
           : std::string("sessions (user histories: ") + percent(kUserHistoryShare) + " or more)");
  return c;
}

int64_t split_predictions(const SequenceSet& part, const std::string& protocol) {
  int64_t n = 0;
  for (size_t s = 0; s < part.size(); ++s) {
    const int64_t len = part.length(s);
    if (len < 2) continue;
    n += protocol == "session" ? len - 1 : 1;
  }
  return n;
}

PreparedSplit prepare_split(const EventLog& log, const PrepareOptions& opt, const ReadInfo* read) {
  if (opt.protocol != "auto" && opt.protocol != "session" && opt.protocol != "sequential")
    throw InputError("protocol: expected auto, session or sequential, got '" + opt.protocol + "'");
  json detected = json::array();
  if (read != nullptr && !read->time_note.empty())
    detected.push_back("time unit: " + read->time_note);
  const ProtocolChoice choice = choose_protocol(log.seqs);
  const std::string protocol = opt.protocol == "auto" ? choice.protocol : opt.protocol;
  const bool session = protocol == "session";
  PreparedSplit split =
      session ? prepare_session(log, opt.session) : prepare_sequential(log, opt.sequential);
  apply_cold_items(&split, opt.cold_items, opt.seed);

  // What the test set holds, in the words of its protocol.
  const int64_t test_pred = split_predictions(split.test, protocol);
  const int64_t valid_pred = split_predictions(split.valid, protocol);
  const int64_t total = session
                            ? split.train_full.n_events() + split.test.n_events()
                            : split.train_full.n_events() + static_cast<int64_t>(split.test.size());
  const double share =
      total > 0 ? static_cast<double>(split.test.n_events()) / static_cast<double>(total) : 0.0;
  const int64_t n_test = static_cast<int64_t>(split.test.size());
  const std::string holds =
      session ? "the test set holds " + count_of(n_test, "session") + " (" +
                    (n_test == 1 ? "the one that ends" : "those that end") + " in the last " +
                    days_text(opt.session.test_seconds) +
                    " of the log): " + count_of(split.test.n_events(), "event") + ", " +
                    count_of(test_pred, "prediction")
              : "the test set holds the last item of each of the " + count_of(n_test, "sequence") +
                    " with 3 or more events: " + count_of(test_pred, "prediction");
  if (opt.protocol == "auto") {
    std::string other;
    if (!log.seqs.has_times())
      other = "";
    else if (session)
      other = " --protocol sequential gives leave-one-out per sequence (its last item) instead.";
    else
      other =
          " --protocol session gives GRU4Rec's time split (sessions ending in the last "
          "--test-days) instead.";
    detected.push_back("protocol: " + protocol + " (chosen by --protocol auto): " + choice.reason +
                       "; " + holds + "." + other);
  } else if (session && choice.user_histories) {
    detected.push_back(
        "protocol: session (as asked), but " + choice.reason + "; " + holds +
        ". --protocol sequential (which the default --protocol auto picks here) tests the "
        "last item of every user instead.");
  }

  const bool degenerate = test_pred < kMinTestPredictions || share < kMinTestEventShare;
  if (degenerate) {
    const std::string what = "degenerate test set: " + holds + ", " + percent(share) +
                             " of the split's " + grouped_count(total) +
                             " events (seqrec asks for at least " +
                             std::to_string(kMinTestPredictions) + " predictions and " +
                             percent(kMinTestEventShare) + " of the events)";
    const std::string fix =
        session ? "raise --test-days (now " + days_text(opt.session.test_seconds) +
                      "), check that the times are seconds (--time-unit), or use --protocol "
                      "sequential"
                : "lower --user-core / --item-core or use more data";
    if (!opt.force)
      throw InputError(log.source, 0,
                       what + "; metrics on it would mean nothing. To change it: " + fix +
                           "; --force writes it anyway");
    detected.push_back("forced: " + what + "; written because of --force (to change it: " + fix +
                       ")");
  }

  json& st = split.stats;
  st["detected"] = detected;
  st["protocol_choice"] = {{"requested", opt.protocol},
                           {"used", protocol},
                           {"auto_would_choose", choice.protocol},
                           {"reason", choice.reason},
                           {"facts", choice.facts}};
  if (read != nullptr && !read->time_unit.empty()) st["time_unit_detected"] = read->time_unit;
  st["test_predictions"] = test_pred;
  st["valid_predictions"] = valid_pred;
  st["test_event_share"] = share;
  st["forced"] = degenerate;
  return split;
}

const std::vector<std::string>& split_file_names() {
  static const std::vector<std::string> names = {"items.tsv",     "train_full.tsv", "test.tsv",
                                                 "train_tr.tsv",  "valid.tsv",      "split.json",
                                                 "cold_items.tsv"};
  return names;
}

void check_split_folder(const std::string& dir, bool force, const std::string& input_path) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (ec || !fs::exists(status)) return;  // created by write_split
  // The rule of every writer (io::check_output): no split file may be the input, even with
  // --force. (Files of other kinds need no check of their own: without --force a non-empty
  // folder is refused whatever it holds.)
  if (fs::is_directory(status)) {
    for (const std::string& n : split_file_names())
      io::check_output({(fs::path(dir) / n).string(), "-o"}, {{input_path, "the input log"}},
                       n == "split.json" ? io::FileKind::Json : io::FileKind::Text, true);
  }
  if (!fs::is_directory(status))
    throw InputError("-o '" + dir + "' exists and is not a folder; give a folder for the split");
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  if (ec) throw IoError("cannot list folder '" + dir + "': " + ec.message());
  if (names.empty() || force) return;
  std::sort(names.begin(), names.end());
  std::string list;
  for (size_t i = 0; i < names.size() && i < 3; ++i) list += (i ? ", " : "") + names[i];
  if (names.size() > 3) list += " and " + std::to_string(names.size() - 3) + " more";
  throw InputError("-o '" + dir + "' is not empty (it holds " + list +
                   "): a split goes into a new or empty folder, so that no file of another "
                   "split is mixed into it. Choose another folder, empty this one, or pass "
                   "--force to write the split's files over it (other files stay)");
}

void write_split(const std::string& dir, const PreparedSplit& split,
                 const std::string& input_path) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError("cannot create folder '" + dir + "': " + ec.message());
  // The rule of every writer (io::check_output): never over the input.
  for (const std::string& n : split_file_names())
    io::check_output({(fs::path(dir) / n).string(), "-o"}, {{input_path, "the input log"}},
                     n == "split.json" ? io::FileKind::Json : io::FileKind::Text, true);
  {
    AtomicWriter w((fs::path(dir) / "items.tsv").string());
    w.write("ItemId\n");
    for (const auto& t : split.items.tokens()) {
      w.write(t);
      w.put('\n');
    }
    w.commit();
  }
  write_events((fs::path(dir) / "train_full.tsv").string(), split.train_full, split.items);
  write_events((fs::path(dir) / "test.tsv").string(), split.test, split.items);
  write_events((fs::path(dir) / "train_tr.tsv").string(), split.train_tr, split.items);
  write_events((fs::path(dir) / "valid.tsv").string(), split.valid, split.items);
  if (!split.cold_items.empty()) {
    AtomicWriter w((fs::path(dir) / "cold_items.tsv").string());
    w.write("ItemId\n");
    for (int32_t it : split.cold_items) {
      w.write(split.items.token(it));
      w.put('\n');
    }
    w.commit();
  }
  json j = {{"protocol", split.protocol},
            {"input", input_path},
            {"n_items", split.items.size()},
            {"files",
             {{"items", "items.tsv"},
              {"train_full", "train_full.tsv"},
              {"test", "test.tsv"},
              {"train_tr", "train_tr.tsv"},
              {"valid", "valid.tsv"}}},
            {"stats", split.stats}};
  if (!split.cold_items.empty()) {
    j["files"]["cold_items"] = "cold_items.tsv";
    j["cold_items"] = split.stats["cold_items"];
  }
  AtomicWriter w((fs::path(dir) / "split.json").string());
  w.write(j.dump(2));
  w.put('\n');
  w.commit();
}

}  // namespace seqrec
