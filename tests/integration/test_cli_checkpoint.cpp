// `seqrec train --checkpoint/--resume` end to end: a training run killed with SIGKILL after
// its first checkpoint and resumed gives the same model tensors and validation history as
// an uninterrupted run; mismatched or damaged checkpoints are refused with clear errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.hpp"
#include "seqrec/model.hpp"

namespace fs = std::filesystem;
using seqrec_test::CmdResult;
using seqrec_test::run;

extern char** environ;

namespace {

class CliCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = seqrec_test::fresh_test_dir("seqrec_cli_ckpt");
    CmdResult g = run("generate --events 30000 --items 600 --seed 5 -o " + p("log.tsv"));
    ASSERT_EQ(g.code, 0) << g.out;
    CmdResult s = run("prepare " + p("log.tsv") + " -o " + p("split") + " --cache-dir none");
    ASSERT_EQ(s.code, 0) << s.out;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::string w;
  for (char c : s) {
    if (c == ' ') {
      if (!w.empty()) out.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) out.push_back(w);
  return out;
}

/// Starts `seqrec ARGS` with its output discarded; returns the pid.
pid_t spawn(const std::string& args) {
  std::vector<std::string> a = words(std::string(SEQREC_BINARY) + " -q " + args);
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

/// Model tensors of a model file (or checkpoint) as (name, bytes).
std::vector<std::pair<std::string, std::string>> tensors_of(const std::string& path) {
  seqrec::ModelBundle b = seqrec::load_model(path);
  seqrec::TensorWriter w;
  b.model->save(w);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : w.entries())
    out.emplace_back(e.name, std::string(static_cast<const char*>(e.data), e.nbytes));
  return out;
}

}  // namespace

TEST_F(CliCheckpoint, KilledRunResumesToTheUninterruptedResult) {
  const std::string model_args = "--preset rsc15 --layers 64 --n-sample 128 --n-epochs 10";
  for (const char* type : {"gru4rec", "sasrec"}) {
    SCOPED_TRACE(type);
    const std::string t(type);
    const std::string args = t == "gru4rec"
                                 ? model_args
                                 : "--maxlen 20 --hidden-units 32 --num-epochs 10 --batch-size 64";
    const std::string common = "--threads 1 train " + p("split") + " -m " + t + " " + args +
                               " --validation --monitor --seed 9";
    CmdResult full = run(common + " -o " + p(t + "_full.seqrec"));
    ASSERT_EQ(full.code, 0) << full.out;

    // Kill -9 as soon as the first checkpoint exists (the file appears by rename, whole);
    // the nine epochs left take about a second, so the kill lands in the middle. On a
    // badly overloaded machine this process can sleep through those epochs: then the run
    // finished before the kill, and the attempt is repeated (at most 3 times).
    const std::string ck = p(t + ".ckpt");
    bool killed = false;
    for (int attempt = 0; attempt < 3 && !killed; ++attempt) {
      fs::remove(ck);
      fs::remove(p(t + "_resumed.seqrec"));
      const pid_t pid = spawn(common + " -o " + p(t + "_resumed.seqrec") + " --checkpoint " + ck);
      ASSERT_GT(pid, 0);
      int status = 0;
      bool exited = false;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      while (!fs::exists(ck) && std::chrono::steady_clock::now() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
          exited = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      ASSERT_FALSE(exited) << "training ended before its first checkpoint, status " << status;
      ASSERT_TRUE(fs::exists(ck));
      ::kill(pid, SIGKILL);
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      killed = WIFSIGNALED(status);
    }
    ASSERT_TRUE(killed) << "training finished before the kill in 3 attempts";
    EXPECT_FALSE(fs::exists(p(t + "_resumed.seqrec")));

    CmdResult info = run("info --json " + ck);
    ASSERT_EQ(info.code, 0) << info.out;
    const int epoch = nlohmann::json::parse(info.out)["meta"]["checkpoint_epoch"];
    EXPECT_GE(epoch, 1);
    EXPECT_LT(epoch, 10);

    CmdResult resumed = run(common + " -o " + p(t + "_resumed.seqrec") + " --resume " + ck);
    ASSERT_EQ(resumed.code, 0) << resumed.out;
    EXPECT_EQ(tensors_of(p(t + "_full.seqrec")), tensors_of(p(t + "_resumed.seqrec")));
    const auto a = seqrec::load_model(p(t + "_full.seqrec"));
    const auto b = seqrec::load_model(p(t + "_resumed.seqrec"));
    EXPECT_EQ(a.meta["validation_history"], b.meta["validation_history"]);
    EXPECT_EQ(a.meta["validation_history"].size(), 10u);
    EXPECT_EQ(b.meta["resumed_from"]["epoch"], epoch);
    // --resume without --checkpoint keeps updating the resumed file: now at the last epoch.
    EXPECT_EQ(nlohmann::json::parse(run("info --json " + ck).out)["meta"]["checkpoint_epoch"], 10);
  }
}

TEST_F(CliCheckpoint, MismatchesAndDamageAreRefused) {
  const std::string ck = p("g.ckpt");
  const std::string base = "--threads 1 train " + p("split") + " -m gru4rec --n-sample 32";
  const std::string common = base + " --layers 16 --n-epochs 2";
  CmdResult t = run(common + " -o " + p("g.seqrec") + " --checkpoint " + ck);
  ASSERT_EQ(t.code, 0) << t.out;
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {base + " --layers 24 --n-epochs 2 -o " + p("x.seqrec") + " --resume " + ck,
       "parameter 'layers'"},
      {common + " --seed 1 -o " + p("x.seqrec") + " --resume " + ck, "setting 'seed'"},
      {common + " --validation -o " + p("x.seqrec") + " --resume " + ck, "data field"},
      {"train " + p("split") + " -m sasrec -o " + p("x.seqrec") + " --resume " + ck,
       "model type differs"},
      {common + " -o " + p("x.seqrec") + " --resume " + p("g.seqrec"), "not a training checkpoint"},
      {common + " -o " + ck, "is a training checkpoint"},
      {common + " -o " + p("x.seqrec") + " --checkpoint " + p("x.seqrec"), "same file"},
      {common + " -o " + p("x.seqrec") + " --checkpoint " + p("g.seqrec"), "is a final model"},
  };
  for (const Case& c : cases) {
    CmdResult r = run(c.args);
    EXPECT_EQ(r.code, 1) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << c.args << "\n" << r.out;
  }
  fs::copy_file(ck, p("cut.ckpt"));
  fs::resize_file(p("cut.ckpt"), fs::file_size(ck) - 5);
  CmdResult r = run(common + " -o " + p("x.seqrec") + " --resume " + p("cut.ckpt"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("corrupt or truncated"), std::string::npos) << r.out;
  // Nothing was written over the final model or the checkpoint.
  EXPECT_EQ(nlohmann::json::parse(run("info --json " + ck).out)["meta"]["checkpoint_epoch"], 2);
  EXPECT_FALSE(fs::exists(p("x.seqrec")));
}
