// The defaults of `prepare`, `eval` and `compare` that must not silently mislead a new
// user (issue 13): the protocol chosen for a user log, millisecond timestamps, degenerate
// test sets, writing into a used folder, and the label of the seen-items rule.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.hpp"

namespace fs = std::filesystem;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::slurp;
using seqrec_test::user_ratings;

namespace {

class CliDefaults : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = seqrec_test::fresh_test_dir("seqrec_cli_defaults"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream f(dir_ / name, std::ios::binary);
    f << text;
  }
  nlohmann::json split_json(const std::string& dir) const {
    return nlohmann::json::parse(slurp(fs::path(p(dir)) / "split.json"));
  }
  fs::path dir_;
};

}  // namespace

TEST_F(CliDefaults, UserLogGetsLeaveOneOutAndSaysWhy) {
  write("ratings.data", user_ratings());
  CmdResult r = run("prepare " + p("ratings.data") + " -o " + p("split") + " --cache-dir none");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* want : {"prepare: protocol: sequential (chosen by --protocol auto)",
                           "user histories", "60 predictions", "--protocol session"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  const auto j = split_json("split");
  EXPECT_EQ(j["protocol"], "sequential");
  EXPECT_EQ(j["stats"]["test_predictions"], 60);
  EXPECT_EQ(j["stats"]["protocol_choice"]["requested"], "auto");
  EXPECT_FALSE(j["stats"]["detected"].empty());
  // An explicit protocol still wins.
  r = run("prepare " + p("ratings.data") + " -o " + p("session") +
          " --protocol session --cache-dir none");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(split_json("session")["protocol"], "session");
  EXPECT_NE(r.out.find("protocol: session (as asked), but"), std::string::npos) << r.out;
}

TEST_F(CliDefaults, MovieLens100kIsPreparedLeaveOneOut) {
  const std::string data = std::string(SEQREC_SHARED_DATA_DIR) + "/ml-100k/u.data";
  if (!fs::exists(data)) GTEST_SKIP() << data << " absent (../shared/data): skipped";
  CmdResult r = run("prepare " + data + " -o " + p("ml100k") + " --cache-dir none");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("protocol: sequential (chosen by --protocol auto)"), std::string::npos)
      << r.out;
  const auto j = split_json("ml100k");
  EXPECT_EQ(j["protocol"], "sequential");
  EXPECT_EQ(j["stats"]["test_predictions"], 943);  // every user, not 11 of them
}

