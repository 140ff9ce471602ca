// `seqrec compare` end to end on tiny generated data: the report files, their content, the
// SVGs' well-formedness, the self-contained HTML, the given-split and sequential paths, and
// clear errors. Each run takes about a second.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.hpp"
#include "xml_check.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::slurp;
using seqrec_test::user_ratings;
using seqrec_test::xml_problem;

namespace {

const char* kPlots[] = {"metric_vs_k.svg", "learning_curves.svg", "by_length.svg",
                        "by_popularity.svg", "time_vs_accuracy.svg"};

// Small models so that training takes a fraction of a second.
const std::string kTinyModels =
    " --set gru4rec.layers=16 --set gru4rec.n_sample=32 --set gru4rec.sample_store_size=1000"
    " --epochs 2 --cache-dir none";

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

class Compare : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = seqrec_test::fresh_test_dir("seqrec_compare");
    CmdResult g = run("generate --events 4000 --items 150 --seed 5 -o " + p("log.tsv"));
    ASSERT_EQ(g.code, 0) << g.out;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

}  // namespace

TEST_F(Compare, SessionReportFromALogFile) {
  CmdResult r = run("--threads 1 compare " + p("log.tsv") +
                    " --models pop,sr,gru4rec --seeds 2 -o " + p("rep") + kTinyModels);
  ASSERT_EQ(r.code, 0) << r.out;
  const fs::path rep = p("rep");
  for (const char* f : {"report.md", "report.html", "results.json"})
    ASSERT_TRUE(fs::exists(rep / f)) << f;

  // Every plot exists and is well-formed XML.
  for (const char* f : kPlots) {
    ASSERT_TRUE(fs::exists(rep / f)) << f;
    EXPECT_EQ(xml_problem(slurp(rep / f)), "") << f;
  }

  const json j = json::parse(slurp(rep / "results.json"));
  EXPECT_EQ(j["protocol"]["name"], "session");
  EXPECT_TRUE(j["protocol"]["full_ranking"].get<bool>());
  EXPECT_EQ(j["protocol"]["cutoffs"], json({5, 10, 20}));
  ASSERT_EQ(j["models"].size(), 3u);
  const int64_t preds = j["protocol"]["n_predictions"];
  EXPECT_GT(preds, 20);
  for (const auto& m : j["models"]) {
    ASSERT_EQ(m["runs"].size(), 2u) << m["label"];
    for (const auto& run : m["runs"]) {
      EXPECT_EQ(run["n_predictions"].get<int64_t>(), preds);
      EXPECT_GT(run["peak_rss_bytes"].get<int64_t>(), 1 << 20);  // a real process was measured
      EXPECT_GT(run["model_bytes"].get<int64_t>(), 0);
    }
    for (const char* k : {"recall@5", "mrr@10", "ndcg@20", "coverage@20"}) {
      const double v = m["metrics"][k]["mean"];
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
    }
    // Metric vs K is non-decreasing in K for Recall and MRR.
    const auto& mk = m["metric_vs_k"];
    for (size_t i = 1; i < mk["k"].size(); ++i) {
      EXPECT_GE(mk["recall"][i].get<double>(), mk["recall"][i - 1].get<double>());
      EXPECT_GE(mk["mrr"][i].get<double>(), mk["mrr"][i - 1].get<double>());
    }
    EXPECT_EQ(m["by_popularity"].size(), 2u);
    EXPECT_EQ(m["by_length"].size(), j["by_length"]["buckets"].size());
  }
  // Deterministic baselines: the same numbers for both seeds; GRU4Rec has a learning curve
  // of 2 epochs, the baselines none.
  EXPECT_EQ(j["models"][0]["metrics"]["recall@20"]["std"].get<double>(), 0.0);
  EXPECT_TRUE(j["models"][0]["curve"].is_null());
  ASSERT_TRUE(j["models"][2]["curve"].is_object());
  EXPECT_EQ(j["models"][2]["curve"]["epochs"], json({1, 2}));
  // The bucket counts add up to all predictions.
  int64_t in_buckets = 0;
  for (const auto& b : j["by_length"]["buckets"]) in_buckets += b["n"].get<int64_t>();
  EXPECT_EQ(in_buckets, preds);
  // One significance entry per column, each naming a best model and testing the others.
  ASSERT_EQ(j["significance"]["columns"].size(), 9u);
  for (const auto& c : j["significance"]["columns"]) {
    EXPECT_EQ(c["tests"].size(), 2u);
    for (const auto& t : c["tests"]) {
      const double p = t["t_test"]["p"].is_number() ? t["t_test"]["p"].get<double>() : 1.0;
      EXPECT_GE(p, 0.0);
      EXPECT_LE(p, 1.0);
    }
  }

  // Markdown: the protocol in words, the table, every plot referenced.
  const std::string md = slurp(rep / "report.md");
  EXPECT_NE(md.find("Full ranking"), std::string::npos);
  EXPECT_NE(md.find("| Model | Recall@5 | MRR@5 | NDCG@5 |"), std::string::npos) << md;
  for (const char* f : kPlots) EXPECT_NE(md.find(std::string("(") + f + ")"), std::string::npos);

  // HTML: self-contained (every plot inline, no scripts, nothing fetched).
  const std::string html = slurp(rep / "report.html");
  EXPECT_EQ(count(html, "<svg "), 5u);
  for (const char* bad : {"<script", "src=", "href=\"http", "@import", "url("})
    EXPECT_EQ(html.find(bad), std::string::npos) << bad;

  // --report-only writes the same views again from results.json alone.
  fs::remove(rep / "report.md");
  fs::remove(rep / "metric_vs_k.svg");
  CmdResult again = run("compare -o " + p("rep") + " --report-only");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(slurp(rep / "report.md"), md);
  EXPECT_TRUE(fs::exists(rep / "metric_vs_k.svg"));
  EXPECT_EQ(slurp(rep / "report.html"), html);
}

