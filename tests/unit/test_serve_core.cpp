// The recommender core of the server (src/serve): top-K selection, the session store (LRU,
// TTL, memory bound), the Recommender (state, exclusion, filters, reload) and a thread
// safety smoke test. A small test model with and without incremental state stands in for
// the real ones, so that results can be predicted by hand.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <thread>

#include "core/parallel.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"
#include "serve/session_store.hpp"
#include "serve/topk.hpp"

using namespace seqrec;
namespace fs = std::filesystem;

namespace {

std::atomic<int64_t> g_steps{0};

/// Scores item i after a prefix as (occurrences of i in the last `context` items) + 0.5 if
/// i follows the last item (i == last + 1 mod n). With `incremental`, the same through a
/// state advanced one event at a time (counting Model::step calls in g_steps).
class CountModel final : public Model {
 public:
  CountModel(int32_t n, bool incremental, int32_t context = 0)
      : n_(n), incremental_(incremental), context_(context) {}
  std::string type() const override { return incremental_ ? "count-inc" : "count"; }
  const Config& config() const override { return config_; }
  int32_t n_items() const override { return n_; }
  void fit(const SequenceSet&, int32_t, const FitContext&) override {}
  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override {
    for (size_t q = 0; q < queries.size(); ++q) {
      auto seq =
          seqs[static_cast<size_t>(queries[q].seq)].first(static_cast<size_t>(queries[q].len));
      if (context_ > 0 && seq.size() > static_cast<size_t>(context_))
        seq = seq.subspan(seq.size() - static_cast<size_t>(context_));
      float* row = out + q * static_cast<size_t>(n_);
      std::fill(row, row + n_, 0.0f);
      for (int32_t i : seq) row[i] += 1.0f;
      row[(seq.back() + 1) % n_] += 0.5f;
    }
  }
  int32_t context_length() const override { return context_; }

  struct State : SessionState {
    std::vector<float> counts;
    int32_t last = -1;
    std::unique_ptr<SessionState> clone() const override { return std::make_unique<State>(*this); }
    size_t bytes() const override { return sizeof(*this) + counts.capacity() * sizeof(float); }
  };
  std::unique_ptr<SessionState> new_state() const override {
    if (!incremental_) return nullptr;
    auto s = std::make_unique<State>();
    s->counts.assign(static_cast<size_t>(n_), 0.0f);
    return s;
  }
  void step(SessionState& st, int32_t item) const override {
    ++g_steps;
    auto& s = static_cast<State&>(st);
    s.counts[static_cast<size_t>(item)] += 1.0f;
    s.last = item;
  }
  void score_state(const SessionState& st, float* out) const override {
    const auto& s = static_cast<const State&>(st);
    std::copy(s.counts.begin(), s.counts.end(), out);
    if (s.last >= 0) out[(s.last + 1) % n_] += 0.5f;
  }
  void save(TensorWriter&) const override {}
  void load(const TensorReader&) override {}

 private:
  int32_t n_;
  bool incremental_;
  int32_t context_;
  Config config_;
};

/// Items "i0".."i{n-1}".
ModelBundle count_bundle(int32_t n, bool incremental, const std::string& protocol = "session",
                         int32_t context = 0, const std::string& prefix = "i") {
  ModelBundle b;
  b.model = std::make_unique<CountModel>(n, incremental, context);
  for (int32_t i = 0; i < n; ++i) b.items.add(prefix + std::to_string(i));
  b.meta = {{"protocol", protocol}};
  return b;
}

RecommenderOptions quiet_options() {
  RecommenderOptions o;
  o.sweep_interval_seconds = 0;
  return o;
}

SessionRequest events(const std::string& id, std::vector<std::string> items, int32_t k = 0) {
  SessionRequest r;
  r.session_id = id;
  for (auto& i : items) r.events.push_back({std::move(i), std::nullopt});
  if (k > 0) r.options.k = k;
  return r;
}

std::vector<std::string> ids(const Recommendation& r) {
  std::vector<std::string> out;
  for (const auto& it : r.items) out.push_back(it.item);
  return out;
}

/// A fake clock for idle times.
struct FakeClock {
  std::shared_ptr<std::atomic<int64_t>> ms = std::make_shared<std::atomic<int64_t>>(0);
  std::function<serve::Clock::time_point()> fn() const {
    auto m = ms;
    return [m] { return serve::Clock::time_point(std::chrono::milliseconds(m->load())); };
  }
  void advance(double seconds) { *ms += static_cast<int64_t>(seconds * 1000); }
};

}  // namespace

