// Reading and writing the training state of a checkpoint (include/seqrec/training.hpp's
// TrainingState): JSON numbers that may be NaN, and a reader that checks every field and
// tensor and names it in its error. Used by the epoch loop and by each neural model's
// trainer for its own state (optimiser moments, random streams, data order).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "seqrec/tensor_io.hpp"
#include "seqrec/training.hpp"

namespace seqrec {

/// A double for a TrainingState's JSON: NaN and infinities become null (JSON has none).
nlohmann::json state_number(double v);
nlohmann::json state_numbers(const std::vector<double>& v);

/// Reads a TrainingState (a checkpoint being resumed) with checks: every failure is an
/// Error "SOURCE: MODEL checkpoint: ..." naming the field or tensor.
class StateReader {
 public:
  StateReader(const TrainingState& st, std::string model);
  /// An integer field within [lo, hi].
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const;
  /// A number field; null reads as NaN.
  double number(const std::string& key) const;
  /// An array of numbers (null entries read as NaN), exactly `n` long when n >= 0.
  std::vector<double> numbers(const std::string& key, int64_t n = -1) const;
  /// An array of `n` unsigned 64-bit integers (RNG states).
  std::vector<uint64_t> u64s(const std::string& key, size_t n) const;
  /// The state's arrays and the weights, checked by name, dtype and shape.
  const TensorReader& tensors() const { return tensors_; }
  const TensorReader& weights() const { return weights_; }
  /// f32 array `name` of the state with exactly `n` values.
  std::span<const float> floats(const std::string& name, int64_t n) const;
  [[noreturn]] void fail(const std::string& what) const;

 private:
  const nlohmann::json& field(const std::string& key) const;
  const TrainingState& st_;
  std::string where_;
  TensorReader tensors_, weights_;
};

}  // namespace seqrec
