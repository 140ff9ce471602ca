// `seqrec serve --retrieval ann` as a real process (docs/http-api.md#approximate-retrieval-ann):
// a GRU4Rec model over a generated catalogue of 3,000 items, served with --ann-min-items
// lowered below it, against the same model served exactly. Checked: most lists equal the
// exact ones and the rest nearly (recall of the top 20), the filters and K honoured exactly
// (forbidden and seen items never listed, and a filter that leaves fewer than K items gives
// the same shorter list as exact), the ANN counters of /metrics and /v1/model, the index file
// of --ann-index written, read back and refused (naming the file) when truncated or built for
// another model (but rebuilt at a reload that replaces the model it was built for), bad
// parameters refused, and the small-catalogue fallback with its notice;
// `seqrec eval --retrieval ann` on the same model, and its refusals.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "server_process.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::ServeProcess;

namespace {

json post(httplib::Client& c, const std::string& path, const json& body, int* status = nullptr) {
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  if (status) *status = res ? res->status : -1;
  return res ? json::parse(res->body, nullptr, false) : json();
}

json get(httplib::Client& c, const std::string& path) {
  auto res = c.Get(path.c_str());
  return res ? json::parse(res->body, nullptr, false) : json();
}

/// The value of a Prometheus sample line `name value` in `text` (-1 when absent).
double metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

std::vector<std::string> ids(const json& r) {
  std::vector<std::string> out;
  for (const auto& it : r["items"]) out.push_back(it["item"].get<std::string>());
  return out;
}

class ServerAnn : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::path(::testing::TempDir()) / ("seqrec_server_ann_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    auto ok = [](const CmdResult& r) { ASSERT_EQ(r.code, 0) << r.out; };
    ok(run("generate --events 40000 --items 3000 --seed 11 -o " + d + "/log.tsv"));
    ok(run("prepare " + d + "/log.tsv -o " + d + "/split --cache-dir none"));
    const std::string train = "train " + d + "/split -m gru4rec --layers 32 --batch-size 32 " +
                              "--n-sample 64 --n-epochs 1 --threads 2 ";
    ok(run(train + "-o " + d + "/g.seqrec"));
    ok(run(train + "--seed 99 -o " + d + "/g2.seqrec"));
    ok(run("train " + d + "/split -m sr -o " + d + "/sr.seqrec"));
    // Prefixes of the test sessions (1 to 4 items), the requests of the comparisons.
    std::ifstream f(dir_ / "split" / "test.tsv");
    std::string line, sid, item, last_sid;
    std::getline(f, line);
    std::vector<std::string> cur;
    while (std::getline(f, line) && prefixes_.size() < 150) {
      std::istringstream in(line);
      in >> sid >> item;
      if (sid != last_sid) cur.clear();
      last_sid = sid;
      if (cur.size() < 4) cur.push_back(item);
      prefixes_.push_back(cur);
    }
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string p(const std::string& name) { return (dir_ / name).string(); }
  static inline fs::path dir_;
  static inline std::vector<std::vector<std::string>> prefixes_;
  /// The flags of ANN serving for this catalogue (3,000 items, below the default minimum).
  static std::vector<std::string> ann_flags(std::vector<std::string> more = {}) {
    std::vector<std::string> f = {"--retrieval", "ann", "--ann-min-items", "1000"};
    for (auto& m : more) f.push_back(std::move(m));
    return f;
  }
};

}  // namespace

