// The hyperparameters of the sasrec model type: one typed struct and the table that declares
// each member once (name, default, range or choices, help, aliases). The table produces the
// CLI flags, config-file and model-file parsing, `seqrec models`, and the presets.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/gemm.hpp"
#include "seqrec/config.hpp"
#include "seqrec/model.hpp"

namespace seqrec {

/// Training loss of SASRec.
enum class SasrecLoss {
  Bce,             ///< one sampled negative per position (the original)
  Ce,              ///< full softmax over the catalogue (SASRec+)
  SampledSoftmax,  ///< shared sampled negatives with logQ correction
  Gbce,            ///< generalised BCE (gSASRec)
};

/// Parsed, validated hyperparameters. Defaults live in the table (sasrec_table()); start
/// from sasrec_defaults(), not from this struct's zeros.
struct SasrecParams {
  int64_t maxlen = 0;
  int64_t hidden_units = 0;
  int64_t num_blocks = 0;
  int64_t num_heads = 0;
  float dropout_rate = 0;
  double learning_rate = 0;  ///< Adam step size (rounded to float where used)
  int64_t batch_size = 0;
  double l2_emb = 0;
  int64_t epochs = 0;
  double beta1 = 0, beta2 = 0;
  SasrecLoss loss = SasrecLoss::Bce;
  int64_t n_negatives = 0;
  double gbce_t = 0;
  bool pop_sampling = false;  ///< the parameter "sampling": uniform (false) or pop (true)
  double logq = 0;
  bool gelu = false;  ///< the parameter "activation": relu (false) or gelu (true)
  bool norm_first = false;
  bool shared_embedding = false;
  float init_std = 0;
  bool positions_from_start = false;  ///< the parameter "positions": from_end or from_start
  int64_t eval_every = 0;
  /// Requested precision of the large GEMMs (the parameter "precision"; Auto allowed).
  Precision precision = Precision::Fp32;
  /// With item features (--item-features): whether an item is its id embedding plus its
  /// feature embedding (true) or its feature embedding alone (false).
  bool id_embedding = false;
  float id_dropout = 0;  ///< with features: per step, P(an item's id part is dropped)
};

/// The table of the sasrec type, each entry bound to its member of SasrecParams.
const ParamTable<SasrecParams>& sasrec_table();
/// Every parameter at its default.
SasrecParams sasrec_defaults();
/// The original and the SASRec+ settings as presets.
std::vector<Preset> sasrec_presets();

}  // namespace seqrec
