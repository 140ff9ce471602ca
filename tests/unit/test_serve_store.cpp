// Session stores beyond one process (docs/http-api.md#session-stores): the session encoding
// and fingerprints, snapshots of the memory store, the bounded replay after a reload, and
// the Redis store shared by several Recommenders (skipped with a message when redis-server
// is missing; a throwaway one runs on a free loopback port).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "redis_process.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"
#include "serve/redis_store.hpp"
#include "serve/session_codec.hpp"
#include "test_data_util.hpp"

using namespace seqrec;
namespace fs = std::filesystem;

namespace {

/// A folder per test.
class StoreTmp : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("seqrec_store_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

EventLog small_log(uint64_t seed, int32_t items) {
  GenerateOptions o;
  o.n_events = 6000;
  o.n_items = items;
  o.mean_length = 6.0;
  o.seed = seed;
  return generate_sessions(o);
}

/// A small GRU4Rec (or another type) trained on small_log(seed, items), written to `path`.
std::string train_file(const std::string& path, const std::string& type, uint64_t seed,
                       int32_t items = 120, uint64_t data_seed = 5) {
  EventLog log = small_log(data_seed, items);
  Config c = default_config(type);
  if (type == "gru4rec") {
    c.set("layers", "8");
    c.set("batch_size", "16");
    c.set("n_sample", "16");
    c.set("n_epochs", "1");
  }
  ModelBundle b;
  b.model = create_model(type, c);
  FitContext ctx;
  ctx.progress = false;
  ctx.seed = seed;
  ctx.threads = 1;
  b.model->fit(log.seqs, log.items.size(), ctx);
  b.items = log.items;
  b.meta = {{"protocol", "session"}};
  save_model(path, b);
  return path;
}

RecommenderOptions opts() {
  RecommenderOptions o;
  o.sweep_interval_seconds = 0;
  return o;
}

SessionRequest events(const std::string& id, std::vector<std::string> items, int32_t k = 10) {
  SessionRequest r;
  r.session_id = id;
  for (auto& i : items) r.events.push_back({std::move(i), std::nullopt});
  r.options.k = k;
  return r;
}

/// The catalogue of a model file, to build sessions from.
std::vector<std::string> vocab_of(const std::string& model) {
  return load_model(model).items.tokens();
}

void expect_same(const Recommendation& a, const Recommendation& b, const std::string& where) {
  ASSERT_EQ(a.items.size(), b.items.size()) << where;
  for (size_t i = 0; i < a.items.size(); ++i) {
    EXPECT_EQ(a.items[i].item, b.items[i].item) << where << " rank " << i;
    EXPECT_EQ(a.items[i].score, b.items[i].score) << where << " rank " << i;
  }
  EXPECT_EQ(a.session_length, b.session_length) << where;
}

/// Session j of a fixed pseudo-random pattern over the catalogue `v`.
std::vector<std::string> session_items(const std::vector<std::string>& v, int j, int len) {
  std::vector<std::string> out;
  for (int t = 0; t < len; ++t)
    out.push_back(v[static_cast<size_t>(j * 37 + t * t * 11 + t) % v.size()]);
  return out;
}

}  // namespace

TEST(ServeSessionCodec, RoundTripAndDamagedBytes) {
  serve::StoredSession s;
  s.catalogue_fp = 0x1234567890abcdefULL;
  s.model_fp = 42;
  s.length = 7;
  s.last_event_timestamp = 1700000000.25;
  s.last_used_unix = 1700000001.5;
  s.history = {3, 1, 4, 1, 5};
  s.state = std::string("\0state\xff", 7);
  const std::string bytes = serve::encode_session(s);
  serve::StoredSession back;
  ASSERT_TRUE(serve::decode_session(bytes, back));
  EXPECT_EQ(back.catalogue_fp, s.catalogue_fp);
  EXPECT_EQ(back.model_fp, s.model_fp);
  EXPECT_EQ(back.length, 7);
  EXPECT_EQ(back.last_event_timestamp, s.last_event_timestamp);
  EXPECT_EQ(back.last_used_unix, s.last_used_unix);
  EXPECT_EQ(back.history, s.history);
  EXPECT_EQ(back.state, s.state);
  s.last_event_timestamp.reset();
  ASSERT_TRUE(serve::decode_session(serve::encode_session(s), back));
  EXPECT_FALSE(back.last_event_timestamp.has_value());
  std::string why;
  EXPECT_FALSE(serve::decode_session(bytes.substr(0, bytes.size() - 1), back, &why));
  EXPECT_NE(why.find("truncated"), std::string::npos) << why;
  EXPECT_FALSE(serve::decode_session(bytes + "x", back, &why));
  EXPECT_FALSE(serve::decode_session("junk", back, &why));
  std::string v2 = bytes;
  v2[4] = 9;
  EXPECT_FALSE(serve::decode_session(v2, back, &why));
  EXPECT_NE(why.find("version"), std::string::npos) << why;
}

TEST(ServeSessionCodec, ParsesRedisUrls) {
  auto a = serve::parse_redis_url("redis://10.0.0.5:6380/2", "x");
  EXPECT_EQ(a.host, "10.0.0.5");
  EXPECT_EQ(a.port, 6380);
  EXPECT_EQ(a.db, 2);
  EXPECT_EQ(a.url(), "redis://10.0.0.5:6380/2");
  auto b = serve::parse_redis_url("redis://cache", "x");
  EXPECT_EQ(b.port, 6379);
  EXPECT_EQ(b.db, 0);
  auto c = serve::parse_redis_url("redis://[::1]:7000", "x");
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.port, 7000);
  for (const char* bad : {"memcached://x", "redis://", "redis://h:0", "redis://h:99999",
                          "redis://h:1/x", "redis://user:pw@h:1"})
    EXPECT_THROW(serve::parse_redis_url(bad, "session_store"), InputError) << bad;
  RecommenderOptions o = opts();
  o.session_store = "redis:/oops";
  const test::TempDir dir;
  const std::string model = dir.file("pop.seqrec");
  try {
    train_file(model, "pop", 1);
    Recommender rec(model, o);
    FAIL() << "accepted a bad session store";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("session_store"), std::string::npos) << e.what();
  }
}

