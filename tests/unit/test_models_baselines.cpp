// The baselines (pop, sr, vsknn) on hand-computed examples, plus the registry and a
// thread-safety smoke test.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "seqrec/error.hpp"
#include "seqrec/model.hpp"

using namespace seqrec;

namespace {

FitContext quiet() {
  FitContext ctx;
  ctx.progress = false;
  return ctx;
}

SequenceSet make_set(const std::vector<std::vector<int32_t>>& seqs,
                     const std::vector<double>& end_times = {}) {
  SequenceSet s;
  for (size_t i = 0; i < seqs.size(); ++i) {
    std::vector<double> t;
    if (!end_times.empty()) {
      // Events one second apart, the last one at the given end time.
      for (size_t j = 0; j < seqs[i].size(); ++j) {
        t.push_back(end_times[i] - static_cast<double>(seqs[i].size() - 1 - j));
      }
    }
    s.push("s" + std::to_string(i), seqs[i], t);
  }
  return s;
}

std::unique_ptr<Model> make(const std::string& type,
                            const std::vector<std::pair<std::string, std::string>>& params = {}) {
  Config c = default_config(type);
  for (const auto& [k, v] : params) c.set(k, v, "test");
  return create_model(type, c);
}

/// Scores of one prefix.
std::vector<float> score_prefix(const Model& m, const std::vector<int32_t>& prefix) {
  std::vector<std::span<const int32_t>> seqs{std::span<const int32_t>(prefix)};
  std::vector<PrefixQuery> q{{0, static_cast<int32_t>(prefix.size())}};
  std::vector<float> out(static_cast<size_t>(m.n_items()));
  m.score(seqs, q, out.data());
  return out;
}

void expect_row(const std::vector<float>& got, const std::vector<double>& want,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-6) << what << ", item " << i;
  }
}

/// Pseudo-random sessions with some structure (item i often followed by i+1).
SequenceSet random_sessions(int n_sessions, int32_t n_items, uint64_t seed, bool times) {
  SequenceSet s;
  uint64_t x = seed;
  auto next = [&]() {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x >> 33;
  };
  for (int i = 0; i < n_sessions; ++i) {
    const int len = 1 + static_cast<int>(next() % 8);
    std::vector<int32_t> items;
    std::vector<double> t;
    int32_t it = static_cast<int32_t>(next() % static_cast<uint64_t>(n_items));
    for (int j = 0; j < len; ++j) {
      items.push_back(it);
      t.push_back(1000.0 * i + j);
      it = next() % 3 == 0 ? static_cast<int32_t>(next() % static_cast<uint64_t>(n_items))
                           : (it + 1) % n_items;
    }
    s.push("r" + std::to_string(i), items,
           times ? std::span<const double>(t) : std::span<const double>());
  }
  return s;
}

}  // namespace

TEST(ModelsRegistry, ListsBaselinesAndRejectsUnknownTypes) {
  std::vector<std::string> types;
  for (const auto& m : model_registry()) types.push_back(m.type);
  EXPECT_NE(std::find(types.begin(), types.end(), "pop"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "sr"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "vsknn"), types.end());
  try {
    find_model("nope");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'nope'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("pop, sr, vsknn"), std::string::npos) << msg;
  }
  EXPECT_EQ(default_config("sr").get_int("steps"), 10);
  EXPECT_EQ(default_config("vsknn").get_int("k"), 100);
  EXPECT_EQ(default_config("vsknn").get_int("sample_size"), 500);
  for (const auto& m : model_registry()) {
    for (const auto& p : m.params) EXPECT_FALSE(p.help.empty()) << m.type << "." << p.name;
    auto model = create_model(m.type, default_config(m.type));
    EXPECT_EQ(model->type(), m.type);
  }
}

TEST(ModelsRegistry, EpochsParamIsDeclaredPerTypeAndInTheTable) {
  // One spelling across models; the old ones (n_epochs, num_epochs) are aliases.
  EXPECT_EQ(find_model("gru4rec").epochs_param, "epochs");
  EXPECT_EQ(find_model("sasrec").epochs_param, "epochs");
  for (const char* one_pass : {"pop", "sr", "vsknn"})
    EXPECT_EQ(find_model(one_pass).epochs_param, "") << one_pass;
  for (const ModelInfo& m : model_registry()) {
    if (m.epochs_param.empty()) continue;
    bool declared = false;
    for (const ParamSpec& p : m.params)
      if (p.name == m.epochs_param) declared = p.type == ParamType::Int;
    EXPECT_TRUE(declared) << m.type << ": '" << m.epochs_param << "' is not an Int parameter";
  }
}

