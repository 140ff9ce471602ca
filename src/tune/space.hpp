// Search spaces of `seqrec tune`: which model parameters a tuning run varies and over which
// values, read from a JSON file (tune/spaces/MODEL.json in the repository for the defaults;
// docs/tune.md describes the format) and checked against the model's parameter table, so
// that a space can only name parameters the model has, with values its specs accept.
//
// A point of the space is a vector of doubles, one per dimension, in the dimension's own
// coordinates: the value for an int or float dimension, the index of the choice for a
// categorical one. Samplers (tune/tpe.hpp) work on those; value_text() turns a coordinate
// into the text a Config takes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "seqrec/config.hpp"

namespace seqrec::tune {

enum class DimKind { Int, Float, Categorical };

/// One searched parameter.
struct Dimension {
  std::string name;  ///< the parameter's canonical name in its table
  DimKind kind = DimKind::Float;
  double low = 0, high = 0;          ///< inclusive bounds of an int or float dimension
  double step = 0;                   ///< > 0: values are low + i * step (linear dimensions only)
  bool log = false;                  ///< sampled uniformly in log(value)
  std::vector<std::string> choices;  ///< categorical: each value as canonical text
  std::vector<nlohmann::json> choice_json;  ///< categorical: each value as written in the file

  size_t n_choices() const { return choices.size(); }
};

/// A validated space over the parameters of one model type.
struct SearchSpace {
  std::string model;   ///< model type
  std::string source;  ///< the file it came from, for messages ("" = built in code)
  std::vector<Dimension> dims;
  /// Parameters set before every trial (the file's "fixed" object), as (name, text).
  std::vector<std::pair<std::string, std::string>> fixed;
  /// The space as a JSON document in the file format (kept with a tuning run so that a resumed
  /// run can tell whether the space changed).
  nlohmann::json to_json() const;
};

/// Checks a space document against `specs` (the model's parameter table). Throws InputError
/// naming `origin` and the entry ("params[2] (learning_rate)") for an unknown parameter, an
/// empty range (low >= high), a type that does not suit the parameter (a float range for an
/// int parameter, a range for a text one), a value the parameter does not accept, a log
/// range that is not positive, an unknown key, or an empty list of choices.
SearchSpace parse_space(const nlohmann::json& doc, const std::string& model,
                        const std::vector<ParamSpec>& specs, const std::string& origin);

/// Reads and checks a space file (InputError for a file that cannot be read or is not JSON).
SearchSpace load_space(const std::string& path, const std::string& model,
                       const std::vector<ParamSpec>& specs);

/// A coordinate snapped to the dimension: rounded to its step or to an integer, clamped to
/// its range; a categorical index rounded and clamped to the choices.
double snap(const Dimension& d, double x);
/// The Config text of coordinate `x` ("0.05", "128", "bpr-max").
std::string value_text(const Dimension& d, double x);
/// The JSON value of coordinate `x` (a number, or the choice as written in the file).
nlohmann::json value_json(const Dimension& d, double x);
/// The coordinate of a JSON value written by value_json (a trials log read back); throws
/// InputError naming `origin` when it is not a value of the dimension.
double coordinate_of(const Dimension& d, const nlohmann::json& v, const std::string& origin);

}  // namespace seqrec::tune