TEST_F(StoreTmp, FingerprintsAreThoseOfTheFile) {
  const std::string a = train_file(path("a.seqrec"), "gru4rec", 1);
  const std::string b = train_file(path("b.seqrec"), "gru4rec", 2);  // other weights
  ModelBundle a1 = load_model(a), a2 = load_model(a), b1 = load_model(b);
  EXPECT_EQ(serve::model_fingerprint(*a1.model), serve::model_fingerprint(*a2.model));
  EXPECT_NE(serve::model_fingerprint(*a1.model), serve::model_fingerprint(*b1.model));
  EXPECT_EQ(serve::catalogue_fingerprint(a1.items), serve::catalogue_fingerprint(b1.items));
  Vocab other = a1.items;
  other.add("one-more");
  EXPECT_NE(serve::catalogue_fingerprint(a1.items), serve::catalogue_fingerprint(other));
}

TEST_F(StoreTmp, SnapshotKeepsEverySessionAndItsState) {
  const std::string model = train_file(path("g.seqrec"), "gru4rec", 1);
  const std::vector<std::string> V = vocab_of(model);
  RecommenderOptions o = opts();
  Recommender a(model, o);
  for (int j = 0; j < 30; ++j) {
    SessionRequest r = events("s" + std::to_string(j), session_items(V, j, 1 + j % 7));
    r.events.back().timestamp = 1000.0 + j;
    a.add_events(r);
  }
  EXPECT_EQ(a.save_session_snapshot(path("sessions.snap")), 30);
  o.session_snapshot = path("sessions.snap");
  Recommender b(model, o);
  EXPECT_EQ(b.stats().sessions_restored, 30);
  EXPECT_EQ(b.stats().live_sessions, 30);
  for (int j = 0; j < 30; ++j) {
    const std::string id = "s" + std::to_string(j);
    auto ia = a.session_info(id), ib = b.session_info(id);
    ASSERT_TRUE(ia && ib) << id;
    EXPECT_EQ(ia->history, ib->history);
    EXPECT_EQ(ia->length, ib->length);
    EXPECT_EQ(ia->last_event_timestamp, ib->last_event_timestamp);
    // The state came back exactly: the next answers are the same, bit for bit.
    expect_same(a.add_events(events(id, session_items(V, j + 1, 2))),
                b.add_events(events(id, session_items(V, j + 1, 2))), id);
  }
  // save_session_snapshot() with no file, and on the Redis store, are errors.
  EXPECT_THROW(a.save_session_snapshot(), Error);
}