TEST_F(ServerAnn, ListsMatchExactServingAndFiltersAreHonoured) {
  // --max-k: one request below lists the whole catalogue.
  ServeProcess exact(dir_, p("g.seqrec"), {"--max-k", "5000"});
  ServeProcess ann(dir_, p("g.seqrec"), ann_flags({"--max-k", "5000"}));
  ASSERT_TRUE(exact.alive()) << exact.log();
  ASSERT_TRUE(ann.alive()) << ann.log();
  httplib::Client ce("127.0.0.1", exact.port()), ca("127.0.0.1", ann.port());
  const json info = get(ca, "/v1/model");
  ASSERT_EQ(info["scoring"]["retrieval"], "ann") << info.dump();
  EXPECT_EQ(info["scoring"]["ann"]["source"], "built");
  EXPECT_EQ(info["scoring"]["ann"]["index_items"], info["n_items"]);
  EXPECT_EQ(get(ce, "/v1/model")["scoring"]["retrieval"], "exact");

  // Plain requests: the lists of both servers, compared.
  ASSERT_GE(prefixes_.size(), 100u);
  int identical = 0;
  double recall = 0;
  for (const auto& items : prefixes_) {
    int se = 0, sa = 0;
    const json body = {{"items", items}, {"k", 20}};
    const json e = post(ce, "/v1/recommend", body, &se), a = post(ca, "/v1/recommend", body, &sa);
    ASSERT_EQ(se, 200) << e.dump();
    ASSERT_EQ(sa, 200) << a.dump();
    ASSERT_EQ(a["items"].size(), 20u);
    const auto ei = ids(e), ai = ids(a);
    identical += ei == ai ? 1 : 0;
    const std::set<std::string> es(ei.begin(), ei.end());
    int common = 0;
    for (size_t r = 0; r < ai.size(); ++r) {
      common += es.count(ai[r]) ? 1 : 0;
      // Scores are exact (rescored), so a listed item scores as exact serving scores it.
      if (es.count(ai[r]))
        for (const auto& it : e["items"])
          if (it["item"] == ai[r])
            EXPECT_NEAR(a["items"][r]["score"].get<double>(), it["score"].get<double>(),
                        1e-4 * (1 + std::fabs(it["score"].get<double>())));
    }
    recall += common / 20.0;
  }
  const double n = static_cast<double>(prefixes_.size());
  std::printf("[ ann ] %d of %zu lists identical to exact serving, recall@20 %.4f\n", identical,
              prefixes_.size(), recall / n);
  EXPECT_GE(identical, 0.9 * n);
  EXPECT_GE(recall / n, 0.98);

  // Filters: the exact top 5 forbidden, the session's items excluded; exactly K items, none
  // of them filtered, the same list as exact serving gives.
  for (size_t j = 0; j < 20; ++j) {
    const auto& items = prefixes_[j * 7];
    const auto top = ids(post(ce, "/v1/recommend", {{"items", items}, {"k", 5}}));
    const json body = {
        {"items", items}, {"k", 20}, {"exclude_seen", true}, {"forbidden_items", top}};
    const json a = post(ca, "/v1/recommend", body), e = post(ce, "/v1/recommend", body);
    const auto ai = ids(a);
    ASSERT_EQ(ai.size(), 20u) << a.dump();
    for (const auto& x : ai) {
      EXPECT_EQ(std::count(top.begin(), top.end(), x), 0) << x << " is forbidden";
      EXPECT_EQ(std::count(items.begin(), items.end(), x), 0) << x << " was seen";
    }
    std::set<std::string> as(ai.begin(), ai.end());
    int common = 0;
    for (const auto& x : ids(e)) common += as.count(x) ? 1 : 0;
    EXPECT_GE(common, 18) << "request " << j;
  }
  // A filter that leaves fewer than K items: every item forbidden but 7, so 7 come back,
  // the same 7 as exact serving (the index is asked for more candidates, then for all).
  {
    int status = 0;
    const json all = post(ce, "/v1/recommend", {{"items", prefixes_[0]}, {"k", 5000}}, &status);
    ASSERT_EQ(status, 200) << all.dump();
    std::vector<std::string> forbidden;
    for (const auto& it : all["items"]) forbidden.push_back(it["item"]);
    ASSERT_GT(forbidden.size(), 1000u);
    std::vector<std::string> kept(forbidden.end() - 7, forbidden.end());
    forbidden.resize(forbidden.size() - 7);
    const json body = {{"items", prefixes_[0]}, {"k", 20}, {"forbidden_items", forbidden}};
    auto a = ids(post(ca, "/v1/recommend", body)), e = ids(post(ce, "/v1/recommend", body));
    EXPECT_EQ(a.size(), 7u);
    EXPECT_EQ(a, e);
  }
  // An allow-list is scored exactly, as exact serving does.
  {
    std::vector<std::string> allowed =
        ids(post(ce, "/v1/recommend", {{"items", prefixes_[1]}, {"k", 60}}));
    allowed.erase(allowed.begin(), allowed.begin() + 30);
    const json body = {{"items", prefixes_[1]}, {"k", 10}, {"allowed_items", allowed}};
    EXPECT_EQ(ids(post(ca, "/v1/recommend", body)), ids(post(ce, "/v1/recommend", body)));
  }
  // The counters: requests through the index, and exact fallbacks (the filter above).
  auto m = ca.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_GE(metric(m->body, "seqrec_ann_requests_total"), n);
  EXPECT_GE(metric(m->body, "seqrec_ann_exact_fallbacks_total"), 0);
  auto me = ce.Get("/metrics");
  ASSERT_TRUE(me);
  EXPECT_EQ(metric(me->body, "seqrec_ann_requests_total"), 0);
  EXPECT_EQ(ann.stop(), 0) << ann.log();
  EXPECT_EQ(exact.stop(), 0) << exact.log();
}

