// What the commands do with the files they write (issue 17): nothing the user has is ever
// destroyed. Each test runs the command lines of the issue with the real binary. None of
// them names /dev/null or /dev/stdout itself: run as root, a writer that replaces special
// files would damage the machine (the unit tests of io::OutputFile cover /dev/null).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.hpp"

namespace fs = std::filesystem;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::slurp;

namespace {

class CliOutputs : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = seqrec_test::fresh_test_dir("seqrec_outputs"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  static void put(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
  }
  /// A log, its split and a model trained on it (sr: fast).
  void pipeline() {
    CmdResult r = run("generate --events 4000 --items 150 --seed 5 -o " + p("log.tsv"));
    ASSERT_EQ(r.code, 0) << r.out;
    r = run("prepare " + p("log.tsv") + " -o " + p("split") + " --cache-dir none");
    ASSERT_EQ(r.code, 0) << r.out;
    r = run("train " + p("split") + " -m sr -o " + p("m.seqrec"));
    ASSERT_EQ(r.code, 0) << r.out;
  }
  /// Names in the test folder that look like temporary files left behind.
  std::vector<std::string> leftovers() const {
    std::vector<std::string> v;
    for (const auto& e : fs::recursive_directory_iterator(dir_))
      if (e.path().filename().string().find(".tmp") != std::string::npos)
        v.push_back(e.path().string());
    return v;
  }
  fs::path dir_;
};

bool is_fifo(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

}  // namespace

// Defect 2: an output that is one of the command's inputs is refused, with or without
// --force, and the input is left as it was.
TEST_F(CliOutputs, AnOutputThatIsAnInputIsRefused) {
  pipeline();
  const std::string log = slurp(p("log.tsv"));
  const std::string train_full = slurp(p("split/train_full.tsv"));
  const std::string test = slurp(p("split/test.tsv"));
  const std::string model = slurp(p("m.seqrec"));
  fs::create_symlink(p("log.tsv"), p("log_alias.tsv"));
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"train " + p("log.tsv") + " -m sr -o " + p("log.tsv"), "is the input data"},
      {"train " + p("log.tsv") + " -m sr -o " + p("log_alias.tsv"), "is the input data"},
      {"train " + p("split") + " -m sr -o " + p("split/train_full.tsv"),
       "is a file of the input split"},
      {"eval -m " + p("m.seqrec") + " " + p("split/test.tsv") + " --json " + p("split/test.tsv"),
       "is the input data"},
      {"eval -m " + p("m.seqrec") + " " + p("split") + " --json " + p("split/test.tsv"),
       "is a file of the input split"},
      {"eval -m " + p("m.seqrec") + " " + p("split") + " --json " + p("m.seqrec"),
       "is the model (-m)"},
      {"prepare " + p("split/train_full.tsv") + " -o " + p("split"), "is the input log"},
  };
  for (const Case& c : cases)
    for (const std::string force : {"", " --force"}) {
      const CmdResult r = run(c.args + force);
      EXPECT_EQ(r.code, 1) << c.args << force << "\n" << r.out;
      EXPECT_NE(r.out.find("seqrec: error: "), std::string::npos) << r.out;
      EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << force << "\n" << r.out;
    }
  EXPECT_EQ(slurp(p("log.tsv")), log);
  EXPECT_EQ(slurp(p("split/train_full.tsv")), train_full);
  EXPECT_EQ(slurp(p("split/test.tsv")), test);
  EXPECT_EQ(slurp(p("m.seqrec")), model);
  EXPECT_TRUE(fs::is_symlink(p("log_alias.tsv")));
  EXPECT_TRUE(leftovers().empty()) << leftovers().front();
}