TEST_F(StoreTmp, SnapshotRefusesDamagedFilesAndSkipsAnotherCatalogue) {
  const std::string model = train_file(path("g.seqrec"), "gru4rec", 1);
  const std::vector<std::string> V = vocab_of(model);
  Recommender a(model, opts());
  for (int j = 0; j < 5; ++j) a.add_events(events("s" + std::to_string(j), session_items(V, j, 3)));
  const std::string snap = path("s.snap");
  ASSERT_EQ(a.save_session_snapshot(snap), 5);
  std::string bytes;
  {
    std::ifstream f(snap, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  auto message = [&](const std::string& content) -> std::string {
    {
      std::ofstream f(path("bad.snap"), std::ios::binary);
      f << content;
    }
    RecommenderOptions o = opts();
    o.session_snapshot = path("bad.snap");
    try {
      Recommender r(model, o);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message(bytes.substr(0, bytes.size() / 2)).find("truncated"), std::string::npos);
  EXPECT_NE(message("hello world, not a snapshot").find("not a seqrec session snapshot"),
            std::string::npos);
  std::string flipped = bytes;
  flipped[40] ^= 1;
  const std::string m = message(flipped);
  EXPECT_NE(m.find("corrupt"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.snap"), std::string::npos) << m;
  // A model of another catalogue keeps none of them (and says so in its stats).
  const std::string other = train_file(path("o.seqrec"), "sr", 1, 90, 6);
  RecommenderOptions o = opts();
  o.session_snapshot = snap;
  Recommender b(other, o);
  EXPECT_EQ(b.stats().sessions_restored, 0);
  EXPECT_EQ(b.stats().sessions_restore_skipped, 5);
  EXPECT_EQ(b.stats().live_sessions, 0);
}

TEST_F(StoreTmp, ReloadReplaysABoundedSuffix) {
  const std::string model = train_file(path("g.seqrec"), "gru4rec", 1);
  const std::vector<std::string> V = vocab_of(model);
  const std::vector<std::string> items = session_items(V, 3, 12);
  for (int bound : {0, 4}) {
    RecommenderOptions o = opts();
    o.reload_replay_events = bound;
    Recommender rec(model, o);
    rec.add_events(events("long", items));
    rec.reload();
    const Recommendation after = rec.add_events(events("long", {}));
    EXPECT_EQ(after.session_length, 12);
    EXPECT_EQ(after.model_generation, 2u);
    // The same as a fresh session of the last `bound` events (all of them for 0).
    const std::vector<std::string> tail(items.end() - (bound ? bound : 12), items.end());
    Recommendation fresh = rec.add_events(events("fresh-" + std::to_string(bound), tail));
    fresh.session_length = 12;
    expect_same(after, fresh, "bound " + std::to_string(bound));
    // Its history is kept whole.
    EXPECT_EQ(rec.session_info("long")->history, items);
  }
}

// ---- the Redis store -------------------------------------------------------------------

class RedisStoreTest : public StoreTmp {
 protected:
  void SetUp() override {
    StoreTmp::SetUp();
    redis_ = std::make_unique<seqrec_test::RedisProcess>(dir_ / "redis");
    if (redis_->missing()) GTEST_SKIP() << "redis-server is not installed (scripts/setup)";
    ASSERT_TRUE(redis_->running());
  }
  void TearDown() override {
    redis_.reset();
    StoreTmp::TearDown();
  }
  RecommenderOptions redis_opts() const {
    RecommenderOptions o = opts();
    o.session_store = redis_->url();
    o.session_key_prefix = "test:" + std::to_string(::getpid()) + ":";
    return o;
  }
  std::unique_ptr<seqrec_test::RedisProcess> redis_;
};

TEST_F(RedisStoreTest, TwoRecommendersAlternatingEqualOneInMemory) {
  for (const char* type : {"gru4rec", "sr"}) {
    const std::string model = train_file(path(std::string(type) + ".seqrec"), type, 1);
    const std::vector<std::string> V = vocab_of(model);
    Recommender a(model, redis_opts()), b(model, redis_opts()), one(model, opts());
    for (int j = 0; j < 12; ++j) {
      const std::string id = std::string(type) + "-s" + std::to_string(j);
      const auto items = session_items(V, j, 2 + j % 9);
      for (size_t t = 0; t < items.size(); ++t) {
        Recommender& r = (t % 2 == 0) ? a : b;
        const Recommendation got = r.add_events(events(id, {items[t]}));
        const Recommendation want = one.add_events(events(id, {items[t]}));
        expect_same(got, want, id + " event " + std::to_string(t));
        EXPECT_EQ(got.new_session, t == 0);
      }
      auto info = b.session_info(id);
      ASSERT_TRUE(info.has_value());
      EXPECT_EQ(info->history, items);
      EXPECT_EQ(info->length, static_cast<int64_t>(items.size()));
      EXPECT_TRUE(a.drop_session(id));
      EXPECT_FALSE(b.drop_session(id));
      EXPECT_FALSE(b.session_info(id).has_value());
    }
    EXPECT_TRUE(a.session_store_health().ok);
    EXPECT_EQ(a.session_store_health().type, "redis");
    EXPECT_THROW(a.save_session_snapshot(path("x.snap")), Error);
  }
}

TEST_F(RedisStoreTest, ConcurrentUpdatesOfOneSessionKeepEveryEvent) {
  const std::string model = train_file(path("g.seqrec"), "gru4rec", 1);
  const std::vector<std::string> V = vocab_of(model);
  RecommenderOptions o = redis_opts();
  o.session_store_timeout_seconds = 5;  // a loaded test machine must not turn into 503s
  Recommender a(model, o), b(model, o);
  constexpr int kThreads = 4, kEach = 40;
  std::atomic<int> failed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      Recommender& r = t % 2 ? a : b;
      for (int e = 0; e < kEach; ++e) {
        try {
          r.add_events(events("shared", {V[static_cast<size_t>(t * kEach + e) % V.size()]}));
        } catch (const std::exception&) {
          ++failed;
        }
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(failed.load(), 0);
  auto info = a.session_info("shared");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->length, kThreads * kEach);
  std::printf("[ info ] %lld + %lld optimistic retries\n",
              static_cast<long long>(a.stats().session_store_retries),
              static_cast<long long>(b.stats().session_store_retries));
}

TEST_F(RedisStoreTest, AnotherModelRecomputesTheStateAnotherCatalogueResets) {
  const std::string m1 = train_file(path("g1.seqrec"), "gru4rec", 1);
  const std::string m2 = train_file(path("g2.seqrec"), "gru4rec", 2);  // same catalogue
  const std::string m3 = train_file(path("g3.seqrec"), "gru4rec", 1, 90, 6);
  const std::vector<std::string> V = vocab_of(m1);
  Recommender a(m1, redis_opts()), b(m2, redis_opts()), c(m3, redis_opts());
  const auto items = session_items(V, 4, 6);
  a.add_events(events("s", items));
  // b: same catalogue, other weights: the state is rebuilt from the history through b.
  const Recommendation via_b = b.add_events(events("s", {}));
  Recommendation fresh = b.add_events(events("fresh", items));
  expect_same(via_b, fresh, "recomputed");
  EXPECT_FALSE(via_b.session_reset);
  // c: another catalogue: the session starts again.
  const Recommendation via_c = c.add_events(events("s", {}));
  EXPECT_TRUE(via_c.session_reset);
  EXPECT_EQ(via_c.session_length, 0);
}

TEST_F(RedisStoreTest, AnUnreachableStoreFailsFastThenRecovers) {
  const std::string model = train_file(path("g.seqrec"), "gru4rec", 1);
  const std::vector<std::string> V = vocab_of(model);
  RecommenderOptions o = redis_opts();
  o.session_store_timeout_seconds = 0.3;
  Recommender rec(model, o);
  rec.add_events(events("s", session_items(V, 1, 3)));
  redis_->stop(SIGKILL);
  EXPECT_THROW(rec.add_events(events("s", {V[0]})), SessionStoreUnavailable);
  EXPECT_THROW(rec.session_info("s"), SessionStoreUnavailable);
  EXPECT_THROW(rec.drop_session("s"), SessionStoreUnavailable);
  const SessionStoreHealth h = rec.session_store_health();
  EXPECT_FALSE(h.ok);
  EXPECT_NE(h.error.find(redis_->url()), std::string::npos) << h.error;
  // What needs no session still works.
  ItemsRequest ir;
  ir.items = session_items(V, 1, 3);
  EXPECT_FALSE(rec.recommend(ir).items.empty());
  EXPECT_GE(rec.stats().session_store_failures, 3);
  // A hung Redis (accepts, answers nothing) fails within the timeout too.
  ASSERT_TRUE(redis_->start());
  redis_->pause();
  EXPECT_THROW(rec.add_events(events("t", {V[0]})), SessionStoreUnavailable);
  redis_->resume();
  // Back: requests succeed again without a restart (after the reconnect backoff, < 1 s).
  bool ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    try {
      ok = rec.add_events(events("u", {V[0]})).session_length == 1;
    } catch (const SessionStoreUnavailable&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  EXPECT_TRUE(ok);
  EXPECT_TRUE(rec.session_store_health().ok);
}
