// prepare_session, prepare_sequential, sequence_stats, write_split on hand-built logs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "unit/test_data_util.hpp"

namespace seqrec {
namespace {

using test::input_error;
using test::tokens_of;
using Strings = std::vector<std::string>;

class DataPrepare : public test::DataTmp {
 protected:
  EventLog tsv(const std::string& body) {
    return read_events(write("log.tsv", "SessionId\tItemId\tTime\n" + body));
  }
  EventLog seqs(const std::string& body) {
    ReadOptions o;
    o.format = Format::Sequences;
    o.sequence_ids = 1;
    return read_events(write("log.txt", body), o);
  }
  static Strings ids(const SequenceSet& s) { return s.ids; }
};

TEST_F(DataPrepare, SessionFiltersAndTimeSplit) {
  const EventLog log =
      tsv("A\t1\t0\nA\t2\t10\nA\t3\t20\n"
          "B\t1\t30\n"            // length 1: dropped first
          "C\t2\t40\nC\t9\t50\n"  // item 9 has support 1 -> C has 1 event -> dropped
          "D\t1\t60\nD\t2\t70\nD\t1\t75\n"
          "E\t3\t100\nE\t1\t110\n"             // ends exactly at tmax - test_seconds: test
          "F\t2\t200\nF\t3\t210\nF\t4\t220\n"  // item 4 dropped (support 1); F ends at 210
          "G\t1\t290\nG\t5\t300\n");           // item 5 dropped -> G dropped
  SessionSplitOptions o;
  o.min_item_support = 2;
  o.test_seconds = 100;
  o.valid_seconds = 50;
  const PreparedSplit s = prepare_session(log, o);
  EXPECT_EQ(s.protocol, "session");
  EXPECT_EQ(ids(s.train_full), (Strings{"A", "D"}));
  EXPECT_EQ(ids(s.test), (Strings{"E", "F"}));
  EXPECT_EQ(s.items.tokens(), (Strings{"1", "2", "3"}));
  EXPECT_EQ(tokens_of(s.test, s.items, 1), (Strings{"2", "3"}));
  EXPECT_EQ(s.test.seq_times(1)[1], 210.0);
  // Validation inside train_full: tmax 75, cut 25 -> D is validation.
  EXPECT_EQ(ids(s.train_tr), (Strings{"A"}));
  EXPECT_EQ(ids(s.valid), (Strings{"D"}));
  EXPECT_EQ(tokens_of(s.valid, s.items, 0), (Strings{"1", "2", "1"}));
  // Stats record each step.
  const auto& steps = s.stats["steps"];
  EXPECT_EQ(steps[0]["step"], "min_session_length");
  EXPECT_EQ(steps[0]["sequences_removed"], 1);
  EXPECT_EQ(steps[1]["step"], "min_item_support");
  EXPECT_EQ(steps[1]["items_removed"], 3);
  EXPECT_EQ(steps[1]["events_removed"], 3);
  EXPECT_EQ(steps[2]["sequences_removed"], 2);
  EXPECT_EQ(s.stats["parts"]["test"]["events"], 4);
  EXPECT_EQ(s.stats["parts"]["train_full"]["sequences"], 2);
}

TEST_F(DataPrepare, SessionTestItemsUnseenInTrainAreDropped) {
  const EventLog log =
      tsv("A\t1\t0\nA\t2\t10\n"
          "T1\t7\t100\nT1\t1\t101\n"  // 7 unseen -> [1] -> shorter than 2 -> dropped
          "T2\t7\t100\nT2\t1\t102\nT2\t2\t103\n");
  SessionSplitOptions o;
  o.min_item_support = 1;
  o.test_seconds = 10;
  o.valid_seconds = 0;  // no validation split
  const PreparedSplit s = prepare_session(log, o);
  EXPECT_EQ(ids(s.test), (Strings{"T2"}));
  EXPECT_EQ(tokens_of(s.test, s.items, 0), (Strings{"1", "2"}));
  EXPECT_EQ(s.items.find("7"), -1);
  EXPECT_EQ(ids(s.train_tr), (Strings{"A"}));
  EXPECT_EQ(s.valid.size(), 0u);
}

TEST_F(DataPrepare, SessionRemoveRepeats) {
  const EventLog log =
      tsv("A\t1\t0\nA\t1\t1\nA\t2\t2\nA\t2\t3\nA\t2\t4\nA\t1\t5\n"
          "B\t1\t100\nB\t2\t101\n");
  SessionSplitOptions o;
  o.min_item_support = 1;
  o.test_seconds = 10;
  o.remove_repeats = true;
  const PreparedSplit s = prepare_session(log, o);
  EXPECT_EQ(tokens_of(s.train_full, s.items, 0), (Strings{"1", "2", "1"}));
  EXPECT_EQ(s.train_full.seq_times(0)[1], 2.0);
  EXPECT_EQ(s.stats["steps"][0]["events_removed"], 3);
}

TEST_F(DataPrepare, SessionErrorsExplainWhy) {
  EXPECT_NE(input_error([&] { prepare_session(seqs("1 a b\n2 a b\n"), {}); }).find("timestamps"),
            std::string::npos);
  const std::string m = input_error([&] { prepare_session(tsv("A\t1\t0\nB\t1\t5\n"), {}); });
  EXPECT_NE(m.find("only sessions of length 1"), std::string::npos) << m;
  SessionSplitOptions o;
  o.min_item_support = 1;
  o.test_seconds = 1000;  // everything ends within the last 1000 s
  const std::string m2 =
      input_error([&] { prepare_session(tsv("A\t1\t0\nA\t2\t5\nB\t1\t6\nB\t2\t9\n"), o); });
  EXPECT_NE(m2.find("nothing is left for training"), std::string::npos) << m2;
  o.test_seconds = 1;
  const std::string m3 =
      input_error([&] { prepare_session(tsv("A\t1\t0\nA\t2\t5\nB\t3\t60\nB\t4\t90\n"), o); });
  EXPECT_NE(m3.find("test set is empty"), std::string::npos) << m3;
  o.min_item_support = 50;
  EXPECT_NE(
      input_error([&] { prepare_session(tsv("A\t1\t0\nA\t2\t5\n"), o); }).find("min_item_support"),
      std::string::npos);
}

TEST_F(DataPrepare, KCoreIteratesUntilStable) {
  // e, f have one event -> u3 = [d] -> u3 dropped (< 3) -> d has one event -> dropped from u2.
  const EventLog log = seqs("1 a b c\n2 a b c d\n3 d e f\n");
  SequentialSplitOptions o;
  o.user_core = 3;
  o.item_core = 2;
  const PreparedSplit s = prepare_sequential(log, o);
  EXPECT_EQ(s.protocol, "sequential");
  EXPECT_EQ(ids(s.test), (Strings{"1", "2"}));
  EXPECT_EQ(tokens_of(s.test, s.items, 1), (Strings{"a", "b", "c"}));
  EXPECT_EQ(s.items.tokens(), (Strings{"a", "b", "c"}));
  const auto& k = s.stats["steps"][0];
  EXPECT_EQ(k["step"], "k_core");
  EXPECT_EQ(k["iterations"], 4);
  EXPECT_EQ(k["sequences_removed"], 1);
  EXPECT_EQ(k["items_removed"], 3);
  EXPECT_EQ(k["events_removed"], 4);
  o.user_core = 10;
  EXPECT_NE(input_error([&] { prepare_sequential(log, o); }).find("k-core"), std::string::npos);
}

TEST_F(DataPrepare, LeaveOneOut) {
  const EventLog log = seqs("7 a b c d e\n8 x y\n9 c a x\n");
  SequentialSplitOptions o;
  o.user_core = 0;
  o.item_core = 0;
  const PreparedSplit s = prepare_sequential(log, o);
  // Users with fewer than 3 events (8) are only in the training parts, whole.
  EXPECT_EQ(ids(s.test), (Strings{"7", "9"}));
  EXPECT_EQ(ids(s.valid), (Strings{"7", "9"}));
  EXPECT_EQ(ids(s.train_full), (Strings{"7", "8", "9"}));
  EXPECT_EQ(ids(s.train_tr), (Strings{"7", "8", "9"}));
  EXPECT_EQ(tokens_of(s.test, s.items, 0), (Strings{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(tokens_of(s.train_full, s.items, 0), (Strings{"a", "b", "c", "d"}));
  EXPECT_EQ(tokens_of(s.valid, s.items, 0), (Strings{"a", "b", "c", "d"}));
  EXPECT_EQ(tokens_of(s.train_tr, s.items, 0), (Strings{"a", "b", "c"}));
  EXPECT_EQ(tokens_of(s.train_full, s.items, 1), (Strings{"x", "y"}));
  // The catalogue holds items seen only as a held-out target ("e").
  EXPECT_GE(s.items.find("e"), 0);
  EXPECT_EQ(s.items.size(), 7);
  EXPECT_EQ(s.stats["steps"][1]["users_with_fewer_than_3_events_train_only"], 1);
}

TEST_F(DataPrepare, SequentialKeepsTimesAndRemovesRepeats) {
  const EventLog log = tsv("u\ta\t1\nu\ta\t2\nu\tb\t3\nu\tc\t4\nu\td\t5\n");
  SequentialSplitOptions o;
  o.user_core = 1;
  o.item_core = 1;
  o.remove_repeats = true;
  const PreparedSplit s = prepare_sequential(log, o);
  EXPECT_EQ(tokens_of(s.test, s.items, 0), (Strings{"a", "b", "c", "d"}));
  EXPECT_EQ(s.test.times, (std::vector<double>{1, 3, 4, 5}));
  EXPECT_EQ(s.train_tr.times, (std::vector<double>{1, 3}));
}

TEST_F(DataPrepare, SequenceStats) {
  const EventLog log = seqs("1 a\n2 a b\n3 a b c d e\n");
  SequenceSet s = log.seqs;
  std::vector<int32_t> big(100, 0);
  s.push("4", big);
  const auto j = sequence_stats(s);
  EXPECT_EQ(j["sequences"], 4);
  EXPECT_EQ(j["events"], 108);
  EXPECT_EQ(j["items"], 5);
  EXPECT_EQ(j["length"]["min"], 1);
  EXPECT_EQ(j["length"]["max"], 100);
  EXPECT_DOUBLE_EQ(j["length"]["mean"].get<double>(), 27.0);
  EXPECT_DOUBLE_EQ(j["length"]["median"].get<double>(), 3.5);
  EXPECT_EQ(j["length_histogram"]["1"], 1);
  EXPECT_EQ(j["length_histogram"]["2"], 1);
  EXPECT_EQ(j["length_histogram"]["5-9"], 1);
  EXPECT_EQ(j["length_histogram"]["100+"], 1);
  EXPECT_EQ(j["length_histogram"]["10-19"], 0);
  EXPECT_EQ(sequence_stats(SequenceSet{})["sequences"], 0);
}

TEST_F(DataPrepare, WriteSplitAndRefuseToOverwriteInput) {
  const EventLog log = seqs("1 a b c d\n2 b c d a\n3 a c\n");
  SequentialSplitOptions o;
  o.user_core = 0;
  o.item_core = 0;
  const PreparedSplit s = prepare_sequential(log, o);
  const std::string out = path("split");
  write_split(out, s, path("log.txt"));
  for (const char* f :
       {"items.tsv", "train_full.tsv", "test.tsv", "train_tr.tsv", "valid.tsv", "split.json"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  }
  {
    std::ifstream f(out + "/items.tsv");
    std::string l1, l2;
    std::getline(f, l1);
    std::getline(f, l2);
    EXPECT_EQ(l1, "ItemId");
    EXPECT_EQ(l2, s.items.token(0));
    auto j = nlohmann::json::parse(std::ifstream(out + "/split.json"));
    EXPECT_EQ(j["protocol"], "sequential");
    EXPECT_EQ(j["n_items"], 4);
  }
  const EventLog test = read_events(out + "/test.tsv");
  EXPECT_EQ(test.seqs.ids, s.test.ids);
  EXPECT_EQ(test.seqs.n_events(), s.test.n_events());
  // The input inside the output folder, reached through another spelling of the path.
  const std::string victim = out + "/test.tsv";
  const std::string m = input_error([&] { write_split(out, s, out + "/../split/./test.tsv"); });
  EXPECT_NE(m.find("input"), std::string::npos) << m;
  std::filesystem::create_symlink(victim, path("link.tsv"));
  EXPECT_FALSE(input_error([&] { write_split(out, s, path("link.tsv")); }).empty());
}

}  // namespace
}  // namespace seqrec
