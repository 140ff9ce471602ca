// seqrec tune's parts: space files and their errors, the TPE sampler (reproducible, and
// better than random search on a synthetic objective), the ASHA rung decisions, and the
// trials log read back for a resume.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "seqrec/error.hpp"
#include "seqrec/model.hpp"
#include "tune/pruner.hpp"
#include "tune/space.hpp"
#include "tune/tpe.hpp"
#include "tune/trials_log.hpp"

using namespace seqrec;
using namespace seqrec::tune;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::vector<ParamSpec>& gru_specs() {
  return find_model("gru4rec").params;
}

std::string error_of(const json& doc) {
  try {
    parse_space(doc, "gru4rec", gru_specs(), "space.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

/// A synthetic objective over a float (linear), a float (log), an int and a categorical
/// dimension; its maximum 0 is at (0.3, 0.01, 200, "bpr-max").
SearchSpace synthetic_space() {
  return parse_space(json::parse(R"({"params": [
      {"name": "dropout_p_hidden", "type": "float", "low": 0.0, "high": 0.9},
      {"name": "learning_rate", "type": "float", "low": 0.0001, "high": 1.0, "log": true},
      {"name": "batch_size", "type": "int", "low": 16, "high": 512},
      {"name": "loss", "type": "categorical", "values": ["cross-entropy", "bpr-max", "top1"]}]})"),
                     "gru4rec", gru_specs(), "synthetic");
}

double objective(const std::vector<double>& x) {
  const double a = (x[0] - 0.3) / 0.9, b = (std::log10(x[1]) + 2) / 4, c = (x[2] - 200) / 496;
  return -(a * a + b * b + c * c) - (x[3] == 1 ? 0.0 : 0.05);
}

double best_after(const TpeSampler& s, int trials) {
  std::vector<Observation> obs;
  double best = -1e9;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> x = s.propose(obs, static_cast<uint64_t>(t));
    const double y = objective(x);
    best = std::max(best, y);
    obs.push_back({x, y, true});
  }
  return best;
}

}  // namespace

TEST(TuneSpace, ParsesRangesChoicesAndFixedValues) {
  const SearchSpace s = parse_space(json::parse(R"({"model": "gru4rec",
      "fixed": {"n_sample": 512},
      "params": [
        {"name": "layers", "type": "int", "low": 64, "high": 512, "step": 32},
        {"name": "lr", "type": "float", "low": 0.01, "high": 0.25, "log": true},
        {"name": "loss", "type": "categorical", "values": ["cross-entropy", "bpr-max"]},
        {"name": "constrained_embedding", "type": "categorical", "values": [true, false]}]})"),
                                    "gru4rec", gru_specs(), "s.json");
  ASSERT_EQ(s.dims.size(), 4u);
  EXPECT_EQ(s.dims[1].name, "learning_rate");  // an alias names its parameter
  EXPECT_TRUE(s.dims[1].log);
  EXPECT_EQ(s.fixed.size(), 1u);
  EXPECT_EQ(value_text(s.dims[0], 100), "96");  // snapped to the step
  EXPECT_EQ(value_text(s.dims[0], 1000), "512");
  EXPECT_EQ(value_text(s.dims[2], 1), "bpr-max");
  EXPECT_EQ(value_text(s.dims[3], 0), "true");
  EXPECT_EQ(coordinate_of(s.dims[2], json("bpr-max"), "x"), 1.0);
  // The document round-trips.
  const SearchSpace again = parse_space(s.to_json(), "gru4rec", gru_specs(), "again");
  EXPECT_EQ(again.to_json(), s.to_json());
}

