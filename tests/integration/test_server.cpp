// End-to-end tests of `seqrec serve`: the real binary on a free loopback port, models
// trained by the CLI on a generated data set, driven with cpp-httplib's client (and raw
// sockets where the connection options are checked).
//
// What is compared (ReplayMatchesRecommendAndEval):
// - every test session is replayed event by event through POST /v1/events (K = 20, the
//   server's default exclusion, which is off for a session split); each served list must
//   equal `seqrec recommend -k 20` on the same prefix: same items, same order, same scores;
// - Recall@20 and MRR@20 computed from the served lists must equal `seqrec eval`'s to
//   1e-9. eval ranks conservatively (a target ranks below every item with an equal score);
//   from a top-20 list the conservative rank is exact unless the target's score ties with
//   the 20th item (more equal scores could lie beyond the list). For those few predictions
//   (counted and printed) the full ranking is fetched from POST /v1/recommend with K = the
//   catalogue size, and the rank is taken from it.
// - GRU4Rec and SASRec (ReplayMatchesRecommendAndEvalGru4rec/Sasrec) are compared the same
//   way up to floating-point rounding: the server computes the same scores by another path
//   (GRU4Rec: one incremental step per event; both: the output layer through the server's
//   batched scoring kernel) than `recommend`/`eval` (batched GEMMs), so scores must agree
//   to a relative 1e-4, the two lists may only differ by items whose scores are that close,
//   and the metrics may only differ by the predictions whose target is that close to
//   another item or to the cut.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.hpp"
#include "unit/raw_http_client.hpp"

extern char** environ;

namespace fs = std::filesystem;
using nlohmann::json;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::slurp;

