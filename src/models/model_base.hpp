// Helpers shared by the model implementations: the common Model plumbing (config and
// catalogue size), training-data checks, prefix access, popularity and decay functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "seqrec/config.hpp"
#include "seqrec/features.hpp"
#include "seqrec/model.hpp"
#include "train/state.hpp"

namespace seqrec {

/// Holds the config and the catalogue size; subclasses implement the rest.
class ModelBase : public Model {
 public:
  explicit ModelBase(const Config& config) : config_(config) {}
  const Config& config() const override { return config_; }
  int32_t n_items() const override { return n_items_; }

 protected:
  Config config_;
  int32_t n_items_ = 0;
};

/// Throws InputError when `train` has no events, n_items <= 0, or an item lies outside
/// [0, n_items). `model` names the model type in the message.
void check_training_data(const SequenceSet& train, int32_t n_items, const std::string& model);

/// Number of events of each item index (size n_items); items must be in range.
std::vector<int64_t> count_items(const SequenceSet& train, int32_t n_items);

/// The prefix a query asks about; throws Error when the query does not fit `seqs`.
std::span<const int32_t> query_prefix(std::span<const std::span<const int32_t>> seqs,
                                      const PrefixQuery& q);

/// Throws Error "SOURCE: tensor 'NAME': WHAT".
[[noreturn]] void bad_tensor(const TensorReader& r, const std::string& name,
                             const std::string& what);

/// A 1-D tensor of type T; throws Error naming the source when it is absent, of another
/// dtype, not 1-D or (with `size` >= 0) not of that length.
template <class T>
std::span<const T> read_vector(const TensorReader& r, const std::string& name, int64_t size = -1) {
  if (size >= 0) return r.get<T>(name, {size});
  if (r.entry(name).shape.size() != 1) bad_tensor(r, name, "must be 1-D");
  return r.get<T>(name);
}

/// Checks a CSR offsets array: offsets[0] == 0, non-decreasing, offsets.back() == nnz.
void check_offsets(const TensorReader& r, const std::string& name, std::span<const int64_t> offsets,
                   int64_t nnz);
/// Checks that every index lies in [0, n).
void check_indices(const TensorReader& r, const std::string& name, std::span<const int32_t> idx,
                   int64_t n);

/// Item features stored as the tensors "features.offsets" (read by the caller, who knows
/// how many rows to expect), "features.index" and "features.value": checked (CSR offsets,
/// indices in [0, n_features), finite values) and copied. Error naming the source otherwise.
SparseFeatures read_sparse_features(const TensorReader& r, std::span<const int64_t> offsets,
                                    int32_t n_features);

/// The popularity tie-breaker added to scores: 1e-6 * count / max count (all zeros when
/// `enabled` is false). Ties between otherwise equal scores are then broken by popularity
/// without changing the order of scores that differ by more than 1e-6.
std::vector<float> popularity_tiebreak(std::span<const int64_t> counts, bool enabled);

/// Decay functions of session-rec (Ludewig & Jannach), selected by name.
enum class Decay { Div, Linear, Same, Log, Quadratic };
/// "div", "linear", "same", "log", "quadratic".
Decay parse_decay(const std::string& name);
const std::vector<std::string>& decay_names();
/// Weight of a distance d >= 1 (steps apart): div 1/d, linear max(0, 1 - 0.1 d), same 1,
/// log 1/log10(d + 1.7), quadratic 1/d^2.
double distance_weight(Decay decay, int64_t d);
/// Weight of 1-based position p in a sequence of length len: div p/len,
/// linear max(0, 1 - 0.1 (len - p)), same 1, log 1/log10(len - p + 1.7), quadratic (p/len)^2.
double position_weight(Decay decay, int64_t p, int64_t len);

}  // namespace seqrec
