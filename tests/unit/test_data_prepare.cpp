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

// --- Defaults that do not silently mislead (issue 13) ------------------------------------

/// A log of `users` users, `per_user` events each: the first `long_users` users' events are
/// 3 days apart (histories over weeks), the others' 60 s apart (one sitting). Items cycle
/// over 12 so that every item has support.
std::string user_log(int users, int per_user, int long_users, double t0 = 1.6e9) {
  std::string text = "UserId\tItemId\tTime\n";
  for (int u = 0; u < users; ++u) {
    const double gap = u < long_users ? 3 * 86400.0 : 60.0;
    for (int k = 0; k < per_user; ++k) {
      char line[96];
      std::snprintf(line, sizeof line, "u%d\t%d\t%.0f\n", u, (u + k) % 12,
                    t0 + u * 1000.0 + k * gap);
      text += line;
    }
  }
  return text;
}

/// Sessions of 4 clicks 40 s apart, one starting every `every` seconds: the last day holds
/// a share 86400 / (n * every) of them.
std::string session_log(int n, double every, double t0 = 1.6e9, double scale = 1.0) {
  std::string text = "SessionId\tItemId\tTime\n";
  for (int s = 0; s < n; ++s)
    for (int k = 0; k < 4; ++k) {
      char line[96];
      std::snprintf(line, sizeof line, "s%d\t%d\t%.0f\n", s, (s * 3 + k) % 20,
                    (t0 + s * every + k * 40.0) * scale);
      text += line;
    }
  return text;
}

TEST_F(DataPrepare, ChooseProtocolTellsUserHistoriesFromSessions) {
  // 2 of 20 users (10%) span more than a day: user histories, the rule's threshold.
  ProtocolChoice c = choose_protocol(read_events(write("a.tsv", user_log(20, 6, 2))).seqs);
  EXPECT_EQ(c.protocol, "sequential");
  EXPECT_TRUE(c.user_histories);
  EXPECT_EQ(c.facts["spanning_more_than_a_day"], 2);
  EXPECT_EQ(c.facts["sequences_with_2_or_more_events"], 20);
  EXPECT_NE(c.reason.find("2 of the 20"), std::string::npos) << c.reason;
  // 1 of 20 (5%): sessions.
  c = choose_protocol(read_events(write("b.tsv", user_log(20, 6, 1))).seqs);
  EXPECT_EQ(c.protocol, "session");
  EXPECT_FALSE(c.user_histories);
  // Real sessions: none spans a day.
  c = choose_protocol(read_events(write("c.tsv", session_log(200, 3600))).seqs);
  EXPECT_EQ(c.protocol, "session");
  EXPECT_EQ(c.facts["spanning_more_than_a_day"], 0);
  // No timestamps: the session protocol cannot run.
  c = choose_protocol(seqs("1 a b c\n2 b c d\n").seqs);
  EXPECT_EQ(c.protocol, "sequential");
  EXPECT_NE(c.reason.find("no timestamps"), std::string::npos);
}

TEST_F(DataPrepare, AutoProtocolGivesUserLogsLeaveOneOut) {
  // 40 users with long histories: auto must not pick the session protocol, which would
  // test only the users active in the last day.
  const EventLog log = read_events(write("users.tsv", user_log(40, 8, 40)));
  PrepareOptions o;  // protocol "auto" by default
  const PreparedSplit s = prepare_split(log, o);
  EXPECT_EQ(s.protocol, "sequential");
  EXPECT_EQ(s.test.size(), 40u);
  EXPECT_EQ(s.stats["test_predictions"], 40);
  EXPECT_EQ(s.stats["protocol_choice"]["requested"], "auto");
  EXPECT_EQ(s.stats["protocol_choice"]["used"], "sequential");
  ASSERT_EQ(s.stats["detected"].size(), 1u);
  const std::string note = s.stats["detected"][0];
  // What was detected, what the split holds, and the flag that changes it.
  for (const char* want : {"chosen by --protocol auto", "user histories", "40 sequences",
                           "40 predictions", "--protocol session"})
    EXPECT_NE(note.find(want), std::string::npos) << want << "\n" << note;
  // Asking for the session protocol still works, and says what it gives up.
  o.protocol = "session";
  o.session.min_item_support = 1;
  o.session.test_seconds = 20000;  // users 19..39 end in the last 5.5 hours
  o.session.valid_seconds = 0;
  const PreparedSplit t = prepare_split(log, o);
  EXPECT_EQ(t.protocol, "session");
  ASSERT_EQ(t.stats["detected"].size(), 1u);
  const std::string warn = t.stats["detected"][0];
  EXPECT_NE(warn.find("protocol: session (as asked), but"), std::string::npos) << warn;
  EXPECT_NE(warn.find("--protocol sequential"), std::string::npos) << warn;
  EXPECT_THROW(prepare_split(log, PrepareOptions{"sideways"}), InputError);
}

TEST_F(DataPrepare, AutoProtocolKeepsSessionsSessions) {
  const EventLog log = read_events(write("s.tsv", session_log(600, 3500)));
  const PreparedSplit s = prepare_split(log, PrepareOptions{});
  EXPECT_EQ(s.protocol, "session");
  // Sessions 575..599 end in the last day: 25 x 3 predictions.
  EXPECT_EQ(s.test.size(), 25u);
  EXPECT_EQ(s.stats["test_predictions"], 75);
  const std::string note = s.stats["detected"][0];
  EXPECT_NE(note.find("protocol: session (chosen by --protocol auto)"), std::string::npos) << note;
  EXPECT_NE(note.find("--protocol sequential"), std::string::npos) << note;
  EXPECT_NE(note.find("25 sessions"), std::string::npos) << note;
  EXPECT_NE(note.find("75 predictions"), std::string::npos) << note;
}