namespace {

/// `seqrec serve MODEL --port 0 --port-file ... ARGS` as a child process.
class ServerProcess {
 public:
  ServerProcess(const fs::path& dir, const std::string& model,
                std::vector<std::string> extra = {}) {
    log_ =
        dir / ("serve_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++) + ".log");
    const fs::path port_file = log_.string() + ".port";
    fs::remove(port_file);
    std::vector<std::string> args = {SEQREC_BINARY,      "serve",     model,
                                     "--port",           "0",         "--port-file",
                                     port_file.string(), "--threads", "8"};
    for (auto& e : extra) args.push_back(std::move(e));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    const int rc = posix_spawn(&pid_, SEQREC_BINARY, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      return;
    }
    // Wait for the port (the model loads first), or for the process to die.
    for (int i = 0; i < 400; ++i) {
      if (fs::exists(port_file)) {
        std::ifstream(port_file) >> port_;
        if (port_ > 0) break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~ServerProcess() { stop(); }
  int port() const { return port_; }
  bool alive() const { return pid_ > 0 && port_ > 0; }
  std::string log() const { return slurp(log_); }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  /// SIGTERM, then the exit code (-1 if it had to be killed).
  int stop() {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = -1;
    return exit_code_;
  }

 private:
  static inline int counter_ = 0;
  fs::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
};

json post(httplib::Client& c, const std::string& path, const json& body, int* status = nullptr) {
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  if (!res) {
    if (status) *status = -1;
    return json();
  }
  if (status) *status = res->status;
  return json::parse(res->body, nullptr, false);
}

/// test.tsv of a split: sessions in file order, each its item ids.
std::vector<std::pair<std::string, std::vector<std::string>>> read_sessions(const fs::path& p) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  std::ifstream f(p);
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string sid, item;
    in >> sid >> item;
    if (out.empty() || out.back().first != sid) out.push_back({sid, {}});
    out.back().second.push_back(item);
  }
  return out;
}

class Server : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::path(::testing::TempDir()) / ("seqrec_server_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    auto ok = [](const CmdResult& r) { ASSERT_EQ(r.code, 0) << r.out; };
    ok(run("generate --events 20000 --items 500 --seed 7 -o " + d + "/log.tsv"));
    ok(run("prepare " + d + "/log.tsv -o " + d + "/split --cache-dir none"));
    ok(run("train " + d + "/split -m sr -o " + d + "/sr.seqrec"));
    ok(run("train " + d + "/split -m vsknn -o " + d + "/vsknn.seqrec"));
    ok(run("train " + d + "/split -m gru4rec --layers 32 --batch-size 16 --n-sample 64 " +
           "--n-epochs 2 -o " + d + "/gru4rec.seqrec"));
    ok(run("train " + d + "/split -m sasrec --maxlen 10 --hidden-units 16 --num-epochs 3 " +
           "--batch-size 32 -o " + d + "/sasrec.seqrec"));
    ok(run("prepare " + d + "/log.tsv -o " + d +
           "/seqsplit --protocol sequential --user-core 3 "
           "--item-core 3 --cache-dir none"));
    ok(run("train " + d + "/seqsplit -m sr -o " + d + "/seq_sr.seqrec"));
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string p(const std::string& name) { return (dir_ / name).string(); }
  static inline fs::path dir_;

  /// tol = 0: exactly equal; > 0: equal up to a relative rounding difference of tol.
  void replay_and_compare(const std::string& model, double tol = 0.0);
};

namespace {

bool close(double a, double b, double tol) {
  return std::fabs(a - b) <= tol * (1.0 + std::fabs(b));
}

/// `got` equals `want` up to rounding: scores rank by rank within tol, and an item found in
/// only one of the lists (or at another rank) has a score within tol of a neighbour's.
void expect_close_lists(const json& got, const json& want, double tol, size_t n) {
  ASSERT_EQ(got.size(), want.size()) << "prediction " << n;
  std::map<std::string, double> g, w;
  for (size_t r = 0; r < got.size(); ++r) {
    ASSERT_TRUE(close(got[r]["score"].get<double>(), want[r]["score"].get<double>(), tol))
        << "prediction " << n << " rank " << r << ": " << got[r] << " vs " << want[r];
    g[got[r]["item"].get<std::string>()] = got[r]["score"].get<double>();
    w[want[r]["item"].get<std::string>()] = want[r]["score"].get<double>();
  }
  if (got.empty()) return;
  const double g_last = got.back()["score"].get<double>();
  const double w_last = want.back()["score"].get<double>();
  for (const auto& [item, score] : w) {
    auto it = g.find(item);
    if (it != g.end())
      ASSERT_TRUE(close(it->second, score, tol)) << "prediction " << n << " item " << item;
    else  // dropped out at the cut: it must have been a near-tie with the last item
      ASSERT_TRUE(close(g_last, score, tol)) << "prediction " << n << " item " << item;
  }
  for (const auto& [item, score] : g)
    if (w.find(item) == w.end())
      ASSERT_TRUE(close(w_last, score, tol)) << "prediction " << n << " item " << item;
}

}  // namespace

void Server::replay_and_compare(const std::string& model, double tol) {
  ServerProcess srv(dir_, p(model));
  ASSERT_TRUE(srv.alive()) << srv.log();
  httplib::Client c("127.0.0.1", srv.port());
  c.set_read_timeout(30);
  const auto sessions = read_sessions(p("split/test.tsv"));
  ASSERT_GT(sessions.size(), 20u);

  std::vector<json> served;  // one top-20 list per prediction
  std::vector<std::string> targets;
  std::ofstream prefixes(p(model + ".prefixes"));
  for (const auto& [sid, items] : sessions) {
    std::string prefix;
    for (size_t len = 1; len < items.size(); ++len) {
      int status = 0;
      json r =
          post(c, "/v1/events",
               {{"session_id", "test-" + sid}, {"items", {items[len - 1]}}, {"k", 20}}, &status);
      ASSERT_EQ(status, 200) << r.dump();
      ASSERT_EQ(r["session_length"], static_cast<int64_t>(len));
      ASSERT_EQ(r["exclude_seen"], false);
      ASSERT_TRUE(r["unknown_items"].empty());
      served.push_back(r["items"]);
      targets.push_back(items[len]);
      prefix += (len > 1 ? " " : "") + items[len - 1];
      prefixes << prefix << "\n";
    }
    // The session is dropped once replayed (as a client would at its end).
    auto d = c.Delete(("/v1/sessions/test-" + sid).c_str());
    ASSERT_TRUE(d);
    ASSERT_EQ(json::parse(d->body)["dropped"], true);
  }
  prefixes.close();

  // 1. The same lists as `seqrec recommend`.
  CmdResult rec = run("recommend -m " + p(model) + " --input " + p(model + ".prefixes") +
                      " -k 20 --json > " + p(model + ".rec.jsonl"));
  ASSERT_EQ(rec.code, 0) << rec.out;
  std::ifstream lines(p(model + ".rec.jsonl"));
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(n, served.size());
    const json want = json::parse(line);
    ASSERT_EQ(want["items"].size(), served[n].size()) << "prediction " << n;
    if (tol > 0) {
      expect_close_lists(served[n], want["items"], tol, n);
      ++n;
      continue;
    }
    for (size_t r = 0; r < served[n].size(); ++r) {
      ASSERT_EQ(served[n][r]["item"], want["items"][r]["item"])
          << "prediction " << n << " rank " << r;
      ASSERT_EQ(served[n][r]["score"].get<double>(), want["items"][r]["score"].get<double>());
    }
    ++n;
  }
  ASSERT_EQ(n, served.size());

  // 2. Recall@20 and MRR@20 from the served lists, conservative ties.
  std::vector<std::string> prefix_lines;
  {
    std::ifstream pf(p(model + ".prefixes"));
    for (std::string l; std::getline(pf, l);) prefix_lines.push_back(l);
  }
  double hits = 0, rr = 0;
  int64_t ambiguous = 0, fragile = 0;
  for (size_t i = 0; i < served.size(); ++i) {
    const json& list = served[i];
    size_t pos = 0;
    while (pos < list.size() && list[pos]["item"] != targets[i]) ++pos;
    if (tol > 0) {
      // Could rounding move this target's rank (or across the cut)? Then eval may rank it
      // otherwise: count it towards the allowed difference of the metrics.
      const double cut = list.empty() ? 0.0 : list.back()["score"].get<double>();
      bool near = false;
      if (pos < list.size()) {
        const double s = list[pos]["score"].get<double>();
        for (size_t j = 0; j < list.size(); ++j)
          if (j != pos && close(list[j]["score"].get<double>(), s, 2 * tol)) near = true;
      } else if (list.size() == 20) {
        // Not served: eval could still have it at rank 20 if it scores next to the cut;
        // its score is in the full ranking.
        std::vector<std::string> items;
        std::istringstream in(prefix_lines[i]);
        for (std::string t; in >> t;) items.push_back(t);
        int status = 0;
        json full = post(c, "/v1/recommend", {{"items", items}, {"k", 1000}}, &status);
        ASSERT_EQ(status, 200) << full.dump();
        for (const auto& it : full["items"])
          if (it["item"] == targets[i] && close(it["score"].get<double>(), cut, 2 * tol))
            near = true;
      }
      if (near) ++fragile;
    }
    if (pos == list.size()) continue;  // not in the top 20: a miss under any tie rule
    const double s = list[pos]["score"].get<double>();
    int64_t rank = static_cast<int64_t>(pos) + 1;
    for (size_t j = pos + 1; j < list.size(); ++j)
      if (list[j]["score"].get<double>() == s) ++rank;
    if (list.size() == 20 && list.back()["score"].get<double>() == s) {
      // Equal scores may continue past the list: rank on the full list instead.
      ++ambiguous;
      std::vector<std::string> items;
      std::istringstream in(prefix_lines[i]);
      for (std::string t; in >> t;) items.push_back(t);
      int status = 0;
      json full = post(c, "/v1/recommend", {{"items", items}, {"k", 1000}}, &status);
      ASSERT_EQ(status, 200) << full.dump();
      for (size_t r = 0; r < list.size(); ++r) ASSERT_EQ(full["items"][r], list[r]);
      rank = 1;
      for (const auto& it : full["items"])
        if (it["item"] != targets[i] && it["score"].get<double>() >= s) ++rank;
    }
    if (rank <= 20) {
      hits += 1;
      rr += 1.0 / static_cast<double>(rank);
    }
  }
  const double count = static_cast<double>(served.size());
  CmdResult ev = run("eval -m " + p(model) + " " + p("split") + " --cutoffs 20 --json " +
                     p(model + ".eval.json"));
  ASSERT_EQ(ev.code, 0) << ev.out;
  const json e = json::parse(slurp(p(model + ".eval.json")));
  const double recall = e["metrics"]["recall@20"].get<double>();
  const double mrr = e["metrics"]["mrr@20"].get<double>();
  std::printf(
      "[ %s ] %zu predictions replayed (%lld with a tie at the cut, ranked on the "
      "full list; %lld with a near-tie) served recall@20 %.6f mrr@20 %.6f; eval recall@20 "
      "%.6f mrr@20 %.6f\n",
      model.c_str(), served.size(), static_cast<long long>(ambiguous),
      static_cast<long long>(fragile), hits / count, rr / count, recall, mrr);
  EXPECT_EQ(e["n_predictions"].get<int64_t>(), static_cast<int64_t>(served.size()));
  EXPECT_EQ(e["ties"], "conservative");
  EXPECT_NEAR(hits / count, recall, 1e-9 + static_cast<double>(fragile) / count);
  EXPECT_NEAR(rr / count, mrr, 1e-9 + static_cast<double>(fragile) / count);
  EXPECT_EQ(srv.stop(), 0) << srv.log();
}

}  // namespace

TEST_F(Server, ReplayMatchesRecommendAndEvalSr) {
  replay_and_compare("sr.seqrec");
}
TEST_F(Server, ReplayMatchesRecommendAndEvalVsknn) {
  replay_and_compare("vsknn.seqrec");
}
TEST_F(Server, ReplayMatchesRecommendAndEvalGru4rec) {
  replay_and_compare("gru4rec.seqrec", 1e-4);
}
TEST_F(Server, ReplayMatchesRecommendAndEvalSasrec) {
  replay_and_compare("sasrec.seqrec", 1e-4);
}

TEST_F(Server, SequentialModelsExcludeSeenItemsByDefault) {
  ServerProcess srv(dir_, p("seq_sr.seqrec"));
  ASSERT_TRUE(srv.alive()) << srv.log();
  httplib::Client c("127.0.0.1", srv.port());
  const auto users = read_sessions(p("seqsplit/test.tsv"));
  ASSERT_GT(users.size(), 10u);
  std::ofstream prefixes(p("seq.prefixes"));
  std::vector<json> served;
  for (size_t u = 0; u < 40 && u < users.size(); ++u) {
    const auto& items = users[u].second;
    std::vector<std::string> history(items.begin(), items.end() - 1);
    int status = 0;
    json r = post(c, "/v1/events", {{"session_id", users[u].first}, {"items", history}}, &status);
    ASSERT_EQ(status, 200) << r.dump();
    ASSERT_EQ(r["exclude_seen"], true);
    for (const auto& it : r["items"])
      ASSERT_EQ(std::find(history.begin(), history.end(), it["item"].get<std::string>()),
                history.end());
    served.push_back(r["items"]);
    std::string line;
    for (const auto& h : history) line += (line.empty() ? "" : " ") + h;
    prefixes << line << "\n";
  }
  prefixes.close();
  CmdResult rec = run("recommend -m " + p("seq_sr.seqrec") + " --input " + p("seq.prefixes") +
                      " --json > " + p("seq.rec.jsonl"));
  ASSERT_EQ(rec.code, 0) << rec.out;
  std::ifstream lines(p("seq.rec.jsonl"));
  std::string line;
  for (size_t n = 0; std::getline(lines, line); ++n) {
    ASSERT_LT(n, served.size());
    json want = json::parse(line)["items"];
    ASSERT_EQ(want.size(), served[n].size());
    for (size_t r = 0; r < want.size(); ++r) ASSERT_EQ(want[r]["item"], served[n][r]["item"]);
  }
  EXPECT_EQ(srv.stop(), 0);
}

TEST_F(Server, HotReloadKeepsServingAndSignalsWork) {
  const std::string model = p("live.seqrec");
  fs::copy_file(p("sr.seqrec"), model, fs::copy_options::overwrite_existing);
  // Reloads back to back (the limits have a test of their own).
  ServerProcess srv(dir_, model, {"--reload-min-interval", "0"});
  ASSERT_TRUE(srv.alive()) << srv.log();
  httplib::Client c("127.0.0.1", srv.port());
  const auto sessions = read_sessions(p("split/test.tsv"));
  const auto& items = sessions.front().second;
  int status = 0;
  json first = post(c, "/v1/events", {{"session_id", "live"}, {"items", {items[0]}}}, &status);
  ASSERT_EQ(status, 200);
  EXPECT_EQ(first["model_generation"], 1);

  // Requests keep flowing on other connections while the model is swapped.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok{0}, failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 3; ++t) {
    load.emplace_back([&, t] {
      httplib::Client lc("127.0.0.1", srv.port());
      lc.set_read_timeout(30);
      for (int i = 0; !stop; ++i) {
        int st = 0;
        json r = post(lc, "/v1/events",
                      {{"session_id", "bg" + std::to_string(t) + "-" + std::to_string(i % 50)},
                       {"items", {items[static_cast<size_t>(i) % items.size()]}}},
                      &st);
        (st == 200 && !r["items"].empty() ? ok : failed)++;
      }
    });
  }