TEST_F(ServerAnn, TheIndexFileIsSavedReloadedAndRefusedWhenBad) {
  const std::string file = p("g.ann");
  fs::remove(file);
  std::vector<std::vector<std::string>> first;
  {
    ServeProcess srv(dir_, p("g.seqrec"), ann_flags({"--ann-index", file}));
    ASSERT_TRUE(srv.alive()) << srv.log();
    httplib::Client c("127.0.0.1", srv.port());
    const json info = get(c, "/v1/model");
    EXPECT_EQ(info["scoring"]["ann"]["source"], "built") << info.dump();
    EXPECT_EQ(info["scoring"]["ann"]["index_file"], file);
    for (size_t j = 0; j < 10; ++j)
      first.push_back(ids(post(c, "/v1/recommend", {{"items", prefixes_[j]}, {"k", 20}})));
    EXPECT_EQ(srv.stop(), 0) << srv.log();
  }
  ASSERT_TRUE(fs::exists(file));
  {
    ServeProcess srv(dir_, p("g.seqrec"), ann_flags({"--ann-index", file}));
    ASSERT_TRUE(srv.alive()) << srv.log();
    httplib::Client c("127.0.0.1", srv.port());
    EXPECT_EQ(get(c, "/v1/model")["scoring"]["ann"]["source"], "file");
    for (size_t j = 0; j < 10; ++j)
      EXPECT_EQ(ids(post(c, "/v1/recommend", {{"items", prefixes_[j]}, {"k", 20}})), first[j]);
    EXPECT_EQ(srv.stop(), 0) << srv.log();
  }
  // Refused at start, exit code 1, with a message naming the file and the reason.
  auto refused = [&](const std::string& model, const std::string& why) {
    std::string cmd = "serve " + model + " --port 0";
    for (const auto& f : ann_flags({"--ann-index", file})) cmd += " " + f;
    const CmdResult r = run(cmd);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find(file), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(why), std::string::npos) << r.out;
  };
  refused(p("g2.seqrec"), "built for another model");
  const std::string bytes = seqrec_test::slurp(file);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  refused(p("g.seqrec"), "truncated");
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "#!/bin/sh\n";
  refused(p("g.seqrec"), "not a seqrec ANN index");
  // Other build parameters than the file's: refused too (the file is not silently reused).
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  const CmdResult other = run("serve " + p("g.seqrec") + " --port 0 --retrieval ann " +
                              "--ann-min-items 1000 --ann-m 8 --ann-index " + file);
  EXPECT_EQ(other.code, 1) << other.out;
  EXPECT_NE(other.out.find("M=16"), std::string::npos) << other.out;
  fs::remove(file);
}

// A retrained model reloaded with the same --ann-index: the file holds the replaced model's
// index, so it is rebuilt for the new model and written over (not refused); a file of a
// third model is still refused at the reload, and the serving model stays.
TEST_F(ServerAnn, AReloadRebuildsTheReplacedModelsIndexFile) {
  const std::string live = p("live.seqrec"), file = p("live.ann");
  fs::remove(file);
  fs::copy_file(p("g.seqrec"), live, fs::copy_options::overwrite_existing);
  ServeProcess srv(dir_, live, ann_flags({"--ann-index", file, "--reload-min-interval", "0"}));
  ASSERT_TRUE(srv.alive()) << srv.log();
  httplib::Client c("127.0.0.1", srv.port());
  c.set_read_timeout(60);
  EXPECT_EQ(get(c, "/v1/model")["scoring"]["ann"]["source"], "built");
  // "Retrain": g2 (other weights, same catalogue) replaces the served file.
  fs::copy_file(p("g2.seqrec"), live, fs::copy_options::overwrite_existing);
  auto res = c.Post("/v1/reload");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body << srv.log();
  EXPECT_EQ(get(c, "/v1/model")["scoring"]["ann"]["source"], "rebuilt");
  EXPECT_NE(srv.log().find("holds the ANN index of the model being replaced"), std::string::npos)
      << srv.log();
  EXPECT_NE(ids(post(c, "/v1/recommend", {{"items", prefixes_[0]}, {"k", 20}})).size(), 0u);
  // The file is g2's index now: a fresh server of g2 reads it.
  {
    ServeProcess again(dir_, p("g2.seqrec"), ann_flags({"--ann-index", file}));
    ASSERT_TRUE(again.alive()) << again.log();
    httplib::Client c2("127.0.0.1", again.port());
    EXPECT_EQ(get(c2, "/v1/model")["scoring"]["ann"]["source"], "file");
  }
  // An index of neither the serving model nor the new one is foreign: the reload fails.
  const std::string foreign = p("foreign.ann");
  fs::remove(foreign);
  {
    ServeProcess maker(dir_, p("g.seqrec"), ann_flags({"--ann-index", foreign}));
    ASSERT_TRUE(maker.alive()) << maker.log();
  }
  fs::copy_file(foreign, file, fs::copy_options::overwrite_existing);  // g's index
  // Serving g2 with g's index in the file: g is not the model being replaced at this
  // reload (g2 reloads g2), so the file is refused and g2 keeps serving.
  auto again = c.Post("/v1/reload");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 500) << again->body;
  EXPECT_NE(again->body.find("built for another model"), std::string::npos) << again->body;
  EXPECT_EQ(get(c, "/v1/model")["scoring"]["ann"]["source"], "rebuilt");  // still serving
  EXPECT_EQ(srv.stop(), 0) << srv.log();
}