TEST_F(Compare, HelpAndReportOnlyErrors) {
  CmdResult h = run("compare --help");
  EXPECT_EQ(h.code, 0) << h.out;
  EXPECT_NE(h.out.find("Usage"), std::string::npos);
  EXPECT_NE(h.out.find("--report-only"), std::string::npos);
  CmdResult r = run("compare -o " + p("nothing") + " --report-only");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("results.json"), std::string::npos) << r.out;
  CmdResult d = run("compare -o " + p("rep"));
  EXPECT_EQ(d.code, 1);
  EXPECT_NE(d.out.find("give the data"), std::string::npos) << d.out;
}

TEST_F(Compare, SequentialSampledWithLabelsAndNoCurves) {
  CmdResult r = run("--threads 1 compare " + p("log.tsv") +
                    " --protocol sequential --models pop,tiny=sasrec,wide=sasrec --seeds 1"
                    " --no-curves --sampled 20 --epochs 2 --cache-dir none -o " +
                    p("rep") +
                    " --set tiny.maxlen=8 --set tiny.hidden_units=8 --set tiny.num_blocks=1"
                    " --set wide.maxlen=8 --set wide.hidden_units=16 --set wide.num_blocks=1");
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(slurp(p("rep") + "/results.json"));
  EXPECT_EQ(j["protocol"]["name"], "sequential");
  EXPECT_EQ(j["protocol"]["evaluation"], "sequential-sampled-20");
  EXPECT_FALSE(j["protocol"]["full_ranking"].get<bool>());
  EXPECT_EQ(j["headline"]["metric"], "ndcg@10");
  ASSERT_EQ(j["models"].size(), 3u);
  EXPECT_EQ(j["models"][1]["label"], "tiny");
  EXPECT_EQ(j["models"][2]["type"], "sasrec");
  EXPECT_EQ(j["models"][2]["config"]["hidden_units"], 16);
  EXPECT_TRUE(j["models"][1]["metrics"]["recall@10"]["std"].is_null());  // one seed
  // No curves: the plot is left out, and the report says why.
  EXPECT_FALSE(fs::exists(p("rep") + "/learning_curves.svg"));
  const std::string md = slurp(p("rep") + "/report.md");
  EXPECT_NE(md.find("SAMPLED METRICS, NOT FULL RANKING"), std::string::npos);
  EXPECT_NE(md.find("HR@10"), std::string::npos);
  EXPECT_NE(md.find("--no-curves"), std::string::npos);  // the flag that exists
  for (const char* f : kPlots) {
    if (fs::exists(p("rep") + "/" + f)) {
      EXPECT_EQ(xml_problem(slurp(p("rep") + "/" + f)), "");
    }
  }
}

