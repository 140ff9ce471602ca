// The documented commands work as written (issue 13): runs the shell examples of README.md,
// docs/cli.md and docs/http-api.md against the built binary.
//
// Which blocks run:
// - Every fenced block tagged ```bash or ```sh in those files runs, in the order of the file,
//   in one bash process per file (later blocks see the files and variables of earlier ones),
//   under `set -euo pipefail`: a command that fails fails the test, naming FILE:LINE.
// - A block right after the line `<!-- doc-test: skip (reason) -->` does not run (commands
//   that need the user's own files). Blocks fenced with a plain ``` or another language are
//   illustrations (synopses, JSON answers) and do not run.
// - Lines that run `bash scripts/...` do not run: those scripts build and test this
//   repository, i.e. they are what runs this test.
// - When ../shared/data is absent, the first block that mentions ../shared and every later
//   block of that file are skipped, with a message (later blocks build on earlier ones).
//
// Where they run: a fresh temporary folder holding `build` (a link to the real build folder,
// so `B=./build/seqrec` and `cmake --install build` work as written), `bin/seqrec` (first
// on PATH, for examples that say `seqrec ...`), and `../shared` (a link to the repository's
// ../shared when present). HOME is a folder inside it (so `~/.local` and the binary cache
// stay there).
//
// Servers: a line ending in `&` starts a server in the background; the runner then waits until
// its port answers GET /health, and kills every background job at the end. Port 8080 of
// the examples is replaced by a free port (the examples must say `--port 8080`). `curl` fails
// on an HTTP error status, and an answer or a `seqrec recommend` that reports unknown items
// fails the test too (the examples must use item ids that exist).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"

namespace fs = std::filesystem;

