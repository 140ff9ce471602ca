// Items added and retired at run time (Recommender::add_item / remove_item, POST
// /v1/items): a small DSSM trained on a generated MovieLens-style feature file; a new item is
// recommendable in the next request, a retired one never, features are encoded exactly as
// training encoded them, bad input is refused, the items file survives a restart and a
// reload, and requests under concurrent changes always get exactly K live items.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "models/dssm.hpp"
#include "seqrec/error.hpp"
#include "seqrec/features.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"

using namespace seqrec;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int32_t kItems = 60;
const char* const kGenres[] = {"Action", "Comedy", "Drama", "Horror", "Animation", "Western"};
const char* const kWords[] = {"toy",  "story", "night", "river", "king",  "space",
                              "love", "war",   "blue",  "house", "storm", "city"};

std::string title_of(int i) {
  return std::string(kWords[i % 12]) + " " + kWords[(i * 7 + 3) % 12] + " (" +
         std::to_string(1980 + i % 20) + ")";
}
std::string genres_of(int i) {
  std::string g = kGenres[i % 5];  // Western never occurs in the file
  if (i % 3 == 0) g += std::string("|") + kGenres[(i + 2) % 5];
  return g;
}

fs::path tmp_path(const std::string& name) {
  return fs::temp_directory_path() /
         ("seqrec-test-items-" + std::to_string(::getpid()) + "-" + name);
}

/// A trained DSSM (no id embedding, so that an item's vector is its features alone) on
/// a MovieLens movies.dat-style file of kItems items with ids "1".."60", and the file's
/// encoder in the metadata as `seqrec train --item-features` writes it.
struct Trained {
  ModelBundle bundle;
  FeatureTable table;
  SparseFeatures rows;
};

const Trained& trained() {
  static const Trained t = [] {
    Trained r;
    const fs::path p = tmp_path("movies.dat");
    {
      std::ofstream f(p);
      for (int i = 1; i <= kItems; ++i)
        f << i << "::" << title_of(i) << "::" << genres_of(i) << "\n";
    }
    r.table = read_features(p.string());
    fs::remove(p);
    for (int i = 1; i <= kItems; ++i) r.bundle.items.add(std::to_string(i));
    r.rows = align_features(r.table, r.bundle.items, nullptr);
    std::mt19937 g(7);
    SequenceSet train;
    for (int u = 0; u < 200; ++u) {
      std::vector<int32_t> s;
      int32_t cur = static_cast<int32_t>(g() % kItems);
      for (int k = 0; k < 10; ++k) {
        s.push_back(cur);
        cur = (g() % 8 == 0) ? static_cast<int32_t>(g() % kItems) : (cur + 1) % kItems;
      }
      train.push("u" + std::to_string(u), s);
    }
    Config c = default_config("dssm");
    for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{{"layers", "32,16"},
                                                                        {"query_layers", "16"},
                                                                        {"epochs", "2"},
                                                                        {"batch_size", "32"},
                                                                        {"n_negatives", "16"},
                                                                        {"maxlen", "10"},
                                                                        {"id_embedding", "false"}})
      c.set(k, v, "test");
    FitContext ctx;
    ctx.progress = false;
    ctx.threads = 1;
    ctx.item_features = &r.rows;
    r.bundle.model = create_model("dssm", c);
    r.bundle.model->fit(train, kItems, ctx);
    r.bundle.item_counts.assign(kItems, 1);
    r.bundle.meta = {{"protocol", "session"},
                     {"item_feature_encoder", FeatureEncoder(r.table).to_json()}};
    return r;
  }();
  return t;
}

/// A model file of the trained model, written once per process.
std::string model_file() {
  static const std::string path = [] {
    const fs::path p = tmp_path("model.seqrec");
    save_model(p.string(), trained().bundle);
    return p.string();
  }();
  return path;
}

RecommenderOptions quiet_options() {
  RecommenderOptions o;
  o.sweep_interval_seconds = 0;
  return o;
}

json movie(const std::string& title, const std::string& genres) {
  return {{"title", title}, {"genres", genres}};
}