TEST(ModelsBaselines, EmptyOrOutOfRangeTrainingDataIsAnInputError) {
  for (const auto& info : model_registry()) {
    if (info.type != "pop" && info.type != "sr" && info.type != "vsknn") continue;
    auto m = make(info.type);
    SequenceSet empty;
    EXPECT_THROW(m->fit(empty, 5, quiet()), InputError) << info.type;
    EXPECT_THROW(m->fit(make_set({{0, 7}}), 5, quiet()), InputError) << info.type;
    EXPECT_THROW(m->fit(make_set({{0, 1}}), 0, quiet()), InputError) << info.type;
  }
}

TEST(ModelsPop, ScoresAreTrainingCounts) {
  auto m = make("pop");
  m->fit(make_set({{0, 1, 1}, {1, 3}, {3, 1, 0}}), 5, quiet());
  EXPECT_EQ(m->n_items(), 5);
  expect_row(score_prefix(*m, {4}), {2, 4, 0, 2, 0}, "pop");
  expect_row(score_prefix(*m, {0, 1}), {2, 4, 0, 2, 0}, "pop, longer prefix");
}

// Training sessions [0 1 2] and [1 2 0 2] give, with steps 10:
//   0 -> 1 at d1 (A); 0 -> 2 at d2 (A), d1 (B)
//   1 -> 2 at d1 (A), d1 (B), d3 (B); 1 -> 0 at d2 (B)
//   2 -> 0 at d1 (B); 2 -> 2 at d2 (B, a self pair)
struct SrCase {
  std::string weighting;
  double w1, w2, w3;
};

TEST(ModelsSr, RuleWeightsForEachWeighting) {
  const SequenceSet train = make_set({{0, 1, 2}, {1, 2, 0, 2}});
  const std::vector<SrCase> cases = {
      {"div", 1.0, 0.5, 1.0 / 3},
      {"linear", 0.9, 0.8, 0.7},
      {"same", 1, 1, 1},
      {"quadratic", 1.0, 0.25, 1.0 / 9},
      {"log", 1 / std::log10(2.7), 1 / std::log10(3.7), 1 / std::log10(4.7)},
  };
  for (const SrCase& c : cases) {
    auto m = make("sr", {{"weighting", c.weighting}, {"pop_tiebreak", "false"}});
    m->fit(train, 4, quiet());
    auto skip = make(
        "sr", {{"weighting", c.weighting}, {"pop_tiebreak", "false"}, {"self_rules", "false"}});
    skip->fit(train, 4, quiet());
    expect_row(score_prefix(*m, {0}), {0, c.w1, c.w2 + c.w1, 0}, c.weighting + " rules of 0");
    expect_row(score_prefix(*m, {3, 1}), {c.w2, 0, c.w1 + c.w1 + c.w3, 0},
               c.weighting + " rules of 1");
    expect_row(score_prefix(*m, {2}), {c.w1, 0, c.w2, 0}, c.weighting + " rules of 2");
    expect_row(score_prefix(*skip, {2}), {c.w1, 0, 0, 0}, c.weighting + " rules of 2, no self");
    expect_row(score_prefix(*skip, {0}), {0, c.w1, c.w2 + c.w1, 0}, c.weighting + " no self, 0");
    expect_row(score_prefix(*m, {3}), {0, 0, 0, 0}, c.weighting + " no rules for 3");
  }
}