// ---------------------------------------------------------------------------------------
TEST(ServeTopK, OrderIsScoreThenIndex) {
  std::vector<float> s = {1, 3, 2, 3, 0, 2};
  auto top = serve::select_top_k(s.data(), 6, 4, {});
  ASSERT_EQ(top.size(), 4u);
  EXPECT_EQ(top[0].first, 1);
  EXPECT_EQ(top[1].first, 3);
  EXPECT_EQ(top[2].first, 2);
  EXPECT_EQ(top[3].first, 5);
  EXPECT_EQ(top[3].second, 2.0f);
}

TEST(ServeTopK, MatchesAFullSortOnRandomScoresWithTies) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    const int32_t n = 1 + static_cast<int32_t>(rng() % 300);
    const int32_t k = 1 + static_cast<int32_t>(rng() % 40);
    std::vector<float> s(static_cast<size_t>(n));
    for (auto& x : s) x = static_cast<float>(rng() % 7);  // many ties
    std::vector<int32_t> idx(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return s[a] > s[b]; });
    auto top = serve::select_top_k(s.data(), n, k, {});
    ASSERT_EQ(top.size(), static_cast<size_t>(std::min(n, k)));
    for (size_t r = 0; r < top.size(); ++r) ASSERT_EQ(top[r].first, idx[r]) << trial << " " << r;
  }
}

TEST(ServeTopK, ExclusionsAllowListAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> s = {5, 4, 3, std::nanf(""), 1, -inf, 6};
  std::vector<int32_t> excluded = {6}, forbidden = {0, 99}, allowed = {0, 1, 2, 3, 5};
  serve::TopKFilter f;
  f.excluded = excluded;
  f.forbidden = forbidden;
  auto top = serve::select_top_k(s.data(), 7, 10, f);
  ASSERT_EQ(top.size(), 4u);  // 1, 2, 4, 5 (NaN never, -inf kept without drop_neg_inf)
  EXPECT_EQ(top[0].first, 1);
  EXPECT_EQ(top[3].first, 5);

  std::vector<float> s2 = {5, 4, 3, std::nanf(""), 1, -inf, 6};
  serve::TopKFilter g;
  g.has_allowed = true;
  g.allowed = allowed;
  g.drop_neg_inf = true;
  auto top2 = serve::select_top_k(s2.data(), 7, 10, g);
  ASSERT_EQ(top2.size(), 3u);
  EXPECT_EQ(top2[0].first, 0);
  EXPECT_EQ(top2[2].first, 2);
}

// ---------------------------------------------------------------------------------------
namespace {

std::shared_ptr<serve::Session> touch(serve::SessionStore& st, const std::string& id,
                                      bool* created = nullptr) {
  bool c = false;
  auto s = st.acquire(
      id, [&] { return std::make_shared<serve::Session>(id, 10); }, &c);
  if (created) *created = c;
  return s;
}

}  // namespace