TEST_F(DataPrepare, MillisecondTimesAreDetectedAndConverted) {
  const std::string ms = write("ms.tsv", session_log(600, 3500, 1.6e9, 1000.0));
  ReadInfo info;
  const EventLog log = read_events(ms, ReadOptions{}, &info);
  EXPECT_EQ(info.time_unit, "ms");
  EXPECT_NE(info.time_note.find("milliseconds"), std::string::npos) << info.time_note;
  EXPECT_NE(info.time_note.find("--time-unit s"), std::string::npos) << info.time_note;
  EXPECT_NEAR(log.seqs.times.front(), 1.6e9, 1.0);
  // The split is then the same as for seconds, and says what was converted.
  const PreparedSplit s = prepare_split(log, PrepareOptions{}, &info);
  EXPECT_EQ(s.protocol, "session");
  EXPECT_EQ(s.stats["test_predictions"], 75);
  EXPECT_EQ(s.stats["time_unit_detected"], "ms");
  EXPECT_NE(s.stats["detected"][0].get<std::string>().find("time unit: the times are "
                                                           "milliseconds"),
            std::string::npos)
      << s.stats["detected"];
  // Microseconds too.
  ReadInfo us_info;
  const EventLog us =
      read_events(write("us.tsv", session_log(10, 3600, 1.6e9, 1e6)), ReadOptions{}, &us_info);
  EXPECT_EQ(us_info.time_unit, "us");
  EXPECT_NEAR(us.seqs.times.front(), 1.6e9, 1.0);
  // A unit given by the user is kept, with a note naming the flag.
  ReadOptions given;
  given.detect_time_unit = false;
  ReadInfo kept;
  const EventLog raw = read_events(ms, given, &kept);
  EXPECT_EQ(kept.time_unit, "");
  EXPECT_NEAR(raw.seqs.times.front(), 1.6e12, 1e3);
  EXPECT_NE(kept.time_note.find("--time-unit ms"), std::string::npos) << kept.time_note;
  // Seconds stay seconds, silently.
  ReadInfo sec;
  read_events(write("sec.tsv", session_log(10, 3600)), ReadOptions{}, &sec);
  EXPECT_EQ(sec.time_unit, "");
  EXPECT_EQ(sec.time_note, "");
}

TEST_F(DataPrepare, DegenerateTestSetIsRefusedUnlessForced) {
  // Milliseconds read as seconds: "the last day" is 86 real seconds, one session.
  ReadOptions as_seconds;
  as_seconds.detect_time_unit = false;
  const EventLog log =
      read_events(write("ms.tsv", session_log(600, 3500, 1.6e9, 1000.0)), as_seconds);
  PrepareOptions o;
  o.protocol = "session";
  const std::string m = input_error([&] { prepare_split(log, o); });
  for (const char* want : {"ms.tsv", "degenerate", "1 session (the one that ends", "4 events",
                           "3 predictions", "--test-days", "--time-unit", "--force"})
    EXPECT_NE(m.find(want), std::string::npos) << want << "\n" << m;
  o.force = true;
  const PreparedSplit s = prepare_split(log, o);
  EXPECT_EQ(s.test.size(), 1u);
  EXPECT_TRUE(s.stats["forced"].get<bool>());
  const std::string note = s.stats["detected"].back();
  EXPECT_NE(note.find("forced:"), std::string::npos) << note;

  // Enough predictions, but a tiny share of the data: one test session of 12 events (11
  // predictions) two days after 14,000 training events (0.086%).
  std::string text = "SessionId\tItemId\tTime\n";
  for (int s2 = 0; s2 < 3500; ++s2)
    for (int k = 0; k < 4; ++k)
      text += "s" + std::to_string(s2) + "\t" + std::to_string((s2 + k) % 50) + "\t" +
              std::to_string(s2 * 60 + k) + "\n";
  for (int k = 0; k < 12; ++k)
    text +=
        "t\t" + std::to_string(k) + "\t" + std::to_string(3500 * 60 + 2 * 86400 + k * 10) + "\n";
  const EventLog big = read_events(write("big.tsv", text));
  PrepareOptions b;
  b.protocol = "session";
  const std::string m2 = input_error([&] { prepare_split(big, b); });
  EXPECT_NE(m2.find("degenerate"), std::string::npos) << m2;
  EXPECT_NE(m2.find("11 predictions"), std::string::npos) << m2;
  // The same pipeline without the check (prepare_session) accepts it.
  EXPECT_EQ(prepare_session(big, b.session).test.size(), 1u);
}

TEST_F(DataPrepare, SplitFolderMustBeNewOrEmpty) {
  EXPECT_NO_THROW(check_split_folder(path("new"), false));
  std::filesystem::create_directories(path("empty"));
  EXPECT_NO_THROW(check_split_folder(path("empty"), false));
  std::filesystem::create_directories(path("full"));
  write("full/split.json", "{}");
  write("full/notes.txt", "mine");
  const std::string m = input_error([&] { check_split_folder(path("full"), false); });
  for (const char* want : {"full", "not empty", "notes.txt, split.json", "--force"})
    EXPECT_NE(m.find(want), std::string::npos) << want << "\n" << m;
  EXPECT_NO_THROW(check_split_folder(path("full"), true));
  write("file", "x");
  EXPECT_NE(input_error([&] { check_split_folder(path("file"), true); }).find("not a folder"),
            std::string::npos);
}

}  // namespace
}  // namespace seqrec