TEST_F(Compare, GivenSplitFilesInAFolder) {
  // A folder in GRU4Rec's naming: *_train_full, *_test (and the validation pair).
  ASSERT_EQ(run("prepare " + p("log.tsv") + " -o " + p("split") + " --cache-dir none").code, 0);
  fs::create_directories(p("given"));
  fs::copy_file(p("split/train_full.tsv"), p("given/x_train_full.txt"));
  fs::copy_file(p("split/test.tsv"), p("given/x_test.txt"));
  fs::copy_file(p("split/train_tr.tsv"), p("given/x_train_tr.txt"));
  fs::copy_file(p("split/valid.tsv"), p("given/x_train_valid.txt"));
  CmdResult r = run("--threads 1 compare " + p("given") + " --models pop,sr --seeds 1 -o " +
                    p("rep") + " --cache-dir none");
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(slurp(p("rep") + "/results.json"));
  EXPECT_EQ(j["protocol"]["name"], "session");
  EXPECT_NE(j["data"]["note"].get<std::string>().find("x_train_full.txt"), std::string::npos);
  // The same predictions as evaluating the prepared split directly.
  CmdResult r2 = run("--threads 1 compare " + p("split") + " --models pop --seeds 1 -o " +
                     p("rep2") + " --cache-dir none --no-curves");
  ASSERT_EQ(r2.code, 0) << r2.out;
  const json j2 = json::parse(slurp(p("rep2") + "/results.json"));
  EXPECT_EQ(j["protocol"]["n_predictions"], j2["protocol"]["n_predictions"]);
  EXPECT_DOUBLE_EQ(j["models"][0]["metrics"]["recall@20"]["mean"].get<double>(),
                   j2["models"][0]["metrics"]["recall@20"]["mean"].get<double>());
}

TEST_F(Compare, ClearErrors) {
  const std::string base = "compare " + p("log.tsv") + " -o " + p("rep") + " --cache-dir none ";
  CmdResult a = run(base + "--models pop,nosuch");
  EXPECT_EQ(a.code, 1);
  EXPECT_NE(a.out.find("nosuch"), std::string::npos) << a.out;
  CmdResult b = run(base + "--models pop,sr --set sr.nosuch=1");
  EXPECT_EQ(b.code, 1);
  EXPECT_NE(b.out.find("'nosuch' is not a parameter of model 'sr'"), std::string::npos) << b.out;
  CmdResult c = run(base + "--models pop --config gru4rec=x.cfg");
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.out.find("'gru4rec' is not one of the compared models"), std::string::npos) << c.out;
  CmdResult d = run(base + "--models pop,pop");
  EXPECT_EQ(d.code, 1);
  EXPECT_NE(d.out.find("appears twice"), std::string::npos) << d.out;
  CmdResult e = run("compare " + p("nothere.tsv") + " -o " + p("rep"));
  EXPECT_EQ(e.code, 1);
  EXPECT_NE(e.out.find("nothere.tsv"), std::string::npos) << e.out;
  CmdResult f = run(base + "--models pop --metric recall");
  EXPECT_EQ(f.code, 1);
  EXPECT_NE(f.out.find("--metric"), std::string::npos) << f.out;
}