TEST_F(CliDefaults, MillisecondTimesAreConvertedOrRefused) {
  // 400 sessions of 4 clicks 40 s apart, one starting every 1,000 s, times in milliseconds.
  std::string text = "SessionId\tItemId\tTime\n";
  for (int s = 0; s < 400; ++s)
    for (int k = 0; k < 4; ++k)
      text += std::to_string(s) + "\t" + std::to_string((s * 3 + k) % 25) + "\t" +
              std::to_string(1700000000000LL + s * 1000000LL + k * 40000LL) + "\n";
  write("ms.tsv", text);
  CmdResult r = run("prepare " + p("ms.tsv") + " -o " + p("auto") + " --cache-dir none");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("time unit: the times are milliseconds"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--time-unit s"), std::string::npos) << r.out;
  auto j = split_json("auto");
  EXPECT_EQ(j["protocol"], "session");
  EXPECT_EQ(j["stats"]["time_unit_detected"], "ms");
  EXPECT_GE(j["stats"]["test_predictions"].get<int64_t>(), 200);  // 86 sessions x 3
  // Read as seconds on purpose: the last "day" holds one session, which is refused...
  r = run("prepare " + p("ms.tsv") + " -o " + p("secs") +
          " --time-unit s --protocol session --cache-dir none");
  EXPECT_EQ(r.code, 1) << r.out;
  for (const char* want : {"ms.tsv", "degenerate", "3 predictions", "--force"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  EXPECT_FALSE(fs::exists(p("secs")));
  // ... unless forced; the split then says so.
  r = run("prepare " + p("ms.tsv") + " -o " + p("secs") +
          " --time-unit s --protocol session --force --cache-dir none");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("forced:"), std::string::npos) << r.out;
  j = split_json("secs");
  EXPECT_TRUE(j["stats"]["forced"].get<bool>());
  EXPECT_EQ(j["stats"]["test_predictions"], 3);
}

TEST_F(CliDefaults, PrepareRefusesANonEmptyFolderUnlessForced) {
  write("ratings.data", user_ratings());
  const std::string prep = "prepare " + p("ratings.data") + " --cache-dir none -o ";
  fs::create_directories(p("empty"));
  ASSERT_EQ(run(prep + p("empty")).code, 0);  // an empty folder is fine
  const std::string before = slurp(fs::path(p("empty")) / "split.json");
  CmdResult r = run(prep + p("empty") + " --user-core 3");
  EXPECT_EQ(r.code, 1) << r.out;
  for (const char* want : {"not empty", "split.json", "--force"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  EXPECT_EQ(slurp(fs::path(p("empty")) / "split.json"), before);  // untouched
  r = run(prep + p("empty") + " --user-core 3 --force");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(split_json("empty")["stats"]["options"]["user_core"], 3);
}

TEST_F(CliDefaults, ExcludeSeenModeIsAnOptionAndLabelled) {
  // Users who come back to an item: the last item repeats an earlier one for 10 of 40.
  std::string text;
  for (int u = 0; u < 40; ++u) {
    for (int k = 0; k < 8; ++k)
      text += std::to_string(u) + " " + std::to_string((u + k) % 12) + "\n";
    text += std::to_string(u) + " " + std::to_string(u % 4 == 0 ? u % 12 : (u + 8) % 12) + "\n";
  }
  write("pairs.txt", text);
  ASSERT_EQ(run("prepare " + p("pairs.txt") + " -o " + p("seq") + " --cache-dir none").code, 0);
  ASSERT_EQ(run("train " + p("seq") + " -m pop -o " + p("pop.seqrec")).code, 0);
  CmdResult e = run("eval -m " + p("pop.seqrec") + " " + p("seq") + " --json " + p("e.json"));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("--exclude-seen except-target"), std::string::npos) << e.out;
  auto j = nlohmann::json::parse(slurp(p("e.json")));
  EXPECT_EQ(j["exclude_seen_mode"], "except-target");
  EXPECT_EQ(j["n_repeated_targets"], 10);
  e = run("eval -m " + p("pop.seqrec") + " " + p("seq") + " --exclude-seen all --json " +
          p("a.json"));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("--exclude-seen all"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("10 of 40 targets repeat"), std::string::npos) << e.out;
  j = nlohmann::json::parse(slurp(p("a.json")));
  EXPECT_EQ(j["exclude_seen_mode"], "all");
  EXPECT_LE(j["hr@20"].get<double>(), 30.0 / 40.0);  // the 10 repeats are misses
  // compare takes the same option from the same table and echoes it.
  CmdResult c = run("--threads 1 compare " + p("seq") +
                    " --models pop --seeds 1 --no-curves --exclude-seen all -o " + p("rep"));
  ASSERT_EQ(c.code, 0) << c.out;
  j = nlohmann::json::parse(slurp(p("rep") + "/results.json"));
  EXPECT_EQ(j["protocol"]["exclude_seen_mode"], "all");
  EXPECT_NE(slurp(p("rep") + "/report.md").find("--exclude-seen all"), std::string::npos);
}

TEST_F(CliDefaults, EvalOfATestSetWithoutPredictionsNamesTheFile) {
  write("ratings.data", user_ratings());
  ASSERT_EQ(run("prepare " + p("ratings.data") + " -o " + p("split") + " --cache-dir none").code,
            0);
  ASSERT_EQ(run("train " + p("split") + " -m pop -o " + p("pop.seqrec")).code, 0);
  // Known items, but every sequence has one event: nothing to predict.
  write("singles.tsv", "SessionId\tItemId\tTime\na\t1\t1\nb\t2\t2\nc\t3\t3\n");
  CmdResult r = run("eval -m " + p("pop.seqrec") + " " + p("singles.tsv") + " --cache-dir none");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("singles.tsv"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0 predictions"), std::string::npos) << r.out;
}
