// The popularity baseline must reproduce, to 1e-6, the figures an independent script
// computed (../shared/REFERENCE.md, "Independent checks of the evaluation protocols").
// This is the proof that readers, splits and both protocols are implemented exactly.
#include <gtest/gtest.h>

#include <filesystem>

#include "app/workflow.hpp"
#include "core/parallel.hpp"
#include "seqrec/data.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/model.hpp"

using namespace seqrec;
namespace fs = std::filesystem;

namespace {

const std::string kShared = SEQREC_SHARED_DATA_DIR;

bool have(const std::string& rel) {
  return fs::exists(fs::path(kShared) / rel);
}

std::string path(const std::string& rel) {
  return (fs::path(kShared) / rel).string();
}

ReadOptions no_cache() {
  ReadOptions o;
  return o;
}

EvalResult pop_session(const std::string& train, const std::string& test) {
  TrainData td = load_train_data(path(train), SplitPart::Test, no_cache());
  FitContext ctx;
  ctx.progress = false;
  ModelBundle b = train_model("pop", default_config("pop"), td, ctx);
  TestData te = load_test_data(path(test), SplitPart::Test, b.items, no_cache());
  EvalOptions eo;
  eo.protocol = Protocol::Session;
  eo.cutoffs = {10, 20};
  eo.ties = TieMode::Conservative;
  eo.progress = false;
  return evaluate_bundle(b, te, eo);
}

}  // namespace

TEST(ReferencePop, Rsc15SessionProtocol) {
  if (!have("rsc15-100k")) GTEST_SKIP() << "../shared/data/rsc15-100k absent: skipped";
  EvalResult r = pop_session("rsc15-100k/yoochoose-clicks-100k_train_full.txt",
                             "rsc15-100k/yoochoose-clicks-100k_test.txt");
  EXPECT_EQ(r.n_predictions, 10152);
  EXPECT_NEAR(r.metrics.at("recall@20"), 0.089441, 1e-6);
  EXPECT_NEAR(r.metrics.at("mrr@20"), 0.026351, 1e-6);
  EXPECT_NEAR(r.metrics.at("recall@10"), 0.073877, 1e-6);
  EXPECT_NEAR(r.metrics.at("mrr@10"), 0.025411, 1e-6);
}

TEST(ReferencePop, Yoochoose164SessionProtocol) {
  if (!have("yoochoose1_64")) GTEST_SKIP() << "../shared/data/yoochoose1_64 absent: skipped";
  EvalResult r = pop_session("yoochoose1_64/train.tsv", "yoochoose1_64/test.tsv");
  EXPECT_EQ(r.n_predictions, 55400);
  EXPECT_NEAR(r.metrics.at("recall@20"), 0.073682, 1e-6);
  EXPECT_NEAR(r.metrics.at("mrr@20"), 0.017041, 1e-6);
  EXPECT_NEAR(r.metrics.at("recall@10"), 0.045903, 1e-6);
  EXPECT_NEAR(r.metrics.at("mrr@10"), 0.015143, 1e-6);
}

TEST(ReferencePop, Ml1mLeaveOneOutFullRanking) {
  if (!have("ml-1m/ml-1m.txt")) GTEST_SKIP() << "../shared/data/ml-1m absent: skipped";
  EventLog log = read_events(path("ml-1m/ml-1m.txt"), no_cache());
  PreparedSplit split = prepare_sequential(log, SequentialSplitOptions{});
  ASSERT_EQ(split.test.size(), 6040u);
  ASSERT_EQ(split.items.size(), 3416);
  // Fitted on train + validation (each user's sequence without its last item).
  TrainData td;
  td.items = split.items;
  td.train = split.train_full;
  td.protocol = "sequential";
  FitContext ctx;
  ctx.progress = false;
  ModelBundle b = train_model("pop", default_config("pop"), td, ctx);
  TestData te;
  te.test = split.test;
  EvalOptions eo;
  eo.protocol = Protocol::Sequential;
  eo.cutoffs = {10, 20};
  eo.progress = false;
  EvalResult r = evaluate_bundle(b, te, eo);
  EXPECT_EQ(r.n_predictions, 6040);
  EXPECT_TRUE(r.exclude_seen);
  EXPECT_NEAR(r.metrics.at("hr@10"), 0.039238, 1e-6);
  EXPECT_NEAR(r.metrics.at("ndcg@10"), 0.019342, 1e-6);
  EXPECT_NEAR(r.metrics.at("hr@20"), 0.070033, 1e-6);
  EXPECT_NEAR(r.metrics.at("ndcg@20"), 0.027055, 1e-6);
}
