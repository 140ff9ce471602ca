// The cold-start protocol of prepare (--cold-items, apply_cold_items): no event of a cold
// item in the training parts, cold items kept as targets, the same items for the same seed,
// and the split folder's cold_items.tsv read back by load_test_data.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "unit/test_data_util.hpp"

namespace seqrec {
namespace {

class DataCold : public test::DataTmp {
 protected:
  /// 30 users (sequential, no times) over 20 items: user u's items are (u + 3k) % 20.
  EventLog users() {
    std::string body;
    for (int u = 0; u < 30; ++u) {
      body += "u" + std::to_string(u);
      for (int k = 0; k < 6 + u % 4; ++k) body += " i" + std::to_string((u + 3 * k) % 20);
      body += "\n";
    }
    ReadOptions o;
    o.format = Format::Sequences;
    o.sequence_ids = 1;
    return read_events(write("users.txt", body), o);
  }
  /// 40 sessions with times over 12 items; the last 10 end in the last day.
  EventLog sessions() {
    std::string body = "SessionId\tItemId\tTime\n";
    for (int s = 0; s < 40; ++s) {
      const double t0 = s * 20000.0;
      for (int k = 0; k < 3 + s % 3; ++k)
        body += "s" + std::to_string(s) + "\ti" + std::to_string((s + 5 * k) % 12) + "\t" +
                std::to_string(t0 + 10.0 * k) + "\n";
    }
    return read_events(write("sessions.tsv", body));
  }
  static PrepareOptions sequential(double cold, uint64_t seed) {
    PrepareOptions o;
    o.protocol = "sequential";
    o.sequential.user_core = 0;
    o.sequential.item_core = 0;
    o.cold_items = cold;
    o.seed = seed;
    o.force = true;
    return o;
  }
  static std::set<int32_t> set_of(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }
  static bool holds_any(const SequenceSet& s, const std::set<int32_t>& cold) {
    return std::any_of(s.items.begin(), s.items.end(), [&](int32_t i) { return cold.count(i); });
  }
};

TEST_F(DataCold, SequentialTrainingHasNoColdEventAndTargetsStay) {
  const EventLog log = users();
  const PreparedSplit base = prepare_split(log, sequential(0, 1));
  const PreparedSplit s = prepare_split(log, sequential(0.25, 1));
  EXPECT_TRUE(base.cold_items.empty());
  ASSERT_EQ(s.cold_items.size(), 5u);  // round(0.25 x 20)
  EXPECT_TRUE(std::is_sorted(s.cold_items.begin(), s.cold_items.end()));
  const std::set<int32_t> cold = set_of(s.cold_items);
  // The catalogue keeps the cold items; training does not see them.
  EXPECT_EQ(s.items.tokens(), base.items.tokens());
  EXPECT_FALSE(holds_any(s.train_full, cold));
  EXPECT_FALSE(holds_any(s.train_tr, cold));
  // Test: every history is cold-free and the targets are those of the split without cold
  // items; some of them are cold.
  int64_t cold_targets = 0;
  for (size_t i = 0; i < s.test.size(); ++i) {
    const auto seq = s.test.seq(i);
    for (size_t k = 0; k + 1 < seq.size(); ++k) EXPECT_EQ(cold.count(seq[k]), 0u);
    const auto it = std::find(base.test.ids.begin(), base.test.ids.end(), s.test.ids[i]);
    ASSERT_NE(it, base.test.ids.end());
    EXPECT_EQ(seq.back(), base.test.seq(static_cast<size_t>(it - base.test.ids.begin())).back());
    cold_targets += cold.count(seq.back()) > 0;
  }
  EXPECT_GT(cold_targets, 0);
  for (size_t i = 0; i < s.valid.size(); ++i) {
    const auto seq = s.valid.seq(i);
    for (size_t k = 0; k + 1 < seq.size(); ++k) EXPECT_EQ(cold.count(seq[k]), 0u);
  }
  // The test history of a user is exactly its training sequence.
  for (size_t i = 0; i < s.train_full.size(); ++i) {
    const auto it = std::find(s.test.ids.begin(), s.test.ids.end(), s.train_full.ids[i]);
    if (it == s.test.ids.end()) continue;
    const auto t = s.test.seq(static_cast<size_t>(it - s.test.ids.begin()));
    const auto tr = s.train_full.seq(i);
    EXPECT_TRUE(std::equal(tr.begin(), tr.end(), t.begin(), t.end() - 1));
  }
  // Recorded and counted.
  const auto& c = s.stats["cold_items"];
  EXPECT_EQ(c["count"], 5);
  EXPECT_EQ(c["seed"], 1);
  EXPECT_EQ(c["test_cold_targets"], cold_targets);
  EXPECT_GT(c["train_full_events_removed"].get<int64_t>(), 0);
  EXPECT_EQ(s.stats["steps"].back()["step"], "cold_items");
}

TEST_F(DataCold, SameSeedSameItemsOtherSeedOtherItems) {
  const EventLog log = users();
  const PreparedSplit a = prepare_split(log, sequential(0.25, 7));
  const PreparedSplit b = prepare_split(log, sequential(0.25, 7));
  const PreparedSplit c = prepare_split(log, sequential(0.25, 8));
  EXPECT_EQ(a.cold_items, b.cold_items);
  EXPECT_EQ(a.train_full.items, b.train_full.items);
  EXPECT_NE(a.cold_items, c.cold_items);
}

TEST_F(DataCold, SessionProtocolKeepsTestSessionsWhole) {
  const EventLog log = sessions();
  PrepareOptions o;
  o.protocol = "session";
  o.session.min_item_support = 1;
  o.session.test_seconds = 86400;
  o.session.valid_seconds = 86400;
  o.force = true;
  const PreparedSplit base = prepare_split(log, o);
  o.cold_items = 0.25;
  const PreparedSplit s = prepare_split(log, o);
  ASSERT_EQ(s.cold_items.size(), 3u);  // round(0.25 x 12)
  const std::set<int32_t> cold = set_of(s.cold_items);
  EXPECT_FALSE(holds_any(s.train_full, cold));
  EXPECT_FALSE(holds_any(s.train_tr, cold));
  // Test sessions are those of the split without cold items, cold events included.
  EXPECT_EQ(s.test.ids, base.test.ids);
  EXPECT_EQ(s.test.items, base.test.items);
  EXPECT_TRUE(holds_any(s.test, cold));
  // Training sessions left shorter than 2 are dropped.
  for (size_t i = 0; i < s.train_full.size(); ++i) EXPECT_GE(s.train_full.length(i), 2);
}

TEST_F(DataCold, BadFractionsAreClearErrors) {
  const EventLog log = users();
  EXPECT_NE(
      test::input_error([&] { prepare_split(log, sequential(0.01, 1)); }).find("rounds to no item"),
      std::string::npos);
  EXPECT_NE(test::input_error([&] { prepare_split(log, sequential(1.0, 1)); }).find("[0, 1)"),
            std::string::npos);
}

TEST_F(DataCold, SplitFolderHoldsTheColdListAndTestDataReadsIt) {
  const EventLog log = users();
  const PreparedSplit s = prepare_split(log, sequential(0.25, 3));
  const std::string dir = (dir_ / "split").string();
  write_split(dir, s, "users.txt");
  ASSERT_TRUE(std::filesystem::exists(dir_ / "split" / "cold_items.tsv"));
  const TrainData td = load_train_data(dir, SplitPart::Test, ReadOptions{});
  const TestData t = load_test_data(dir, SplitPart::Test, td.items, ReadOptions{});
  std::vector<std::string> want, got;
  for (int32_t i : s.cold_items) want.push_back(s.items.token(i));
  for (int32_t i : t.cold_items) got.push_back(td.items.token(i));
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(td.split["cold_items"]["count"], 5);
}

}  // namespace
}  // namespace seqrec
