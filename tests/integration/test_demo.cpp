// `seqrec demo` and scripts/demo: the closing table is explained in words, and the build
// before it shows its progress.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli_runner.hpp"

namespace fs = std::filesystem;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::run_shell;
using seqrec_test::slurp;

namespace {

bool has(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::path(::testing::TempDir()) / ("seqrec_demo_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(Demo, ClosingTableSaysWhoWonAndWhatTheNumbersMean) {
  const fs::path d = temp_dir("table");
  CmdResult r = run("demo --events 30000 --items 800 --models pop,sr -o " + (d / "out").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r.out, "Best by Recall@20: ")) << r.out;
  EXPECT_TRUE(has(r.out, "Recall@20 = the share of next clicks found in the model's top 20"))
      << r.out;
  EXPECT_TRUE(has(r.out, "MRR@20 = the mean of 1/rank of the next click")) << r.out;
  EXPECT_TRUE(has(r.out, "Why simple rules can win here")) << r.out;
  EXPECT_TRUE(has(r.out, "item-to-item transitions")) << r.out;
  fs::remove_all(d);
}

TEST(Demo, BuildShowsOneStatusLinePerStep) {
  const fs::path d = temp_dir("build");
  const std::string src = SEQREC_SOURCE_DIR;
  // scripts/demo passes the build through scripts/build-progress instead of discarding it.
  const std::string demo = slurp(fs::path(src) / "scripts" / "demo");
  EXPECT_FALSE(has(demo, "scripts/build >/dev/null")) << demo;
  EXPECT_TRUE(has(demo, "scripts/build-progress")) << demo;
  // The filter, fed a ninja build: a short line per step on stderr, errors through, the
  // whole output in the log.
  const std::string log = (d / "build.log").string();
  CmdResult r = run_shell(
      "printf '%s\\n' '-- Configuring done' "
      "'[1/3] Building CXX object CMakeFiles/seqrec_lib.dir/src/app/compare.cpp.o' "
      "'src/app/compare.cpp:1:2: error: boom' "
      "'[2/3] Building CXX object CMakeFiles/seqrec_lib.dir/src/core/progress.cpp.o' "
      "'[3/3] Linking CXX executable seqrec' | bash " +
      src + "/scripts/build-progress " + log);  // it writes to stderr only
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out,
            "build [1/3] compare.cpp\n"
            "src/app/compare.cpp:1:2: error: boom\n"
            "build [2/3] progress.cpp\n"
            "build [3/3] seqrec\n");
  EXPECT_TRUE(has(slurp(log), "-- Configuring done\n[1/3] Building CXX object")) << slurp(log);
  fs::remove_all(d);
}
