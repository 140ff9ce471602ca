// `--item-features` on the command line (issue 16): a dssm model trained with a feature file
// through the real binary, the counts the reader prints, a self-contained model file that
// eval reads without the feature file, and the errors a user meets (a model that does not
// use features, a malformed row, the feature file given as the output).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "cli_runner.hpp"

namespace fs = std::filesystem;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::slurp;

namespace {

class CliFeatures : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = seqrec_test::fresh_test_dir("seqrec_features"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }

  /// A log, its split, and a feature table for all but `missing` of the log's items plus
  /// one id the log lacks.
  void pipeline(int missing) {
    CmdResult r = run("generate --events 3000 --items 100 --seed 5 -o " + p("log.tsv"));
    ASSERT_EQ(r.code, 0) << r.out;
    r = run("prepare " + p("log.tsv") + " -o " + p("split") + " --cache-dir none");
    ASSERT_EQ(r.code, 0) << r.out;
    std::set<std::string> items;
    std::istringstream log(slurp(p("split/train_full.tsv")));
    std::string line;
    std::getline(log, line);  // header
    while (std::getline(log, line)) {
      const size_t a = line.find('\t'), b = line.find('\t', a + 1);
      items.insert(line.substr(a + 1, b - a - 1));
    }
    ASSERT_GT(items.size(), static_cast<size_t>(missing) + 10);
    std::ofstream f(p("items.tsv"));
    f << "item_id\tgenres\ttitle\n";
    int left = static_cast<int>(items.size()) - missing;
    for (const std::string& it : items) {
      if (left-- <= 0) break;
      const long v = std::stol(it);
      f << it << "\tg" << v % 7 << "|g" << v % 3 << "\tthe item number " << it << "\n";
    }
    f << "999999999\tg1\tnot in the log\n";
  }
  fs::path dir_;
};

}  // namespace

TEST_F(CliFeatures, DssmTrainsWithAFeatureFileAndItsModelIsSelfContained) {
  pipeline(4);
  // Not quiet: the alignment report is part of the normal output.
  CmdResult r = seqrec_test::run_shell(std::string(SEQREC_BINARY) + " train " + p("split") +
                                       " -m dssm --item-features " + p("items.tsv") +
                                       " --epochs 2 -o " + p("d.seqrec"));
  ASSERT_EQ(r.code, 0) << r.out;
  // The alignment is reported: items without features and ids the data lacks.
  EXPECT_NE(r.out.find("4 have none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ids of the file are not in the data"), std::string::npos) << r.out;
  // eval needs no feature file: the features travel in the model file.
  fs::rename(p("items.tsv"), p("moved.tsv"));
  r = run("eval -m " + p("d.seqrec") + " " + p("split") + " --json " + p("metrics.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(slurp(p("metrics.json")).find("recall@20"), std::string::npos);
  r = run("info --json " + p("d.seqrec"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("dssm"), std::string::npos) << r.out;
}

TEST_F(CliFeatures, UserErrorsAreClearMessages) {
  pipeline(0);
  const std::string features = slurp(p("items.tsv"));
  // A model that does not use features.
  CmdResult r = run("train " + p("split") + " -m sr --item-features " + p("items.tsv") + " -o " +
                    p("sr.seqrec"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("does not use item features"), std::string::npos) << r.out;
  // The feature file is an input: never the output, even with --force.
  for (const std::string force : {"", " --force"}) {
    r = run("train " + p("split") + " -m dssm --epochs 1 --item-features " + p("items.tsv") +
            " -o " + p("items.tsv") + force);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("--item-features"), std::string::npos) << r.out;
  }
  EXPECT_EQ(slurp(p("items.tsv")), features);
  // A row with a missing field: file and line named.
  {
    std::ofstream f(p("bad.tsv"));
    f << "item_id\tgenres\ttitle\n100001\tg1\tok\n100002\tg2\n";
  }
  r = run("train " + p("split") + " -m dssm --epochs 1 --item-features " + p("bad.tsv") + " -o " +
          p("d.seqrec"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("bad.tsv:3"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(p("d.seqrec")));
  // A file that shares no id with the data.
  {
    std::ofstream f(p("foreign.tsv"));
    f << "item_id\tgenres\n1\tg1\n2\tg2\n";
  }
  r = run("train " + p("split") + " -m dssm --epochs 1 --item-features " + p("foreign.tsv") +
          " -o " + p("d.seqrec"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("foreign.tsv"), std::string::npos) << r.out;
}
