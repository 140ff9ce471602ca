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
