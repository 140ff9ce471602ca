// Running the seqrec binary from integration tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace seqrec_test {

struct CmdResult {
  int code = -1;
  std::string out;  ///< stdout and stderr together
};

/// Runs a shell command line and collects its output (stdout and stderr) and exit code.
inline CmdResult run_shell(const std::string& command) {
  CmdResult r;
  const std::string cmd = command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

/// Runs `seqrec -q ARGS` (SEQREC_BINARY) and collects its output and exit code.
inline CmdResult run(const std::string& args) {
  return run_shell(std::string(SEQREC_BINARY) + " -q " + args);
}

/// The whole content of a file.
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// A new empty folder for the current test: TempDir/PREFIX_PID_TESTNAME. The process id
/// keeps test runs of several checkouts (or ctest's parallel processes) out of each other's
/// files.
inline std::filesystem::path fresh_test_dir(const std::string& prefix) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      (prefix + "_" + std::to_string(::getpid()) + "_" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline  /// 60 users rating 12 of 30 movies each, a week apart; no header, 4 columns (u.data style).
    std::string
    user_ratings() {
  std::string text;
  for (int u = 1; u <= 60; ++u)
    for (int k = 0; k < 12; ++k)
      text += std::to_string(u) + "\t" + std::to_string(1 + (u * 7 + k) % 30) + "\t4\t" +
              std::to_string(880000000 + u * 3600 + k * 7 * 86400) + "\n";
  return text;
}

}  // namespace seqrec_test
