#include "train/state.hpp"

#include <cmath>

#include "seqrec/error.hpp"

namespace seqrec {

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

}  // namespace seqrec
