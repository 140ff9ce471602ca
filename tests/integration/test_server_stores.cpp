// Session stores across processes (docs/http-api.md#session-stores), with real `seqrec serve`
// processes on loopback and a throwaway redis-server (tests/redis_process.hpp; the Redis
// tests skip with a message when redis-server is missing):
// - the test set replayed through two replicas sharing Redis, alternating per event, gives
//   exactly the answers of one process with the memory store (whose answers
//   test_server.cpp's ReplayMatchesRecommendAndEval* check against `seqrec recommend` and
//   `seqrec eval`);
// - two replicas updating one session at the same time keep every event;
// - SIGKILL of a replica under load loses no session (the state is in Redis);
// - SIGTERM + restart with --session-snapshot loses none (memory store), and a damaged
//   snapshot is refused at start;
// - Redis killed and restarted under load: 503 while it is gone (and /v1/recommend,
//   /health keep answering), then recovery without restarting seqrec.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cli_runner.hpp"
#include "integration/server_process.hpp"
#include "redis_process.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using seqrec_test::CmdResult;
using seqrec_test::RedisProcess;
using seqrec_test::run;
using seqrec_test::ServeProcess;

namespace {

json post(httplib::Client& c, const std::string& path, const json& body, int* status) {
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  if (!res) {
    *status = -1;
    return json();
  }
  *status = res->status;
  return json::parse(res->body, nullptr, false);
}

json get(httplib::Client& c, const std::string& path, int* status) {
  auto res = c.Get(path.c_str());
  if (!res) {
    *status = -1;
    return json();
  }
  *status = res->status;
  return json::parse(res->body, nullptr, false);
}

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

}  // namespace

class ServerStores : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::path(::testing::TempDir()) / ("seqrec_stores_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    auto ok = [](const CmdResult& r) { ASSERT_EQ(r.code, 0) << r.out; };
    ok(run("generate --events 20000 --items 500 --seed 7 -o " + d + "/log.tsv"));
    ok(run("prepare " + d + "/log.tsv -o " + d + "/split --cache-dir none"));
    ok(run("train " + d + "/split -m sr -o " + d + "/sr.seqrec"));
    ok(run("train " + d + "/split -m gru4rec --layers 32 --batch-size 16 --n-sample 64 " +
           "--n-epochs 2 -o " + d + "/gru4rec.seqrec"));
    sessions_ = read_sessions(dir_ / "split/test.tsv");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string p(const std::string& name) { return (dir_ / name).string(); }

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    if (std::string(info->name()).find("Redis") == std::string::npos &&
        std::string(info->name()).find("Replica") == std::string::npos)
      return;
    redis_ = std::make_unique<RedisProcess>(dir_ / ("redis_" + std::string(info->name())));
    if (redis_->missing()) GTEST_SKIP() << "redis-server is not installed (scripts/setup)";
    ASSERT_TRUE(redis_->running());
  }
  void TearDown() override { redis_.reset(); }
  std::vector<std::string> redis_args(double timeout = 5) const {
    return {"--session-store", redis_->url(), "--session-store-timeout", std::to_string(timeout)};
  }

  static inline fs::path dir_;
  static inline std::vector<std::pair<std::string, std::vector<std::string>>> sessions_;
  std::unique_ptr<RedisProcess> redis_;
};