std::vector<std::string> ids_of(const Recommendation& r) {
  std::vector<std::string> out;
  for (const auto& s : r.items) out.push_back(s.item);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

/// Every live item, best first, after `items`.
Recommendation all_after(const Recommender& rec, std::vector<std::string> items, int32_t k = 200) {
  ItemsRequest q;
  q.items = std::move(items);
  q.options.k = k;
  return rec.recommend(q);
}

}  // namespace

TEST(ServeItems, EncodingIsTrainingsForATrainedItemsFeatures) {
  const Trained& t = trained();
  const FeatureEncoder enc =
      FeatureEncoder::from_json(t.bundle.meta.at("item_feature_encoder"), "test");
  EXPECT_EQ(enc.n_features(), t.table.n_features());
  const DotProductHead h = t.bundle.model->dot_product_head();
  ASSERT_GT(h.dim, 0);
  for (int i : {1, 6, 17, 42, 60}) {
    const int32_t idx = t.bundle.items.find(std::to_string(i));
    const FeatureEncoder::Row row = enc.encode(movie(title_of(i), genres_of(i)));
    // The same sparse row as read_features gave the file's line.
    const auto want_i = t.rows.row_index(idx);
    const auto want_v = t.rows.row_value(idx);
    ASSERT_EQ(row.index, std::vector<int32_t>(want_i.begin(), want_i.end())) << "item " << i;
    for (size_t k = 0; k < row.value.size(); ++k) EXPECT_NEAR(row.value[k], want_v[k], 1e-6);
    EXPECT_TRUE(row.unknown_values.empty());
    // And the item tower gives the trained vector.
    std::vector<float> v(static_cast<size_t>(h.dim));
    float bias = 1.0f;
    t.bundle.model->encode_item(row.index, row.value, v.data(), &bias);
    EXPECT_EQ(bias, 0.0f);
    for (int32_t k = 0; k < h.dim; ++k)
      EXPECT_NEAR(v[static_cast<size_t>(k)], h.items[idx * h.dim + k], 1e-4) << "item " << i;
  }
  // Arrays for multi-valued columns, a genre the file never had.
  const FeatureEncoder::Row r2 =
      enc.encode({{"genres", json::array({"Comedy", "Western"})}, {"title", "toy story"}});
  EXPECT_EQ(r2.unknown_values, std::vector<std::string>{"genres=Western"});
  // The encoder survives JSON.
  EXPECT_EQ(FeatureEncoder::from_json(enc.to_json(), "x").to_json(), enc.to_json());
}

TEST(ServeItems, AnAddedItemIsRecommendedInTheNextRequest) {
  Recommender rec(model_file(), quiet_options());
  // The new item has exactly the features of trained item 5: it scores as item 5 does.
  const AddItemResult a = rec.add_item("m9001", movie(title_of(5), genres_of(5)));
  EXPECT_EQ(a.index, kItems);
  EXPECT_FALSE(a.restored);
  EXPECT_EQ(a.live_items, kItems + 1);
  const Recommendation r = all_after(rec, {"3", "4"});
  ASSERT_EQ(static_cast<int32_t>(r.items.size()), kItems + 1);
  float s5 = 0, snew = 0;
  for (const auto& s : r.items) {
    if (s.item == "5") s5 = s.score;
    if (s.item == "m9001") snew = s.score;
  }
  EXPECT_NEAR(s5, snew, 1e-4);
  // It is known in sessions too, and its vector takes part in the session's query.
  SessionRequest q;
  q.session_id = "s";
  q.events = {{"m9001"}, {"4"}};
  q.options.k = 5;
  const Recommendation rs = rec.add_events(q);
  EXPECT_TRUE(rs.unknown_items.empty());
  EXPECT_EQ(rs.session_length, 2);
  EXPECT_EQ(rs.items.size(), 5u);
  const auto info = rec.session_info("s");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->history, (std::vector<std::string>{"m9001", "4"}));
  // The same session through /v1/recommend's path gives the same list.
  const Recommendation rr = all_after(rec, {"m9001", "4"}, 5);
  EXPECT_EQ(ids_of(rr), ids_of(rs));
  const ServedModelInfo mi = rec.model_info();
  EXPECT_EQ(mi.catalogue["added_live"], 1);
  EXPECT_EQ(mi.catalogue["adds_items"], true);
  const RecommenderStats st = rec.stats();
  EXPECT_EQ(st.items_added, 1);
  EXPECT_EQ(st.catalogue_live, kItems + 1);
  EXPECT_EQ(st.catalogue_added_live, 1);
}

