#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "seqrec/config.hpp"
#include "seqrec/error.hpp"

using namespace seqrec;

namespace {
std::vector<ParamSpec> specs() {
  return {
      {"layers", ParamType::IntList, "100", "GRU layer sizes", 1, 100000, {}},
      {"lr", ParamType::Float, "0.05", "learning rate", 0, 10, {}},
      {"batch_size", ParamType::Int, "32", "batch", 1, 1e6, {}},
      {"loss",
       ParamType::String,
       "cross-entropy",
       "loss",
       -1e300,
       1e300,
       {"cross-entropy", "bpr-max"}},
      {"constrained", ParamType::Bool, "true", "shared embedding", -1e300, 1e300, {}},
  };
}
}  // namespace

TEST(CoreConfig, DefaultsAndTypedAccess) {
  Config c(specs());
  EXPECT_EQ(c.get_int_list("layers"), std::vector<int64_t>{100});
  EXPECT_DOUBLE_EQ(c.get_float("lr"), 0.05);
  EXPECT_EQ(c.get_int("batch_size"), 32);
  EXPECT_EQ(c.get_string("loss"), "cross-entropy");
  EXPECT_TRUE(c.get_bool("constrained"));
}

TEST(CoreConfig, SetValidatesAndCanonicalises) {
  Config c(specs());
  c.set("layers", "[200, 100]");
  EXPECT_EQ(c.raw("layers"), "200,100");
  c.set("constrained", "no");
  EXPECT_FALSE(c.get_bool("constrained"));
  c.set("batch_size", "1e3");
  EXPECT_EQ(c.get_int("batch_size"), 1000);
  EXPECT_THROW(c.set("batch_size", "0"), InputError);
  EXPECT_THROW(c.set("batch_size", "1.5"), InputError);
  EXPECT_THROW(c.set("lr", "nan"), InputError);
  EXPECT_THROW(c.set("lr", "-1"), InputError);
  EXPECT_THROW(c.set("loss", "hinge"), InputError);
  EXPECT_THROW(c.set("layers", ""), InputError);
  EXPECT_THROW(c.set("nope", "1"), InputError);
  try {
    c.set("lr", "abc", "--lr");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--lr"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'lr'"), std::string::npos);
  }
}

TEST(CoreConfig, ExclusiveBoundsAreRefusedWithTheRangeInTheMessage) {
  ParamSpec p;
  p.name = "p";
  p.type = ParamType::Float;
  p.default_value = "0.5";
  p.min = 0;
  p.max = 1;
  EXPECT_EQ(range_text(p), "between 0 and 1");
  p.max_exclusive = true;
  EXPECT_EQ(range_text(p), "in [0, 1)");
  EXPECT_EQ(canonical_value(p, "0", "o"), "0");
  EXPECT_EQ(canonical_value(p, "0.999", "o"), "0.999");
  try {
    canonical_value(p, "1", "o");
    FAIL() << "1 accepted in [0, 1)";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "o: parameter 'p' must be in [0, 1), got '1'");
  }
  p.min_exclusive = true;
  EXPECT_EQ(range_text(p), "in (0, 1)");
  EXPECT_THROW(canonical_value(p, "0", "o"), InputError);
  p.max = 1e300;
  EXPECT_EQ(range_text(p), "> 0");
  p.min = -1e300;
  EXPECT_EQ(range_text(p), "");
}

TEST(CoreConfig, JsonRoundTrip) {
  Config c(specs());
  c.set("layers", "64,32");
  c.set("lr", "0.2");
  Config d(specs());
  d.from_json(c.to_json(), "test");
  EXPECT_EQ(d.to_json(), c.to_json());
  EXPECT_THROW(d.from_json(nlohmann::json{{"zzz", 1}}, "test"), InputError);
}

TEST(CoreConfig, KeyValueFileNamesLineOnError) {
  const std::string path = ::testing::TempDir() + "/seqrec_cfg_test.txt";
  {
    std::ofstream f(path);
    f << "# comment\nlr = 0.1\n\nbatch_size = 64  # trailing\nlayers = oops\n";
  }
  Config c(specs());
  try {
    c.load_file(path);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":5"), std::string::npos) << e.what();
  }
  EXPECT_DOUBLE_EQ(c.get_float("lr"), 0.1);
  EXPECT_EQ(c.get_int("batch_size"), 64);
  std::remove(path.c_str());
}

// ---- aliases: one parameter, several accepted spellings ----