  // A damaged file: refused with a 500, the old model keeps serving.
  {
    std::string bytes = slurp(model);
    bytes[bytes.size() / 2] ^= 0x5a;
    std::ofstream(model, std::ios::binary | std::ios::trunc) << bytes;
  }
  json bad = post(c, "/v1/reload", json::object(), &status);
  EXPECT_EQ(status, 500);
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("still serving model generation 1"),
            std::string::npos)
      << bad.dump();
  // Another model with the same catalogue: swapped in, the session kept.
  fs::copy_file(p("vsknn.seqrec"), model, fs::copy_options::overwrite_existing);
  json good = post(c, "/v1/reload", json::object(), &status);
  ASSERT_EQ(status, 200) << good.dump();
  EXPECT_EQ(good["generation"], 2);
  EXPECT_EQ(good["catalogue_changed"], false);
  json after = post(c, "/v1/events", {{"session_id", "live"}, {"items", {items[1]}}}, &status);
  EXPECT_EQ(after["session_length"], 2);
  EXPECT_EQ(after["model_generation"], 2);
  auto info = c.Get("/v1/model");
  ASSERT_TRUE(info);
  EXPECT_EQ(json::parse(info->body)["type"], "vsknn");

  // SIGHUP reloads as well.
  fs::copy_file(p("sr.seqrec"), model, fs::copy_options::overwrite_existing);
  srv.signal(SIGHUP);
  int generation = 0;
  for (int i = 0; i < 100 && generation != 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto h = c.Get("/health");
    if (h) generation = json::parse(h->body)["model_generation"].get<int>();
  }
  EXPECT_EQ(generation, 3);
  stop = true;
  for (auto& th : load) th.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(failed.load(), 0);

  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("seqrec_model_reloads_total{result=\"ok\"} 2"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("seqrec_model_reloads_total{result=\"error\"} 1"),
            std::string::npos);

  // SIGTERM: a clean stop.
  EXPECT_EQ(srv.stop(), 0);
  const std::string log = srv.log();
  EXPECT_NE(log.find("SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("stopped"), std::string::npos) << log;
}

TEST_F(Server, StartupErrorsAreReported) {
  CmdResult missing = run("serve " + p("nope.seqrec") + " --port 0");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("nope.seqrec"), std::string::npos) << missing.out;
  ServerProcess srv(dir_, p("sr.seqrec"));
  ASSERT_TRUE(srv.alive()) << srv.log();
  CmdResult busy = run("serve " + p("sr.seqrec") + " --port " + std::to_string(srv.port()));
  EXPECT_EQ(busy.code, 1);
  EXPECT_NE(busy.out.find("cannot listen"), std::string::npos) << busy.out;
  CmdResult badk = run("serve " + p("sr.seqrec") + " --port 0 --default-k 50 --max-k 10");
  EXPECT_EQ(badk.code, 1);
  EXPECT_NE(badk.out.find("default_k"), std::string::npos) << badk.out;
}

