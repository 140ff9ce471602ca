// Feature files (seqrec/features.hpp): every format on small hand-written files, column
// roles given and detected, text hashing, alignment to a Vocab, and the errors; the real
// MovieLens and Beauty feature files when ../shared/data is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "seqrec/data.hpp"
#include "seqrec/features.hpp"
#include "test_data_util.hpp"

namespace seqrec {
namespace {

using test::input_error;

class Features : public test::DataTmp {};

/// Names of the dense features of row `id` (text buckets as "#text").
std::vector<std::string> row_names(const FeatureTable& t, const std::string& id) {
  const int32_t r = t.ids.find(id);
  EXPECT_GE(r, 0) << id;
  std::vector<std::string> out;
  if (r < 0) return out;
  for (int64_t k = t.offsets[static_cast<size_t>(r)]; k < t.offsets[static_cast<size_t>(r) + 1];
       ++k) {
    const int32_t i = t.index[static_cast<size_t>(k)];
    out.push_back(i < t.dense_features() ? t.names[static_cast<size_t>(i)] : "#text");
  }
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST_F(Features, MovieLensMoviesByShape) {
  const auto p = write("movies.dat",
                       "1::Toy Story (1995)::Animation|Children's|Comedy\n"
                       "2::Jumanji (1995)::Adventure|Children's|Fantasy\r\n"
                       "\n"
                       "3::Heat (1995)::Action|Crime|Thriller\n");
  const FeatureTable t = read_features(p);
  EXPECT_EQ(t.format, "movielens-movies");
  EXPECT_EQ(t.rows(), 3);
  const auto r1 = row_names(t, "1");
  EXPECT_TRUE(has(r1, "genres=Animation"));
  EXPECT_TRUE(has(r1, "genres=Comedy"));
  EXPECT_TRUE(has(r1, "year=1995"));
  EXPECT_TRUE(has(r1, "#text"));
  EXPECT_FALSE(has(r1, "genres=Crime"));
  EXPECT_EQ(t.text_buckets, FeatureReadOptions{}.text_buckets);
  // Rows are sorted by feature index without duplicates.
  for (int32_t r = 0; r < t.rows(); ++r)
    for (int64_t k = t.offsets[static_cast<size_t>(r)] + 1;
         k < t.offsets[static_cast<size_t>(r) + 1]; ++k)
      EXPECT_LT(t.index[static_cast<size_t>(k) - 1], t.index[static_cast<size_t>(k)]);
  for (int32_t i : t.index) {
    EXPECT_GE(i, 0);
    EXPECT_LT(i, t.n_features());
  }
}

TEST_F(Features, MovieLensUsersByShape) {
  const auto p = write("users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n");
  const FeatureTable t = read_features(p);
  EXPECT_EQ(t.format, "movielens-users");
  EXPECT_EQ(t.text_buckets, 0);
  const auto r2 = row_names(t, "2");
  EXPECT_EQ(r2.size(), 4u);
  EXPECT_TRUE(has(r2, "gender=M"));
  EXPECT_TRUE(has(r2, "age=56"));
  EXPECT_TRUE(has(r2, "occupation=16"));
  EXPECT_TRUE(has(r2, "zip=70072"));
}

// Found by fuzz_features: a header that is not UTF-8 (Latin-1 "catégories") made
// describe() unserialisable, so a DSSM training failed when it wrote its checkpoint or model.
TEST_F(Features, DescriptionOfANonUtf8HeaderIsValidJson) {
  const auto p =
      write("items.tsv", "item_id\ttitle\tcat\xe9gories\n10\tA lamp\thome\n11\tA desk\toffice\n");
  const FeatureTable t = read_features(p);
  EXPECT_EQ(t.rows(), 2);
  const nlohmann::json d = t.describe();
  std::string text;
  ASSERT_NO_THROW(text = d.dump());
  EXPECT_NE(text.find("cat\\\\xE9gories"), std::string::npos) << text;  // "\\xE9" in JSON
  // Valid UTF-8 is kept as it is.
  const auto q = write("utf8.tsv", "item_id\tcat\xc3\xa9gories\n10\thome\n");
  EXPECT_EQ(read_features(q).describe()["columns"][1]["name"], "cat\xc3\xa9gories");
}

TEST_F(Features, TableWithGivenRoles) {
  const auto p = write("items.csv",
                       "movieId,title,genres,price\n"
                       "10,\"Heat, the movie\",Action|Crime,9.5\n"
                       "11,Up,Animation,19.5\n");
  FeatureReadOptions o;
  o.columns = "movieId=id,title=text,genres=multi:|,price=num";
  const FeatureTable t = read_features(p, o);
  EXPECT_EQ(t.format, "table");
  const auto r = row_names(t, "10");
  EXPECT_TRUE(has(r, "genres=Action"));
  EXPECT_TRUE(has(r, "genres=Crime"));
  EXPECT_TRUE(has(r, "price"));
  // The numeric column is standardised: two values -> -1 and +1.
  const int32_t price =
      static_cast<int32_t>(std::find(t.names.begin(), t.names.end(), "price") - t.names.begin());
  for (int32_t row = 0; row < 2; ++row)
    for (int64_t k = t.offsets[static_cast<size_t>(row)];
         k < t.offsets[static_cast<size_t>(row) + 1]; ++k)
      if (t.index[static_cast<size_t>(k)] == price)
        EXPECT_NEAR(std::abs(t.value[static_cast<size_t>(k)]), 1.0, 1e-5);
}

TEST_F(Features, TableRolesDetected) {
  const auto p = write("items.tsv",
                       "item_id\tname\ttags\tcolour\n"
                       "a\tred wool hat\tknit|winter\tred\n"
                       "b\tblue cotton shirt\tsummer\tblue\n"
                       "c\tgreen silk scarf\twinter|gift\tgreen\n");
  const FeatureTable t = read_features(p);
  ASSERT_EQ(t.columns.size(), 4u);
  EXPECT_EQ(t.columns[0].role, FeatureRole::Id);
  EXPECT_EQ(t.columns[1].role, FeatureRole::Text);
  EXPECT_EQ(t.columns[2].role, FeatureRole::Multi);
  EXPECT_EQ(t.columns[3].role, FeatureRole::Cat);
  EXPECT_TRUE(has(row_names(t, "c"), "tags=gift"));
}

TEST_F(Features, RecBoleAtomicFile) {
  const auto p = write(
      "ml.item",
      "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tvec:float_seq\n"
      "1\tToy Story\t1995\tAnimation Comedy\t0.5 1\n"
      "2\tHeat\t1995\tAction\t1 2\n");
  const FeatureTable t = read_features(p);
  EXPECT_EQ(t.format, "recbole");
  const auto r = row_names(t, "1");
  EXPECT_TRUE(has(r, "class=Animation"));
  EXPECT_TRUE(has(r, "class=Comedy"));
  EXPECT_TRUE(has(r, "movie_title=Toy"));
  EXPECT_TRUE(has(r, "release_year=1995"));
  EXPECT_TRUE(has(r, "vec[0]"));
  EXPECT_TRUE(has(r, "vec[1]"));
  // A role given by name overrides the header's type.
  FeatureReadOptions o;
  o.columns = "movie_title=text";
  EXPECT_TRUE(has(row_names(read_features(p, o), "2"), "#text"));
}

TEST_F(Features, S3RecJson) {
  const auto p = write("attr.json", R"({"1": [3, 7], "2": [7], "3": []})");
  const FeatureTable t = read_features(p);
  EXPECT_EQ(t.format, "json");
  EXPECT_EQ(t.rows(), 3);
  EXPECT_EQ(t.n_features(), 2);
  EXPECT_EQ(row_names(t, "1"), (std::vector<std::string>{"attr=3", "attr=7"}));
  EXPECT_TRUE(row_names(t, "3").empty());
  EXPECT_NE(
      input_error([&] { read_features(write("bad.json", R"({"1": [{"x": 1}]})")); }).find("item"),
      std::string::npos);
  EXPECT_NE(input_error([&] { read_features(write("bad2.json", "{\"1\": [1,")); }).find("JSON"),
            std::string::npos);
}

TEST(FeatureText, TrigramsAndWords) {
  std::vector<int32_t> idx;
  std::vector<float> val;
  // "good": #go goo ood od# (4 trigrams) + the word = 5 hits; twice -> counts 2.
  hash_text("Good, good!", 1 << 20, true, true, 100, idx, val);
  float total = 0;
  for (float v : val) total += v;
  EXPECT_EQ(total, 10.0f);
  for (int32_t i : idx) EXPECT_GE(i, 100);
  EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end()));
  idx.clear();
  val.clear();
  hash_text("ab", 1 << 20, true, false, 0, idx, val);  // #ab ab#
  EXPECT_EQ(idx.size(), 2u);
  idx.clear();
  val.clear();
  hash_text("ab", 1 << 20, false, true, 0, idx, val);
  EXPECT_EQ(idx.size(), 1u);
  // Case does not matter.
  std::vector<int32_t> a, b;
  std::vector<float> va, vb;
  hash_text("Heat", 4096, true, true, 0, a, va);
  hash_text("HEAT", 4096, true, true, 0, b, vb);
  EXPECT_EQ(a, b);
}

TEST_F(Features, AlignCountsAndForeignFile) {
  const auto p = write("movies.dat", "1::A (1990)::Drama\n2::B (1991)::Comedy\n9::C (1992)::War\n");
  const FeatureTable t = read_features(p);
  Vocab v;
  v.add("2");
  v.add("1");
  v.add("5");
  FeatureAlignment a;
  const SparseFeatures s = align_features(t, v, &a);
  EXPECT_EQ(s.rows(), 3);
  EXPECT_EQ(a.matched, 2);
  EXPECT_EQ(a.without_features, 1);
  EXPECT_EQ(a.not_in_vocab, 1);
  EXPECT_TRUE(s.row_index(2).empty());
  const auto r0 = s.row_index(0);  // item "2" = row of B
  const int32_t comedy = static_cast<int32_t>(
      std::find(t.names.begin(), t.names.end(), "genres=Comedy") - t.names.begin());
  EXPECT_NE(std::find(r0.begin(), r0.end(), comedy), r0.end());
  Vocab other;
  other.add("x");
  const std::string e = input_error([&] { align_features(t, other, nullptr); });
  EXPECT_NE(e.find("another data set"), std::string::npos) << e;
  EXPECT_NE(e.find("movies.dat"), std::string::npos) << e;
}

TEST_F(Features, Errors) {
  // Malformed row: file and line.
  std::string e = input_error([&] { read_features(write("m.dat", "1::A (1990)::Drama\n2::B\n")); });
  EXPECT_NE(e.find("m.dat:2"), std::string::npos) << e;
  e = input_error([&] { read_features(write("t.tsv", "id\tx\n1\ta\n2\n")); });
  EXPECT_NE(e.find("t.tsv:3"), std::string::npos) << e;
  // A duplicate id.
  e = input_error([&] { read_features(write("d.tsv", "id\tx\n1\ta\n1\tb\n")); });
  EXPECT_NE(e.find("d.tsv:3"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  // A number that is not one.
  FeatureReadOptions o;
  o.columns = "x=num";
  e = input_error([&] { read_features(write("n.tsv", "id\tx\n1\t2.5\n2\tabc\n"), o); });
  EXPECT_NE(e.find("n.tsv:3"), std::string::npos) << e;
  // Absurd hash sizes.
  o = {};
  o.text_buckets = int64_t{1} << 40;
  e = input_error([&] { read_features(write("h.tsv", "id\tx\n1\ta\n"), o); });
  EXPECT_NE(e.find("text_buckets"), std::string::npos) << e;
  o.text_buckets = 0;
  EXPECT_FALSE(input_error([&] { read_features(write("h.tsv", "id\tx\n1\ta\n"), o); }).empty());
  // Conflicting or unknown roles, unknown columns.
  o = {};
  o.columns = "id=id,x=id";
  e = input_error([&] { read_features(write("c.tsv", "id\tx\n1\ta\n"), o); });
  EXPECT_NE(e.find("conflicting"), std::string::npos) << e;
  o.columns = "x=cat,x=text";
  EXPECT_NE(
      input_error([&] { read_features(write("c.tsv", "id\tx\n1\ta\n"), o); }).find("two roles"),
      std::string::npos);
  o.columns = "x=colour";
  EXPECT_NE(
      input_error([&] { read_features(write("c.tsv", "id\tx\n1\ta\n"), o); }).find("unknown role"),
      std::string::npos);
  o.columns = "y=cat";
  EXPECT_NE(input_error([&] { read_features(write("c.tsv", "id\tx\n1\ta\n"), o); }).find("'y'"),
            std::string::npos);
  // Empty files and files without rows.
  EXPECT_FALSE(input_error([&] { read_features(write("e.tsv", "\n\n")); }).empty());
  EXPECT_FALSE(input_error([&] { read_features(write("e2.tsv", "id\tx\n")); }).empty());
  EXPECT_FALSE(input_error([&] { read_features(write("q.csv", "id,x\n1,\"open\n")); }).empty());
  EXPECT_THROW(read_features(path("missing.tsv")), Error);
}

std::string shared(const std::string& rel) {
  return std::string(SEQREC_SHARED_DATA_DIR) + "/" + rel;
}

#define SKIP_IF_MISSING(rel)                 \
  if (!std::filesystem::exists(shared(rel))) \
  GTEST_SKIP() << "shared data not found: " << shared(rel) << " (../shared/data is absent)"

TEST(FeaturesShared, MovieLensMoviesAndUsers) {
  SKIP_IF_MISSING("ml-1m/movies.dat");
  SKIP_IF_MISSING("ml-1m/ml-1m_rawids.txt");
  const FeatureTable movies = read_features(shared("ml-1m/movies.dat"));
  EXPECT_EQ(movies.format, "movielens-movies");
  EXPECT_EQ(movies.rows(), 3883);
  int genres = 0, years = 0;
  for (const auto& n : movies.names) {
    genres += n.starts_with("genres=");
    years += n.starts_with("year=");
  }
  EXPECT_EQ(genres, 18);
  EXPECT_GT(years, 50);
  const EventLog log = read_events(shared("ml-1m/ml-1m_rawids.txt"));
  FeatureAlignment a;
  const SparseFeatures s = align_features(movies, log.items, &a);
  EXPECT_EQ(a.matched, 3706);  // every rated movie is in movies.dat
  EXPECT_EQ(a.without_features, 0);
  EXPECT_EQ(a.not_in_vocab, 3883 - 3706);
  EXPECT_EQ(s.rows(), log.items.size());
  const FeatureTable users = read_features(shared("ml-1m/users.dat"));
  EXPECT_EQ(users.format, "movielens-users");
  EXPECT_EQ(users.rows(), 6040);
}

TEST(FeaturesShared, BeautyAttributes) {
  SKIP_IF_MISSING("beauty/Beauty_item2attributes.json");
  const FeatureTable t = read_features(shared("beauty/Beauty_item2attributes.json"));
  EXPECT_EQ(t.rows(), 12101);
  EXPECT_EQ(t.n_features(), 637);
  for (int32_t r = 0; r < t.rows(); ++r) {
    const int64_t n = t.offsets[static_cast<size_t>(r) + 1] - t.offsets[static_cast<size_t>(r)];
    EXPECT_GE(n, 1);
    EXPECT_LE(n, 6);
  }
}

}  // namespace
}  // namespace seqrec
