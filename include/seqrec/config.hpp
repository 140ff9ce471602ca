// One table of hyperparameters and options.
//
// Every tunable is declared exactly once as a ParamSpec (name, type, default, bounds or
// choices, help). The CLI builds its flags from the specs, config files and model files
// are read through the same specs, so a value is checked the same way wherever it comes
// from. A Config holds validated values as strings and converts them on access.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace seqrec {

enum class ParamType { Int, Float, Bool, String, IntList };

/// Declaration of one hyperparameter or option.
struct ParamSpec {
  std::string name;  ///< snake_case, unique within its table; CLI flag is --name
  ParamType type = ParamType::String;
  std::string default_value;  ///< as text, e.g. "20", "0.5", "true", "100,100"
  std::string help;
  double min = -1e300;               ///< bounds for Int/Float (and each IntList element),
  double max = 1e300;                ///< inclusive unless min_exclusive / max_exclusive
  std::vector<std::string> choices;  ///< allowed values for String (empty = any)
  bool min_exclusive = false;        ///< value must be > min (not >=)
  bool max_exclusive = false;        ///< value must be < max (not <=), e.g. a probability in [0, 1)
};

/// ParamSpec builders, the one way tables are written (defaults as text, as in ParamSpec;
/// bounds inclusive).
inline ParamSpec param_int(std::string name, std::string def, double min, double max,
                           std::string help) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::Int;
  p.default_value = std::move(def);
  p.help = std::move(help);
  p.min = min;
  p.max = max;
  return p;
}
inline ParamSpec param_float(std::string name, std::string def, double min, double max,
                             std::string help) {
  ParamSpec p = param_int(std::move(name), std::move(def), min, max, std::move(help));
  p.type = ParamType::Float;
  return p;
}
/// Each element of the list lies in [min, max].
inline ParamSpec param_int_list(std::string name, std::string def, double min, double max,
                                std::string help) {
  ParamSpec p = param_int(std::move(name), std::move(def), min, max, std::move(help));
  p.type = ParamType::IntList;
  return p;
}
inline ParamSpec param_bool(std::string name, std::string def, std::string help) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::Bool;
  p.default_value = std::move(def);
  p.help = std::move(help);
  return p;
}
/// Free text.
inline ParamSpec param_string(std::string name, std::string def, std::string help) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamType::String;
  p.default_value = std::move(def);
  p.help = std::move(help);
  return p;
}
/// One of `choices`.
inline ParamSpec param_choice(std::string name, std::string def, std::vector<std::string> choices,
                              std::string help) {
  ParamSpec p = param_string(std::move(name), std::move(def), std::move(help));
  p.choices = std::move(choices);
  return p;
}

/// The accepted range of an Int/Float spec as text: "[0, 1)", ">= 1", "> 0", "<= 5", or ""
/// when unbounded. Error messages and `seqrec models` both use it.
std::string range_text(const ParamSpec& spec);

/// A set of values checked against a list of specs.
class Config {
 public:
  Config() = default;
  /// Starts from every spec's default.
  explicit Config(std::vector<ParamSpec> specs);

  const std::vector<ParamSpec>& specs() const { return specs_; }
  bool has(const std::string& name) const;
  /// Sets a value from text; throws InputError naming `origin` (e.g. "--lr", "cfg.txt:3")
  /// and the parameter when the name is unknown or the value does not fit the spec.
  void set(const std::string& name, const std::string& value, const std::string& origin = "");

  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  std::vector<int64_t> get_int_list(const std::string& name) const;
  const std::string& raw(const std::string& name) const;

  /// Reads `key = value` lines ('#' starts a comment) or, for *.json, one JSON object.
  void load_file(const std::string& path);
  /// {"name": value, ...} with typed JSON values.
  nlohmann::json to_json() const;
  /// Sets every key of a JSON object (unknown keys are an error naming `origin`).
  void from_json(const nlohmann::json& j, const std::string& origin);

 private:
  const ParamSpec& spec(const std::string& name) const;
  std::vector<ParamSpec> specs_;
  std::map<std::string, std::string> values_;
};

/// Checks `value` against `spec`; returns the canonical text or throws InputError.
std::string canonical_value(const ParamSpec& spec, const std::string& value,
                            const std::string& origin);

}  // namespace seqrec