TEST(ServeStore, EvictsTheLeastRecentlyUsed) {
  serve::StoreOptions o;
  o.max_sessions = 3;
  o.shards = 1;
  serve::SessionStore st(o);
  touch(st, "a");
  touch(st, "b");
  touch(st, "c");
  touch(st, "a");  // b is now the least recently used
  touch(st, "d");
  EXPECT_EQ(st.stats().live, 3);
  EXPECT_EQ(st.stats().evicted[static_cast<int>(serve::Eviction::Lru)], 1);
  EXPECT_EQ(st.peek("b", nullptr), nullptr);
  EXPECT_NE(st.peek("a", nullptr), nullptr);
  EXPECT_NE(st.peek("c", nullptr), nullptr);
  bool created = false;
  touch(st, "b", &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(st.peek("c", nullptr), nullptr);  // c was the oldest then
}

TEST(ServeStore, ShardedLimitsAddUp) {
  serve::StoreOptions o;
  o.max_sessions = 100;
  o.shards = 8;
  serve::SessionStore st(o);
  for (int i = 0; i < 1000; ++i) touch(st, "s" + std::to_string(i));
  const auto s = st.stats();
  EXPECT_LE(s.live, 100);
  EXPECT_GE(s.live, 80);  // hashing spreads sessions evenly enough
  EXPECT_EQ(s.live + s.evicted[static_cast<int>(serve::Eviction::Lru)], 1000);
}

TEST(ServeStore, IdleSessionsExpire) {
  FakeClock clock;
  serve::StoreOptions o;
  o.ttl_seconds = 10;
  o.shards = 2;
  o.now = clock.fn();
  serve::SessionStore st(o);
  touch(st, "old");
  clock.advance(6);
  touch(st, "new");
  clock.advance(6);  // old idle 12 s, new 6 s
  EXPECT_EQ(st.peek("old", nullptr), nullptr);
  double idle = -1;
  EXPECT_NE(st.peek("new", &idle), nullptr);
  EXPECT_NEAR(idle, 6.0, 1e-9);
  EXPECT_EQ(st.expire_idle(), 1);
  EXPECT_EQ(st.stats().live, 1);
  EXPECT_EQ(st.stats().evicted[static_cast<int>(serve::Eviction::Ttl)], 1);
  // A use resets the idle time; an expired session is recreated on use.
  touch(st, "new");
  clock.advance(9);
  bool created = true;
  touch(st, "new", &created);
  EXPECT_FALSE(created);
  clock.advance(11);
  touch(st, "new", &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(st.stats().evicted[static_cast<int>(serve::Eviction::Ttl)], 2);
}

TEST(ServeStore, MemoryBoundEvictsOldestAndAccountsBytes) {
  serve::StoreOptions o;
  o.max_sessions = 1000;
  o.shards = 1;
  serve::SessionStore probe(o);
  const int64_t one = touch(probe, "x")->bytes();  // an empty session
  o.max_bytes = 10 * one + 8;
  serve::SessionStore st(o);
  for (int i = 0; i < 10; ++i) touch(st, "s" + std::to_string(i));
  EXPECT_EQ(st.stats().live, 10);
  EXPECT_EQ(st.stats().bytes, 10 * one);
  // s9 grows: the oldest sessions make room.
  auto s9 = touch(st, "s9");
  for (int i = 0; i < 10; ++i) s9->push(i);
  st.update_bytes(s9, s9->bytes());
  const auto s = st.stats();
  EXPECT_LE(s.bytes, o.max_bytes);
  EXPECT_GT(s.evicted[static_cast<int>(serve::Eviction::Memory)], 0);
  EXPECT_EQ(st.peek("s0", nullptr), nullptr);
  EXPECT_NE(st.peek("s9", nullptr), nullptr);
  EXPECT_TRUE(st.drop("s9"));
  EXPECT_FALSE(st.drop("s9"));
  EXPECT_EQ(st.stats().dropped, 1);
  const int64_t left = st.stats().live;
  EXPECT_EQ(st.clear(serve::Eviction::Reload), left);
  EXPECT_EQ(st.stats().live, 0);
  EXPECT_EQ(st.stats().bytes, 0);
}

TEST(ServeStore, HistoryKeepsTheLastCapEvents) {
  serve::Session s("x", 4);
  for (int32_t i = 0; i < 23; ++i) {
    s.push(i);
    const auto h = s.history();
    ASSERT_EQ(h.size(), static_cast<size_t>(std::min(i + 1, 4)));
    EXPECT_EQ(h.back(), i);
    EXPECT_EQ(h.front(), std::max(0, i - 3));
    EXPECT_LE(s.buf.size(), 8u);
  }
}

// ---------------------------------------------------------------------------------------
TEST(ServeRecommender, SessionEqualsStatelessOnTheSameItems) {
  for (bool inc : {false, true}) {
    Recommender rec(count_bundle(50, inc), quiet_options());
    std::vector<std::string> seen;
    for (const char* it : {"i3", "i7", "i3", "i20", "i7", "i3"}) {
      seen.push_back(it);
      Recommendation r = rec.add_events(events("u", {it}, 5));
      ItemsRequest q;
      q.items = seen;
      q.options.k = 5;
      Recommendation want = rec.recommend(q);
      ASSERT_EQ(ids(r), ids(want)) << inc;
      for (size_t i = 0; i < r.items.size(); ++i) EXPECT_EQ(r.items[i].score, want.items[i].score);
      EXPECT_EQ(r.session_length, static_cast<int64_t>(seen.size()));
    }
    // i3 x3 (3), i7 x2 (2), then i4 (0.5, after the last item i3), then ties by index.
    Recommendation r = rec.add_events(events("u", {}, 4));
    EXPECT_EQ(ids(r), (std::vector<std::string>{"i3", "i7", "i20", "i4"}));
    EXPECT_FALSE(r.new_session);
  }
}

TEST(ServeRecommender, ScoresSingleThreadedAndRestoresTheCallersThreads) {
  Recommender rec(count_bundle(10, true), quiet_options());
  const int before = num_threads();
  set_threads(3);
  rec.add_events(events("s", {"i1"}));
  ItemsRequest q;
  q.items = {"i1"};
  rec.recommend(q);
  EXPECT_EQ(num_threads(), 3);
  set_threads(before);
}

TEST(ServeRecommender, OneStepPerEventNeverAReplay) {
  Recommender rec(count_bundle(30, true), quiet_options());
  EXPECT_TRUE(rec.model_info().incremental);
  g_steps = 0;
  for (int i = 0; i < 200; ++i) rec.add_events(events("long", {"i" + std::to_string(i % 30)}));
  rec.add_events(events("long", {"i1", "i2", "i3"}));
  EXPECT_EQ(g_steps.load(), 203);
}

TEST(ServeRecommender, UnknownItemsAreReportedAndSkipped) {
  Recommender rec(count_bundle(10, false), quiet_options());
  Recommendation r = rec.add_events(events("s", {"zz", "i1", "i99", "i2"}));
  EXPECT_EQ(r.unknown_items, (std::vector<std::string>{"zz", "i99"}));
  EXPECT_EQ(r.session_length, 2);
  EXPECT_TRUE(r.new_session);
  EXPECT_EQ(r.k, 20);
  EXPECT_EQ(r.items.size(), 10u);  // K > catalogue: every item
  // A session with no known item yet gets no recommendations, not an error.
  Recommendation e = rec.add_events(events("empty", {"nope"}));
  EXPECT_TRUE(e.items.empty());
  EXPECT_EQ(e.session_length, 0);
  ItemsRequest q;
  q.items = {"x", "y"};
  EXPECT_TRUE(rec.recommend(q).items.empty());
  EXPECT_EQ(rec.stats().unknown_items, 5);
  EXPECT_EQ(rec.stats().events, 2);
}

TEST(ServeRecommender, ExclusionDefaultsFollowTheProtocol) {
  Recommender session_rec(count_bundle(10, false, "session"), quiet_options());
  Recommender seq_rec(count_bundle(10, false, "sequential"), quiet_options());
  EXPECT_FALSE(session_rec.model_info().exclude_seen_default);
  EXPECT_TRUE(seq_rec.model_info().exclude_seen_default);
  Recommendation a = session_rec.add_events(events("s", {"i1", "i5"}, 3));
  EXPECT_FALSE(a.exclude_seen);
  EXPECT_EQ(ids(a), (std::vector<std::string>{"i1", "i5", "i6"}));
  Recommendation b = seq_rec.add_events(events("s", {"i1", "i5"}, 3));
  EXPECT_TRUE(b.exclude_seen);
  EXPECT_EQ(ids(b), (std::vector<std::string>{"i6", "i0", "i2"}));
  // Per request.
  SessionRequest r = events("s", {}, 3);
  r.options.exclude_seen = false;
  EXPECT_EQ(ids(seq_rec.add_events(r)), (std::vector<std::string>{"i1", "i5", "i6"}));
  r.options.exclude_seen = true;
  EXPECT_EQ(ids(session_rec.add_events(r)), (std::vector<std::string>{"i6", "i0", "i2"}));
  ItemsRequest q;
  q.items = {"i1", "i5"};
  q.options.k = 3;
  EXPECT_EQ(ids(seq_rec.recommend(q)), (std::vector<std::string>{"i6", "i0", "i2"}));
}

TEST(ServeRecommender, AllowedAndForbiddenFilters) {
  Recommender rec(count_bundle(10, false), quiet_options());
  SessionRequest r = events("s", {"i1", "i5"}, 3);
  r.options.forbidden_items = {"i1", "i6", "nope"};
  Recommendation a = rec.add_events(r);
  EXPECT_EQ(ids(a), (std::vector<std::string>{"i5", "i0", "i2"}));
  EXPECT_EQ(a.unknown_filter_items, (std::vector<std::string>{"nope"}));
  SessionRequest b = events("s", {}, 3);
  b.options.allowed_items = std::vector<std::string>{"i9", "i8", "i6", "i9", "x"};
  b.options.forbidden_items = {"i8"};
  Recommendation rb = rec.add_events(b);
  EXPECT_EQ(ids(rb), (std::vector<std::string>{"i6", "i9"}));
  EXPECT_EQ(rb.unknown_filter_items, (std::vector<std::string>{"x"}));
  SessionRequest c = events("s", {}, 3);
  c.options.allowed_items = std::vector<std::string>{};
  EXPECT_TRUE(rec.add_events(c).items.empty());
}

TEST(ServeRecommender, RejectsBadRequests) {
  RecommenderOptions o = quiet_options();
  o.max_k = 50;
  o.max_session_id_bytes = 8;
  Recommender rec(count_bundle(10, false), o);
  EXPECT_THROW(rec.add_events(events("", {"i1"})), InputError);
  EXPECT_THROW(rec.add_events(events("123456789", {"i1"})), InputError);
  SessionRequest r = events("s", {"i1"});
  for (int32_t k : {0, -1, 51}) {
    r.options.k = k;
    EXPECT_THROW(rec.add_events(r), InputError) << k;
  }
  r.options.k = 50;
  EXPECT_NO_THROW(rec.add_events(r));
  o.default_k = 60;
  EXPECT_THROW(Recommender(count_bundle(10, false), o), InputError);
}

TEST(ServeRecommender, ContextLengthAndHistoryCap) {
  // The model looks at the last 2 items: after i1 i1 i1 i2 i2 only i2 counts.
  Recommender rec(count_bundle(10, false, "session", 2), quiet_options());
  Recommendation r = rec.add_events(events("s", {"i1", "i1", "i1", "i2", "i2"}, 2));
  EXPECT_EQ(ids(r), (std::vector<std::string>{"i2", "i3"}));
  // History cap 3: exclusion covers the last 3 events only.
  RecommenderOptions o = quiet_options();
  o.max_history = 3;
  Recommender capped(count_bundle(10, true), o);
  SessionRequest q = events("s", {"i0", "i1", "i2", "i3"}, 10);
  q.options.exclude_seen = true;
  Recommendation c = capped.add_events(q);
  // i1..i3 are excluded; i0 (count 1) is no longer in the kept history.
  EXPECT_EQ(ids(c), (std::vector<std::string>{"i0", "i4", "i5", "i6", "i7", "i8", "i9"}));
  EXPECT_EQ(capped.session_info("s")->history, (std::vector<std::string>{"i1", "i2", "i3"}));
  EXPECT_EQ(capped.session_info("s")->length, 4);
}

TEST(ServeRecommender, TtlAndLruThroughTheApi) {
  FakeClock clock;
  RecommenderOptions o = quiet_options();
  o.session_ttl_seconds = 60;
  o.max_sessions = 2;
  o.now = clock.fn();
  Recommender rec(count_bundle(10, false), o);
  rec.add_events(events("a", {"i1"}));
  rec.add_events(events("b", {"i1"}));
  rec.add_events(events("c", {"i1"}));  // evicts a
  EXPECT_FALSE(rec.session_info("a"));
  EXPECT_EQ(rec.stats().evicted_lru, 1);
  clock.advance(61);
  EXPECT_EQ(rec.expire_idle(), 2);
  EXPECT_EQ(rec.stats().live_sessions, 0);
  Recommendation again = rec.add_events(events("b", {"i2"}));
  EXPECT_TRUE(again.new_session);
  EXPECT_EQ(again.session_length, 1);
  EXPECT_TRUE(rec.drop_session("b"));
  EXPECT_FALSE(rec.drop_session("b"));
  EXPECT_EQ(rec.stats().sessions_dropped, 1);
}

TEST(ServeRecommender, ReloadKeepsSessionsOfTheSameCatalogue) {
  Recommender rec(count_bundle(20, true), quiet_options());
  rec.add_events(events("s", {"i1", "i2", "i2"}));
  const auto before = ids(rec.add_events(events("s", {}, 5)));
  g_steps = 0;
  ReloadResult r = rec.replace_model(count_bundle(20, true));
  EXPECT_EQ(r.generation, 2u);
  EXPECT_FALSE(r.catalogue_changed);
  EXPECT_EQ(r.sessions_dropped, 0);
  const int64_t smoke = g_steps.exchange(0);  // the validation's own step
  EXPECT_EQ(smoke, 1);
  Recommendation after = rec.add_events(events("s", {}, 5));
  EXPECT_EQ(after.model_generation, 2u);
  EXPECT_EQ(ids(after), before);
  EXPECT_EQ(after.session_length, 3);
  EXPECT_EQ(g_steps.load(), 3);  // the state was rebuilt once from the kept history
  rec.add_events(events("s", {"i4"}));
  EXPECT_EQ(g_steps.load(), 4);
}

TEST(ServeRecommender, ReloadWithAnotherCatalogueDropsSessions) {
  Recommender rec(count_bundle(20, false), quiet_options());
  rec.add_events(events("s", {"i1"}));
  rec.add_events(events("t", {"i1"}));
  ReloadResult r = rec.replace_model(count_bundle(20, false, "session", 0, "j"));
  EXPECT_TRUE(r.catalogue_changed);
  EXPECT_EQ(r.sessions_dropped, 2);
  EXPECT_EQ(rec.stats().evicted_reload, 2);
  Recommendation a = rec.add_events(events("s", {"i1", "j1"}));
  EXPECT_TRUE(a.new_session);
  EXPECT_EQ(a.session_length, 1);
  EXPECT_EQ(a.unknown_items, (std::vector<std::string>{"i1"}));
}

TEST(ServeRecommender, ABadModelLeavesTheOldOneServing) {
  Recommender rec(count_bundle(20, false), quiet_options());
  ModelBundle bad = count_bundle(20, false);
  bad.items.add("extra");  // catalogue and model disagree
  EXPECT_THROW(rec.replace_model(std::move(bad)), Error);
  EXPECT_THROW(rec.reload(), Error);  // given in memory: no file to reload
  EXPECT_THROW(rec.reload("/nonexistent/model.seqrec"), Error);
  EXPECT_EQ(rec.stats().reload_failures, 3);
  EXPECT_EQ(rec.model_info().generation, 1u);
  EXPECT_EQ(rec.add_events(events("s", {"i1"})).items.size(), 20u);
}

TEST(ServeRecommender, ReloadsAModelFile) {
  const fs::path dir = fs::path(::testing::TempDir()) / "seqrec_serve_reload";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "pop.seqrec").string();
  auto make_pop = [](const std::vector<std::vector<int32_t>>& seqs) {
    ModelBundle b;
    for (int i = 0; i < 5; ++i) b.items.add("p" + std::to_string(i));
    SequenceSet s;
    for (size_t i = 0; i < seqs.size(); ++i) s.push("s" + std::to_string(i), seqs[i]);
    b.model = create_model("pop", default_config("pop"));
    FitContext ctx;
    ctx.progress = false;
    b.model->fit(s, 5, ctx);
    b.meta = {{"protocol", "session"}};
    return b;
  };
  save_model(path, make_pop({{0, 1, 1}, {1, 2}}));
  Recommender rec(path, quiet_options());
  EXPECT_EQ(rec.model_info().path, path);
  EXPECT_EQ(rec.add_events(events("s", {"p0"}, 1)).items[0].item, "p1");
  // A damaged file: refused, the old model keeps serving.
  const std::string good = path + ".good";
  fs::copy_file(path, good);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('X');
  }
  EXPECT_THROW(rec.reload(), Error);
  EXPECT_EQ(rec.add_events(events("s", {}, 1)).items[0].item, "p1");
  // A new model under the same name: swapped in, sessions kept (same catalogue).
  save_model(path, make_pop({{3, 3, 3}, {4}}));
  ReloadResult r = rec.reload();
  EXPECT_EQ(r.generation, 2u);
  Recommendation after = rec.add_events(events("s", {}, 1));
  EXPECT_EQ(after.items[0].item, "p3");
  EXPECT_EQ(after.session_length, 1);
  EXPECT_EQ(rec.stats().reloads, 1);
  fs::remove_all(dir);
}