// Defect 2: a file of another kind is not replaced unless --force.
TEST_F(CliOutputs, AFileOfAnotherKindIsReplacedOnlyWithForce) {
  pipeline();
  const std::string model = slurp(p("m.seqrec"));
  put(p("notes.txt"), "my notes, no model\n");
  put(p("metrics.json"), "{\"old\": true}\n");
  // generate -o model.seqrec: a model replaced by a TSV.
  CmdResult r = run("generate --events 500 -o " + p("m.seqrec"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is a final model file"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--force"), std::string::npos) << r.out;
  // eval --json over a model, over notes: refused; over earlier metrics: written.
  r = run("eval -m " + p("m.seqrec") + " " + p("split") + " --json " + p("notes.txt"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is a text file"), std::string::npos) << r.out;
  r = run("eval -m " + p("m.seqrec") + " " + p("split") + " --json " + p("metrics.json"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(nlohmann::json::parse(slurp(p("metrics.json"))).contains("metrics") ||
              !nlohmann::json::parse(slurp(p("metrics.json"))).contains("old"));
  // train -o over an event log: refused; a model over a model: written.
  r = run("train " + p("split") + " -m pop -o " + p("notes.txt"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("--out '" + p("notes.txt") + "' exists and is a text file"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(slurp(p("notes.txt")), "my notes, no model\n");
  EXPECT_EQ(slurp(p("m.seqrec")), model);
  r = run("train " + p("split") + " -m pop -o " + p("m.seqrec"));
  EXPECT_EQ(r.code, 0) << r.out;
  // With --force the user's choice wins.
  r = run("generate --events 500 --force -o " + p("notes.txt"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(slurp(p("notes.txt")).find("SessionId"), std::string::npos);
  EXPECT_TRUE(leftovers().empty()) << leftovers().front();
}

// Defect 1: a symbolic link given as an output: its target is written, the link stays.
TEST_F(CliOutputs, SymlinkOutputsWriteTheirTargets) {
  pipeline();
  fs::create_directories(p("store"));
  fs::create_symlink(p("store/model.seqrec"), p("model_link"));  // dangling: created
  fs::create_symlink(p("store/gen.tsv"), p("gen_link"));
  fs::create_symlink(p("store/metrics.json"), p("json_link"));
  CmdResult r = run("train " + p("split") + " -m pop -o " + p("model_link"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("generate --events 500 -o " + p("gen_link"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("eval -m " + p("model_link") + " " + p("split") + " --json " + p("json_link"));
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* link : {"model_link", "gen_link", "json_link"})
    EXPECT_TRUE(fs::is_symlink(p(link))) << link << " was replaced";
  EXPECT_EQ(run("info " + p("store/model.seqrec")).code, 0);
  EXPECT_NE(slurp(p("store/gen.tsv")).find("SessionId"), std::string::npos);
  EXPECT_NO_THROW((void)nlohmann::json::parse(slurp(p("store/metrics.json"))));
  // A split file of prepare that is a link (prepare --force over an existing folder).
  fs::create_directories(p("split2"));
  fs::create_symlink(p("store/test_copy.tsv"), p("split2/test.tsv"));
  r = run("prepare " + p("log.tsv") + " -o " + p("split2") + " --force --cache-dir none");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::is_symlink(p("split2/test.tsv")));
  EXPECT_EQ(slurp(p("store/test_copy.tsv")), slurp(p("split/test.tsv")));
  EXPECT_TRUE(leftovers().empty()) << leftovers().front();
}

// Defect 1: a FIFO with no reader is an error before training (not a hang); with a reader
// the model goes through it, and the FIFO stays a FIFO.
TEST_F(CliOutputs, FifoOutputsFailFastWithoutReaderAndAreWrittenThrough) {
  pipeline();
  ASSERT_EQ(::mkfifo(p("fifo").c_str(), 0600), 0);
  // `timeout`: on the writers before, open() blocked for ever.
  CmdResult r = seqrec_test::run_shell("timeout 60 " + std::string(SEQREC_BINARY) + " -q train " +
                                       p("split") + " -m sr -o " + p("fifo"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no process is reading"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("training sr"), std::string::npos) << "it trained first:\n" << r.out;
  EXPECT_TRUE(is_fifo(p("fifo")));
  // With a reader (cat into a file): the model arrives whole.
  r = seqrec_test::run_shell("(timeout 60 cat " + p("fifo") + " > " + p("through.seqrec") +
                             " &) ; timeout 60 " + std::string(SEQREC_BINARY) + " -q train " +
                             p("split") + " -m sr -o " + p("fifo") + "; sleep 1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(is_fifo(p("fifo")));
  CmdResult info = run("info --json " + p("through.seqrec"));
  EXPECT_EQ(info.code, 0) << info.out;
  // eval --json and generate -o through a FIFO.
  r = seqrec_test::run_shell("(timeout 60 cat " + p("fifo") + " > " + p("through.json") +
                             " &) ; timeout 60 " + std::string(SEQREC_BINARY) + " -q eval -m " +
                             p("m.seqrec") + " " + p("split") + " --json " + p("fifo") +
                             "; sleep 1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NO_THROW((void)nlohmann::json::parse(slurp(p("through.json"))));
  EXPECT_TRUE(is_fifo(p("fifo")));
}

// Defect 1: an unwritable output folder fails before training, not after it.
TEST_F(CliOutputs, UnwritableOutputsFailBeforeTheWork) {
  pipeline();
  CmdResult r = run("train " + p("split") + " -m sr -o " + p("no/such/folder/m.seqrec"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("does not exist"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("training sr"), std::string::npos) << "it trained first:\n" << r.out;
  r = run("train " + p("split") + " -m sr -o " + p("split"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is a folder"), std::string::npos) << r.out;
  r = run("eval -m " + p("m.seqrec") + " " + p("split") + " --json " + p("split"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is a folder"), std::string::npos) << r.out;
}

// Defect 4: --port-file is created exclusively; a link planted at the old temporary name
// (PORTFILE.tmp) is not followed.
TEST_F(CliOutputs, PortFileDoesNotFollowAPlantedLink) {
  pipeline();
  put(p("victim.txt"), "victim\n");
  fs::create_symlink(p("victim.txt"), p("pf.tmp"));
  // Serve on an ephemeral port, wait for the port file, stop the server (by its pid).
  const std::string cmd = "timeout 30 " + std::string(SEQREC_BINARY) + " -q serve " +
                          p("m.seqrec") + " --port 0 --port-file " + p("pf") +
                          " > /dev/null 2>&1 & pid=$!; for i in $(seq 150); do [ -s " + p("pf") +
                          " ] && break; sleep 0.1; done; kill $pid; wait $pid; cat " + p("pf");
  CmdResult r = seqrec_test::run_shell(cmd);
  EXPECT_EQ(slurp(p("victim.txt")), "victim\n");
  EXPECT_TRUE(fs::is_symlink(p("pf.tmp")));
  EXPECT_GT(std::atoi(slurp(p("pf")).c_str()), 0) << r.out;
}

// Defect 6: every command-line error of every subcommand is `seqrec: error:` and status 1.
TEST_F(CliOutputs, NegativeThreadsIsAUserErrorInEverySubcommand) {
  for (const std::string sub :
       {"models", "generate -o x", "prepare x -o y", "train x -m pop -o y", "eval -m x y",
        "recommend -m x", "info x", "demo", "serve x", "compare x -o y"}) {
    const CmdResult r = run(sub + " --threads -1");
    EXPECT_EQ(r.code, 1) << sub << "\n" << r.out;
    EXPECT_NE(r.out.find("seqrec: error: --threads"), std::string::npos) << sub << "\n" << r.out;
  }
}

// Defect 7: quoted CSV (RFC 4180) is read; it was refused with "cannot tell the file format
// (every line holds a single field)".
TEST_F(CliOutputs, QuotedCsvIsPrepared) {
  std::string text;
  for (int s = 0; s < 300; ++s)
    for (int k = 0; k < 4; ++k)
      text += "\"s," + std::to_string(s) + "\",\"i," + std::to_string((s * 7 + k * 3) % 40) +
              "\",\"" + std::to_string(1600000000 + s * 600 + k * 60) + "\"\n";
  put(p("quoted.csv"), text);
  CmdResult r = run("prepare " + p("quoted.csv") + " -o " + p("qsplit") + " --cache-dir none");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(slurp(p("qsplit/items.tsv")).find("i,1"), std::string::npos);
  EXPECT_NE(slurp(p("qsplit/train_full.tsv")).find("s,1\t"), std::string::npos);
  r = run("train " + p("qsplit") + " -m pop -o " + p("q.seqrec"));
  EXPECT_EQ(r.code, 0) << r.out;
}
