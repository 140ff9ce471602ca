// The most-popular baseline on the shared data sets must reproduce the independent
// figures of REFERENCE.md ("Independent checks of the evaluation protocols") to 1e-6.
// Self-contained (its own small readers and popularity model) so that it checks the
// evaluator alone. Skips when ../shared/data is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "seqrec/eval.hpp"

using namespace seqrec;

namespace {

const std::string kData = SEQREC_SHARED_DATA_DIR;

/// Scores every item by its training count, whatever the prefix.
class CountModel : public Model {
 public:
  explicit CountModel(const std::vector<int64_t>& counts) : scores_(counts.begin(), counts.end()) {}
  std::string type() const override { return "count"; }
  const Config& config() const override { return config_; }
  int32_t n_items() const override { return static_cast<int32_t>(scores_.size()); }
  void fit(const SequenceSet&, int32_t, const FitContext&) override {}
  void score(std::span<const std::span<const int32_t>>, std::span<const PrefixQuery> queries,
             float* out) const override {
    for (size_t q = 0; q < queries.size(); ++q)
      std::copy(scores_.begin(), scores_.end(), out + q * scores_.size());
  }
  void save(TensorWriter&) const override {}
  void load(const TensorReader&) override {}

 private:
  std::vector<float> scores_;
  Config config_;
};

struct Event {
  std::string session, item;
  double time;
  size_t line;
};

/// GRU4Rec-style TSV (SessionId, ItemId, Time with a header): sessions in order of first
/// appearance, events by time (stable).
std::vector<std::vector<std::string>> read_tsv_sessions(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);  // header
  std::vector<Event> ev;
  std::unordered_map<std::string, size_t> first;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    Event e;
    ls >> e.session >> e.item >> e.time;
    e.line = ev.size();
    first.emplace(e.session, first.size());
    ev.push_back(e);
  }
  std::stable_sort(ev.begin(), ev.end(), [&](const Event& a, const Event& b) {
    const size_t fa = first[a.session], fb = first[b.session];
    return fa != fb ? fa < fb : a.time < b.time;
  });
  std::vector<std::vector<std::string>> out(first.size());
  for (const Event& e : ev) out[first[e.session]].push_back(e.item);
  return out;
}

void check_session_protocol(const std::string& train_path, const std::string& test_path, double r20,
                            double m20, double r10, double m10, int64_t preds) {
  if (!std::filesystem::exists(train_path)) GTEST_SKIP() << train_path << " is absent";
  Vocab items;
  std::vector<int64_t> counts;
  for (const auto& s : read_tsv_sessions(train_path))
    for (const auto& it : s) {
      const int32_t i = items.add(it);
      if (static_cast<size_t>(i) >= counts.size()) counts.resize(static_cast<size_t>(i) + 1, 0);
      ++counts[static_cast<size_t>(i)];
    }
  SequenceSet test;
  for (const auto& s : read_tsv_sessions(test_path)) {
    std::vector<int32_t> seq;
    for (const auto& it : s)
      if (int32_t i = items.find(it); i >= 0) seq.push_back(i);
    test.push("s", seq);
  }
  CountModel m(counts);
  EvalOptions o;
  o.progress = false;
  o.cutoffs = {10, 20};
  const auto r = evaluate(m, test, o, counts);
  EXPECT_EQ(r.n_predictions, preds);
  std::printf("[ info     ] evaluate: %lld predictions over %d items in %.3f s: %s\n",
              static_cast<long long>(r.n_predictions), m.n_items(), r.seconds,
              r.to_json().dump().c_str());
  EXPECT_NEAR(r.metrics.at("recall@20"), r20, 1e-6);
  EXPECT_NEAR(r.metrics.at("mrr@20"), m20, 1e-6);
  EXPECT_NEAR(r.metrics.at("recall@10"), r10, 1e-6);
  EXPECT_NEAR(r.metrics.at("mrr@10"), m10, 1e-6);
}

TEST(EvalReference, PopularityRsc15_100k) {
  check_session_protocol(kData + "/rsc15-100k/yoochoose-clicks-100k_train_full.txt",
                         kData + "/rsc15-100k/yoochoose-clicks-100k_test.txt", 0.089441, 0.026351,
                         0.073877, 0.025411, 10152);
}

TEST(EvalReference, PopularityYoochoose1_64) {
  check_session_protocol(kData + "/yoochoose1_64/train.tsv", kData + "/yoochoose1_64/test.tsv",
                         0.073682, 0.017041, 0.045903, 0.015143, 55400);
}

TEST(EvalReference, PopularityMl1mLeaveOneOut) {
  const std::string path = kData + "/ml-1m/ml-1m.txt";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  std::ifstream f(path);
  Vocab items;
  std::map<int64_t, std::vector<int32_t>> users;  // ids are numbers: keep numeric order
  int64_t u;
  std::string it;
  while (f >> u >> it) users[u].push_back(items.add(it));
  // Popularity over everything except each user's held-out last item.
  std::vector<int64_t> counts(static_cast<size_t>(items.size()), 0);
  SequenceSet test;
  for (const auto& [id, seq] : users) {
    for (size_t k = 0; k + 1 < seq.size(); ++k) ++counts[static_cast<size_t>(seq[k])];
    test.push(std::to_string(id), seq);
  }
  CountModel m(counts);
  EvalOptions o;
  o.protocol = Protocol::Sequential;
  o.progress = false;
  o.cutoffs = {10, 20};
  const auto r = evaluate(m, test, o, counts);
  EXPECT_EQ(r.n_predictions, 6040);
  EXPECT_TRUE(r.exclude_seen);
  EXPECT_NEAR(r.metrics.at("hr@10"), 0.039238, 1e-6);
  EXPECT_NEAR(r.metrics.at("ndcg@10"), 0.019342, 1e-6);
  EXPECT_NEAR(r.metrics.at("hr@20"), 0.070033, 1e-6);
  EXPECT_NEAR(r.metrics.at("ndcg@20"), 0.027055, 1e-6);
}

}  // namespace
