// End-to-end tests of the seqrec command-line program: each runs the real binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "cli_runner.hpp"

namespace fs = std::filesystem;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::slurp;

namespace {

void write(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("seqrec_cli_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  /// generate -> prepare -> train pop; returns the split dir.
  std::string pipeline() {
    CmdResult g = run("generate --events 20000 --items 500 --seed 7 -o " + p("log.tsv"));
    EXPECT_EQ(g.code, 0) << g.out;
    CmdResult s = run("prepare " + p("log.tsv") + " -o " + p("split") + " --cache-dir none");
    EXPECT_EQ(s.code, 0) << s.out;
    return p("split");
  }
  fs::path dir_;
};

}  // namespace

TEST_F(Cli, HelpOnEverySubcommand) {
  for (const char* sub :
       {"generate", "prepare", "train", "eval", "recommend", "info", "models", "demo", "serve"}) {
    CmdResult r = run(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub << ": " << r.out;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
}

TEST_F(Cli, GenerateIsReproducible) {
  ASSERT_EQ(run("generate --events 5000 --seed 3 -o " + p("a.tsv")).code, 0);
  ASSERT_EQ(run("generate --events 5000 --seed 3 -o " + p("b.tsv")).code, 0);
  ASSERT_EQ(run("generate --events 5000 --seed 4 -o " + p("c.tsv")).code, 0);
  EXPECT_EQ(slurp(p("a.tsv")), slurp(p("b.tsv")));
  EXPECT_NE(slurp(p("a.tsv")), slurp(p("c.tsv")));
  EXPECT_EQ(slurp(p("a.tsv")).rfind("SessionId\tItemId\tTime\n", 0), 0u);
}

TEST_F(Cli, PrepareTrainEvalRecommendInfo) {
  const std::string split = pipeline();
  for (const char* f :
       {"items.tsv", "train_full.tsv", "test.tsv", "train_tr.tsv", "valid.tsv", "split.json"})
    EXPECT_TRUE(fs::exists(fs::path(split) / f)) << f;

  for (const char* m : {"pop", "sr", "vsknn"}) {
    const std::string model = p(std::string(m) + ".seqrec");
    CmdResult t = run("train " + split + " -m " + m + " -o " + model);
    ASSERT_EQ(t.code, 0) << t.out;
    CmdResult e = run("eval -m " + model + " " + split + " --cutoffs 5,20 --json " + p("m.json"));
    ASSERT_EQ(e.code, 0) << e.out;
    EXPECT_NE(e.out.find("20"), std::string::npos);
    nlohmann::json j = nlohmann::json::parse(slurp(p("m.json")));
    EXPECT_EQ(j["protocol"], "session");
    EXPECT_EQ(j["ties"], "conservative");
    for (const char* key : {"recall@20", "mrr@20", "ndcg@20", "recall@5", "coverage@20"}) {
      ASSERT_TRUE(j.contains(key)) << key;
      EXPECT_GE(j[key].get<double>(), 0.0);
      EXPECT_LE(j[key].get<double>(), 1.0);
    }
    EXPECT_GT(j["n_predictions"].get<int64_t>(), 100);
    EXPECT_EQ(j["model"]["type"], m);
  }
  // The sequential-rules model must beat popularity on data with sequential structure.
  ASSERT_EQ(run("eval -m " + p("pop.seqrec") + " " + split + " --json " + p("pop.json")).code, 0);
  ASSERT_EQ(run("eval -m " + p("sr.seqrec") + " " + split + " --json " + p("sr.json")).code, 0);
  const double pop = nlohmann::json::parse(slurp(p("pop.json")))["recall@20"];
  const double sr = nlohmann::json::parse(slurp(p("sr.json")))["recall@20"];
  EXPECT_GT(sr, 1.5 * pop);

  // recommend: K lines of rank/item/score for a known session.
  std::ifstream items(fs::path(split) / "items.tsv");
  std::string header, a, b;
  std::getline(items, header);
  std::getline(items, a);
  std::getline(items, b);
  CmdResult r = run("recommend -m " + p("sr.seqrec") + " -k 5 --session \"" + a + " " + b + "\"");
  ASSERT_EQ(r.code, 0) << r.out;
  int lines = 0;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) lines += !l.empty() && std::isdigit(l[0]);
  EXPECT_EQ(lines, 5) << r.out;
  // Unknown items are reported and skipped.
  CmdResult u = run("recommend -m " + p("sr.seqrec") + " -k 3 --session \"nosuchitem " + a + "\"");
  EXPECT_EQ(u.code, 0) << u.out;
  EXPECT_NE(u.out.find("unknown item 'nosuchitem'"), std::string::npos) << u.out;

  CmdResult i = run("info " + p("vsknn.seqrec"));
  EXPECT_EQ(i.code, 0) << i.out;
  EXPECT_NE(i.out.find("vsknn"), std::string::npos);
  // Version, creation time, nested training statistics and the tensors are all shown.
  for (const char* want : {"written by seqrec", "train_stats.events", "tensors ", "format     1"})
    EXPECT_NE(i.out.find(want), std::string::npos) << want << "\n" << i.out;
  const auto j = nlohmann::json::parse(run("info --json " + p("vsknn.seqrec")).out);
  EXPECT_EQ(j["type"], "vsknn");
  EXPECT_EQ(j["format_version"], 1);
  EXPECT_FALSE(j["created"].get<std::string>().empty());
  EXPECT_FALSE(j["seqrec_version"].get<std::string>().empty());
  EXPECT_FALSE(j["tensors"].empty());
  EXPECT_FALSE(j["checkpoint"].get<bool>());
  // --items lists the vocabulary in the user's ids: the data's items, one per line.
  CmdResult v = run("info --items " + p("vsknn.seqrec"));
  ASSERT_EQ(v.code, 0) << v.out;
  std::istringstream vin(v.out);
  std::set<std::string> ids;
  for (std::string l; std::getline(vin, l);) ids.insert(l);
  EXPECT_EQ(static_cast<int64_t>(ids.size()), j["n_items"].get<int64_t>());
  EXPECT_TRUE(ids.count(a.substr(0, a.find('\t'))) == 1) << a;
}

TEST_F(Cli, SequentialProtocolFromPairs) {
  // 40 users x 8 items each, items cycling so every item has support.
  std::string text;
  for (int u = 0; u < 40; ++u)
    for (int k = 0; k < 8; ++k)
      text += std::to_string(u) + " " + std::to_string((u + k) % 12) + "\n";
  write(p("pairs.txt"), text);
  CmdResult s = run("prepare " + p("pairs.txt") + " --protocol sequential -o " + p("seq") +
                    " --cache-dir none");
  ASSERT_EQ(s.code, 0) << s.out;
  ASSERT_EQ(run("train " + p("seq") + " -m pop -o " + p("pop.seqrec")).code, 0);
  CmdResult e = run("eval -m " + p("pop.seqrec") + " " + p("seq") + " --json " + p("e.json"));
  ASSERT_EQ(e.code, 0) << e.out;
  nlohmann::json j = nlohmann::json::parse(slurp(p("e.json")));
  EXPECT_EQ(j["protocol"], "sequential");
  EXPECT_EQ(j["exclude_seen"], true);
  EXPECT_EQ(j["n_predictions"], 40);
  EXPECT_TRUE(j.contains("hr@10"));
  CmdResult sampled =
      run("eval -m " + p("pop.seqrec") + " " + p("seq") + " --sampled 5 --json " + p("s.json"));
  ASSERT_EQ(sampled.code, 0) << sampled.out;
  EXPECT_NE(
      nlohmann::json::parse(slurp(p("s.json")))["protocol"].get<std::string>().find("sampled"),
      std::string::npos);
}

TEST_F(Cli, BadInputGivesClearErrors) {
  // Unreadable path: names the path.
  CmdResult r = run("prepare " + p("missing.tsv") + " -o " + p("out"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("missing.tsv"), std::string::npos) << r.out;

  // Malformed line: names file and line.
  write(p("bad.tsv"), "SessionId\tItemId\tTime\n1\t10\t100\n1\t11\tnot-a-time\n");
  r = run("prepare " + p("bad.tsv") + " -o " + p("out") + " --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("bad.tsv:3"), std::string::npos) << r.out;

  // Empty file.
  write(p("empty.tsv"), "");
  r = run("prepare " + p("empty.tsv") + " -o " + p("out") + " --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("empty.tsv"), std::string::npos) << r.out;

  // Only sessions of length 1.
  write(p("short.tsv"), "SessionId\tItemId\tTime\n1\t10\t100\n2\t10\t200\n3\t11\t300\n");
  r = run("prepare " + p("short.tsv") + " -o " + p("out") + " --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;

  // Absurd parameters.
  const std::string split = pipeline();
  r = run("train " + split + " -m pop -o " + p("m.seqrec") + " --k 0");
  EXPECT_NE(r.code, 0);
  r = run("train " + split + " -m nosuchmodel -o " + p("m.seqrec"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("nosuchmodel"), std::string::npos) << r.out;
  ASSERT_EQ(run("train " + split + " -m pop -o " + p("m.seqrec")).code, 0);
  r = run("eval -m " + p("m.seqrec") + " " + split + " --cutoffs 0");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("cutoffs"), std::string::npos) << r.out;
  r = run("recommend -m " + p("m.seqrec") + " -k 0 --session x");
  EXPECT_NE(r.code, 0);

  // A file that is not a model.
  write(p("fake.seqrec"), "hello");
  r = run("info " + p("fake.seqrec"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("fake.seqrec"), std::string::npos) << r.out;

  // A test set with no known items.
  write(p("alien.tsv"), "SessionId\tItemId\tTime\n1\tzz1\t1\n1\tzz2\t2\n");
  r = run("eval -m " + p("m.seqrec") + " " + p("alien.tsv") + " --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;

  // prepare never overwrites its input, not even with --force (which lets it write into a
  // non-empty folder).
  const std::string before = slurp(fs::path(split) / "train_full.tsv");
  r = run("prepare " + (fs::path(split) / "train_full.tsv").string() + " -o " + split +
          " --force --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("input file"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(fs::path(split) / "train_full.tsv"), before);
}

TEST_F(Cli, DemoPrintsComparisonTable) {
  CmdResult r = run("demo --events 30000 --items 800 -o " + p("demo"));
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* m : {"pop", "sr", "vsknn"}) EXPECT_NE(r.out.find(m), std::string::npos) << m;
  EXPECT_NE(r.out.find("20"), std::string::npos);
}