namespace {

struct Block {
  int line = 0;  ///< 1-based line of the first command line
  std::vector<std::string> lines;
  bool skip = false;
};

/// The ```bash / ```sh blocks of a Markdown file.
std::vector<Block> shell_blocks(const fs::path& md) {
  std::ifstream f(md);
  std::vector<Block> out;
  std::string line, prev;
  int n = 0;
  Block* cur = nullptr;
  bool in_other = false;
  while (std::getline(f, line)) {
    ++n;
    if (cur != nullptr) {
      if (line.rfind("```", 0) == 0)
        cur = nullptr;
      else
        cur->lines.push_back(line);
    } else if (in_other) {
      if (line.rfind("```", 0) == 0) in_other = false;
    } else if (line == "```bash" || line == "```sh") {
      out.push_back(Block{n + 1, {}, prev.rfind("<!-- doc-test: skip", 0) == 0});
      cur = &out.back();
    } else if (line.rfind("```", 0) == 0) {
      in_other = true;
    }
    if (!line.empty()) prev = line;
  }
  return out;
}

int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string single_quoted(const std::string& s) {
  return "'" + replace_all(s, "'", "'\\''") + "'";
}

class Docs : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = seqrec_test::fresh_test_dir("seqrec_docs");
    dir_ = root_ / "run";
    fs::create_directories(dir_ / "bin");
    fs::create_directories(dir_ / "home");
    fs::create_directory_symlink(fs::path(SEQREC_BINARY).parent_path(), dir_ / "build");
    fs::create_symlink(SEQREC_BINARY, dir_ / "bin" / "seqrec");
    shared_ = fs::exists(SEQREC_SHARED_DATA_DIR);
    if (shared_)
      fs::create_directory_symlink(fs::path(SEQREC_SHARED_DATA_DIR).parent_path(),
                                   root_ / "shared");
  }
  void TearDown() override { fs::remove_all(root_); }

  /// Runs the runnable blocks of one documentation file; fails naming FILE:LINE.
  void run_doc(const std::string& rel) {
    const fs::path md = fs::path(SEQREC_SOURCE_DIR) / rel;
    ASSERT_TRUE(fs::exists(md)) << md;
    const std::vector<Block> blocks = shell_blocks(md);
    const int port = free_port();
    ASSERT_GT(port, 0);
    std::ostringstream sh;
    sh << "set -euo pipefail\n"
       << "export PATH=" << single_quoted((dir_ / "bin").string()) << ":\"$PATH\"\n"
       << "export HOME=" << single_quoted((dir_ / "home").string()) << "\n"
       << "DOC_AT=start\n"
       << "trap 'echo \"doc-test: FAILED at " << rel << ":$DOC_AT\" >&2' ERR\n"
       << "trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT\n"
       // curl: an HTTP error status fails; unknown item ids in an answer fail.
       << "curl() {\n"
       << "  local out rc=0\n"
       << "  out=$(command curl --fail-with-body \"$@\") || rc=$?\n"
       << "  printf '%s\\n' \"$out\"\n"
       << "  if grep -q '\"unknown_items\": *\\[ *\"' <<<\"$out\"; then\n"
       << "    echo \"doc-test: unknown item ids in the answer\" >&2; return 1; fi\n"
       << "  return $rc\n"
       << "}\n"
       << "wait_for_port() {\n"
       << "  for _ in $(seq 600); do\n"
       << "    command curl -s -o /dev/null localhost:" << port << "/health && return 0\n"
       << "    sleep 0.1; done\n"
       << "  echo \"doc-test: no server on port " << port << "\" >&2; return 1\n"
       << "}\n";
    const std::regex background(R"(&\s*(#.*)?$)");
    int ran = 0;
    bool skipping_rest = false;
    for (const Block& b : blocks) {
      std::string text;
      for (const auto& l : b.lines) text += l + "\n";
      if (b.skip) continue;
      if (!shared_ && (skipping_rest || text.find("../shared") != std::string::npos)) {
        if (!skipping_rest)
          std::printf("[ SKIPPED  ] %s:%d and later blocks: ../shared/data is absent\n",
                      rel.c_str(), b.line);
        skipping_rest = true;
        continue;
      }
      bool continued = false;
      for (size_t i = 0; i < b.lines.size(); ++i) {
        std::string l = replace_all(b.lines[i], "8080", std::to_string(port));
        const int at = b.line + static_cast<int>(i);
        if (!continued) sh << "DOC_AT=" << at << "\n";
        const std::string trimmed = l.substr(std::min(l.size(), l.find_first_not_of(' ')));
        if (!continued && trimmed.rfind("bash scripts/", 0) == 0) {
          sh << ": not run: " << single_quoted(trimmed) << "\n";
          continue;
        }
        sh << l << "\n";
        continued = !l.empty() && l.back() == '\\';
        if (!continued && std::regex_search(l, background) && l.find("&&") == std::string::npos) {
          ASSERT_NE(l.find(std::to_string(port)), std::string::npos)
              << rel << ":" << at << ": a background server needs `--port 8080`";
          sh << "wait_for_port\n";
        }
        ++ran;
      }
    }
    if (ran == 0 && skipping_rest) GTEST_SKIP() << rel << ": every example needs ../shared/data";
    ASSERT_GT(ran, 0) << rel << ": no runnable ```bash/```sh block";
    const fs::path script = root_ / "doc.sh";
    {
      std::ofstream f(script);
      f << sh.str();
    }
    seqrec_test::CmdResult r =
        seqrec_test::run_shell("cd " + single_quoted(dir_.string()) + " && bash " +
                               single_quoted(script.string()) + " </dev/null");
    EXPECT_EQ(r.code, 0) << rel << ":\n" << r.out << "\n--- script ---\n" << sh.str();
    EXPECT_EQ(r.out.find("unknown item '"), std::string::npos)
        << rel << ": a documented session uses item ids the model does not know\n"
        << r.out;
  }

  fs::path root_, dir_;
  bool shared_ = false;
};

}  // namespace

TEST_F(Docs, ReadmeCommandsWork) {
  run_doc("README.md");
}

TEST_F(Docs, CliQuickStartWorks) {
  run_doc("docs/cli.md");
}

TEST_F(Docs, HttpApiExamplesWork) {
  run_doc("docs/http-api.md");
}

// The example reports show paths a reader can follow (relative to the report), not the
// temporary folders of the machine that made them.
TEST(DocsExamples, ReportsShowNoTemporaryPaths) {
  int reports = 0;
  for (const auto& e :
       fs::recursive_directory_iterator(fs::path(SEQREC_SOURCE_DIR) / "docs" / "examples")) {
    const std::string name = e.path().filename().string();
    if (name != "report.md" && name != "report.html") continue;
    ++reports;
    const std::string text = seqrec_test::slurp(e.path());
    EXPECT_EQ(text.find("/tmp/"), std::string::npos) << e.path();
    EXPECT_NE(text.find("work/split"), std::string::npos) << e.path();
  }
  EXPECT_GT(reports, 0);
}