TEST_F(ServerAnn, BadParametersAndSmallCataloguesAreReported) {
  struct Bad {
    std::string flags, says;
  };
  for (const Bad& b : {Bad{"--retrieval fast", "retrieval"}, Bad{"--ann-ef-search 0", "ef"},
                       Bad{"--ann-m 1", "ann"}, Bad{"--ann-candidates 0", "candidates"},
                       Bad{"--ann-min-items 0", "min"}}) {
    const CmdResult r = run("serve " + p("g.seqrec") + " --port 0 " + b.flags);
    EXPECT_EQ(r.code, 1) << b.flags << ": " << r.out;
    EXPECT_NE(r.out.find(b.says), std::string::npos) << b.flags << ": " << r.out;
  }
  // 3,000 items, below the default --ann-min-items: served exactly, with a notice at start
  // and in /v1/model.
  ServeProcess srv(dir_, p("g.seqrec"), {"--retrieval", "ann"});
  ASSERT_TRUE(srv.alive()) << srv.log();
  httplib::Client c("127.0.0.1", srv.port());
  const json info = get(c, "/v1/model");
  EXPECT_EQ(info["scoring"]["retrieval"], "exact") << info.dump();
  ASSERT_TRUE(info["scoring"].contains("ann_notice")) << info.dump();
  EXPECT_NE(info["scoring"]["ann_notice"].get<std::string>().find("--ann-min-items"),
            std::string::npos);
  EXPECT_EQ(post(c, "/v1/recommend", {{"items", prefixes_[0]}, {"k", 20}})["items"].size(), 20u);
  EXPECT_EQ(srv.stop(), 0);
  EXPECT_NE(srv.log().find("fewer than --ann-min-items"), std::string::npos) << srv.log();
}

TEST_F(ServerAnn, EvalMeasuresTheIndexAndRefusesBadInput) {
  const std::string json_file = p("eval_ann.json");
  const CmdResult r = run("eval -m " + p("g.seqrec") + " " + p("split") +
                          " --retrieval ann --ann-min-items 1000 --json " + json_file + " --force");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("ANN top-20 recall vs exact"), std::string::npos) << r.out;
  const json j = json::parse(seqrec_test::slurp(json_file));
  const json& a = j["retrieval"];
  EXPECT_EQ(a["used_index"], true) << a.dump();
  EXPECT_GE(a["list_recall@20"].get<double>(), 0.98) << a.dump();
  EXPECT_NEAR(a["ann"]["Recall@20"].get<double>(), a["exact"]["Recall@20"].get<double>(), 0.01);
  EXPECT_GT(a["predictions"].get<int64_t>(), 100);
  // Below --ann-min-items: exact both ways, with a notice.
  const CmdResult small = run("eval -m " + p("g.seqrec") + " " + p("split") + " --retrieval ann");
  ASSERT_EQ(small.code, 0) << small.out;
  EXPECT_NE(small.out.find("fewer than --ann-min-items"), std::string::npos) << small.out;
  // A model without a dot-product output layer, an index of another model, a bad value.
  const CmdResult sr =
      run("eval -m " + p("sr.seqrec") + " " + p("split") + " --retrieval ann --ann-min-items 1");
  EXPECT_EQ(sr.code, 1) << sr.out;
  EXPECT_NE(sr.out.find("dot-product output layer"), std::string::npos) << sr.out;
  const std::string index = p("eval.ann");
  fs::remove(index);
  ASSERT_EQ(run("eval -m " + p("g.seqrec") + " " + p("split") +
                " --retrieval ann --ann-min-items 1000 --ann-index " + index)
                .code,
            0);
  ASSERT_TRUE(fs::exists(index));
  const CmdResult foreign = run("eval -m " + p("g2.seqrec") + " " + p("split") +
                                " --retrieval ann --ann-min-items 1000 --ann-index " + index);
  EXPECT_EQ(foreign.code, 1) << foreign.out;
  EXPECT_NE(foreign.out.find(index), std::string::npos) << foreign.out;
  EXPECT_NE(foreign.out.find("built for another model"), std::string::npos) << foreign.out;
  const CmdResult bad =
      run("eval -m " + p("g.seqrec") + " " + p("split") + " --retrieval ann --ann-candidates 5000");
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("candidates"), std::string::npos) << bad.out;
  fs::remove(index);
}
