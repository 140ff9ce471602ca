#include "models/model_base.hpp"

#include <algorithm>
#include <cmath>

#include "seqrec/error.hpp"

namespace seqrec {

void check_training_data(const SequenceSet& train, int32_t n_items, const std::string& model) {
  if (n_items <= 0) {
    throw InputError("model '" + model +
                     "': the catalogue is empty (n_items = " + std::to_string(n_items) + ")");
  }
  if (train.size() == 0 || train.n_events() == 0) {
    throw InputError("model '" + model + "': the training data has no events");
  }
  for (size_t i = 0; i < train.items.size(); ++i) {
    const int32_t it = train.items[i];
    if (it < 0 || it >= n_items) {
      throw InputError("model '" + model + "': item index " + std::to_string(it) +
                       " at training event " + std::to_string(i) + " is outside [0, " +
                       std::to_string(n_items) + ")");
    }
  }
}

std::vector<int64_t> count_items(const SequenceSet& train, int32_t n_items) {
  std::vector<int64_t> c(static_cast<size_t>(n_items), 0);
  for (int32_t it : train.items) ++c[static_cast<size_t>(it)];
  return c;
}

std::span<const int32_t> query_prefix(std::span<const std::span<const int32_t>> seqs,
                                      const PrefixQuery& q) {
  if (q.seq < 0 || static_cast<size_t>(q.seq) >= seqs.size()) {
    throw Error("query refers to sequence " + std::to_string(q.seq) + " of " +
                std::to_string(seqs.size()));
  }
  const auto s = seqs[static_cast<size_t>(q.seq)];
  if (q.len < 1 || static_cast<size_t>(q.len) > s.size()) {
    throw Error("query prefix length " + std::to_string(q.len) + " outside [1, " +
                std::to_string(s.size()) + "]");
  }
  return s.first(static_cast<size_t>(q.len));
}

void bad_tensor(const TensorReader& r, const std::string& name, const std::string& what) {
  throw Error((r.source().empty() ? std::string() : r.source() + ": ") + "tensor '" + name +
              "': " + what);
}

void check_offsets(const TensorReader& r, const std::string& name, std::span<const int64_t> offsets,
                   int64_t nnz) {
  if (offsets.empty() || offsets[0] != 0) bad_tensor(r, name, "must start at 0");
  for (size_t i = 1; i < offsets.size(); ++i) {
    if (offsets[i] < offsets[i - 1]) bad_tensor(r, name, "decreases at " + std::to_string(i));
  }
  if (offsets.back() != nnz) {
    bad_tensor(r, name,
               "ends at " + std::to_string(offsets.back()) + ", expected " + std::to_string(nnz));
  }
}

void check_indices(const TensorReader& r, const std::string& name, std::span<const int32_t> idx,
                   int64_t n) {
  for (size_t i = 0; i < idx.size(); ++i) {
    if (idx[i] < 0 || idx[i] >= n) {
      bad_tensor(r, name,
                 "index " + std::to_string(idx[i]) + " at " + std::to_string(i) + " outside [0, " +
                     std::to_string(n) + ")");
    }
  }
}

SparseFeatures read_sparse_features(const TensorReader& r, std::span<const int64_t> offsets,
                                    int32_t n_features) {
  const int64_t nnz = offsets.back();
  std::span<const int32_t> idx;
  std::span<const float> val;
  if (nnz > 0 || r.has("features.index")) {
    idx = read_vector<int32_t>(r, "features.index", nnz);
    val = read_vector<float>(r, "features.value", nnz);
  }
  check_offsets(r, "features.offsets", offsets, nnz);
  check_indices(r, "features.index", idx, n_features);
  for (float x : val)
    if (!std::isfinite(x)) bad_tensor(r, "features.value", "contains NaN/inf");
  SparseFeatures X;
  X.n_features = n_features;
  X.offsets.assign(offsets.begin(), offsets.end());
  X.index.assign(idx.begin(), idx.end());
  X.value.assign(val.begin(), val.end());
  return X;
}

std::vector<float> popularity_tiebreak(std::span<const int64_t> counts, bool enabled) {
  std::vector<float> tb(counts.size(), 0.0f);
  if (!enabled || counts.empty()) return tb;
  const int64_t mx = *std::max_element(counts.begin(), counts.end());
  if (mx <= 0) return tb;
  for (size_t i = 0; i < counts.size(); ++i) {
    tb[i] = static_cast<float>(1e-6 * static_cast<double>(counts[i]) / static_cast<double>(mx));
  }
  return tb;
}

const std::vector<std::string>& decay_names() {
  static const std::vector<std::string> names = {"div", "linear", "same", "log", "quadratic"};
  return names;
}

Decay parse_decay(const std::string& name) {
  if (name == "div") return Decay::Div;
  if (name == "linear") return Decay::Linear;
  if (name == "same") return Decay::Same;
  if (name == "log") return Decay::Log;
  if (name == "quadratic") return Decay::Quadratic;
  throw InputError("unknown weighting '" + name +
                   "' (expected div, linear, same, log or quadratic)");
}

double distance_weight(Decay decay, int64_t d) {
  const double x = static_cast<double>(d);
  switch (decay) {
    case Decay::Div:
      return 1.0 / x;
    case Decay::Linear:
      return std::max(0.0, 1.0 - 0.1 * x);
    case Decay::Same:
      return 1.0;
    case Decay::Log:
      return 1.0 / std::log10(x + 1.7);
    case Decay::Quadratic:
      return 1.0 / (x * x);
  }
  return 1.0;
}

double position_weight(Decay decay, int64_t p, int64_t len) {
  const double x = static_cast<double>(p), n = static_cast<double>(len);
  switch (decay) {
    case Decay::Div:
      return x / n;
    case Decay::Linear:
      return std::max(0.0, 1.0 - 0.1 * (n - x));
    case Decay::Same:
      return 1.0;
    case Decay::Log:
      return 1.0 / std::log10(n - x + 1.7);
    case Decay::Quadratic:
      return (x / n) * (x / n);
  }
  return 1.0;
}

}  // namespace seqrec
