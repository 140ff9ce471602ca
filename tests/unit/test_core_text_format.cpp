// Text helpers: thousands separators and the UTC timestamp format.
#include <gtest/gtest.h>

#include <regex>

#include "core/text_format.hpp"

using namespace seqrec;

TEST(TextFormat, GroupedCount) {
  EXPECT_EQ(grouped_count(0), "0");
  EXPECT_EQ(grouped_count(999), "999");
  EXPECT_EQ(grouped_count(1000), "1,000");
  EXPECT_EQ(grouped_count(1234567), "1,234,567");
  EXPECT_EQ(grouped_count(-1200), "-1,200");
}

TEST(TextFormat, UtcNowText) {
  const std::string t = utc_now_text("%Y-%m-%dT%H:%M:%SZ");
  EXPECT_TRUE(std::regex_match(t, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"))) << t;
}
