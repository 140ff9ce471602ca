// `seqrec tune` end to end on tiny generated data: the trials log, best.json accepted by
// `train --config`, a tune killed midway and resumed (no finished trial repeated, the
// sequence continued), Ctrl-C keeping the log, the clear errors of bad input, and
// `compare --tune`.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "integration/cli_runner.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::run_shell;
using seqrec_test::slurp;

namespace {

/// A small space over small networks, so that a trial takes a fraction of a second.
const char* kSpace = R"({"model": "gru4rec",
  "fixed": {"n_sample": 32, "sample_store_size": 1000},
  "params": [
    {"name": "layers", "type": "int", "low": 8, "high": 32, "step": 8},
    {"name": "learning_rate", "type": "float", "low": 0.02, "high": 0.2, "log": true},
    {"name": "loss", "type": "categorical", "values": ["cross-entropy", "bpr-max"]}]})";

std::vector<json> read_lines(const fs::path& p) {
  std::vector<json> out;
  std::istringstream in(slurp(p));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line, nullptr, false));
  return out;
}

class Tune : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = seqrec_test::fresh_test_dir("seqrec_tune");
    CmdResult g = run("generate --events 4000 --items 150 --seed 5 -o " + p("log.tsv"));
    ASSERT_EQ(g.code, 0) << g.out;
    CmdResult s = run("prepare " + p("log.tsv") + " -o " + p("split"));
    ASSERT_EQ(s.code, 0) << s.out;
    std::ofstream(p("space.json")) << kSpace;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  /// The tune command line over the tiny space.
  std::string tune_args(const std::string& out, int trials, const std::string& extra = "") const {
    return "--threads 1 tune " + p("split") + " -m gru4rec --space " + p("space.json") +
           " --epochs 3 --trials " + std::to_string(trials) + " --cache-dir none -o " + p(out) +
           extra;
  }
  fs::path dir_;
};

}  // namespace

TEST_F(Tune, WritesTheLogTheReportAndABestConfigThatTrainAccepts) {
  CmdResult r = run(tune_args("out", 5, " --n-startup 2"));
  ASSERT_EQ(r.code, 0) << r.out;
  const std::vector<json> lines = read_lines(p("out") + "/trials.jsonl");
  ASSERT_EQ(lines.size(), 5u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["number"], static_cast<int>(i));
    for (const char* k : {"params", "curve", "value", "state", "pruned", "seconds"})
      EXPECT_TRUE(lines[i].contains(k)) << k;
    EXPECT_TRUE(lines[i]["params"].contains("layers"));
    EXPECT_FALSE(lines[i]["curve"].empty());
  }
  // Trial 0 is the starting configuration (the model's defaults) at the nearest point of
  // the space: 100 units -> 32 (the top of the 8..32 grid), lr 0.05, cross-entropy.
  EXPECT_EQ(lines[0]["params"]["layers"], 32);
  EXPECT_NEAR(lines[0]["params"]["learning_rate"].get<double>(), 0.05, 1e-12);
  EXPECT_EQ(lines[0]["params"]["loss"], "cross-entropy");
  const json best = json::parse(slurp(p("out") + "/best.json"));
  EXPECT_EQ(best["n_sample"], 32);  // the space's fixed values are in it
  EXPECT_GE(best["epochs"].get<int>(), 1);
  EXPECT_LE(best["epochs"].get<int>(), 3);
  const std::string md = slurp(p("out") + "/report.md");
  for (const char* want : {"## Best configuration", "## Trials", "best_so_far.svg",
                           "effect_layers.svg", "effect_loss.svg"})
    EXPECT_NE(md.find(want), std::string::npos) << want;
  EXPECT_TRUE(fs::exists(p("out") + "/best_so_far.svg"));
  const json res = json::parse(slurp(p("out") + "/tune_result.json"));
  EXPECT_EQ(res["trials"], 5);
  EXPECT_TRUE(res["best"]["value"].is_number());

  CmdResult t = run("--threads 1 train " + p("split") + " -m gru4rec --config " + p("out") +
                    "/best.json -o " + p("m.seqrec"));
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(fs::exists(p("m.seqrec")));

  // The same command again: everything is there, nothing runs again.
  CmdResult again = run(tune_args("out", 5, " --n-startup 2"));
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(read_lines(p("out") + "/trials.jsonl").size(), 5u);
  // Other arguments in the same folder: refused, naming what differs.
  CmdResult other = run(tune_args("out", 5, " --n-startup 3"));
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.out.find("other arguments"), std::string::npos) << other.out;
}

