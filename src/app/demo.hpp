// `seqrec demo`, the tour on synthetic data: generate a log, split it, train every model
// with the settings below, evaluate, and explain the table. Its settings are data here, not
// in the CLI.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "seqrec/config.hpp"

namespace seqrec {

/// How the demo trains one model type: a preset of the model (may be empty), then values
/// set over it.
struct DemoModelSettings {
  std::string type;
  std::string preset;
  std::vector<std::pair<std::string, std::string>> values;
};

/// The demo's settings per model type (types not listed train with their defaults): the
/// official rsc15 preset for GRU4Rec (the synthetic data imitates RSC15 clicks), and for
/// SASRec a history window and epoch budget that fit short sessions and a run of a minute
/// or two.
const std::vector<DemoModelSettings>& demo_model_settings();

/// The configuration the demo trains `type` with: its defaults, then demo_model_settings().
Config demo_model_config(const std::string& type);

/// The cutoffs of the demo's table.
inline const std::vector<int> kDemoCutoffs{5, 10, 20};

struct DemoOptions {
  Config generator;  ///< a Config of generate_option_specs()
  std::string out_dir = "seqrec-demo";
  std::string models = "all";   ///< comma-separated model types, or "all"
  int threads = 0;              ///< 0 = all cores
  bool quiet = false;           ///< no progress bars
  std::string prog = "seqrec";  ///< how to run the binary, for the closing hint
};

/// The main job: synthetic data -> session split -> every model -> one table and what it
/// means, on stdout; the data and the model files stay in opt.out_dir. Returns the exit
/// status (0).
int run_demo(const DemoOptions& opt);

}  // namespace seqrec