TEST(ServeItems, RetiredItemsAreNeverRecommendedAndReAddedOnesGetFreshIndices) {
  Recommender rec(model_file(), quiet_options());
  rec.add_item("new", movie("blue river", "Drama"));
  const RemoveItemResult t = rec.remove_item("7");
  EXPECT_FALSE(t.added);
  EXPECT_EQ(t.live_items, kItems);
  const RemoveItemResult n = rec.remove_item("new");
  EXPECT_TRUE(n.added);
  for (const auto& q : std::vector<std::vector<std::string>>{{"6"}, {"new"}, {"7", "new"}}) {
    const auto ids = ids_of(all_after(rec, q));
    EXPECT_EQ(static_cast<int32_t>(ids.size()), kItems - 1);
    EXPECT_FALSE(contains(ids, "7"));
    EXPECT_FALSE(contains(ids, "new"));
  }
  // Filters and allow-lists apply on top; an allow-list of retired items gives nothing.
  ItemsRequest q;
  q.items = {"6"};
  q.options.allowed_items = std::vector<std::string>{"7", "new", "8"};
  EXPECT_EQ(ids_of(rec.recommend(q)), std::vector<std::string>{"8"});
  // Retiring twice, or an unknown id: 404.
  EXPECT_THROW(rec.remove_item("7"), UnknownItem);
  EXPECT_THROW(rec.remove_item("nope"), UnknownItem);
  // A trained item comes back with its own vector (no features), an added one with a
  // fresh index; a live id is a conflict.
  const AddItemResult back = rec.add_item("7", nullptr);
  EXPECT_TRUE(back.restored);
  EXPECT_EQ(back.index, rec.bundle()->items.find("7"));
  EXPECT_THROW(rec.add_item("7", nullptr), ItemConflict);
  EXPECT_THROW(rec.add_item("new", nullptr), InputError);  // its features are needed again
  const AddItemResult again = rec.add_item("new", movie("blue river", "Drama"));
  EXPECT_EQ(again.index, kItems + 1);
  EXPECT_THROW(rec.add_item("new", movie("x", "Drama")), ItemConflict);
  const auto ids = ids_of(all_after(rec, {"6"}));
  EXPECT_EQ(static_cast<int32_t>(ids.size()), kItems + 1);
  EXPECT_TRUE(contains(ids, "7"));
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "new"), 1);
  // A trained item retired and added with new features: a fresh index, the new vector.
  rec.remove_item("9");
  const AddItemResult nine = rec.add_item("9", movie(title_of(5), genres_of(5)));
  EXPECT_EQ(nine.index, kItems + 2);
  EXPECT_EQ(rec.stats().items_retired, 3);
}