TEST_F(ServerStores, ReplicasAlternatingPerEventEqualOneProcess) {
  for (const char* model : {"gru4rec", "sr"}) {
    const std::string file = p(std::string(model) + ".seqrec");
    ServeProcess a(dir_, file, redis_args()), b(dir_, file, redis_args()), one(dir_, file);
    ASSERT_TRUE(a.alive() && b.alive() && one.alive()) << a.log() << b.log() << one.log();
    httplib::Client ca("127.0.0.1", a.port()), cb("127.0.0.1", b.port()),
        c1("127.0.0.1", one.port());
    int64_t predictions = 0;
    for (size_t s = 0; s < sessions_.size() && s < 300; ++s) {
      const auto& [sid, items] = sessions_[s];
      const std::string id = std::string(model) + "-" + sid;
      for (size_t t = 0; t + 1 < items.size(); ++t) {
        const json body = {{"session_id", id}, {"items", {items[t]}}, {"k", 20}};
        int st = 0, st1 = 0;
        json got = post(t % 2 ? cb : ca, "/v1/events", body, &st);
        json want = post(c1, "/v1/events", body, &st1);
        ASSERT_EQ(st, 200) << got.dump();
        ASSERT_EQ(st1, 200) << want.dump();
        // Same binary, same scoring path, the state restored bit for bit: equal answers.
        ASSERT_EQ(got["items"], want["items"]) << id << " event " << t;
        ASSERT_EQ(got["session_length"], static_cast<int64_t>(t + 1));
        ASSERT_EQ(got["new_session"], t == 0);
        ++predictions;
      }
      int st = 0;
      json info = get(cb, "/v1/sessions/" + id, &st);
      ASSERT_EQ(st, 200) << info.dump();
      EXPECT_EQ(info["length"], static_cast<int64_t>(items.size() - 1));
      auto d = ca.Delete(("/v1/sessions/" + id).c_str());
      ASSERT_TRUE(d);
      EXPECT_EQ(json::parse(d->body)["dropped"], true);
    }
    std::printf("[ %s ] %lld predictions through two replicas equal one process's\n", model,
                static_cast<long long>(predictions));
    EXPECT_GT(predictions, 100);
    EXPECT_EQ(a.stop(), 0) << a.log();
    EXPECT_NE(a.log().find("sessions stay in redis://"), std::string::npos) << a.log();
  }
}

