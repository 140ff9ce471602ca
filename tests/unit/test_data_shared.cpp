// Integration checks on the real data sets in ../shared/data (skipped when absent).
#include <gtest/gtest.h>

#include <filesystem>

#include "seqrec/data.hpp"

namespace seqrec {
namespace {

std::string shared(const std::string& rel) {
  return std::string(SEQREC_SHARED_DATA_DIR) + "/" + rel;
}

#define SKIP_IF_MISSING(rel)                 \
  if (!std::filesystem::exists(shared(rel))) \
  GTEST_SKIP() << "shared data not found: " << shared(rel) << " (../shared/data is absent)"

TEST(DataShared, Rsc15AlreadySplitCounts) {
  SKIP_IF_MISSING("rsc15-100k/yoochoose-clicks-100k_train_full.txt");
  const EventLog train = read_events(shared("rsc15-100k/yoochoose-clicks-100k_train_full.txt"));
  EXPECT_EQ(train.seqs.size(), 17794u);
  EXPECT_EQ(train.items.size(), 2933);
  EXPECT_EQ(train.seqs.n_events(), 70278);
  EXPECT_TRUE(train.seqs.has_times());
  const EventLog test = read_events(shared("rsc15-100k/yoochoose-clicks-100k_test.txt"));
  EXPECT_EQ(test.seqs.size(), 3416u);
  EXPECT_EQ(test.seqs.n_events(), 13568);
  int64_t dropped = -1;
  const SequenceSet t = remap(test, train.items, &dropped);
  EXPECT_EQ(dropped, 0);  // test items are all train items
  EXPECT_EQ(t.n_events(), 13568);
}

TEST(DataShared, Yoochoose164) {
  SKIP_IF_MISSING("yoochoose1_64/test.tsv");
  const EventLog test = read_events(shared("yoochoose1_64/test.tsv"));
  EXPECT_EQ(test.seqs.n_events() - static_cast<int64_t>(test.seqs.size()), 55400);
  const EventLog train = read_events(shared("yoochoose1_64/train_sessions.txt"));
  EXPECT_EQ(train.seqs.size(), 116167u);
  EXPECT_EQ(train.seqs.ids.front(), "1");  // no id column: line numbers
}

TEST(DataShared, MovieLens1mSequentialNothingRemoved) {
  SKIP_IF_MISSING("ml-1m/ml-1m.txt");
  ReadInfo info;
  const EventLog log = read_events(shared("ml-1m/ml-1m.txt"), {}, &info);
  EXPECT_EQ(info.format, Format::Pairs);
  const PreparedSplit s = prepare_sequential(log, {});
  EXPECT_EQ(s.test.size(), 6040u);
  EXPECT_EQ(s.items.size(), 3416);
  EXPECT_EQ(s.test.n_events(), 999611);
  EXPECT_EQ(s.stats["steps"][0]["events_removed"], 0);
  EXPECT_EQ(s.train_full.n_events(), 999611 - 6040);
  EXPECT_EQ(s.train_tr.n_events(), 999611 - 2 * 6040);
}

TEST(DataShared, BeautySequentialNothingRemoved) {
  SKIP_IF_MISSING("beauty/Beauty.txt");
  ReadInfo info;
  const EventLog log = read_events(shared("beauty/Beauty.txt"), {}, &info);
  EXPECT_EQ(info.format, Format::Sequences);
  const PreparedSplit s = prepare_sequential(log, {});
  EXPECT_EQ(s.test.size(), 22363u);
  EXPECT_EQ(s.items.size(), 12101);
  EXPECT_EQ(s.test.n_events(), 198502);
}

TEST(DataShared, MovieLens100kAndDiginetica) {
  SKIP_IF_MISSING("ml-100k/u.data");
  const EventLog ml = read_events(shared("ml-100k/u.data"));
  EXPECT_EQ(ml.seqs.size(), 943u);
  EXPECT_EQ(ml.items.size(), 1682);
  EXPECT_EQ(ml.seqs.n_events(), 100000);
  EXPECT_TRUE(ml.seqs.has_times());
  SKIP_IF_MISSING("diginetica-sample/sample_train-item-views.csv");
  const EventLog dg = read_events(shared("diginetica-sample/sample_train-item-views.csv"));
  EXPECT_EQ(dg.seqs.size(), 2986u);
  EXPECT_EQ(dg.items.size(), 7139);
  EXPECT_EQ(dg.seqs.n_events(), 12391);  // data/README says 12,390; the file has 12,391 rows
  const PreparedSplit s = prepare_session(dg, {});
  EXPECT_GT(s.test.size(), 0u);
}

}  // namespace
}  // namespace seqrec