TEST(CoreConfig, AliasesSetAndReadTheOneParameter) {
  Config c({param_int("epochs", "10", 0, 1000, "epochs").alias("n_epochs").alias("num_epochs")});
  EXPECT_TRUE(c.has("n_epochs"));
  c.set("n_epochs", "3", "--n-epochs");
  EXPECT_EQ(c.get_int("epochs"), 3);
  EXPECT_EQ(c.get_int("num_epochs"), 3);
  // Stored and written under the name only.
  EXPECT_EQ(c.to_json(), nlohmann::json::parse(R"({"epochs": 3})"));
  // An old model file's configuration (an old spelling) still loads.
  Config old({param_int("epochs", "10", 0, 1000, "epochs").alias("num_epochs")});
  old.from_json(nlohmann::json::parse(R"({"num_epochs": 7})"), "old.seqrec");
  EXPECT_EQ(old.get_int("epochs"), 7);
  // Range messages name the parameter and where the value came from.
  try {
    c.set("num_epochs", "-1", "cfg.txt:2");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.txt:2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'epochs'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(c.set("n_epoch", "3"), InputError);
}

// ---- ParamTable: a typed struct bound to its specs ----

namespace {
enum class Shape { Round, Square };
struct Params {
  int64_t count = 0;
  int32_t small = 0;
  float rate = 0;
  double alpha = 0;
  bool flag = false;
  std::string name;
  std::vector<int64_t> sizes;
  Shape shape = Shape::Round;
};
ParamTable<Params> params_table() {
  ParamTable<Params> t;
  t.field(&Params::count, param_int("count", "5", 1, 100, "a count").alias("n"));
  t.field(&Params::small, param_int("small", "2", 0, 9, "small"));
  t.field(&Params::rate, param_float("rate", "0.07", 0, 1, "a rate").open_min());
  t.field(&Params::alpha, param_float("alpha", "0.5", 0, 10, "alpha"));
  t.field(&Params::flag, param_bool("flag", "true", "a flag"));
  t.field(&Params::name, param_string("name", "x", "a name"));
  t.field(&Params::sizes, param_int_list("sizes", "10,20", 1, 100, "sizes"));
  t.choice(&Params::shape, param_choice("shape", "square", {}, "a shape"),
           {{"round", Shape::Round}, {"square", Shape::Square}});
  return t;
}
}  // namespace

TEST(CoreConfig, ParamTableReadsEveryMemberFromTheSpecs) {
  const auto t = params_table();
  const Params d = t.defaults();
  EXPECT_EQ(d.count, 5);
  EXPECT_EQ(d.small, 2);
  EXPECT_EQ(d.rate, 0.07f);  // read as double, rounded to the member's float
  EXPECT_EQ(d.alpha, 0.5);
  EXPECT_TRUE(d.flag);
  EXPECT_EQ(d.name, "x");
  EXPECT_EQ(d.sizes, (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(d.shape, Shape::Square);
  // The choice spec lists the mapped names.
  EXPECT_EQ(t.specs().back().choices, (std::vector<std::string>{"round", "square"}));

  Config c(t.specs());
  c.set("n", "9");
  c.set("shape", "round");
  const Params p = t.read(c);
  EXPECT_EQ(p.count, 9);
  EXPECT_EQ(p.shape, Shape::Round);
  EXPECT_THROW(c.set("shape", "oval"), InputError);
}

TEST(CoreConfig, ParamTableChangesAreTheValuesThatDifferFromTheDefaults) {
  const auto t = params_table();
  Params p = t.defaults();
  EXPECT_TRUE(t.changes(p).empty());
  p.rate = 0.2f;
  p.shape = Shape::Round;
  p.sizes = {30};
  const auto ch = t.changes(p);
  ASSERT_EQ(ch.size(), 3u);
  // A float member is written as its shortest exact text: 0.2f reads back as 0.2f.
  Config c(t.specs());
  for (const auto& [name, value] : ch) c.set(name, value, "preset");
  const Params back = t.read(c);
  EXPECT_EQ(back.rate, 0.2f);
  EXPECT_EQ(back.shape, Shape::Round);
  EXPECT_EQ(back.sizes, (std::vector<int64_t>{30}));
  // An out-of-range typed value is refused like a flag would be.
  p.rate = 0.0f;
  EXPECT_THROW(t.changes(p), InputError);
}

TEST(CoreConfig, ParamTableRefusesASpecOfTheWrongTypeForItsMember) {
  ParamTable<Params> t;
  EXPECT_THROW(t.field(&Params::count, param_float("count", "1", 0, 9, "wrong")), Error);
}

TEST(CoreConfig, ExactTextIsShortestAndRoundTrips) {
  EXPECT_EQ(exact_text(0.07f), "0.07");
  EXPECT_EQ(exact_text(0.065f), "0.065");
  EXPECT_EQ(exact_text(1.0), "1");
  EXPECT_EQ(std::stof(exact_text(0.1f + 0.2f)), 0.1f + 0.2f);
}