TEST(ServeRecommender, ConcurrentRequestsReloadsAndDrops) {
  RecommenderOptions o = quiet_options();
  o.max_sessions = 64;
  o.shards = 4;
  o.session_ttl_seconds = 1000;
  Recommender rec(count_bundle(200, true), o);
  const int threads = 8, per_thread = 1500;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> errors{0};
  // Each worker owns sessions "w<t>-<j>" and checks that they grow by one per request
  // unless evicted (then they restart at 1).
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t));
      std::vector<int64_t> len(8, 0);
      for (int i = 0; i < per_thread; ++i) {
        const size_t j = rng() % 8;
        SessionRequest r =
            events("w" + std::to_string(t) + "-" + std::to_string(j),
                   {"i" + std::to_string(rng() % 210)}, 1 + static_cast<int>(rng() % 30));
        if (rng() % 5 == 0) r.options.exclude_seen = true;
        if (rng() % 7 == 0) r.options.forbidden_items = {"i1", "i2"};
        Recommendation out = rec.add_events(r);
        const int64_t known = out.unknown_items.empty() ? 1 : 0;
        if (out.new_session) len[j] = 0;
        len[j] += known;
        if (out.session_length != len[j] || out.items.empty() != (len[j] == 0)) ++errors;
        if (!out.items.empty() && static_cast<int>(out.items.size()) != out.k) ++errors;
      }
    });
  }
  std::thread chaos([&] {
    int n = 0;
    while (!stop) {
      if (++n % 3 == 0) rec.replace_model(count_bundle(200, true));
      rec.expire_idle();
      rec.stats();
      rec.session_info("w1-1");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  for (auto& th : pool) th.join();
  stop = true;
  chaos.join();
  EXPECT_EQ(errors.load(), 0);
  const RecommenderStats s = rec.stats();
  EXPECT_LE(s.live_sessions, 64);
  EXPECT_EQ(s.live_sessions + s.evicted_lru + s.evicted_ttl + s.evicted_memory, s.sessions_created);
  EXPECT_EQ(static_cast<uint64_t>(s.reloads) + 1, s.model_generation);
}
