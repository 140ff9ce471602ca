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

nlohmann::json state_number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json state_numbers(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(state_number(x));
  return a;
}

StateReader::StateReader(const TrainingState& st, std::string model)
    : st_(st),
      where_((st.source.empty() ? std::string() : st.source + ": ") + model + " checkpoint: "),
      tensors_(st.tensors, st.source),
      weights_(st.weights, st.source) {
  if (!st.values.is_object()) fail("the training state is not a JSON object");
}

void StateReader::fail(const std::string& what) const {
  throw Error(where_ + what);
}

const nlohmann::json& StateReader::field(const std::string& key) const {
  const auto it = st_.values.find(key);
  if (it == st_.values.end()) fail("state field '" + key + "' is missing");
  return *it;
}

int64_t StateReader::integer(const std::string& key, int64_t lo, int64_t hi) const {
  const nlohmann::json& v = field(key);
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi ||
      (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)))
    fail("state field '" + key + "' should be an integer in [" + std::to_string(lo) + ", " +
         std::to_string(hi) + "], got " + v.dump());
  return v.get<int64_t>();
}

double StateReader::number(const std::string& key) const {
  const nlohmann::json& v = field(key);
  if (v.is_null()) return std::nan("");
  if (!v.is_number()) fail("state field '" + key + "' should be a number, got " + v.dump());
  return v.get<double>();
}

std::vector<double> StateReader::numbers(const std::string& key, int64_t n) const {
  const nlohmann::json& v = field(key);
  if (!v.is_array() || (n >= 0 && v.size() != static_cast<size_t>(n)))
    fail("state field '" + key + "' should be an array of " +
         (n >= 0 ? std::to_string(n) + " " : std::string()) + "numbers");
  std::vector<double> out;
  for (const auto& x : v) {
    if (!x.is_null() && !x.is_number())
      fail("state field '" + key + "' holds a non-number: " + x.dump());
    out.push_back(x.is_null() ? std::nan("") : x.get<double>());
  }
  return out;
}

std::vector<uint64_t> StateReader::u64s(const std::string& key, size_t n) const {
  const nlohmann::json& v = field(key);
  bool ok = v.is_array() && v.size() == n;
  if (ok)
    for (const auto& x : v) ok = ok && x.is_number_unsigned();
  if (!ok)
    fail("state field '" + key + "' should be an array of " + std::to_string(n) +
         " unsigned integers");
  std::vector<uint64_t> out;
  for (const auto& x : v) out.push_back(x.get<uint64_t>());
  return out;
}

std::span<const float> StateReader::floats(const std::string& name, int64_t n) const {
  return tensors_.get<float>(name, {n});
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