TEST(ModelsSr, StepsSelfRulesPruningAndTiebreak) {
  const SequenceSet train = make_set({{0, 1, 2}, {1, 2, 0, 2}});
  {
    auto m = make("sr", {{"steps", "1"}, {"pop_tiebreak", "false"}});
    m->fit(train, 4, quiet());
    expect_row(score_prefix(*m, {0}), {0, 1, 1, 0}, "steps 1, rules of 0");
    expect_row(score_prefix(*m, {1}), {0, 0, 2, 0}, "steps 1, rules of 1");
  }
  {
    auto m = make("sr", {{"self_rules", "false"}, {"pop_tiebreak", "false"}});
    m->fit(train, 4, quiet());
    expect_row(score_prefix(*m, {2}), {1, 0, 0, 0}, "no self rules of 2");
  }
  {
    auto m = make("sr", {{"max_rules", "1"}, {"pop_tiebreak", "false"}});
    m->fit(train, 4, quiet());
    expect_row(score_prefix(*m, {0}), {0, 0, 1.5, 0}, "pruned rules of 0");
    expect_row(score_prefix(*m, {1}), {0, 0, 1 + 1 + 1.0 / 3, 0}, "pruned rules of 1");
  }
  {
    // Counts 0:2 1:2 2:3 3:0, so the tie-breaker is 1e-6 * count / 3.
    auto m = make("sr", {{"self_rules", "false"}});
    m->fit(train, 4, quiet());
    const auto row = score_prefix(*m, {2});
    expect_row(row, {1 + 2e-6 / 3, 2e-6 / 3, 1e-6, 0}, "tie-break");
    EXPECT_GT(row[2], row[1]);  // the more popular of two rule-less items ranks first
    EXPECT_GT(row[1], row[3]);
  }
}

// Training sessions (end times 10, 20, 30, 40):
//   S0 {0,1}  S1 {1,2,3}  S2 {2,4}  S3 {0,4,1}
// Prefix [0 2] (L = 2), div weighting: w(0) = 1/2, w(2) = 2/2 = 1; 2 distinct items.
//   S0: shares 0 -> sim 0.5/2 = 0.25, most recent shared position 1 -> step 2 -> decay 1/2
//   S1: shares 2 -> sim 1/2 = 0.5, step 1 -> decay 1
//   S2: shares 2 -> sim 0.5, decay 1
//   S3: shares 0 -> sim 0.25, decay 1/2
// Votes sim * decay: S0 0.125, S1 0.5, S2 0.5, S3 0.125, so
//   item 0: S0 + S3 = 0.25; item 1: S0 + S1 + S3 = 0.75; item 2: S1 + S2 = 1;
//   item 3: S1 = 0.5; item 4: S2 + S3 = 0.625.
class ModelsVsknn : public ::testing::Test {
 protected:
  const std::vector<std::vector<int32_t>> sessions{{0, 1}, {1, 2, 3}, {2, 4}, {0, 4, 1}};
  std::unique_ptr<Model> fit(const std::vector<std::pair<std::string, std::string>>& params,
                             bool times = true) {
    std::vector<std::pair<std::string, std::string>> p = params;
    p.emplace_back("pop_tiebreak", "false");
    auto m = make("vsknn", p);
    m->fit(times ? make_set(sessions, {10, 20, 30, 40}) : make_set(sessions), 5, quiet());
    return m;
  }
};

TEST_F(ModelsVsknn, AllNeighbours) {
  expect_row(score_prefix(*fit({}), {0, 2}), {0.25, 0.75, 1.0, 0.5, 0.625}, "k 100");
  // Without times the sequence index orders sessions by recency: same result.
  expect_row(score_prefix(*fit({}, false), {0, 2}), {0.25, 0.75, 1.0, 0.5, 0.625}, "no times");
}

TEST_F(ModelsVsknn, TopKBreaksSimilarityTiesByRecency) {
  // k 2: S1 and S2 (sim 0.5 each).
  expect_row(score_prefix(*fit({{"k", "2"}}), {0, 2}), {0, 0.5, 1.0, 0.5, 0.5}, "k 2");
  // k 1: S1 and S2 tie; S2 ends later and wins.
  expect_row(score_prefix(*fit({{"k", "1"}}), {0, 2}), {0, 0, 0.5, 0, 0.5}, "k 1");
}