TEST(TuneSpace, BadEntriesAreClearErrorsNamingFileAndEntry) {
  std::string e = error_of(json::parse(
      R"({"params": [{"name": "lerning_rate", "type": "float", "low": 0.01, "high": 0.1}]})"));
  EXPECT_NE(e.find("space.json"), std::string::npos) << e;
  EXPECT_NE(e.find("params[0]"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown parameter 'lerning_rate'"), std::string::npos) << e;
  EXPECT_NE(e.find("learning_rate"), std::string::npos) << e;  // the suggestion
  e = error_of(json::parse(
      R"({"params": [{"name": "learning_rate", "type": "float", "low": 0.2, "high": 0.1}]})"));
  EXPECT_NE(e.find("empty range"), std::string::npos) << e;
  EXPECT_NE(e.find("(learning_rate)"), std::string::npos) << e;
  e = error_of(json::parse(
      R"({"params": [{"name": "batch_size", "type": "float", "low": 16, "high": 64}]})"));
  EXPECT_NE(e.find("type float does not suit"), std::string::npos) << e;
  e = error_of(
      json::parse(R"({"params": [{"name": "loss", "type": "int", "low": 1, "high": 3}]})"));
  EXPECT_NE(e.find("type int does not suit"), std::string::npos) << e;
  e = error_of(json::parse(
      R"({"params": [{"name": "loss", "type": "categorical", "values": ["ce", "bpr-max"]}]})"));
  EXPECT_NE(e.find("\"ce\""), std::string::npos) << e;
  e = error_of(
      json::parse(R"({"params": [{"name": "loss", "type": "categorical", "values": []}]})"));
  EXPECT_NE(e.find("non-empty"), std::string::npos) << e;
  e = error_of(json::parse(
      R"({"params": [{"name": "momentum", "type": "float", "low": 0.0, "high": 1.5}]})"));
  EXPECT_NE(e.find("bound 1.5"), std::string::npos) << e;
  e = error_of(json::parse(
      R"({"params": [{"name": "momentum", "type": "float", "low": 0.0, "high": 0.5, "log": true}]})"));
  EXPECT_NE(e.find("low > 0"), std::string::npos) << e;
  e = error_of(json::parse(
      R"({"params": [{"name": "momentum", "type": "float", "low": 0.0, "high": 0.5, "hgih": 1}]})"));
  EXPECT_NE(e.find("unknown key \"hgih\""), std::string::npos) << e;
  e = error_of(json::parse(R"({"model": "sasrec", "params": []})"));
  EXPECT_NE(e.find("not gru4rec"), std::string::npos) << e;
  e = error_of(json::parse(R"({"params": [
      {"name": "momentum", "type": "float", "low": 0.0, "high": 0.5},
      {"name": "momentum", "type": "float", "low": 0.0, "high": 0.5}]})"));
  EXPECT_NE(e.find("twice"), std::string::npos) << e;
}

TEST(TuneSpace, TheShippedDefaultSpacesAreValid) {
  const fs::path dir = fs::path(SEQREC_SOURCE_DIR) / "tune" / "spaces";
  for (const auto& m : model_registry()) {
    const fs::path p = dir / (m.type + ".json");
    ASSERT_TRUE(fs::exists(p)) << p;
    EXPECT_NO_THROW(load_space(p.string(), m.type, m.params)) << p;
  }
  const SearchSpace g = load_space((dir / "gru4rec.json").string(), "gru4rec", gru_specs());
  std::vector<std::string> names;
  for (const auto& d : g.dims) names.push_back(d.name);
  for (const char* want : {"loss", "layers", "batch_size", "dropout_p_embed", "dropout_p_hidden",
                           "learning_rate", "momentum", "n_sample", "sample_alpha", "bpreg",
                           "elu_param", "logq", "constrained_embedding"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
}

TEST(TuneTpe, SameSeedSameProposalsAndOtherSeedsDiffer) {
  const SearchSpace s = synthetic_space();
  TpeOptions o;
  o.seed = 7;
  o.n_startup = 5;
  const TpeSampler a(s, o), b(s, o);
  o.seed = 8;
  const TpeSampler c(s, o);
  std::vector<Observation> obs;
  bool differs = false;
  for (int t = 0; t < 15; ++t) {
    const auto xa = a.propose(obs, static_cast<uint64_t>(t));
    EXPECT_EQ(xa, b.propose(obs, static_cast<uint64_t>(t))) << "trial " << t;
    differs = differs || xa != c.propose(obs, static_cast<uint64_t>(t));
    for (size_t d = 0; d < xa.size(); ++d)  // inside the space
      EXPECT_EQ(xa[d], snap(s.dims[d], xa[d]));
    obs.push_back({xa, objective(xa), true});
  }
  EXPECT_TRUE(differs);
}

TEST(TuneTpe, BeatsRandomSearchOnASyntheticObjective) {
  const SearchSpace s = synthetic_space();
  double tpe = 0, rnd = 0;
  const int seeds = 12, trials = 40;
  for (int seed = 1; seed <= seeds; ++seed) {
    TpeOptions o;
    o.seed = static_cast<uint64_t>(seed);
    o.n_startup = 10;
    tpe += -best_after(TpeSampler(s, o), trials);  // regret: 0 at the optimum
    o.n_startup = 1000000;                         // random search: never leaves startup
    rnd += -best_after(TpeSampler(s, o), trials);
  }
  tpe /= seeds;
  rnd /= seeds;
  RecordProperty("tpe_mean_regret", std::to_string(tpe));
  RecordProperty("random_mean_regret", std::to_string(rnd));
  // A clear margin: TPE's mean regret is at most 60% of random search's.
  EXPECT_LT(tpe, 0.6 * rnd) << "TPE regret " << tpe << ", random " << rnd;
}

TEST(TunePruner, RungsAndTopOneOverEtaDecisions) {
  RungPruner p({1, 3, 3});
  EXPECT_EQ(p.rungs(30), (std::vector<int>{1, 3, 9, 27}));
  EXPECT_TRUE(p.is_rung(9));
  EXPECT_FALSE(p.is_rung(2));
  EXPECT_FALSE(p.report(0, 2, 0.0));  // not a rung: never stops
  // The first min_trials trials at a rung all continue.
  EXPECT_FALSE(p.report(0, 1, 0.30));
  EXPECT_FALSE(p.report(1, 1, 0.10));
  EXPECT_FALSE(p.report(2, 1, 0.20));
  // 4 scores: keep the top floor(4/3) = 1, so only a new best continues.
  EXPECT_TRUE(p.report(3, 1, 0.25));
  EXPECT_FALSE(p.report(4, 1, 0.35));
  // 6 scores: keep the top 2 (0.35, 0.30).
  EXPECT_FALSE(p.report(5, 1, 0.31));
  EXPECT_TRUE(p.report(6, 1, 0.29));
  EXPECT_TRUE(p.report(7, 1, std::nan("")));
  // Rungs are independent.
  EXPECT_FALSE(p.report(3, 3, 0.01));
}

TEST(TuneTrialsLog, RoundTripResumeAndACutLastLine) {
  // The process id keeps parallel runs of the suite (ctest's ISA variants) apart.
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("seqrec_tune_log_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "trials.jsonl").string();
  const SearchSpace s = synthetic_space();
  TpeOptions o;
  o.seed = 3;
  o.n_startup = 2;
  const TpeSampler sampler(s, o);
  std::vector<Observation> obs;
  std::vector<std::vector<double>> proposed;
  for (int t = 0; t < 4; ++t) {
    TrialRecord r;
    r.number = t;
    r.x = sampler.propose(obs, static_cast<uint64_t>(t));
    proposed.push_back(r.x);
    r.params = json::object();
    for (size_t d = 0; d < s.dims.size(); ++d)
      r.params[s.dims[d].name] = value_json(s.dims[d], r.x[d]);
    r.curve = {{1, 0.1 * t}, {2, 0.1 * t + 0.05}};
    r.value = 0.1 * t + 0.05;
    r.best_epoch = 2;
    r.epochs = 2;
    r.state = t == 1 ? "pruned" : "complete";
    append_trial(path, r);
    obs.push_back({r.x, r.value, !r.pruned()});
  }
  // A kill in the middle of writing the fifth line.
  {
    std::ofstream f(path, std::ios::app);
    f << R"({"number": 4, "params": {"dropout)";
  }
  const std::vector<TrialRecord> back = read_trials(path, s);
  ASSERT_EQ(back.size(), 4u);
  EXPECT_TRUE(back[1].pruned());
  EXPECT_EQ(back[3].curve.size(), 2u);
  EXPECT_NEAR(back[3].value, 0.35, 1e-12);
  // The observations read back give the same next proposal as the uninterrupted run.
  std::vector<Observation> again;
  for (const auto& r : back) {
    for (size_t d = 0; d < r.x.size(); ++d) EXPECT_NEAR(r.x[d], proposed[r.number][d], 1e-9);
    again.push_back({r.x, r.value, !r.pruned()});
  }
  EXPECT_EQ(sampler.propose(again, 4), sampler.propose(obs, 4));
  EXPECT_EQ(best_trial(back), 3);
  // A damaged line that is not the last is an error naming the line.
  {
    std::ofstream f(path, std::ios::app);
    f << "\n" << back[0].to_json().dump() << "\n";
  }
  try {
    read_trials(path, s);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("trials.jsonl:5"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}