// The connection options of `seqrec serve` reach its HTTP layer: --max-connections (503),
// --read-timeout (408), --keep-alive (idle connections closed).
TEST_F(Server, ConnectionOptionsAreApplied) {
  using seqrec_test::RawClient;
  using namespace std::chrono_literals;
  ServerProcess srv(dir_, p("sr.seqrec"),
                    {"--max-connections", "2", "--read-timeout", "0.3", "--keep-alive", "0.5"});
  ASSERT_TRUE(srv.alive()) << srv.log();
  RawClient a(srv.port()), b(srv.port());
  ASSERT_TRUE(a.send(seqrec_test::get("/health")));
  auto r = a.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(b.send("GET /health HTTP/1.1\r\nHost: x"));  // never completed
  RawClient c(srv.port());
  ASSERT_TRUE(c.send(seqrec_test::get("/health")));
  r = c.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("--max-connections 2"), std::string::npos) << r->body;
  r = b.response(3000ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(b.closed_by_server());
  EXPECT_TRUE(a.closed_by_server(3000ms));  // idle beyond --keep-alive
  EXPECT_EQ(srv.stop(), 0);
}

// The network protections of `seqrec serve` (docs/http-api.md#access-control): the API key
// from --api-key-file on the admin endpoints, the Host allow-list, JSON-only bodies, the
// reload interval and the reload's timing fields.
TEST_F(Server, NetworkProtectionsAreApplied) {
  const std::string key = "5f1c0e7a9b3d4c2e8f6a1b0c9d7e3f2a";
  const fs::path key_file = dir_ / "api.key";
  std::ofstream(key_file) << key << "\n";
  fs::permissions(key_file, fs::perms::owner_read | fs::perms::owner_write);
  ServerProcess srv(dir_, p("sr.seqrec"),
                    {"--api-key-file", key_file.string(), "--reload-min-interval", "3600"});
  ASSERT_TRUE(srv.alive()) << srv.log();
  httplib::Client c("127.0.0.1", srv.port());
  const std::string item = read_sessions(p("split/test.tsv")).front().second.front();
  int status = 0;
  post(c, "/v1/events", {{"session_id", "s1"}, {"items", {item}}}, &status);
  EXPECT_EQ(status, 200);  // live traffic needs no key in the default scope
  // The admin endpoints need the key.
  for (const char* path : {"/v1/model", "/metrics", "/v1/sessions/s1"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path;
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer realm=\"seqrec\"");
    r = c.Get(path, {{"Authorization", "Bearer " + key}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << path << " " << r->body;
  }
  json denied = post(c, "/v1/reload", json::object(), &status);
  EXPECT_EQ(status, 401) << denied.dump();
  const httplib::Headers auth = {{"Authorization", "Bearer " + key}};
  auto reload = c.Post("/v1/reload", auth, "", "application/json");
  ASSERT_TRUE(reload);
  ASSERT_EQ(reload->status, 200) << reload->body;
  const json j = json::parse(reload->body);
  EXPECT_EQ(j["generation"], 2);
  EXPECT_GT(j["load_seconds"].get<double>(), 0.0);
  EXPECT_NEAR(j["seconds"].get<double>(),
              j["load_seconds"].get<double>() + j["swap_seconds"].get<double>(), 1e-9);
  reload = c.Post("/v1/reload", auth, "", "application/json");
  ASSERT_TRUE(reload);
  EXPECT_EQ(reload->status, 429) << reload->body;
  EXPECT_FALSE(reload->get_header_value("Retry-After").empty());
  // A page that posts a form or text, and a DNS-rebinding page.
  auto text = c.Post("/v1/events", R"({"session_id": "s1", "items": []})", "text/plain");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->status, 415) << text->body;
  auto rebind = c.Get("/v1/sessions/s1",
                      {{"Authorization", "Bearer " + key}, {"Host", "rebind.attacker.example"}});
  ASSERT_TRUE(rebind);
  EXPECT_EQ(rebind->status, 421) << rebind->body;
  // SIGHUP is not limited by the interval.
  srv.signal(SIGHUP);
  int generation = 0;
  for (int i = 0; i < 100 && generation != 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto h = c.Get("/health");
    if (h) generation = json::parse(h->body)["model_generation"].get<int>();
  }
  EXPECT_EQ(generation, 3);
  EXPECT_EQ(srv.stop(), 0);
  const std::string log = srv.log();
  EXPECT_NE(log.find("the API key is required on"), std::string::npos) << log;
  // On loopback, with a key file only its owner reads: no warning about either.
  EXPECT_EQ(log.find("warning: listening"), std::string::npos) << log;
  EXPECT_EQ(log.find("readable by other users"), std::string::npos) << log;
}

TEST_F(Server, WarnsWhenListeningBeyondLoopbackWithoutAKey) {
  ServerProcess srv(dir_, p("sr.seqrec"), {"--host", "0.0.0.0"});
  ASSERT_TRUE(srv.alive()) << srv.log();
  httplib::Client c("127.0.0.1", srv.port());
  auto h = c.Get("/health", {{"Host", "recs.example.com"}});  // any host beyond loopback
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(srv.stop(), 0);
  const std::string log = srv.log();
  EXPECT_NE(log.find("warning: listening on 0.0.0.0, beyond loopback, without --api-key-file"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("warning: any Host name is accepted"), std::string::npos) << log;
}

TEST_F(Server, AccessOptionErrorsAreReported) {
  const fs::path empty = dir_ / "empty.key";
  std::ofstream(empty) << "\n";
  CmdResult r = run("serve " + p("sr.seqrec") + " --port 0 --api-key-file " + empty.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("seqrec: error: --api-key-file '" + empty.string() + "'"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("empty"), std::string::npos) << r.out;
  r = run("serve " + p("sr.seqrec") + " --port 0 --api-key-file " + p("missing.key"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("missing.key"), std::string::npos) << r.out;
  r = run("serve " + p("sr.seqrec") + " --port 0 --allowed-hosts 'a b'");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("allowed_hosts: 'a b' is not a host name"), std::string::npos) << r.out;
  // A key readable by others is served, with a warning.
  const fs::path open_key = dir_ / "open.key";
  std::ofstream(open_key) << "0123456789abcdef0123456789abcdef\n";
  fs::permissions(open_key, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                fs::perms::others_read);
  ServerProcess srv(dir_, p("sr.seqrec"), {"--api-key-file", open_key.string()});
  ASSERT_TRUE(srv.alive()) << srv.log();
  EXPECT_EQ(srv.stop(), 0);
  EXPECT_NE(srv.log().find("is readable by other users (mode 0644); chmod 600 it"),
            std::string::npos)
      << srv.log();
}