TEST_F(ServerStores, ReplicasUpdatingOneSessionKeepEveryEvent) {
  const std::string file = p("gru4rec.seqrec");
  ServeProcess a(dir_, file, redis_args()), b(dir_, file, redis_args());
  ASSERT_TRUE(a.alive() && b.alive()) << a.log() << b.log();
  const auto& items = sessions_.front().second;
  constexpr int kThreads = 4, kEach = 60;
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", t % 2 ? a.port() : b.port());
      c.set_read_timeout(30);
      for (int e = 0; e < kEach; ++e) {
        int st = 0;
        post(c, "/v1/events",
             {{"session_id", "hot"}, {"items", {items[static_cast<size_t>(e) % items.size()]}}},
             &st);
        if (st != 200) ++bad;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  httplib::Client c("127.0.0.1", a.port());
  int st = 0;
  json info = get(c, "/v1/sessions/hot", &st);
  ASSERT_EQ(st, 200);
  EXPECT_EQ(info["length"], kThreads * kEach);
}

TEST_F(ServerStores, SigkillOfAReplicaUnderLoadLosesNoSession) {
  const std::string file = p("gru4rec.seqrec");
  auto a = std::make_unique<ServeProcess>(dir_, file, redis_args());
  ServeProcess b(dir_, file, redis_args());
  ASSERT_TRUE(a->alive() && b.alive()) << a->log() << b.log();
  const int port_a = a->port(), port_b = b.port();
  // Clients send to A and B alternately; once A is gone they send to B only (what a load
  // balancer does). Per session: events acknowledged (200), and events whose request
  // failed without an answer (applied or not: unknown).
  constexpr int kClients = 4, kSessions = 10;
  std::mutex mu;
  std::map<std::string, std::pair<int64_t, int64_t>> counts;  // acked, unknown
  std::atomic<bool> a_dead{false}, stop{false};
  std::atomic<int64_t> sent{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kClients; ++t)
    ts.emplace_back([&, t] {
      httplib::Client ca("127.0.0.1", port_a), cb("127.0.0.1", port_b);
      ca.set_read_timeout(10);
      cb.set_read_timeout(10);
      for (int i = 0; !stop; ++i) {
        const std::string id = "k" + std::to_string(t) + "-" + std::to_string(i % kSessions);
        const auto& items = sessions_[static_cast<size_t>(i) % sessions_.size()].second;
        const bool to_a = !a_dead && i % 2 == 0;
        int st = 0;
        post(to_a ? ca : cb, "/v1/events", {{"session_id", id}, {"items", {items[0]}}}, &st);
        std::lock_guard<std::mutex> lock(mu);
        if (st == 200)
          ++counts[id].first;
        else
          ++counts[id].second;
        ++sent;
      }
    });
  while (sent < 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  a->kill9();
  a_dead = true;
  const int64_t at_kill = sent;
  while (sent < at_kill + 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (auto& t : ts) t.join();
  httplib::Client c("127.0.0.1", port_b);
  int64_t unknown = 0;
  for (const auto& [id, n] : counts) {
    int st = 0;
    json info = get(c, "/v1/sessions/" + id, &st);
    ASSERT_EQ(st, 200) << id << " lost";
    EXPECT_GE(info["length"].get<int64_t>(), n.first) << id;
    EXPECT_LE(info["length"].get<int64_t>(), n.first + n.second) << id;
    unknown += n.second;
  }
  EXPECT_EQ(counts.size(), static_cast<size_t>(kClients * kSessions));
  std::printf("[ info ] %lld requests failed when the replica was killed\n",
              static_cast<long long>(unknown));
}

TEST_F(ServerStores, SigtermAndRestartWithASnapshotLosesNoSession) {
  const std::string file = p("gru4rec.seqrec");
  const std::string snap = p("sessions.snap");
  fs::remove(snap);
  const std::vector<std::string> args = {"--session-snapshot", snap};
  auto srv = std::make_unique<ServeProcess>(dir_, file, args);
  ASSERT_TRUE(srv->alive()) << srv->log();
  // Load on several connections; SIGTERM in the middle of it.
  constexpr int kClients = 3, kSessions = 8;
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> acked;  // events answered 200, in order
  std::atomic<bool> stop{false};
  std::atomic<int64_t> sent{0};
  const int port = srv->port();
  std::vector<std::thread> ts;
  for (int t = 0; t < kClients; ++t)
    ts.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(10);
      for (int i = 0; !stop; ++i) {
        const std::string id = "m" + std::to_string(t) + "-" + std::to_string(i % kSessions);
        const auto& items = sessions_[static_cast<size_t>(i * 7 + t) % sessions_.size()].second;
        const std::string item = items[static_cast<size_t>(i) % items.size()];
        int st = 0;
        post(c, "/v1/events", {{"session_id", id}, {"items", {item}}}, &st);
        ++sent;
        if (st == 200) {
          std::lock_guard<std::mutex> lock(mu);
          acked[id].push_back(item);
        } else if (st == -1) {
          break;  // the server is gone
        }
      }
    });
  while (sent < 300) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(srv->stop(), 0) << srv->log();
  stop = true;
  for (auto& t : ts) t.join();
  const std::string log1 = srv->log();
  EXPECT_NE(log1.find("live sessions written to " + snap), std::string::npos) << log1;
  ASSERT_TRUE(fs::exists(snap));

  ServeProcess again(dir_, file, args);
  ASSERT_TRUE(again.alive()) << again.log();
  EXPECT_NE(again.log().find(std::to_string(acked.size()) + " sessions restored"),
            std::string::npos)
      << again.log();
  ServeProcess ref(dir_, file);  // never restarted: gets each session's events in one go
  httplib::Client c("127.0.0.1", again.port()), cr("127.0.0.1", ref.port());
  for (const auto& [id, items] : acked) {
    int st = 0;
    json info = get(c, "/v1/sessions/" + id, &st);
    ASSERT_EQ(st, 200) << id << " lost";
    // Requests in flight at SIGTERM were finished and answered: nothing more, nothing less.
    EXPECT_EQ(info["length"], static_cast<int64_t>(items.size())) << id;
    EXPECT_EQ(info["history"], json(items)) << id;
    // And the state came back: the next answer equals a never-restarted server's.
    std::vector<std::string> all = items;
    all.push_back(items.front());
    json got = post(c, "/v1/events", {{"session_id", id}, {"items", {items.front()}}}, &st);
    ASSERT_EQ(st, 200);
    json want = post(cr, "/v1/events", {{"session_id", id}, {"items", all}}, &st);
    ASSERT_EQ(st, 200);
    EXPECT_EQ(got["items"], want["items"]) << id;
  }
}

TEST_F(ServerStores, ADamagedSnapshotIsRefusedAtStart) {
  const std::string snap = p("damaged.snap");
  std::ofstream(snap) << "not a snapshot";
  CmdResult r = run("serve " + p("sr.seqrec") + " --port 0 --session-snapshot " + snap);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(snap + ": not a seqrec session snapshot"), std::string::npos) << r.out;
  CmdResult both = run("serve " + p("sr.seqrec") +
                       " --port 0 --session-store redis://127.0.0.1:1 --session-snapshot " + snap);
  EXPECT_EQ(both.code, 1) << both.out;
  EXPECT_NE(both.out.find("session_snapshot is for the memory store"), std::string::npos)
      << both.out;
}