TEST(ServeItems, BadInputIsRefusedNamingTheField) {
  RecommenderOptions o = quiet_options();
  o.max_added_items = 2;
  Recommender rec(model_file(), o);
  auto message = [&](const std::string& id, const json& f) {
    try {
      rec.add_item(id, f);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("x", {{"colour", "red"}}).find("'features.colour'"), std::string::npos);
  EXPECT_NE(message("x", {{"title", 42}}).find("'features.title' must be a string"),
            std::string::npos);
  EXPECT_NE(message("x", {{"genres", json::object()}}).find("'features.genres'"),
            std::string::npos);
  EXPECT_NE(message("x", {{"id", "x"}}).find("id column"), std::string::npos);
  EXPECT_NE(message("x", json::array()).find("'features' must be an object"), std::string::npos);
  EXPECT_NE(message("", movie("a", "Drama")).find("'id'"), std::string::npos);
  EXPECT_NE(message(std::string(300, 'x'), movie("a", "Drama")).find("longer than 256"),
            std::string::npos);
  EXPECT_NE(message("x", {{"title", std::string(70000, 'a')}}).find("longer than"),
            std::string::npos);
  EXPECT_NE(message("x", nullptr).find("'features' is required"), std::string::npos);
  EXPECT_THROW(rec.add_item("1", movie("a", "Drama")), ItemConflict);
  // Nothing of the above changed the catalogue; then the bound.
  EXPECT_EQ(rec.stats().catalogue_live, kItems);
  rec.add_item("a", movie("a", "Drama"));
  rec.add_item("b", movie("b", "Drama"));
  EXPECT_THROW(rec.add_item("c", movie("c", "Drama")), ItemConflict);
}

namespace {

/// A model without features: GRU4Rec-like scores from a fixed head (no adds_items()).
class FixedHeadModel final : public Model {
 public:
  FixedHeadModel() : w_(kItems * 4) {
    for (size_t k = 0; k < w_.size(); ++k) w_[k] = static_cast<float>((k * 37) % 11) * 0.1f;
  }
  std::string type() const override { return "fixed"; }
  const Config& config() const override { return c_; }
  int32_t n_items() const override { return kItems; }
  void fit(const SequenceSet&, int32_t, const FitContext&) override {}
  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> qs,
             float* out) const override {
    std::vector<float> q(qs.size() * 4);
    query_vectors(seqs, qs, q.data());
    for (size_t r = 0; r < qs.size(); ++r)
      for (int32_t i = 0; i < kItems; ++i) {
        float acc = 0;
        for (int k = 0; k < 4; ++k) acc = std::fma(q[r * 4 + k], w_[i * 4 + k], acc);
        out[r * kItems + i] = acc;
      }
  }
  DotProductHead dot_product_head() const override { return {4, w_.data(), nullptr}; }
  void query_vectors(std::span<const std::span<const int32_t>> seqs,
                     std::span<const PrefixQuery> qs, float* out) const override {
    for (size_t r = 0; r < qs.size(); ++r) {
      const int32_t last = seqs[static_cast<size_t>(qs[r].seq)][qs[r].len - 1];
      for (int k = 0; k < 4; ++k) out[r * 4 + k] = w_[last * 4 + k];
    }
  }
  void save(TensorWriter&) const override {}
  void load(const TensorReader&) override {}

 private:
  Config c_;
  std::vector<float> w_;
};

}  // namespace

TEST(ServeItems, AModelWithoutFeaturesRetiresButCannotAdd) {
  ModelBundle b;
  b.model = std::make_unique<FixedHeadModel>();
  for (int i = 1; i <= kItems; ++i) b.items.add(std::to_string(i));
  Recommender rec(std::move(b), quiet_options());
  try {
    rec.add_item("x", movie("a", "Drama"));
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot add items by their features"), std::string::npos)
        << e.what();
  }
  rec.remove_item("3");
  EXPECT_FALSE(contains(ids_of(all_after(rec, {"2"})), "3"));
  EXPECT_EQ(ids_of(all_after(rec, {"2"})).size(), static_cast<size_t>(kItems - 1));
  rec.add_item("3", nullptr);
  EXPECT_TRUE(contains(ids_of(all_after(rec, {"2"})), "3"));
  EXPECT_EQ(rec.model_info().catalogue["adds_items"], false);
}

