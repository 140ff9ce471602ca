// analyse_comparison() and the report views on hand-made runs: the best model of each
// column, ties, the paired tests' verdicts, buckets and metric vs K, and the rendered
// tables and plots.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "report/report.hpp"
#include "seqrec/error.hpp"
#include "xml_check.hpp"

using namespace seqrec;
using nlohmann::json;

namespace {

/// 40 test sessions: 20 of length 2 (one prediction each, history 1) and 20 of length 4
/// (three predictions each, histories 1, 2, 3) over 10 items: 80 predictions.
SequenceSet make_test() {
  SequenceSet t;
  for (int s = 0; s < 40; ++s) {
    std::vector<int32_t> seq;
    const int len = s < 20 ? 2 : 4;
    for (int i = 0; i < len; ++i) seq.push_back((s + i) % 10);
    t.push("s" + std::to_string(s), seq);
  }
  return t;
}

/// A run whose prediction q gets rank rank_of(q), with the evaluator's sums filled in the
/// way evaluate() fills them.
CompareRun make_run(const SequenceSet& test, int seed, double (*rank_of)(size_t)) {
  CompareRun r;
  r.seed = seed;
  r.fit_seconds = 1.0 + seed;
  r.process_seconds = 2.0;
  r.peak_rss_bytes = 10 << 20;
  r.model_bytes = 1000;
  r.command = {"/path/to/seqrec", "train", "x"};
  r.eval.protocol = "session";
  r.eval.ties = "conservative";
  size_t q = 0;
  for (size_t s = 0; s < test.size(); ++s) {
    const auto seq = test.seq(s);
    for (int32_t len = 1; len < static_cast<int32_t>(seq.size()); ++len, ++q)
      r.eval.ranks.push_back(
          {static_cast<int32_t>(s), len, seq[static_cast<size_t>(len)], rank_of(q)});
  }
  r.eval.n_predictions = static_cast<int64_t>(r.eval.ranks.size());
  r.eval.n_sequences = static_cast<int64_t>(test.size());
  for (int k : {5, 10}) {
    double h = 0, rr = 0, nd = 0;
    for (const auto& x : r.eval.ranks) {
      h += rank_metric(RankMetric::Recall, x.rank, k);
      rr += rank_metric(RankMetric::Mrr, x.rank, k);
      nd += rank_metric(RankMetric::Ndcg, x.rank, k);
    }
    const double n = static_cast<double>(r.eval.ranks.size());
    r.eval.metrics["recall@" + std::to_string(k)] = h / n;
    r.eval.metrics["mrr@" + std::to_string(k)] = rr / n;
    r.eval.metrics["ndcg@" + std::to_string(k)] = nd / n;
  }
  return r;
}

CompareModelResult make_model(const std::string& label, const SequenceSet& test,
                              double (*rank_of)(size_t)) {
  CompareModelResult m;
  m.label = label;
  m.type = "pop";
  m.config = json::object();
  m.config_changes = json::object();
  m.runs = {make_run(test, 1, rank_of), make_run(test, 2, rank_of)};
  m.curve_note = "turned off";
  return m;
}

double perfect(size_t) {
  return 1.0;
}
double half(size_t q) {
  return q % 2 == 0 ? 1.0 : 100.0;
}

/// The setup every report test starts from: a session split over 10 items, 2 seeds,
/// headline recall@5 (plus the cutoffs given).
CompareSetup session_setup(std::vector<int> cutoffs) {
  CompareSetup setup;
  setup.protocol = "session";
  setup.n_items = 10;
  setup.eval.cutoffs = std::move(cutoffs);
  setup.metric = "recall@5";
  setup.seeds = 2;
  return setup;
}

}  // namespace