TEST_F(ServerStores, RedisKilledAndRestartedUnderLoad) {
  const std::string file = p("gru4rec.seqrec");
  ServeProcess srv(dir_, file, redis_args(0.3));
  ASSERT_TRUE(srv.alive()) << srv.log();
  const int port = srv.port();
  const auto& items = sessions_.front().second;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<int> statuses;
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t)
    ts.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(10);  // far above the store's timeout: a hang would show as -1
      for (int i = 0; !stop; ++i) {
        int st = 0;
        post(c, "/v1/events",
             {{"session_id", "r" + std::to_string(t) + "-" + std::to_string(i % 20)},
              {"items", {items[static_cast<size_t>(i) % items.size()]}}},
             &st);
        std::lock_guard<std::mutex> lock(mu);
        statuses.push_back(st);
      }
    });
  auto count = [&](int status, size_t from) {
    std::lock_guard<std::mutex> lock(mu);
    int64_t n = 0;
    for (size_t i = from; i < statuses.size(); ++i) n += statuses[i] == status;
    return n;
  };
  auto size = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return statuses.size();
  };
  while (count(200, 0) < 100) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  redis_->stop(SIGKILL);
  const size_t killed_at = size();
  while (count(503, killed_at) < 50) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // While it is gone: what needs no session answers; /health says what is wrong.
  httplib::Client c("127.0.0.1", port);
  int st = 0;
  json rec = post(c, "/v1/recommend", {{"items", {items[0]}}}, &st);
  EXPECT_EQ(st, 200) << rec.dump();
  json health = get(c, "/health", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(health["status"], "degraded") << health.dump();
  EXPECT_EQ(health["session_store"]["type"], "redis");
  EXPECT_EQ(health["session_store"]["ok"], false);
  EXPECT_FALSE(health["session_store"]["error"].get<std::string>().empty());
  json err = post(c, "/v1/events", {{"session_id", "x"}, {"items", {items[0]}}}, &st);
  EXPECT_EQ(st, 503);
  EXPECT_NE(err["error"]["message"].get<std::string>().find("unavailable"), std::string::npos);
  // Back on the same port: served again, no restart of seqrec.
  ASSERT_TRUE(redis_->start());
  const size_t back_at = size();
  for (int i = 0; i < 400 && count(200, back_at) < 100; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_GE(count(200, back_at), 100);
  for (int s : statuses) EXPECT_TRUE(s == 200 || s == 503) << s;
  EXPECT_TRUE(srv.running());
  health = get(c, "/health", &st);
  EXPECT_EQ(health["session_store"]["ok"], true) << health.dump();
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->body.find("seqrec_session_store_failures_total 0\n"), std::string::npos);
}