TEST(ServeItems, TheItemsFileSurvivesRestartAndReload) {
  const fs::path file = tmp_path("items.jsonl");
  fs::remove(file);
  RecommenderOptions o = quiet_options();
  o.items_file = file.string();
  {
    Recommender rec(model_file(), o);
    rec.add_item("m1", movie("toy story", "Animation|Comedy"));
    rec.add_item("m2", movie("space war", "Action"));
    rec.remove_item("m1");
    rec.remove_item("12");
    rec.add_item("m1", movie("toy story", "Animation"));
    // A reload keeps them (replayed onto the reloaded model, same indices: sessions kept).
    SessionRequest q;
    q.session_id = "s";
    q.events = {{"m2"}};
    rec.add_events(q);
    const ReloadResult rr = rec.reload();
    EXPECT_FALSE(rr.catalogue_changed);
    const auto ids = ids_of(all_after(rec, {"m2"}));
    EXPECT_TRUE(contains(ids, "m1"));
    EXPECT_TRUE(contains(ids, "m2"));
    EXPECT_FALSE(contains(ids, "12"));
    ASSERT_TRUE(rec.session_info("s").has_value());
    EXPECT_EQ(rec.session_info("s")->history, std::vector<std::string>{"m2"});
  }
  // A write cut short: the torn last line is ignored (with a warning) and cut off.
  { std::ofstream(file, std::ios::app) << R"({"op":"add","id":"m3","feat)"; }
  {
    Recommender rec(model_file(), o);
    const auto ids = ids_of(all_after(rec, {"1"}));
    EXPECT_EQ(static_cast<int32_t>(ids.size()), kItems + 1);  // +m1 +m2 -12
    EXPECT_TRUE(contains(ids, "m1"));
    EXPECT_TRUE(contains(ids, "m2"));
    EXPECT_FALSE(contains(ids, "m3"));
    EXPECT_FALSE(contains(ids, "12"));
    EXPECT_EQ(rec.model_info().catalogue["added"], 3);  // m1, m2, m1 again
    rec.add_item("m3", movie("night city", "Horror"));
  }
  {
    std::ifstream f(file);
    std::string line;
    int lines = 0;
    while (std::getline(f, line)) {
      ++lines;
      EXPECT_NO_THROW((void)json::parse(line)) << line;
    }
    EXPECT_EQ(lines, 6);
    Recommender rec(model_file(), o);
    EXPECT_TRUE(contains(ids_of(all_after(rec, {"1"})), "m3"));
  }
  // A malformed complete line stops the start, naming the file and line.
  { std::ofstream(file, std::ios::app) << "{not json}\n"; }
  try {
    Recommender rec(model_file(), o);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("items.jsonl"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("7"), std::string::npos) << e.what();
  }
  fs::remove(file);
}

TEST(ServeItems, AddedItemsEnterTheAnnIndex) {
  RecommenderOptions o = quiet_options();
  o.ann.enabled = true;
  o.ann.min_items = 1;
  Recommender rec(model_file(), o);
  ASSERT_EQ(rec.model_info().scoring["retrieval"], "ann");
  rec.add_item("m1", movie(title_of(5), genres_of(5)));
  rec.remove_item("5");
  const Recommendation r = all_after(rec, {"4"}, 10);
  EXPECT_EQ(r.items.size(), 10u);
  EXPECT_FALSE(contains(ids_of(r), "5"));
  const auto every = ids_of(all_after(rec, {"4"}, kItems + 1));
  EXPECT_EQ(static_cast<int32_t>(every.size()), kItems);  // +m1 -5
  EXPECT_TRUE(contains(every, "m1"));
  EXPECT_FALSE(contains(every, "5"));
  EXPECT_EQ(rec.model_info().scoring["ann"]["index_items"], kItems + 1);
  // Exact scoring of the same catalogue gives the same list.
  Recommender exact(model_file(), quiet_options());
  exact.add_item("m1", movie(title_of(5), genres_of(5)));
  exact.remove_item("5");
  EXPECT_EQ(ids_of(all_after(exact, {"4"}, 10)), ids_of(r));
}

// The bf16 head (and the int8 one) over the trained and the added items, with and without
// the ANN index: exactly the lists and scores of the fp32 head.
TEST(ServeItems, AddedItemsGetTheFp32ResultsWithEveryHeadStorage) {
  auto run = [](RecommenderOptions::HeadStorage storage, bool ann) {
    RecommenderOptions o = quiet_options();
    o.head_storage = storage;
    o.ann.enabled = ann;
    o.ann.min_items = 1;
    Recommender rec(model_file(), o);
    rec.add_item("m1", movie(title_of(5), genres_of(5)));
    rec.add_item("m2", movie("blue river", "Drama|Western"));
    rec.remove_item("7");
    std::vector<Recommendation> out;
    for (const auto& after :
         std::vector<std::vector<std::string>>{{"4"}, {"m1", "3"}, {"m2"}, {"10", "11", "12"}})
      for (int32_t k : {1, 5, kItems + 2}) out.push_back(all_after(rec, after, k));
    return out;
  };
  const auto want = run(RecommenderOptions::HeadStorage::Fp32, false);
  for (auto storage :
       {RecommenderOptions::HeadStorage::Bf16, RecommenderOptions::HeadStorage::Int8})
    for (const bool ann : {false, true}) {
      const auto got = run(storage, ann);
      ASSERT_EQ(got.size(), want.size());
      for (size_t j = 0; j < want.size(); ++j) {
        ASSERT_EQ(ids_of(got[j]), ids_of(want[j])) << "request " << j << " ann " << ann;
        for (size_t i = 0; i < want[j].items.size(); ++i)
          ASSERT_EQ(got[j].items[i].score, want[j].items[i].score);
      }
    }
}