namespace {

/// `seqrec ARGS` without -q: what a user sees on the terminal (stdout and stderr).
CmdResult run_loud(const std::string& args) {
  return seqrec_test::run_shell(std::string(SEQREC_BINARY) + " " + args);
}

bool has(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

}  // namespace

TEST_F(Compare, ShowsAnEstimateAndEachModelsProgress) {
  CmdResult r =
      run_loud("--threads 1 compare " + p("log.tsv") +
               " --models pop,gru4rec --seeds 1 --no-curves -o " + p("rep") + kTinyModels);
  ASSERT_EQ(r.code, 0) << r.out;
  // An estimate before anything trains, then a revised one after every run.
  const size_t est = r.out.find("compare: estimated time: about ");
  ASSERT_NE(est, std::string::npos) << r.out;
  EXPECT_LT(est, r.out.find("training ...")) << r.out;
  EXPECT_TRUE(has(r.out, "of training left (estimate)")) << r.out;
  // The child's own progress, passed on with the model's label: a line per epoch.
  EXPECT_TRUE(has(r.out, "gru4rec: gru4rec epoch 1/2")) << r.out;
  EXPECT_TRUE(has(r.out, "gru4rec: gru4rec epoch 2/2")) << r.out;
  EXPECT_TRUE(has(r.out, "pop: pop 100.0%")) << r.out;
  EXPECT_FALSE(has(r.out, "pop: trained pop in")) << r.out;  // compare says that itself
  // -q keeps compare silent.
  CmdResult q = run("--threads 1 compare " + p("log.tsv") + " --models pop --seeds 1 -o " +
                    p("rep_q") + " --no-curves --cache-dir none");
  ASSERT_EQ(q.code, 0) << q.out;
  EXPECT_FALSE(has(q.out, "estimated time")) << q.out;
}

TEST_F(Compare, AnInterruptedRunResumesWithTheModelsItFinished) {
  // kTinyModels without its --epochs, which changes below.
  const std::string base = "--threads 1 compare " + p("log.tsv") +
                           " --models pop,sr,gru4rec --seeds 1 -o " + p("rep") +
                           " --set gru4rec.layers=16 --set gru4rec.n_sample=32"
                           " --set gru4rec.sample_store_size=1000 --cache-dir none";
  const std::string args = base + " --epochs 2";
  CmdResult first = run_loud(args);
  ASSERT_EQ(first.code, 0) << first.out;
  const json j1 = json::parse(slurp(p("rep") + "/results.json"));
  const fs::path models = fs::path(p("rep")) / "work" / "models";
  ASSERT_TRUE(fs::exists(models / "pop-seed1.done.json"));

  // Interrupted while GRU4Rec trained: its model half written and unrecorded, no report.
  fs::remove(models / "gru4rec-seed1.done.json");
  fs::remove(models / "gru4rec-validation.done.json");
  fs::resize_file(models / "gru4rec-seed1.seqrec", 100);
  for (const char* f : {"results.json", "report.md", "report.html"}) fs::remove(p("rep") + "/" + f);
  // And sr's model file was damaged since: a recorded training whose file no longer matches
  // its checksum is trained again.
  {
    std::fstream f(models / "sr-seed1.seqrec", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-1, std::ios::end);
    f.put('\x5a');
  }

  CmdResult again = run_loud(args);
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_TRUE(has(again.out, "holds an earlier run of this same compare")) << again.out;
  EXPECT_TRUE(has(again.out, "pop (pop), seed 1: reusing")) << again.out;
  EXPECT_TRUE(has(again.out, "validation run of pop: reusing")) << again.out;
  EXPECT_TRUE(has(again.out, "sr (sr), seed 1: training")) << again.out;
  EXPECT_TRUE(has(again.out, "gru4rec (gru4rec, preset rsc15), seed 1: training")) << again.out;
  // The validation run comes first and stops early (compare's default, docs/compare.md).
  EXPECT_TRUE(has(again.out, "validation run of gru4rec (early stopping on recall@20, patience 3)"))
      << again.out;
  const json j2 = json::parse(slurp(p("rep") + "/results.json"));
  ASSERT_EQ(j2["models"].size(), 3u);
  EXPECT_EQ(j2["models"][0]["metrics"]["recall@20"], j1["models"][0]["metrics"]["recall@20"]);
  EXPECT_EQ(j2["models"][0]["runs"][0]["peak_rss_bytes"],
            j1["models"][0]["runs"][0]["peak_rss_bytes"]);  // the recorded measurement
  EXPECT_EQ(j2["models"][2]["curve"]["epochs"], json({1, 2}));

  // Different arguments into the same folder need --force; then what changed is trained
  // again (GRU4Rec's epochs) and what did not is reused (pop has no epochs).
  const std::string args3 = base + " --epochs 3";
  CmdResult refused = run_loud(args3);
  EXPECT_EQ(refused.code, 1) << refused.out;
  EXPECT_TRUE(has(refused.out, "--force")) << refused.out;
  CmdResult forced = run_loud(args3 + " --force");
  ASSERT_EQ(forced.code, 0) << forced.out;
  EXPECT_TRUE(has(forced.out, "pop (pop), seed 1: reusing")) << forced.out;
  EXPECT_TRUE(has(forced.out, "gru4rec (gru4rec, preset rsc15), seed 1: training")) << forced.out;
  const json j3 = json::parse(slurp(p("rep") + "/results.json"));
  EXPECT_EQ(j3["models"][2]["curve"]["epochs"], json({1, 2, 3}));
}

TEST_F(Compare, RefusesAFolderThatHoldsSomethingElse) {
  fs::create_directories(p("rep"));
  { std::ofstream(p("rep") + "/notes.txt") << "mine\n"; }
  auto args_with = [&](int seeds) {
    return "--threads 1 compare " + p("log.tsv") + " --models pop --seeds " +
           std::to_string(seeds) + " -o " + p("rep") + " --no-curves --cache-dir none";
  };
  const std::string args = args_with(1);
  CmdResult r = run(args);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(has(r.out, "not empty")) << r.out;
  EXPECT_TRUE(has(r.out, "not a folder written by `seqrec compare`")) << r.out;
  EXPECT_TRUE(has(r.out, "--force")) << r.out;
  EXPECT_FALSE(fs::exists(p("rep") + "/results.json"));
  CmdResult forced = run(args + " --force");
  ASSERT_EQ(forced.code, 0) << forced.out;
  EXPECT_EQ(slurp(p("rep") + "/notes.txt"), "mine\n");
  // Now it holds this compare: the same arguments continue it, other ones are refused with
  // the argument that differs.
  EXPECT_EQ(run(args).code, 0);
  CmdResult other = run(args_with(2));
  EXPECT_EQ(other.code, 1) << other.out;
  EXPECT_TRUE(has(other.out, "seeds: 1 there, 2 now")) << other.out;
  // An empty existing folder is fine.
  fs::create_directories(p("empty"));
  EXPECT_EQ(run("--threads 1 compare " + p("log.tsv") + " --models pop --seeds 1 -o " + p("empty") +
                " --no-curves --cache-dir none")
                .code,
            0);
}

TEST_F(Compare, KilledWhileTrainingThenRunAgainReusesWhatFinished) {
  // A real interruption: compare and its training child are killed (their process group)
  // once GRU4Rec's training has started, i.e. after pop and sr finished. --patience 0: the
  // seed run trains the whole 200 epochs (with early stopping it would train only the few
  // epochs the validation run chose, and might finish before the kill).
  const std::string args = "--threads 1 compare " + p("log.tsv") +
                           " --models pop,sr,gru4rec --seeds 1 --no-curves --patience 0 -o " +
                           p("rep") +
                           " --set gru4rec.layers=16 --set gru4rec.n_sample=32"
                           " --set gru4rec.sample_store_size=1000 --epochs 200 --cache-dir none";
  const std::string started = p("rep") + "/work/logs/gru4rec-seed1.log";
  CmdResult killed = seqrec_test::run_shell(
      "setsid " + std::string(SEQREC_BINARY) + " -q " + args + " & pid=$!; i=0; while [ ! -s " +
      started + " ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; kill -TERM -$pid; " +
      "wait $pid; echo \"exit $?\"");
  ASSERT_TRUE(fs::exists(started)) << killed.out;
  ASSERT_TRUE(has(killed.out, "exit 143")) << killed.out;  // killed, not finished
  EXPECT_FALSE(fs::exists(p("rep") + "/results.json"));

  CmdResult again = run_loud(args);
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_TRUE(has(again.out, "pop (pop), seed 1: reusing")) << again.out;
  EXPECT_TRUE(has(again.out, "sr (sr), seed 1: reusing")) << again.out;
  EXPECT_TRUE(has(again.out, "gru4rec (gru4rec, preset rsc15), seed 1: training")) << again.out;
  EXPECT_TRUE(fs::exists(p("rep") + "/results.json"));
}

namespace {

/// 400 sessions of 4 clicks 40 s apart, one starting every 1,000 s, times in milliseconds.
std::string millisecond_sessions() {
  std::string text = "SessionId\tItemId\tTime\n";
  for (int s = 0; s < 400; ++s)
    for (int k = 0; k < 4; ++k)
      text += std::to_string(s) + "\t" + std::to_string((s * 3 + k) % 25) + "\t" +
              std::to_string(1700000000000LL + s * 1000000LL + k * 40000LL) + "\n";
  return text;
}

}  // namespace

TEST_F(Compare, UserLogIsComparedLeaveOneOutAndTheReportSaysWhy) {
  // A log with timestamps whose sequences span weeks: `prepare`'s rule picks sequential,
  // and compare must pick the same (it used to pick session for any log with times).
  { std::ofstream(p("ratings.data")) << user_ratings(); }
  CmdResult r = run_loud("--threads 1 compare " + p("ratings.data") +
                         " --models pop --seeds 1 --no-curves --cache-dir none -o " + p("rep"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r.out, "compare: protocol: sequential (chosen by --protocol auto)")) << r.out;
  EXPECT_TRUE(has(r.out, "user histories")) << r.out;
  const json j = json::parse(slurp(p("rep") + "/results.json"));
  EXPECT_EQ(j["protocol"]["name"], "sequential");
  EXPECT_EQ(j["protocol"]["n_predictions"], 60);
  const std::string choice = j["protocol"]["choice"];
  EXPECT_TRUE(has(choice, "chosen by --protocol auto")) << choice;
  EXPECT_TRUE(has(choice, "span more than a day")) << choice;
  ASSERT_FALSE(j["protocol"]["detected"].empty());
  const std::string md = slurp(p("rep") + "/report.md");
  EXPECT_TRUE(has(md, "Why this protocol: chosen by --protocol auto")) << md;
  // The machine block names the instruction-set level next to the CPU.
  const std::string isa = j["machine"].value("isa", "");
  EXPECT_EQ(isa.rfind("kernels ", 0), 0u) << isa;
  EXPECT_TRUE(has(md, " (" + isa + "), ")) << md;
  // An explicit protocol still wins, and the report says so.
  CmdResult s = run("--threads 1 compare " + p("ratings.data") +
                    " --protocol session --models pop --seeds 1 --no-curves --cache-dir none -o " +
                    p("rep_s"));
  ASSERT_EQ(s.code, 0) << s.out;
  const json js = json::parse(slurp(p("rep_s") + "/results.json"));
  EXPECT_EQ(js["protocol"]["name"], "session");
  EXPECT_TRUE(has(js["protocol"]["choice"].get<std::string>(),
                  "as asked (--protocol session); --protocol auto would choose sequential"))
      << js["protocol"]["choice"];
}

TEST_F(Compare, MovieLens100kIsComparedLeaveOneOut) {
  const std::string data = std::string(SEQREC_SHARED_DATA_DIR) + "/ml-100k/u.data";
  if (!fs::exists(data)) GTEST_SKIP() << data << " absent (../shared/data): skipped";
  CmdResult r = run("compare " + data + " --models pop --seeds 1 --no-curves --cache-dir none -o " +
                    p("rep"));
  ASSERT_EQ(r.code, 0) << r.out;
  const json j = json::parse(slurp(p("rep") + "/results.json"));
  EXPECT_EQ(j["protocol"]["name"], "sequential");
  EXPECT_EQ(j["protocol"]["n_predictions"], 943);  // every user, not 11 of them
}

TEST_F(Compare, MillisecondLogIsConvertedAndADegenerateTestSetRefusedBeforeTraining) {
  { std::ofstream(p("ms.tsv")) << millisecond_sessions(); }
  const std::string base =
      "--threads 1 compare " + p("ms.tsv") + " --models pop --seeds 1 --no-curves --cache-dir none";
  CmdResult r = run_loud(base + " -o " + p("rep"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r.out, "compare: time unit: the times are milliseconds")) << r.out;
  const json j = json::parse(slurp(p("rep") + "/results.json"));
  EXPECT_EQ(j["protocol"]["name"], "session");
  EXPECT_TRUE(has(j["protocol"]["detected"].dump(), "milliseconds")) << j["protocol"];
  EXPECT_TRUE(has(slurp(p("rep") + "/report.md"), "Noticed while preparing the data: time unit"));

  // Read as seconds: the last day holds one session (3 predictions): refused with prepare's
  // message, before any training.
  const std::string secs = base + " --time-unit s --protocol session -o " + p("secs");
  CmdResult d = run(secs);
  EXPECT_EQ(d.code, 1) << d.out;
  for (const char* want : {"ms.tsv", "degenerate test set", "3 predictions", "--force"})
    EXPECT_TRUE(has(d.out, want)) << want << "\n" << d.out;
  EXPECT_FALSE(fs::exists(p("secs") + "/work/logs/pop-seed1.log"));
  EXPECT_FALSE(fs::exists(p("secs") + "/results.json"));
  // --force compares anyway, and the report warns.
  CmdResult f = run(secs + " --force");
  ASSERT_EQ(f.code, 0) << f.out;
  const json jf = json::parse(slurp(p("secs") + "/results.json"));
  EXPECT_EQ(jf["protocol"]["n_predictions"], 3);
  ASSERT_EQ(jf["warnings"].size(), 1u) << jf["warnings"];
  EXPECT_TRUE(has(jf["warnings"][0].get<std::string>(), "degenerate test set"));
  EXPECT_TRUE(
      has(slurp(p("secs") + "/report.md"), "**Warning:** the metrics come from a degenerate"));
}

TEST_F(Compare, ADegenerateSplitFolderIsRefusedUnlessForced) {
  { std::ofstream(p("ms.tsv")) << millisecond_sessions(); }
  ASSERT_EQ(run("prepare " + p("ms.tsv") + " -o " + p("split") +
                " --time-unit s --protocol session --force --cache-dir none")
                .code,
            0);
  const std::string args = "--threads 1 compare " + p("split") +
                           " --models pop --seeds 1 --no-curves --cache-dir none -o " + p("rep");
  CmdResult d = run(args);
  EXPECT_EQ(d.code, 1) << d.out;
  for (const char* want : {"test.tsv", "degenerate test set", "3 predictions", "--force"})
    EXPECT_TRUE(has(d.out, want)) << want << "\n" << d.out;
  EXPECT_FALSE(fs::exists(p("rep") + "/work/logs/pop-seed1.log"));
  CmdResult f = run(args + " --force");
  ASSERT_EQ(f.code, 0) << f.out;
  const json j = json::parse(slurp(p("rep") + "/results.json"));
  EXPECT_EQ(j["warnings"].size(), 1u) << j["warnings"];
  EXPECT_TRUE(has(j["protocol"]["choice"].get<std::string>(), "split folder")) << j["protocol"];
}
