// The cold-start protocol through the real binary (issue 16): `prepare --cold-items` writes
// cold_items.tsv and keeps the cold items out of the training files, the same seed gives the
// same items, `eval` reports warm/cold and frequency groups ("cannot score" for an id-only
// model, metrics for dssm with item features), and `compare` adds a warm/cold section.
#include <gtest/gtest.h>

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

class CliCold : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = seqrec_test::fresh_test_dir("seqrec_cold"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }

  /// Item ids of a split event file (column 2), or of an item list (column 1).
  static std::set<std::string> items_of(const std::string& path, bool events) {
    std::set<std::string> out;
    std::istringstream in(slurp(path));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      if (!events) {
        out.insert(line);
        continue;
      }
      const size_t a = line.find('\t'), b = line.find('\t', a + 1);
      out.insert(line.substr(a + 1, b - a - 1));
    }
    return out;
  }
  void prepare(const std::string& out, const std::string& seed) {
    CmdResult r =
        run("prepare " + p("log.tsv") + " --protocol sequential --user-core 3 " +
            "--item-core 3 --cold-items 0.2 --seed " + seed + " --cache-dir none -o " + p(out));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("held out of training"), std::string::npos) << r.out;
  }
  fs::path dir_;
};

}  // namespace

TEST_F(CliCold, PrepareEvalAndCompare) {
  CmdResult r = run("generate --events 6000 --items 120 --mean-length 20 --days 200 --seed 4 -o " +
                    p("log.tsv"));
  ASSERT_EQ(r.code, 0) << r.out;
  prepare("split", "3");
  const auto cold = items_of(p("split/cold_items.tsv"), false);
  ASSERT_FALSE(cold.empty());
  for (const char* part : {"train_full.tsv", "train_tr.tsv"})
    for (const auto& it : items_of(p("split/") + part, true))
      EXPECT_EQ(cold.count(it), 0u) << part << " holds cold item " << it;
  bool cold_in_test = false;
  for (const auto& it : items_of(p("split/test.tsv"), true)) cold_in_test |= cold.count(it) > 0;
  EXPECT_TRUE(cold_in_test);
  const auto split = nlohmann::json::parse(slurp(p("split/split.json")));
  EXPECT_EQ(split["cold_items"]["count"].get<size_t>(), cold.size());
  EXPECT_EQ(split["cold_items"]["seed"], 3);
  // The same seed gives the same items; another seed others.
  prepare("again", "3");
  EXPECT_EQ(slurp(p("again/cold_items.tsv")), slurp(p("split/cold_items.tsv")));
  prepare("other", "4");
  EXPECT_NE(slurp(p("other/cold_items.tsv")), slurp(p("split/cold_items.tsv")));

  // An id-only model: cold targets "cannot score", in the table and in the JSON.
  r = run("train " + p("split") + " -m pop -o " + p("pop.seqrec"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("eval -m " + p("pop.seqrec") + " " + p("split") + " --json " + p("pop.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cannot score"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("train events 100+"), std::string::npos) << r.out;
  auto j = nlohmann::json::parse(slurp(p("pop.json")));
  ASSERT_TRUE(j.contains("groups"));
  EXPECT_EQ(j["groups"][0]["name"], "warm");
  EXPECT_EQ(j["groups"][1]["name"], "cold");
  EXPECT_FALSE(j["groups"][1]["scorable"].get<bool>());
  EXPECT_TRUE(j["groups"][1]["metrics"].is_null());
  EXPECT_GT(j["groups"][1]["n_predictions"].get<int64_t>(), 0);
  // --breakdown false turns it off.
  r = run("eval -m " + p("pop.seqrec") + " " + p("split") + " --breakdown false");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("cannot score"), std::string::npos) << r.out;

  // dssm with item features for the whole catalogue scores the cold items.
  {
    std::ofstream f(p("features.tsv"));
    f << "item_id\tgenres\n";
    for (const auto& it : items_of(p("split/items.tsv"), false))
      f << it << "\tg" << std::stol(it) % 5 << "|h" << std::stol(it) % 3 << "\n";
  }
  r = run("train " + p("split") + " -m dssm --item-features " + p("features.tsv") +
          " --epochs 1 --layers 16 --query-layers 16 -o " + p("dssm.seqrec"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("eval -m " + p("dssm.seqrec") + " " + p("split") + " --json " + p("dssm.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  j = nlohmann::json::parse(slurp(p("dssm.json")));
  EXPECT_TRUE(j["groups"][1]["scorable"].get<bool>());
  EXPECT_TRUE(j["groups"][1]["metrics"].contains("hr@20"));

  // compare: a warm/cold section in the report and target_groups in results.json.
  r = run("compare " + p("split") + " -o " + p("cmp") + " --models pop,sr --seeds 1 --no-curves");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto res = nlohmann::json::parse(slurp(p("cmp/results.json")));
  ASSERT_TRUE(res.contains("target_groups"));
  EXPECT_EQ(res["target_groups"]["cold_items"].get<size_t>(), cold.size());
  EXPECT_EQ(res["target_groups"]["models"].size(), 2u);
  const std::string md = slurp(p("cmp/report.md"));
  EXPECT_NE(md.find("Warm and cold targets"), std::string::npos);
  EXPECT_NE(md.find("cannot score"), std::string::npos);
}

TEST_F(CliCold, BadFractionIsAClearError) {
  CmdResult r = run("generate --events 3000 --items 100 --seed 4 -o " + p("log.tsv"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("prepare " + p("log.tsv") +
          " --protocol sequential --cold-items 0.0001 --cache-dir "
          "none -o " +
          p("split"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("rounds to no item"), std::string::npos) << r.out;
  r = run("prepare " + p("log.tsv") + " --cold-items 1.5 -o " + p("split2"));
  EXPECT_NE(r.code, 0) << r.out;
}
