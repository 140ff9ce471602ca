// Items added and retired over HTTP (POST /v1/items, DELETE /v1/items/ID) on a real
// `seqrec serve` process: a dssm trained by the binary on a generated log and feature
// table; a new item is recommended in the next request, a retired one never, bad input
// gets 4xx JSON errors naming the field, and with --items-file the live catalogue survives
// a restart (also after kill -9) and a reload.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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

class ServerItems : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // (fresh_test_dir() names the folder after the current test: there is none yet here.)
    dir_ = fs::path(::testing::TempDir()) / ("seqrec_items_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto p = [](const std::string& n) { return (dir_ / n).string(); };
    CmdResult r = run("generate --events 3000 --items 80 --seed 5 -o " + p("log.tsv"));
    ASSERT_EQ(r.code, 0) << r.out;
    std::istringstream log(slurp(p("log.tsv")));
    std::string line;
    std::getline(log, line);  // header
    std::set<std::string> items;
    while (std::getline(log, line)) {
      const size_t a = line.find('\t'), b = line.find('\t', a + 1);
      items.insert(line.substr(a + 1, b - a - 1));
    }
    items_.assign(items.begin(), items.end());
    std::ofstream f(p("items.tsv"));
    f << "item_id\tgenres\ttitle\tprice\n";
    for (const std::string& it : items_) {
      const long v = std::stol(it);
      f << it << "\tg" << v % 7 << "|g" << v % 3 << "\tthe item number " << it << "\t"
        << (v % 50) * 1.5 << "\n";
    }
    f.close();
    r = run("train " + p("log.tsv") + " -m dssm -o " + p("dssm.seqrec") + " --item-features " +
            p("items.tsv") +
            " --feature-columns price=num --layers 32,16 --query-layers 16 --epochs 1 "
            "--n-negatives 8");
    ASSERT_EQ(r.code, 0) << r.out;
    r = run("train " + p("log.tsv") + " -m pop -o " + p("pop.seqrec"));
    ASSERT_EQ(r.code, 0) << r.out;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string p(const std::string& n) { return (dir_ / n).string(); }

  static json post(ServeProcess& s, const std::string& path, const std::string& body, int* status) {
    httplib::Client c("127.0.0.1", s.port());
    auto res = c.Post(path, body, "application/json");
    if (!res) {
      *status = -1;
      return {};
    }
    *status = res->status;
    return json::parse(res->body);
  }
  static json del(ServeProcess& s, const std::string& path, int* status) {
    httplib::Client c("127.0.0.1", s.port());
    auto res = c.Delete(path);
    *status = res ? res->status : -1;
    return res ? json::parse(res->body) : json();
  }
  static json get(ServeProcess& s, const std::string& path) {
    httplib::Client c("127.0.0.1", s.port());
    auto res = c.Get(path);
    return res && res->status == 200 ? json::parse(res->body) : json();
  }
  /// Every live item after one item of the log.
  static std::vector<std::string> all_items(ServeProcess& s) {
    int st = 0;
    const json r = post(s, "/v1/recommend", json{{"items", {items_[0]}}, {"k", 1000}}.dump(), &st);
    std::vector<std::string> out;
    for (const auto& x : r.value("items", json::array())) out.push_back(x["item"]);
    return out;
  }
  static bool has(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  static fs::path dir_;
  static std::vector<std::string> items_;
};

fs::path ServerItems::dir_;
std::vector<std::string> ServerItems::items_;

}  // namespace