// Requests keep running while items are added, retired and re-added: every answer has
// exactly K items and none of the items retired for the whole run; sessions that hold
// items retired or re-added meanwhile never fail.
TEST(ServeItems, ConcurrentChangesNeverBreakARequest) {
  for (const bool ann : {false, true}) {
    RecommenderOptions o = quiet_options();
    o.max_added_items = 100000;
    o.ann.enabled = ann;
    o.ann.min_items = 1;
    Recommender rec(model_file(), o);
    // Retired for the whole run: must never come back.
    const std::vector<std::string> gone = {"2", "20", "40"};
    for (const auto& id : gone) rec.remove_item(id);
    const std::vector<std::string> churn = {"n0", "n1", "n2", "n3", "5", "6"};
    for (int j = 0; j < 4; ++j) rec.add_item("n" + std::to_string(j), movie(title_of(j), "Drama"));
    std::atomic<bool> stop{false};
    std::atomic<int64_t> requests{0};
    std::atomic<int> failures{0};
    std::string failure;
    std::mutex failure_mu;
    auto fail = [&](const std::string& why) {
      std::lock_guard<std::mutex> lock(failure_mu);
      if (failures++ == 0) failure = why;
    };
    constexpr int32_t K = 10;
    std::vector<std::thread> workers;
    for (int w = 0; w < 3; ++w)
      workers.emplace_back([&, w] {
        std::mt19937 g(static_cast<uint32_t>(w + 1));
        for (int i = 0; !stop || i < 50; ++i) {
          SessionRequest q;
          // 20 requests a session: at most ~45 seen items, so K = 10 unseen live ones remain.
          q.session_id = "s" + std::to_string(w) + "-" + std::to_string(i / 20);
          const std::string& a = churn[g() % churn.size()];
          q.events = {{a}, {std::to_string(1 + g() % kItems)}};
          if (g() % 4 == 0) q.events.push_back({gone[g() % gone.size()]});
          q.options.k = K;
          q.options.exclude_seen = (g() % 2) == 0;
          try {
            const Recommendation r = rec.add_events(q);
            if (static_cast<int32_t>(r.items.size()) != K)
              fail("add_events returned " + std::to_string(r.items.size()) + " items");
            for (const auto& s : r.items)
              if (contains(gone, s.item)) fail("retired item " + s.item + " recommended");
            ItemsRequest iq;
            iq.items = {a, "3"};
            iq.options.k = K;
            const Recommendation r2 = rec.recommend(iq);
            if (static_cast<int32_t>(r2.items.size()) != K)
              fail("recommend returned " + std::to_string(r2.items.size()) + " items");
            for (const auto& s : r2.items)
              if (contains(gone, s.item)) fail("retired item " + s.item + " recommended");
          } catch (const std::exception& e) {
            fail(std::string("request failed: ") + e.what());
          }
          ++requests;
        }
      });
    std::thread changer([&] {
      std::mt19937 g(99);
      for (int round = 0; round < 150; ++round) {
        const std::string& id = churn[g() % churn.size()];
        try {
          rec.remove_item(id);
          if (id[0] == 'n')
            rec.add_item(id, movie(title_of(static_cast<int>(g() % 50)), "Comedy"));
          else if (id == "5")  // a trained item restored with its own vector
            rec.add_item(id, nullptr);
          else  // a trained item replaced by an added one with new features
            rec.add_item(id, movie(title_of(3), "Action"));
        } catch (const std::exception& e) {
          fail(std::string("change failed: ") + e.what());
        }
      }
      stop = true;
    });
    changer.join();
    for (auto& t : workers) t.join();
    EXPECT_EQ(failures.load(), 0) << (ann ? "ann: " : "exact: ") << failure;
    EXPECT_GT(requests.load(), 100);
    EXPECT_EQ(rec.stats().catalogue_live, kItems - 3 + 4);
  }
}
