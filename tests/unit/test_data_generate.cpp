// generate_sessions: determinism and rough statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "unit/test_data_util.hpp"

namespace seqrec {
namespace {

class DataGenerate : public test::DataTmp {
 protected:
  std::string slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
};

TEST_F(DataGenerate, SameSeedSameBytes) {
  GenerateOptions o;
  o.n_events = 20000;
  o.n_items = 500;
  const EventLog a = generate_sessions(o), b = generate_sessions(o);
  write_events(path("a.tsv"), a.seqs, a.items);
  write_events(path("b.tsv"), b.seqs, b.items);
  EXPECT_EQ(slurp(path("a.tsv")), slurp(path("b.tsv")));
  o.seed = 43;
  const EventLog c = generate_sessions(o);
  EXPECT_NE(c.seqs.items, a.seqs.items);
  // Reading the written file gives back the same log.
  const EventLog r = read_events(path("a.tsv"));
  EXPECT_EQ(r.seqs.ids, a.seqs.ids);
  EXPECT_EQ(r.seqs.items, a.seqs.items);
  EXPECT_EQ(r.seqs.times, a.seqs.times);
  EXPECT_EQ(r.items.tokens(), a.items.tokens());
}

TEST_F(DataGenerate, RoughStatistics) {
  GenerateOptions o;
  o.n_events = 200000;
  o.n_items = 2000;
  o.mean_length = 4.0;
  o.days = 10;
  const EventLog log = generate_sessions(o);
  const SequenceSet& s = log.seqs;
  EXPECT_EQ(s.n_events(), o.n_events);
  EXPECT_LE(log.items.size(), o.n_items);
  EXPECT_GT(log.items.size(), o.n_items / 2);
  const double mean = static_cast<double>(s.n_events()) / static_cast<double>(s.size());
  EXPECT_NEAR(mean, o.mean_length, 0.15 * o.mean_length);
  int64_t ones = 0, longest = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    ones += s.length(i) == 1;
    longest = std::max(longest, s.length(i));
    const auto t = s.seq_times(i);
    EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
  }
  EXPECT_GT(ones, static_cast<int64_t>(s.size()) / 20);  // filters have something to drop
  EXPECT_GT(longest, 20);                                // a long tail
  // Times: from 2026-01-01 over about `days`, session starts in id order.
  const auto [lo, hi] = std::minmax_element(s.times.begin(), s.times.end());
  EXPECT_GE(*lo, 1767225600.0);
  EXPECT_LT(*hi, 1767225600.0 + 11 * 86400.0);
  for (size_t i = 1; i < s.size(); ++i) EXPECT_LE(s.seq_times(i - 1)[0], s.seq_times(i)[0]);
  // Zipf popularity: the top item is far more frequent than the median item.
  auto counts = item_counts(s, log.items.size());
  std::sort(counts.rbegin(), counts.rend());
  EXPECT_GT(counts[0], 20 * counts[counts.size() / 2]);
  // Transitions: the most frequent successor of a popular item takes a large share.
  std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
  std::map<int32_t, int64_t> from;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto q = s.seq(i);
    for (size_t k = 1; k < q.size(); ++k) ++pairs[{q[k - 1], q[k]}], ++from[q[k - 1]];
  }
  int32_t busiest = std::max_element(from.begin(), from.end(), [](auto& a, auto& b) {
                      return a.second < b.second;
                    })->first;
  int64_t best = 0;
  for (auto& [p, c] : pairs) {
    if (p.first == busiest) best = std::max(best, c);
  }
  EXPECT_GT(static_cast<double>(best) / static_cast<double>(from[busiest]), 0.1);
  // Item tokens are not 0..n-1.
  EXPECT_EQ(log.items.find("0"), -1);
}

TEST_F(DataGenerate, UsableBySessionPreprocessing) {
  GenerateOptions o;
  o.n_events = 50000;
  o.n_items = 1000;
  o.days = 20;
  const PreparedSplit s = prepare_session(generate_sessions(o), {});
  EXPECT_GT(s.test.size(), 0u);
  EXPECT_GT(s.valid.size(), 0u);
  EXPECT_GT(s.stats["steps"][0]["sequences_removed"].get<int64_t>(), 0);
}

TEST_F(DataGenerate, RejectsBadOptions) {
  GenerateOptions o;
  o.n_events = 0;
  EXPECT_THROW(generate_sessions(o), InputError);
  o = {};
  o.n_items = 1;
  EXPECT_THROW(generate_sessions(o), InputError);
  o = {};
  o.follow_prob = 1.5;
  EXPECT_THROW(generate_sessions(o), InputError);
  o = {};
  o.mean_length = 1.0;
  o.n_events = 100;
  const EventLog l = generate_sessions(o);
  EXPECT_EQ(l.seqs.size(), 100u);
}

}  // namespace
}  // namespace seqrec
