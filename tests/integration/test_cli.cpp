// End-to-end tests of the seqrec command-line program: each runs the real binary.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "cli_runner.hpp"

namespace fs = std::filesystem;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::slurp;

namespace {

void write(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = seqrec_test::fresh_test_dir("seqrec_cli"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  /// generate -> prepare -> train pop; returns the split dir.
  std::string pipeline() {
    CmdResult g = run("generate --events 20000 --items 500 --seed 7 -o " + p("log.tsv"));
    EXPECT_EQ(g.code, 0) << g.out;
    CmdResult s = run("prepare " + p("log.tsv") + " -o " + p("split") + " --cache-dir none");
    EXPECT_EQ(s.code, 0) << s.out;
    return p("split");
  }
  fs::path dir_;
};

}  // namespace

TEST_F(Cli, HelpOnEverySubcommand) {
  for (const char* sub :
       {"generate", "prepare", "train", "eval", "recommend", "info", "models", "demo", "serve"}) {
    CmdResult r = run(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub << ": " << r.out;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
}

TEST_F(Cli, GenerateIsReproducible) {
  ASSERT_EQ(run("generate --events 5000 --seed 3 -o " + p("a.tsv")).code, 0);
  ASSERT_EQ(run("generate --events 5000 --seed 3 -o " + p("b.tsv")).code, 0);
  ASSERT_EQ(run("generate --events 5000 --seed 4 -o " + p("c.tsv")).code, 0);
  EXPECT_EQ(slurp(p("a.tsv")), slurp(p("b.tsv")));
  EXPECT_NE(slurp(p("a.tsv")), slurp(p("c.tsv")));
  EXPECT_EQ(slurp(p("a.tsv")).rfind("SessionId\tItemId\tTime\n", 0), 0u);
}

// -q printed nothing but generate's "wrote ..." line; quiet must be quiet.
TEST_F(Cli, QuietGenerateSaysNothing) {
  const CmdResult q = run("generate --events 2000 --seed 3 -o " + p("q.tsv"));  // run() adds -q
  ASSERT_EQ(q.code, 0) << q.out;
  EXPECT_EQ(q.out, "");
  EXPECT_TRUE(fs::exists(p("q.tsv")));
  const CmdResult loud = seqrec_test::run_shell(
      std::string(SEQREC_BINARY) + " generate --events 2000 --seed 3 -o " + p("l.tsv"));
  ASSERT_EQ(loud.code, 0) << loud.out;
  EXPECT_NE(loud.out.find("wrote " + p("l.tsv")), std::string::npos) << loud.out;
}

TEST_F(Cli, PrepareTrainEvalRecommendInfo) {
  const std::string split = pipeline();
  for (const char* f :
       {"items.tsv", "train_full.tsv", "test.tsv", "train_tr.tsv", "valid.tsv", "split.json"})
    EXPECT_TRUE(fs::exists(fs::path(split) / f)) << f;

  for (const char* m : {"pop", "sr", "vsknn"}) {
    const std::string model = p(std::string(m) + ".seqrec");
    CmdResult t = run("train " + split + " -m " + m + " -o " + model);
    ASSERT_EQ(t.code, 0) << t.out;
    CmdResult e = run("eval -m " + model + " " + split + " --cutoffs 5,20 --json " + p("m.json"));
    ASSERT_EQ(e.code, 0) << e.out;
    EXPECT_NE(e.out.find("20"), std::string::npos);
    nlohmann::json j = nlohmann::json::parse(slurp(p("m.json")));
    EXPECT_EQ(j["protocol"], "session");
    EXPECT_EQ(j["ties"], "conservative");
    for (const char* key : {"recall@20", "mrr@20", "ndcg@20", "recall@5", "coverage@20"}) {
      ASSERT_TRUE(j.contains(key)) << key;
      EXPECT_GE(j[key].get<double>(), 0.0);
      EXPECT_LE(j[key].get<double>(), 1.0);
    }
    EXPECT_GT(j["n_predictions"].get<int64_t>(), 100);
    EXPECT_EQ(j["model"]["type"], m);
  }
  // The sequential-rules model must beat popularity on data with sequential structure.
  ASSERT_EQ(run("eval -m " + p("pop.seqrec") + " " + split + " --json " + p("pop.json")).code, 0);
  ASSERT_EQ(run("eval -m " + p("sr.seqrec") + " " + split + " --json " + p("sr.json")).code, 0);
  const double pop = nlohmann::json::parse(slurp(p("pop.json")))["recall@20"];
  const double sr = nlohmann::json::parse(slurp(p("sr.json")))["recall@20"];
  EXPECT_GT(sr, 1.5 * pop);

  // recommend: K lines of rank/item/score for a known session.
  std::ifstream items(fs::path(split) / "items.tsv");
  std::string header, a, b;
  std::getline(items, header);
  std::getline(items, a);
  std::getline(items, b);
  CmdResult r = run("recommend -m " + p("sr.seqrec") + " -k 5 --session \"" + a + " " + b + "\"");
  ASSERT_EQ(r.code, 0) << r.out;
  int lines = 0;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) lines += !l.empty() && std::isdigit(l[0]);
  EXPECT_EQ(lines, 5) << r.out;
  // Unknown items are reported and skipped.
  CmdResult u = run("recommend -m " + p("sr.seqrec") + " -k 3 --session \"nosuchitem " + a + "\"");
  EXPECT_EQ(u.code, 0) << u.out;
  EXPECT_NE(u.out.find("unknown item 'nosuchitem'"), std::string::npos) << u.out;
  // --exclude-seen takes eval's values too: all (= true) drops the session's items, none
  // (= false) keeps them; with them excluded neither a nor b is listed.
  const std::string rec_ab = "recommend -m " + p("sr.seqrec") + " -k 400 --json --session \"" + a +
                             " " + b + "\" --exclude-seen ";
  for (const auto& [word, same] : std::vector<std::pair<std::string, std::string>>{
           {"all", "true"}, {"except-target", "true"}, {"none", "false"}}) {
    CmdResult x = run(rec_ab + word), y = run(rec_ab + same);
    ASSERT_EQ(x.code, 0) << x.out;
    EXPECT_EQ(x.out, y.out) << word;
    const bool excluded = word != "none";
    // Kept in a variable: a range-for over a member of a temporary reads freed memory
    // (found by bench/sanitize.sh, ASan heap-use-after-free).
    const nlohmann::json answer = nlohmann::json::parse(x.out);
    for (const auto& it : answer["items"])
      if (excluded) EXPECT_TRUE(it["item"] != a && it["item"] != b) << word;
  }

  CmdResult i = run("info " + p("vsknn.seqrec"));
  EXPECT_EQ(i.code, 0) << i.out;
  EXPECT_NE(i.out.find("vsknn"), std::string::npos);
  // Version, creation time, nested training statistics and the tensors are all shown.
  for (const char* want : {"written by seqrec", "train_stats.events", "tensors ", "format     1"})
    EXPECT_NE(i.out.find(want), std::string::npos) << want << "\n" << i.out;
  const auto j = nlohmann::json::parse(run("info --json " + p("vsknn.seqrec")).out);
  EXPECT_EQ(j["type"], "vsknn");
  EXPECT_EQ(j["format_version"], 1);
  EXPECT_FALSE(j["created"].get<std::string>().empty());
  EXPECT_FALSE(j["seqrec_version"].get<std::string>().empty());
  EXPECT_FALSE(j["tensors"].empty());
  EXPECT_FALSE(j["checkpoint"].get<bool>());
  // --items lists the vocabulary in the user's ids: the data's items, one per line.
  CmdResult v = run("info --items " + p("vsknn.seqrec"));
  ASSERT_EQ(v.code, 0) << v.out;
  std::istringstream vin(v.out);
  std::set<std::string> ids;
  for (std::string l; std::getline(vin, l);) ids.insert(l);
  EXPECT_EQ(static_cast<int64_t>(ids.size()), j["n_items"].get<int64_t>());
  EXPECT_TRUE(ids.count(a.substr(0, a.find('\t'))) == 1) << a;
}

TEST_F(Cli, SequentialProtocolFromPairs) {
  // 40 users x 8 items each, items cycling so every item has support.
  std::string text;
  for (int u = 0; u < 40; ++u)
    for (int k = 0; k < 8; ++k)
      text += std::to_string(u) + " " + std::to_string((u + k) % 12) + "\n";
  write(p("pairs.txt"), text);
  CmdResult s = run("prepare " + p("pairs.txt") + " --protocol sequential -o " + p("seq") +
                    " --cache-dir none");
  ASSERT_EQ(s.code, 0) << s.out;
  ASSERT_EQ(run("train " + p("seq") + " -m pop -o " + p("pop.seqrec")).code, 0);
  CmdResult e = run("eval -m " + p("pop.seqrec") + " " + p("seq") + " --json " + p("e.json"));
  ASSERT_EQ(e.code, 0) << e.out;
  nlohmann::json j = nlohmann::json::parse(slurp(p("e.json")));
  EXPECT_EQ(j["protocol"], "sequential");
  EXPECT_EQ(j["exclude_seen"], true);
  EXPECT_EQ(j["n_predictions"], 40);
  EXPECT_TRUE(j.contains("hr@10"));
  CmdResult sampled =
      run("eval -m " + p("pop.seqrec") + " " + p("seq") + " --sampled 5 --json " + p("s.json"));
  ASSERT_EQ(sampled.code, 0) << sampled.out;
  EXPECT_NE(
      nlohmann::json::parse(slurp(p("s.json")))["protocol"].get<std::string>().find("sampled"),
      std::string::npos);
}

TEST_F(Cli, BadInputGivesClearErrors) {
  // Unreadable path: names the path.
  CmdResult r = run("prepare " + p("missing.tsv") + " -o " + p("out"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("missing.tsv"), std::string::npos) << r.out;

  // Malformed line: names file and line.
  write(p("bad.tsv"), "SessionId\tItemId\tTime\n1\t10\t100\n1\t11\tnot-a-time\n");
  r = run("prepare " + p("bad.tsv") + " -o " + p("out") + " --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("bad.tsv:3"), std::string::npos) << r.out;

  // Empty file.
  write(p("empty.tsv"), "");
  r = run("prepare " + p("empty.tsv") + " -o " + p("out") + " --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("empty.tsv"), std::string::npos) << r.out;

  // Only sessions of length 1.
  write(p("short.tsv"), "SessionId\tItemId\tTime\n1\t10\t100\n2\t10\t200\n3\t11\t300\n");
  r = run("prepare " + p("short.tsv") + " -o " + p("out") + " --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;

  // Absurd parameters.
  const std::string split = pipeline();
  r = run("train " + split + " -m pop -o " + p("m.seqrec") + " --k 0");
  EXPECT_NE(r.code, 0);
  r = run("train " + split + " -m nosuchmodel -o " + p("m.seqrec"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("nosuchmodel"), std::string::npos) << r.out;
  ASSERT_EQ(run("train " + split + " -m pop -o " + p("m.seqrec")).code, 0);
  r = run("eval -m " + p("m.seqrec") + " " + split + " --cutoffs 0");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("cutoffs"), std::string::npos) << r.out;
  r = run("recommend -m " + p("m.seqrec") + " -k 0 --session x");
  EXPECT_NE(r.code, 0);

  // A file that is not a model.
  write(p("fake.seqrec"), "hello");
  r = run("info " + p("fake.seqrec"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("fake.seqrec"), std::string::npos) << r.out;

  // A test set with no known items.
  write(p("alien.tsv"), "SessionId\tItemId\tTime\n1\tzz1\t1\n1\tzz2\t2\n");
  r = run("eval -m " + p("m.seqrec") + " " + p("alien.tsv") + " --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;

  // prepare never overwrites its input, not even with --force (which lets it write into a
  // non-empty folder).
  const std::string before = slurp(fs::path(split) / "train_full.tsv");
  r = run("prepare " + (fs::path(split) / "train_full.tsv").string() + " -o " + split +
          " --force --cache-dir none");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("is the input log"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(fs::path(split) / "train_full.tsv"), before);
}

TEST_F(Cli, DemoPrintsComparisonTable) {
  CmdResult r = run("demo --events 30000 --items 800 -o " + p("demo"));
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* m : {"pop", "sr", "vsknn"}) EXPECT_NE(r.out.find(m), std::string::npos) << m;
  EXPECT_NE(r.out.find("20"), std::string::npos);
}

// ---- A new user's first hour (issue 13): options anywhere, suggestions, exit codes.

TEST_F(Cli, GlobalOptionsAreAcceptedAfterTheSubcommand) {
  ASSERT_EQ(run("generate --events 5000 --items 200 -o " + p("log.tsv")).code, 0);
  // --threads and -q after the subcommand's own options, and between them.
  CmdResult r = seqrec_test::run_shell(std::string(SEQREC_BINARY) + " train " + p("log.tsv") +
                                       " -m pop --threads 2 -o " + p("m.seqrec") + " -q");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(p("m.seqrec")));
  EXPECT_EQ(r.out.find("%"), std::string::npos) << "-q after the subcommand: no progress\n"
                                                << r.out;
  r = run("models --threads 1");
  EXPECT_EQ(r.code, 0) << r.out;
  r = seqrec_test::run_shell(std::string(SEQREC_BINARY) + " models --version");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("seqrec "), std::string::npos) << r.out;
}

TEST_F(Cli, ThreadsMustBeACountAndTheMessageNamesTheFlag) {
  for (const std::string args : {"--threads -1 models", "models --threads -1",
                                 "models --threads many", "--threads 100000 models"}) {
    CmdResult r = run(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("seqrec: error: --threads"), std::string::npos) << args << "\n" << r.out;
  }
}

TEST_F(Cli, UnknownOptionSuggestsTheNearestName) {
  ASSERT_EQ(run("generate --events 5000 --items 200 -o " + p("log.tsv")).code, 0);
  CmdResult r = run("train " + p("log.tsv") + " -m sasrec -o " + p("s.seqrec") + " --num-epoch 3");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("unknown option --num-epoch"), std::string::npos) << r.out;
  // An old spelling (an alias) is the nearest name: the suggestion is the one spelling.
  EXPECT_NE(r.out.find("did you mean --epochs?"), std::string::npos) << r.out;
  r = run("prepare " + p("log.tsv") + " -o " + p("split") + " --min-item-suport 3");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("did you mean --min-item-support?"), std::string::npos) << r.out;
  // A parameter of another model is named as such.
  r = run("train " + p("log.tsv") + " -m sasrec -o " + p("s.seqrec") + " --n-sample 3");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("--n-sample is not a parameter of model 'sasrec'"), std::string::npos)
      << r.out;
  // One spelling across models: --epochs, with the old spellings of either model accepted,
  // but not two spellings at once.
  r = run("train " + p("log.tsv") + " -m sasrec -o " + p("s.seqrec") + " --n-epochs 3 --epochs 2");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("--n-epochs and --epochs set the same parameter"), std::string::npos)
      << r.out;
  // A misspelt subcommand.
  r = run("trian " + p("log.tsv"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("did you mean train?"), std::string::npos) << r.out;
  // A one-letter option is one edit from every other one: no guess.
  r = run("recommend -m " + p("s.seqrec") + " -n 5");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("unknown option -n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("did you mean"), std::string::npos) << r.out;
  // Nothing close: no suggestion, still a clear message.
  r = run("models --zzzzzzzzzz");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("unknown option --zzzzzzzzzz"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("did you mean"), std::string::npos) << r.out;
}

// docs/cli.md documents the exit statuses in one table; every command-line error is 1 there
// (CLI11's own codes, 105-109 and others, never reach the user).
TEST_F(Cli, CommandLineErrorsExitWithTheDocumentedStatus) {
  const std::string doc = slurp(fs::path(SEQREC_SOURCE_DIR) / "docs" / "cli.md");
  EXPECT_NE(doc.find("| 1 | user error"), std::string::npos)
      << "docs/cli.md lost its exit status table";
  for (const std::string args : {"", "nosuchcommand", "train", "train x -m pop", "info a b",
                                 "models --bogus", "recommend -m x --exclude-seen maybe",
                                 "serve m --port 99999", "--threads x models", "generate -o"}) {
    CmdResult r = run(args);
    EXPECT_EQ(r.code, 1) << "'" << args << "'\n" << r.out;
    EXPECT_NE(r.out.find("seqrec: error: "), std::string::npos) << "'" << args << "'\n" << r.out;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << "'" << args << "'\n" << r.out;
  }
  EXPECT_EQ(run("train --help").code, 0);
  EXPECT_EQ(run("--version").code, 0);
}

TEST_F(Cli, PreparePrintsTheOutputFolderWithOneSlash) {
  ASSERT_EQ(run("generate --events 5000 --items 200 -o " + p("log.tsv")).code, 0);
  for (const std::string out : {p("a/"), p("b"), p("c//")}) {
    CmdResult r = run("prepare " + p("log.tsv") + " -o " + out + " --cache-dir none");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.find("//"), std::string::npos) << r.out;
    std::string shown = out;
    while (shown.back() == '/') shown.pop_back();
    EXPECT_NE(r.out.find("split written to " + shown + "/ ("), std::string::npos) << r.out;
  }
}

// The demo's closing hint is a command that works as printed (seqrec need not be on PATH).
TEST_F(Cli, DemoHintRunsAsPrinted) {
  CmdResult r = run("demo --events 20000 --items 300 --models pop -o " + p("demo/"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("//"), std::string::npos) << r.out;
  const auto at = r.out.find("(try: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const auto end = r.out.find(")\n", at);
  ASSERT_NE(end, std::string::npos) << r.out;
  const std::string hint = r.out.substr(at + 6, end - at - 6);
  CmdResult h = seqrec_test::run_shell("env PATH=/usr/bin:/bin " + hint);
  EXPECT_EQ(h.code, 0) << hint << "\n" << h.out;
  EXPECT_NE(h.out.find("rank\titem\tscore"), std::string::npos) << hint << "\n" << h.out;
  // So is info's hint for the full item list.
  CmdResult info = run("info " + p("demo/pop.seqrec"));
  ASSERT_EQ(info.code, 0) << info.out;
  const auto all = info.out.find("; all: ");
  ASSERT_NE(all, std::string::npos) << info.out;
  const std::string items_cmd = info.out.substr(all + 7, info.out.find(")\n", all) - all - 7);
  CmdResult items = seqrec_test::run_shell("env PATH=/usr/bin:/bin " + items_cmd);
  EXPECT_EQ(items.code, 0) << items_cmd << "\n" << items.out;
  EXPECT_GT(std::count(items.out.begin(), items.out.end(), '\n'), 100) << items_cmd;
}

// compare's report shows the paths inside its folder relative to it (the split folder, the
// training commands), however the folder was named: not /tmp/... of the machine it ran on.
TEST_F(Cli, CompareReportShowsPathsRelativeToTheReport) {
  const nlohmann::json example = nlohmann::json::parse(
      slurp(fs::path(SEQREC_SOURCE_DIR) / "docs" / "examples" / "rsc15-100k" / "results.json"));
  const std::string work =
      fs::path(example["data"]["split_dir"].get<std::string>()).parent_path().string();
  ASSERT_FALSE(work.empty());
  for (const bool absolute : {true, false}) {
    const std::string rep = absolute ? p("abs_report") : "rel_report";
    const fs::path rep_dir = absolute ? fs::path(rep) : dir_ / rep;
    fs::create_directories(rep_dir);
    nlohmann::json results = example;
    results["command"] = "";  // the user's own command line is shown as typed
    std::string text = results.dump();
    for (size_t at = text.find(work); at != std::string::npos; at = text.find(work, at + 1))
      text.replace(at, work.size(), rep + "/work");
    write(rep_dir / "results.json", text);
    CmdResult r = seqrec_test::run_shell("cd " + dir_.string() + " && " + SEQREC_BINARY +
                                         " -q compare -o " + rep + " --report-only");
    ASSERT_EQ(r.code, 0) << r.out;
    const std::string md = slurp(rep_dir / "report.md");
    EXPECT_NE(md.find("Split folder: `work/split`"), std::string::npos) << md;
    EXPECT_NE(md.find(" -o work/models/"), std::string::npos) << md;
    EXPECT_EQ(md.find(rep + "/work"), std::string::npos) << md;
    EXPECT_EQ(slurp(rep_dir / "report.html").find(rep + "/work"), std::string::npos);
  }
}

// `cmake --install BUILD --prefix P` installs a working P/bin/seqrec.
TEST_F(Cli, InstallTargetInstallsAWorkingSeqrec) {
  const fs::path build = fs::path(SEQREC_BINARY).parent_path();
  ASSERT_TRUE(fs::exists(build / "CMakeCache.txt")) << build;
  CmdResult r =
      seqrec_test::run_shell("cmake --install " + build.string() + " --prefix " + p("prefix"));
  ASSERT_EQ(r.code, 0) << r.out;
  const fs::path installed = dir_ / "prefix" / "bin" / "seqrec";
  ASSERT_TRUE(fs::exists(installed)) << r.out;
  r = seqrec_test::run_shell(installed.string() + " --version");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("seqrec "), std::string::npos) << r.out;
  r = seqrec_test::run_shell(installed.string() + " models");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("gru4rec"), std::string::npos) << r.out;
  // Run by name from PATH, the demo's hint says plain `seqrec`.
  r = seqrec_test::run_shell(
      "cd " + dir_.string() + " && PATH=" + (dir_ / "prefix" / "bin").string() +
      ":/usr/bin:/bin seqrec -q demo --events 20000 --items 300 --models pop -o d");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("(try: seqrec recommend --model d/pop.seqrec"), std::string::npos) << r.out;
}