TEST_F(ServerItems, AddRetireAndErrorsOverHttp) {
  ServeProcess s(dir_, p("dssm.seqrec"));
  ASSERT_TRUE(s.alive()) << s.log();
  const size_t n = items_.size();
  int st = 0;
  json r = post(
      s, "/v1/items",
      R"({"id": "m9001", "features": {"title": "the item number 17", "genres": "g1|g2", "price": 3}})",
      &st);
  ASSERT_EQ(st, 201) << r.dump();
  EXPECT_EQ(r["index"], n);
  auto all = all_items(s);
  EXPECT_EQ(all.size(), n + 1);
  EXPECT_TRUE(has(all, "m9001"));
  // In a session, then retired: the session keeps working, the item is never returned.
  r = post(s, "/v1/events", R"({"session_id": "u1", "items": ["m9001"], "k": 5})", &st);
  ASSERT_EQ(st, 200) << r.dump();
  EXPECT_EQ(r["items"].size(), 5u);
  r = del(s, "/v1/items/m9001", &st);
  ASSERT_EQ(st, 200) << r.dump();
  EXPECT_EQ(r["retired"], true);
  r = del(s, "/v1/items/" + items_[3], &st);
  ASSERT_EQ(st, 200) << r.dump();
  r = post(s, "/v1/events", R"({"session_id": "u1", "items": [], "k": 5})", &st);
  ASSERT_EQ(st, 200) << r.dump();
  EXPECT_EQ(r["items"].size(), 5u);
  all = all_items(s);
  EXPECT_EQ(all.size(), n - 1);
  EXPECT_FALSE(has(all, "m9001"));
  EXPECT_FALSE(has(all, items_[3]));
  // Errors: JSON objects with the status, naming the field.
  auto error = [&](const std::string& method, const std::string& path, const std::string& body,
                   int want, const std::string& words) {
    int code = 0;
    const json e = method == "DELETE" ? del(s, path, &code) : post(s, path, body, &code);
    EXPECT_EQ(code, want) << body << " -> " << e.dump();
    const std::string msg = e.value("error", json::object()).value("message", "");
    EXPECT_NE(msg.find(words), std::string::npos) << body << " -> " << msg;
  };
  error("POST", "/v1/items", "{not json", 400, "parse error");
  error("POST", "/v1/items", R"({"features": {}})", 400, "'id'");
  error("POST", "/v1/items", R"({"id": "x", "features": {"colour": "red"}})", 400,
        "'features.colour'");
  error("POST", "/v1/items", R"({"id": "x", "features": {"price": "cheap"}})", 400,
        "'features.price'");
  error("POST", "/v1/items", R"({"id": "x", "features": "title"})", 400, "'features'");
  error("POST", "/v1/items", R"({"id": "x", "feature": {}})", 400, "unknown field 'feature'");
  error("POST", "/v1/items",
        json{{"id", std::string(300, 'a')}, {"features", json::object()}}.dump(), 400,
        "longer than 256");
  error("POST", "/v1/items", json{{"id", items_[0]}, {"features", json::object()}}.dump(), 409,
        "live already");
  error("DELETE", "/v1/items/nope", "", 404, "not in the live catalogue");
  // Metrics and model info count them.
  const json model = get(s, "/v1/model");
  EXPECT_EQ(model["catalogue"]["added"], 1);
  EXPECT_EQ(model["catalogue"]["added_live"], 0);
  EXPECT_EQ(model["catalogue"]["live"], n - 1);
  EXPECT_EQ(get(s, "/health")["live_items"], n - 1);
  httplib::Client c("127.0.0.1", s.port());
  const auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("seqrec_items_added_total 1"), std::string::npos);
  EXPECT_NE(m->body.find("seqrec_items_retired_total 2"), std::string::npos);
  EXPECT_NE(m->body.find("seqrec_catalogue_live_items " + std::to_string(n - 1)),
            std::string::npos);
  EXPECT_NE(m->body.find("route=\"/v1/items\",method=\"POST\",status=\"201\""), std::string::npos);
}

TEST_F(ServerItems, AModelWithoutFeaturesRefusesToAddButRetires) {
  ServeProcess s(dir_, p("pop.seqrec"));
  ASSERT_TRUE(s.alive()) << s.log();
  int st = 0;
  json r = post(s, "/v1/items", R"({"id": "x", "features": {"title": "a"}})", &st);
  EXPECT_EQ(st, 400);
  EXPECT_NE(r.dump().find("cannot add items by their features"), std::string::npos) << r.dump();
  r = del(s, "/v1/items/" + items_[0], &st);
  EXPECT_EQ(st, 200) << r.dump();
  EXPECT_FALSE(has(all_items(s), items_[0]));
  r = post(s, "/v1/items", json{{"id", items_[0]}}.dump(), &st);
  EXPECT_EQ(st, 201) << r.dump();
  EXPECT_EQ(r["restored"], true);
  EXPECT_TRUE(has(all_items(s), items_[0]));
}

TEST_F(ServerItems, TheItemsFileSurvivesRestartsCrashesAndReloads) {
  const std::string file = p("items.jsonl");
  fs::remove(file);
  const std::vector<std::string> extra = {"--items-file", file};
  int st = 0;
  {
    ServeProcess s(dir_, p("dssm.seqrec"), extra);
    ASSERT_TRUE(s.alive()) << s.log();
    post(s, "/v1/items", R"({"id": "a1", "features": {"title": "first new", "genres": "g3"}})",
         &st);
    ASSERT_EQ(st, 201);
    post(s, "/v1/items", R"({"id": "a2", "features": {"title": "second new"}})", &st);
    ASSERT_EQ(st, 201);
    del(s, "/v1/items/" + items_[1], &st);
    ASSERT_EQ(st, 200);
    s.kill9();  // each change was synced before it was answered
  }
  {
    ServeProcess s(dir_, p("dssm.seqrec"), extra);
    ASSERT_TRUE(s.alive()) << s.log();
    auto all = all_items(s);
    EXPECT_TRUE(has(all, "a1"));
    EXPECT_TRUE(has(all, "a2"));
    EXPECT_FALSE(has(all, items_[1]));
    // A reload (same file) replays them: still there.
    httplib::Client c("127.0.0.1", s.port());
    auto res = c.Post("/v1/reload");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(json::parse(res->body)["catalogue_changed"], false);
    all = all_items(s);
    EXPECT_TRUE(has(all, "a1"));
    EXPECT_TRUE(has(all, "a2"));
    EXPECT_FALSE(has(all, items_[1]));
    del(s, "/v1/items/a1", &st);
    ASSERT_EQ(st, 200);
    EXPECT_EQ(s.stop(), 0);
  }
  {
    ServeProcess s(dir_, p("dssm.seqrec"), extra);
    ASSERT_TRUE(s.alive()) << s.log();
    const auto all = all_items(s);
    EXPECT_FALSE(has(all, "a1"));
    EXPECT_TRUE(has(all, "a2"));
    EXPECT_EQ(all.size(), items_.size());  // +a2 -items_[1]
  }
}