TEST_F(Tune, KilledMidwayResumesWithoutRepeatingTrialsAndCtrlCKeepsTheLog) {
  // Reference: 40 uninterrupted trials (all random: --n-startup above the trial count, so
  // that each trial's parameters depend on the seed and its number alone).
  const std::string random = " --n-startup 1000 --prune false";
  ASSERT_EQ(run(tune_args("ref", 40, random)).code, 0);
  const std::vector<json> ref = read_lines(p("ref") + "/trials.jsonl");
  ASSERT_EQ(ref.size(), 40u);

  // Killed (SIGKILL) once two trials are in the log.
  const std::string cmd = std::string(SEQREC_BINARY) + " -q " + tune_args("out", 100000, random);
  run_shell("(" + cmd + " > /dev/null 2>&1 & echo $! > " + p("pid") + ")");
  const int pid = std::stoi(slurp(p("pid")));
  const fs::path log = p("out") + "/trials.jsonl";
  for (int i = 0; i < 12000 && (!fs::exists(log) || read_lines(log).size() < 2); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const size_t done = read_lines(log).size();
  ASSERT_GE(done, 2u);
  ASSERT_LT(done, 40u) << "the tune ran 40 trials before it was killed";

  // Resumed to 40 trials: the finished ones kept, the rest run, the same sequence as the
  // uninterrupted run.
  CmdResult r = run(tune_args("out", 40, random));
  ASSERT_EQ(r.code, 0) << r.out;
  const std::vector<json> all = read_lines(log);
  ASSERT_EQ(all.size(), 40u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i]["number"], static_cast<int>(i));
    EXPECT_EQ(all[i]["params"], ref[i]["params"]) << "trial " << i;
  }

  // Ctrl-C (SIGINT): exit status 130, the finished trials kept, a report written.
  const std::string cmd2 = std::string(SEQREC_BINARY) + " -q " + tune_args("out", 100000, random);
  run_shell("(" + cmd2 + " > " + p("int.log") + " 2>&1; echo $? > " + p("rc") +
            ") > /dev/null 2>&1 & echo $! > " + p("pid2"));
  for (int i = 0; i < 600 && read_lines(log).size() < 41; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // The tune's own process is the child of the subshell: signal every seqrec of the group.
  run_shell("pkill -INT -P " + slurp(p("pid2")));
  for (int i = 0; i < 600 && !fs::exists(p("rc")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(p("rc")));
  EXPECT_EQ(std::stoi(slurp(p("rc"))), 130) << slurp(p("int.log"));
  EXPECT_NE(slurp(p("int.log")).find("interrupted"), std::string::npos) << slurp(p("int.log"));
  const std::vector<json> kept = read_lines(log);
  EXPECT_GE(kept.size(), 41u);
  for (size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(kept[i]["number"], static_cast<int>(i));
  EXPECT_TRUE(fs::exists(p("out") + "/report.md"));
}

TEST_F(Tune, BadInputGivesClearErrors) {
  auto error_of = [&](const std::string& space, const std::string& extra = "") {
    std::ofstream(p("bad.json")) << space;
    return run("--threads 1 tune " + p("split") + " -m gru4rec --space " + p("bad.json") +
               " --cache-dir none -o " + p("bad") + extra);
  };
  CmdResult r = error_of(R"({"params": [{"name": "lerning_rate", "type": "float",
                                          "low": 0.01, "high": 0.1}]})");
  EXPECT_EQ(r.code, 1);
  for (const char* want : {"bad.json", "params[0]", "unknown parameter 'lerning_rate'"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  r = error_of(
      R"({"params": [{"name": "learning_rate", "type": "float", "low": 0.1, "high": 0.1}]})");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("empty range"), std::string::npos) << r.out;

  // A budget too small for one trial.
  r = run(tune_args("small", 3, " --time-budget 0.001"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("too small for one trial"), std::string::npos) << r.out;

  // A split without a validation part: valid.tsv cut to its header.
  {
    const std::string v = slurp(p("split") + "/valid.tsv");
    std::ofstream(p("split") + "/valid.tsv") << v.substr(0, v.find('\n') + 1);
  }
  r = run(tune_args("noval", 3));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("no validation split"), std::string::npos) << r.out;
  // A log file instead of a split folder.
  r = run("tune " + p("log.tsv") + " -m gru4rec -o " + p("x"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("split folder"), std::string::npos) << r.out;
}

TEST_F(Tune, CompareTuneTunesEachModelAndShowsTheSettings) {
  CmdResult r = run("--threads 1 compare " + p("split") +
                    " --models pop,sr,gru4rec --seeds 1 --tune 2 --n-startup 1 -o " + p("cmp") +
                    " --set gru4rec.layers=16 --set gru4rec.n_sample=32"
                    " --set gru4rec.sample_store_size=1000 --epochs 2 --cache-dir none");
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(slurp(p("cmp") + "/results.json"));
  ASSERT_EQ(j["models"].size(), 3u);
  EXPECT_TRUE(j["models"][0]["tuning"].is_null());  // pop: nothing to tune
  for (int m : {1, 2}) {
    ASSERT_TRUE(j["models"][m]["tuning"].is_object()) << m;
    EXPECT_EQ(j["models"][m]["tuning"]["trials"], 2);
  }
  // GRU4Rec kept compare's epoch budget (early stopping decides within it).
  EXPECT_EQ(j["models"][2]["config"]["epochs"], 2);
  const json& c = j["models"][2]["convergence"];
  EXPECT_EQ(c["epoch_budget"], 2);
  ASSERT_TRUE(c["best_epoch"].is_number()) << c;
  // The policy: the seed runs train the full data for the validation run's best epoch count.
  EXPECT_EQ(c["final_epochs"], c["best_epoch"]);
  EXPECT_TRUE(c["still_improving"].is_boolean());
  EXPECT_TRUE(j["models"][0]["convergence"].is_null());  // one pass
  const std::string md = slurp(p("cmp") + "/report.md");
  EXPECT_NE(md.find("### Tuned settings"), std::string::npos) << md;
  EXPECT_NE(md.find("### Convergence"), std::string::npos) << md;
}