TEST_F(ModelsVsknn, RecentSampleKeepsTheLatestSessions) {
  // sample_size 2: the two latest sessions holding 0 or 2 are S3 (40) and S2 (30).
  expect_row(score_prefix(*fit({{"sample_size", "2"}}), {0, 2}), {0.125, 0.125, 0.5, 0, 0.625},
             "sample 2");
  // sample_size 0 = all candidates.
  expect_row(score_prefix(*fit({{"sample_size", "0"}}), {0, 2}), {0.25, 0.75, 1.0, 0.5, 0.625},
             "sample 0");
}

TEST_F(ModelsVsknn, RepeatedItemsKeepTheirLastPosition) {
  // Prefix [2 0 2] (L = 3): w(2) = 3/3 = 1 (last position), w(0) = 2/3; 2 distinct items.
  // S0, S3: sim (2/3)/2 = 1/3, step 3-2+1 = 2, vote 1/6; S1, S2: sim 1/2, step 1, vote 1/2.
  const double a = 1.0 / 6, b = 0.5;
  expect_row(score_prefix(*fit({}), {2, 0, 2}), {2 * a, 2 * a + b, 2 * b, b, b + a}, "repeat");
}

TEST_F(ModelsVsknn, RemindIdfAndOtherWeightings) {
  expect_row(score_prefix(*fit({{"remind", "false"}}), {0, 2}), {0, 0.75, 0, 0.5, 0.625},
             "remind false");
  // idf(i) = ln(4 sessions / events of i): events 0:2 1:3 2:2 3:1 4:2; every vote for i is
  // multiplied by (1 + 2 idf(i)).
  const double l2 = std::log(2.0), l43 = std::log(4.0 / 3), l4 = std::log(4.0);
  expect_row(score_prefix(*fit({{"idf_weighting", "2"}}), {0, 2}),
             {0.25 * (1 + 2 * l2), 0.75 * (1 + 2 * l43), 1.0 * (1 + 2 * l2), 0.5 * (1 + 2 * l4),
              0.625 * (1 + 2 * l2)},
             "idf");
  // same/same: every shared session has sim 1/2 and decay 1.
  expect_row(score_prefix(*fit({{"weighting", "same"}, {"weighting_score", "same"}}), {0, 2}),
             {1.0, 1.5, 1.0, 0.5, 1.0}, "same");
  // jaccard: S0 1/(2+2-1) = 1/3, S1 1/4, S2 1/3, S3 1/4; decays as before (1/2, 1, 1, 1/2).
  expect_row(score_prefix(*fit({{"similarity", "jaccard"}}), {0, 2}),
             {1.0 / 6 + 1.0 / 8, 1.0 / 6 + 0.25 + 1.0 / 8, 0.25 + 1.0 / 3, 0.25, 1.0 / 3 + 1.0 / 8},
             "jaccard");
}

TEST_F(ModelsVsknn, RandomSampleIsRepeatableAndBounded) {
  auto m = fit({{"sample_size", "2"}, {"sampling", "random"}});
  const auto a = score_prefix(*m, {0, 2});
  EXPECT_EQ(a, score_prefix(*m, {0, 2}));
  // Two neighbours vote: at most 2 * 3 items scored, and a strict subset of the full vote.
  int nonzero = 0;
  for (float v : a) nonzero += v > 0;
  EXPECT_GE(nonzero, 2);
  EXPECT_LE(nonzero, 5);
}

TEST(ModelsBaselines, TieBreakKeepsUnseenItemsAboveZeroOrder) {
  auto m = make("vsknn");
  m->fit(make_set({{0, 1}, {1, 2}, {3, 3, 3}}), 5, quiet());
  const auto row = score_prefix(*m, {4});  // item 4 never seen: only the tie-breaker
  EXPECT_GT(row[3], row[1]);
  EXPECT_GT(row[1], row[0]);
  EXPECT_EQ(row[4], 0.0f);
}