TEST(CompareReport, BestTiesTestsAndBuckets) {
  const SequenceSet test = make_test();
  std::vector<int64_t> counts(10, 1);
  counts[0] = 50;  // item 0 is the one popular item (top 20% of 10 items = 2 items: 0, 1)
  counts[1] = 20;
  CompareSetup setup = session_setup({5, 10});
  setup.data_name = "hand-made";
  const std::vector<CompareModelResult> models{
      make_model("a", test, perfect), make_model("b", test, half), make_model("c", test, perfect)};
  const json r = analyse_comparison(setup, models, test, counts);

  EXPECT_EQ(r["protocol"]["n_predictions"], 80);
  ASSERT_EQ(r["columns"].size(), 6u);  // Recall, MRR, NDCG at 5 and 10
  // Recall@5: a and c tie at 1, b has 0.5; the test of b against a is significant (the
  // differences are 0 or 1, half of each: t = 0.5 / (sqrt(0.2532) / sqrt(80)) ~ 8.9), the
  // test of c (identical to a) is not (every difference 0, p = 1).
  const json& c0 = r["significance"]["columns"][0];
  EXPECT_EQ(c0["metric"], "recall@5");
  EXPECT_EQ(c0["best"], "a");
  EXPECT_EQ(c0["best_all"], json({"a", "c"}));
  ASSERT_EQ(c0["tests"].size(), 2u);
  EXPECT_EQ(c0["tests"][0]["model"], "b");
  EXPECT_TRUE(c0["tests"][0]["significant"].get<bool>());
  EXPECT_NEAR(c0["tests"][0]["t_test"]["mean_diff"].get<double>(), 0.5, 1e-12);
  EXPECT_EQ(c0["tests"][1]["model"], "c");
  EXPECT_FALSE(c0["tests"][1]["significant"].get<bool>());
  EXPECT_EQ(c0["tests"][1]["t_test"]["p"].get<double>(), 1.0);

  // Means over seeds and a zero standard deviation (identical seeds).
  const json& b = r["models"][1];
  EXPECT_DOUBLE_EQ(b["metrics"]["recall@5"]["mean"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(b["metrics"]["recall@5"]["std"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(b["cost"]["fit_seconds"]["mean"].get<double>(), 2.5);  // seeds 1, 2: 2 and 3
  // Metric vs K from the ranks: b hits half at every K < 100.
  const json& mk = b["metric_vs_k"];
  ASSERT_EQ(mk["k"][0], 1);
  EXPECT_DOUBLE_EQ(mk["recall"][0].get<double>(), 0.5);

  // Buckets by position: history 1 has 40 predictions, 2 and 3 have 20 each; all are kept
  // (20 is the smallest bucket kept).
  const json& bk = r["by_length"]["buckets"];
  ASSERT_EQ(bk.size(), 3u);
  EXPECT_EQ(bk[0]["label"], "1");
  EXPECT_EQ(bk[0]["n"], 40);
  EXPECT_EQ(bk[2]["label"], "3–4");
  EXPECT_EQ(bk[2]["n"], 20);
  // Popular targets: items 0 and 1.
  int64_t popular = 0;
  for (size_t s = 0; s < test.size(); ++s)
    for (size_t i = 1; i < static_cast<size_t>(test.length(s)); ++i) popular += test.seq(s)[i] <= 1;
  EXPECT_EQ(r["by_popularity"]["groups"][0]["n"].get<int64_t>(), popular);
  EXPECT_EQ(r["by_popularity"]["groups"][0]["items"], 2);

  // The views: bold best (both tied ones), no † for the significantly worse b, a † for
  // nobody else; the commands show the program as "seqrec".
  const auto plots = compare_plots(r);
  ASSERT_EQ(plots.size(), 4u);  // no learning curves
  for (const auto& [name, doc] : plots) EXPECT_EQ(seqrec_test::xml_problem(doc), "") << name;
  const std::string md = compare_markdown(r, plots);
  EXPECT_NE(md.find("| a | **1.0000 ± 0.0000** |"), std::string::npos) << md;
  EXPECT_NE(md.find("| c | **1.0000 ± 0.0000** |"), std::string::npos);
  EXPECT_NE(md.find("| b | 0.5000 ± 0.0000 |"), std::string::npos);
  EXPECT_NE(md.find("seqrec train x"), std::string::npos);
  EXPECT_EQ(md.find("/path/to/seqrec"), std::string::npos);
  const std::string html = compare_html(r, plots);
  EXPECT_NE(html.find("<strong>1.0000</strong><span class=\"sd\">± 0.0000</span>"),
            std::string::npos);
}

TEST(CompareReport, RefusesRunsOnDifferentPredictions) {
  const SequenceSet test = make_test();
  std::vector<int64_t> counts(10, 1);
  CompareSetup setup = session_setup({5});
  std::vector<CompareModelResult> models{make_model("a", test, perfect),
                                         make_model("b", test, half)};
  models[1].runs[1].eval.ranks.pop_back();
  EXPECT_THROW(analyse_comparison(setup, models, test, counts), Error);
  // A rank that does not reproduce the evaluator's sums is caught too.
  models = {make_model("a", test, perfect)};
  models[0].runs[0].eval.ranks[0].rank = 50;
  EXPECT_THROW(analyse_comparison(setup, models, test, counts), Error);
}

namespace {

/// A validation curve: [{"epoch": e, "metrics": {"recall@5": v}}] for epochs 1..n.
json curve_of(const std::vector<double>& values) {
  json c = json::array();
  for (size_t i = 0; i < values.size(); ++i)
    c.push_back({{"epoch", static_cast<int>(i + 1)}, {"metrics", {{"recall@5", values[i]}}}});
  return c;
}

}  // namespace

TEST(CompareReport, WarnsAboutModelsStillImprovingAtTheirLastEpoch) {
  const SequenceSet test = make_test();
  std::vector<int64_t> counts(10, 1);
  CompareSetup setup = session_setup({5, 10});
  std::vector<CompareModelResult> models{make_model("rising", test, half),
                                         make_model("flat", test, perfect),
                                         make_model("peaked", test, perfect)};
  // Still rising: best at the last of 10 epochs, +20% over the last three evaluations.
  models[0].curve = curve_of({0.1, 0.2, 0.3, 0.35, 0.4, 0.42, 0.45, 0.48, 0.52, 0.54});
  models[0].type = "sasrec";  // its type declares the epochs parameter named in the advice
  models[0].config = {{"num_epochs", 10}};
  // Converged: best at the last epoch, but less than 1% above three evaluations before.
  models[1].curve = curve_of({0.1, 0.5, 0.6, 0.600, 0.601, 0.602, 0.603});
  models[1].type = "gru4rec";
  models[1].config = {{"n_epochs", 7}};
  // Peaked early, validated every second epoch: best at epoch 4 of 8.
  models[2].curve = json::array();
  for (int e : {2, 4, 6, 8})
    models[2].curve.push_back(
        {{"epoch", e}, {"metrics", {{"recall@5", e == 4 ? 0.6 : 0.5 - 0.01 * e}}}});
  const json r = analyse_comparison(setup, models, test, counts);

  ASSERT_EQ(r["warnings"].size(), 1u) << r["warnings"].dump(1);
  const std::string w = r["warnings"][0].get<std::string>();
  EXPECT_NE(w.find("rising was still improving"), std::string::npos) << w;
  EXPECT_NE(w.find("--epochs 20"), std::string::npos) << w;
  EXPECT_NE(w.find("--set rising.epochs=20"), std::string::npos) << w;
  const json& si = r["models"][0]["still_improving"];
  EXPECT_EQ(si["best_epoch"], 10);
  EXPECT_EQ(si["last_epoch"], 10);
  EXPECT_NEAR(si["gain"].get<double>(), 0.54 / 0.45 - 1, 1e-12);
  EXPECT_FALSE(r["models"][1].contains("still_improving"));
  EXPECT_FALSE(r["models"][2].contains("still_improving"));

  // Both views carry the warning; the curve notes count epochs, not curve points.
  const auto plots = compare_plots(r);
  EXPECT_NE(
      compare_markdown(r, plots).find("peaked: best validation Recall@5 0.6000 at epoch 4 of 8"),
      std::string::npos)
      << compare_markdown(r, plots);
  EXPECT_NE(compare_markdown(r, plots).find("**Warning:** rising was still improving"),
            std::string::npos);
  EXPECT_NE(compare_html(r, plots).find("<strong>Warning:</strong> rising was still improving"),
            std::string::npos);
}

TEST(CompareReport, SaysWhyThisProtocolAndWhatWasNoticed) {
  const SequenceSet test = make_test();
  std::vector<int64_t> counts(10, 1);
  CompareSetup setup = session_setup({5, 10});
  setup.protocol_choice = "chosen by --protocol auto: 0 of the 40 sequences span more than a day";
  setup.detected = {"protocol: session (chosen by --protocol auto): ...",
                    "time unit: the times are milliseconds; --time-unit s reads them as seconds",
                    "forced: degenerate test set: the test set holds 1 session"};
  setup.data_name = "hand-made";
  const std::vector<CompareModelResult> models{make_model("a", test, perfect)};
  const json r = analyse_comparison(setup, models, test, counts);
  EXPECT_EQ(r["protocol"]["choice"], setup.protocol_choice);
  EXPECT_EQ(r["protocol"]["detected"], setup.detected);
  ASSERT_EQ(r["warnings"].size(), 1u);
  EXPECT_NE(r["warnings"][0].get<std::string>().find("degenerate test set"), std::string::npos);

  const std::string md = compare_markdown(r, compare_plots(r));
  EXPECT_NE(md.find("Why this protocol: chosen by --protocol auto: 0 of the 40 sequences"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("Noticed while preparing the data: time unit: the times are milliseconds"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("Noticed while preparing the data: protocol:"), std::string::npos) << md;
  EXPECT_NE(md.find("**Warning:** the metrics come from a degenerate test set"), std::string::npos)
      << md;
}

TEST(CompareReport, NamesTheInstructionSetLevelNextToTheCpu) {
  const SequenceSet test = make_test();
  std::vector<int64_t> counts(10, 1);
  CompareSetup setup = session_setup({5, 10});
  setup.data_name = "hand-made";
  setup.machine = {{"cpu", "Test CPU 3000"},
                   {"isa", "kernels avx2; cpu sse4.2 avx2, no avx512; oneDNN avx2"},
                   {"logical_cpus", 4}};
  const std::vector<CompareModelResult> models{make_model("a", test, perfect)};
  const json r = analyse_comparison(setup, models, test, counts);
  EXPECT_EQ(r["machine"]["isa"], "kernels avx2; cpu sse4.2 avx2, no avx512; oneDNN avx2");
  const std::string md = compare_markdown(r, compare_plots(r));
  EXPECT_NE(md.find("Machine: Test CPU 3000 (kernels avx2; cpu sse4.2 avx2, no avx512; oneDNN "
                    "avx2), 4 logical CPUs"),
            std::string::npos)
      << md;
  // A results.json written before the field existed still renders.
  json old = r;
  old["machine"].erase("isa");
  EXPECT_NE(compare_markdown(old, compare_plots(old)).find("Machine: Test CPU 3000, 4 logical"),
            std::string::npos);
}

TEST(CompareReport, ConvergenceTableAndANotConvergedWarning) {
  const SequenceSet test = make_test();
  std::vector<int64_t> counts(10, 1);
  CompareSetup setup = session_setup({5, 10});
  std::vector<CompareModelResult> models{make_model("stopped", test, half),
                                         make_model("budget_end", test, perfect),
                                         make_model("baseline", test, perfect)};
  models[0].type = "gru4rec";
  models[0].convergence = {{"epoch_budget", 20},    {"epochs_run", 9},
                           {"best_epoch", 6},       {"final_epochs", 6},
                           {"stopped_early", true}, {"still_improving", false},
                           {"metric", "recall@5"}};
  models[1].type = "sasrec";
  models[1].convergence = {{"epoch_budget", 5},      {"epochs_run", 5},
                           {"best_epoch", 5},        {"final_epochs", 5},
                           {"stopped_early", false}, {"still_improving", true},
                           {"metric", "recall@5"}};
  const json r = analyse_comparison(setup, models, test, counts);
  EXPECT_EQ(r["models"][0]["convergence"]["best_epoch"], 6);
  EXPECT_TRUE(r["models"][2]["convergence"].is_null());
  ASSERT_EQ(r["warnings"].size(), 1u) << r["warnings"].dump(1);
  const std::string w = r["warnings"][0].get<std::string>();
  EXPECT_NE(w.find("budget_end was still improving at the end of its epoch budget"),
            std::string::npos)
      << w;
  EXPECT_NE(w.find("--epochs 10"), std::string::npos) << w;
  const std::string md = compare_markdown(r, compare_plots(r));
  EXPECT_NE(md.find("### Convergence"), std::string::npos) << md;
  EXPECT_NE(md.find("| stopped | "), std::string::npos) << md;
  EXPECT_NE(md.find("| 20 | 9 | 6 | 6 | converged (stopped early) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 5 | 5 | 5 | 5 | **⚠ still improving at the last epoch: not converged** |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("one pass (no epochs)"), std::string::npos) << md;
  EXPECT_NE(compare_html(r, compare_plots(r)).find("Convergence"), std::string::npos);
}
