// Feature-aware SASRec through the real binary (issue 16): trained on a split with 20% of
// the items held out cold and a small feature file, its cold targets are scorable in
// `eval`, a held-out item gets a finite score from its features and is recommended by
// `seqrec serve`, the model file is self-contained (no feature file at eval or serve time),
// and the server adds a new item to it through POST /v1/items.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "cli_runner.hpp"
#include "server_process.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::ServeProcess;
using seqrec_test::slurp;

namespace {

std::set<std::string> column1(const std::string& path) {
  std::set<std::string> out;
  std::istringstream in(slurp(path));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) out.insert(line.substr(0, line.find('\t')));
  return out;
}

json post(ServeProcess& s, const std::string& path, const std::string& body, int* status) {
  httplib::Client c("127.0.0.1", s.port());
  auto res = c.Post(path, body, "application/json");
  *status = res ? res->status : -1;
  return res ? json::parse(res->body) : json();
}

}  // namespace

TEST(CliSasrecFeatures, ColdItemsAreScoredServedAndItemsAdded) {
  const fs::path dir = seqrec_test::fresh_test_dir("seqrec_sasfeat");
  auto p = [&](const std::string& n) { return (dir / n).string(); };
  CmdResult r = run("generate --events 6000 --items 120 --mean-length 20 --days 200 --seed 4 -o " +
                    p("log.tsv"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("prepare " + p("log.tsv") +
          " --protocol sequential --user-core 3 --item-core 3 --cold-items 0.2 --seed 3 "
          "--cache-dir none -o " +
          p("split"));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto cold = column1(p("split/cold_items.tsv"));
  ASSERT_FALSE(cold.empty());
  {
    std::ofstream f(p("features.tsv"));
    f << "item_id\tgenres\ttitle\n";
    for (const auto& it : column1(p("split/items.tsv")))
      f << it << "\tg" << std::stol(it) % 5 << "|h" << std::stol(it) % 3 << "\titem number " << it
        << "\n";
  }
  r = run("train " + p("split") + " -m sasrec --item-features " + p("features.tsv") +
          " --text-buckets 64 --loss ce --epochs 2 --hidden-units 16 --maxlen 20 -o " +
          p("sas.seqrec"));
  ASSERT_EQ(r.code, 0) << r.out;
  // Evaluated without the feature file: the model file holds the catalogue's features.
  r = run("eval -m " + p("sas.seqrec") + " " + p("split") + " --json " + p("sas.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(slurp(p("sas.json")));
  ASSERT_TRUE(j.contains("groups"));
  EXPECT_EQ(j["groups"][1]["name"], "cold");
  EXPECT_TRUE(j["groups"][1]["scorable"].get<bool>());
  EXPECT_TRUE(j["groups"][1]["metrics"].contains("hr@20"));
  // The same model without features cannot score cold targets.
  r = run("train " + p("split") +
          " -m sasrec --loss ce --epochs 1 --hidden-units 16 --maxlen 20 -o " + p("id.seqrec"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("eval -m " + p("id.seqrec") + " " + p("split"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("cannot score"), std::string::npos) << r.out;

  ServeProcess s(dir, p("sas.seqrec"));
  ASSERT_TRUE(s.alive()) << s.log();
  std::string first;  // a warm item as the session (seen items are not recommended)
  for (const auto& it : column1(p("split/items.tsv")))
    if (first.empty() && !cold.count(it)) first = it;
  int st = 0;
  // Every item ranked: the cold ones are among them, with finite scores.
  json rec = post(s, "/v1/recommend", json{{"items", {first}}, {"k", 1000}}.dump(), &st);
  ASSERT_EQ(st, 200) << rec.dump();
  size_t cold_seen = 0;
  for (const auto& x : rec["items"]) {
    ASSERT_TRUE(x["score"].is_number()) << x.dump();
    EXPECT_TRUE(std::isfinite(x["score"].get<double>()));
    cold_seen += cold.count(x["item"].get<std::string>());
  }
  EXPECT_EQ(cold_seen, cold.size());
  // A new item by its features: recommended in the next request, and usable as input.
  json add =
      post(s, "/v1/items",
           R"({"id": "new1", "features": {"genres": "g1|h2", "title": "item number 7"}})", &st);
  ASSERT_EQ(st, 201) << add.dump();
  rec = post(s, "/v1/recommend", json{{"items", {first}}, {"k", 1000}}.dump(), &st);
  ASSERT_EQ(st, 200) << rec.dump();
  bool found = false;
  for (const auto& x : rec["items"]) found |= x["item"] == "new1";
  EXPECT_TRUE(found);
  rec = post(s, "/v1/recommend", json{{"items", {first, "new1"}}, {"k", 5}}.dump(), &st);
  ASSERT_EQ(st, 200) << rec.dump();
  EXPECT_EQ(rec["items"].size(), 5u);
  fs::remove_all(dir);
}

TEST(CliSasrecFeatures, CompareTrainsTheLabelsOfFeaturesForWithTheFile) {
  const fs::path dir = seqrec_test::fresh_test_dir("seqrec_sasfeat_cmp");
  auto p = [&](const std::string& n) { return (dir / n).string(); };
  CmdResult r = run("generate --events 3000 --items 60 --mean-length 15 --days 100 --seed 6 -o " +
                    p("log.tsv"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("prepare " + p("log.tsv") +
          " --protocol sequential --user-core 3 --item-core 3 --cold-items 0.2 --seed 3 "
          "--cache-dir none -o " +
          p("split"));
  ASSERT_EQ(r.code, 0) << r.out;
  {
    std::ofstream f(p("features.tsv"));
    f << "item_id\tgenres\n";
    for (const auto& it : column1(p("split/items.tsv")))
      f << it << "\tg" << std::stol(it) % 5 << "|h" << std::stol(it) % 3 << "\n";
  }
  const std::string common = "compare " + p("split") +
                             " --models sasrec,feat=sasrec --seeds 1 --epochs 1 --no-curves "
                             "--set sasrec.hidden_units=8 --set feat.hidden_units=8 ";
  // --features-for without a file, or naming a model that has no use for features: errors.
  r = run(common + "-o " + p("bad") + " --features-for feat");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--features-for needs --item-features"), std::string::npos) << r.out;
  r = run(common + "-o " + p("bad2") + " --item-features " + p("features.tsv") +
          " --features-for nope");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("'nope' is not one of the compared models"), std::string::npos) << r.out;
  r = run(common + "-o " + p("cmp") + " --item-features " + p("features.tsv") +
          " --features-for feat");
  ASSERT_EQ(r.code, 0) << r.out;
  const json res = json::parse(slurp(p("cmp/results.json")));
  ASSERT_TRUE(res.contains("target_groups")) << res.dump().substr(0, 2000);
  // The id-only label cannot score cold targets; the feature-aware one can.
  std::map<std::string, bool> cold_scorable;
  for (const auto& m : res["target_groups"]["models"])
    for (const auto& g : m["groups"])
      if (g["name"] == "cold") cold_scorable[m["label"]] = g["scorable"].get<bool>();
  ASSERT_EQ(cold_scorable.size(), 2u) << res["target_groups"].dump();
  EXPECT_FALSE(cold_scorable["sasrec"]);
  EXPECT_TRUE(cold_scorable["feat"]);
  const std::string md = slurp(p("cmp/report.md"));
  EXPECT_NE(md.find("cannot score"), std::string::npos);
  fs::remove_all(dir);
}