TEST(ModelsBaselines, ScoringFromTwoThreadsMatchesSerial) {
  const int32_t n_items = 300;
  const SequenceSet train = random_sessions(3000, n_items, 7, true);
  const SequenceSet test = random_sessions(200, n_items, 99, false);
  std::vector<std::span<const int32_t>> seqs;
  std::vector<PrefixQuery> queries;
  for (size_t s = 0; s < test.size(); ++s) {
    seqs.push_back(test.seq(s));
    for (int32_t len = 1; len <= static_cast<int32_t>(test.length(s)); ++len) {
      queries.push_back({static_cast<int32_t>(s), len});
    }
  }
  for (const std::string type : {"pop", "sr", "vsknn"}) {
    auto m = make(type);
    m->fit(train, n_items, quiet());
    const size_t n = static_cast<size_t>(n_items), nq = queries.size();
    std::vector<float> serial(nq * n), parallel(nq * n);
    m->score(seqs, queries, serial.data());
    const size_t half = nq / 2;
    std::thread t1([&] {
      m->score(seqs, std::span<const PrefixQuery>(queries).first(half), parallel.data());
    });
    std::thread t2([&] {
      m->score(seqs, std::span<const PrefixQuery>(queries).subspan(half),
               parallel.data() + half * n);
    });
    t1.join();
    t2.join();
    EXPECT_EQ(serial, parallel) << type;
  }
}

// A model that announces incremental inference (new_state) and a dot-product head but
// forgets their methods fails loudly instead of leaving the output unwritten.
namespace {
struct ForgetfulState final : SessionState {
  std::unique_ptr<SessionState> clone() const override {
    return std::make_unique<ForgetfulState>();
  }
  size_t bytes() const override { return 0; }
};
class ForgetfulModel final : public Model {
 public:
  std::string type() const override { return "forgetful"; }
  const Config& config() const override { return config_; }
  int32_t n_items() const override { return 3; }
  void fit(const SequenceSet&, int32_t, const FitContext&) override {}
  void score(std::span<const std::span<const int32_t>>, std::span<const PrefixQuery>,
             float*) const override {}
  std::unique_ptr<SessionState> new_state() const override {
    return std::make_unique<ForgetfulState>();
  }
  void save(TensorWriter&) const override {}
  void load(const TensorReader&) override {}

 private:
  Config config_;
};
}  // namespace

TEST(ModelsInterface, MissingCapabilityMethodsThrowNamingModelAndMethod) {
  ForgetfulModel m;
  auto st = m.new_state();
  float out[3] = {7, 7, 7};
  try {
    m.step(*st, 1);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("forgetful"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("step()"), std::string::npos) << e.what();
  }
  EXPECT_THROW(m.score_state(*st, out), Error);
  EXPECT_THROW(m.state_query(*st, out), Error);
  const std::vector<int32_t> seq{0, 1};
  const std::span<const int32_t> seqs[] = {seq};
  const PrefixQuery q[] = {{0, 2}};
  EXPECT_THROW(m.query_vectors(seqs, q, out), Error);
  EXPECT_EQ(out[0], 7.0f);
}

TEST(ModelsRegistry, PresetsAreTypedValuesWithinTheirTables) {
  // Every preset's values are valid for its table (built from typed structs and checked),
  // and model_config applies defaults, then the preset.
  for (const ModelInfo& info : model_registry())
    for (const Preset& p : info.presets) {
      const Config c = model_config(info, p.name, "");
      for (const auto& [name, value] : p.values)
        EXPECT_EQ(c.raw(name), canonical_value(*find_spec(info.params, name), value, ""))
            << p.name << " " << name;
    }
  const ModelInfo& gru = find_model("gru4rec");
  const Config rsc15 = model_config(gru, "rsc15", "");
  EXPECT_EQ(rsc15.get_int_list("layers"), (std::vector<int64_t>{100}));
  EXPECT_EQ(rsc15.get_int("batch_size"), 32);
  EXPECT_FLOAT_EQ(static_cast<float>(rsc15.get_float("learning_rate")), 0.2f);
  EXPECT_EQ(rsc15.get_float("logq"), 1.0);
  EXPECT_THROW(model_config(gru, "nope", ""), InputError);
  // One spelling across models, old spellings accepted.
  for (const char* type : {"gru4rec", "sasrec"}) {
    Config c = default_config(type);
    EXPECT_EQ(find_model(type).epochs_param, "epochs");
    c.set("n_epochs", "3");
    c.set("num_epochs", "4");
    c.set("lr", "0.01");
    EXPECT_EQ(c.get_int("epochs"), 4);
    EXPECT_EQ(c.get_float("learning_rate"), 0.01);
  }
}
