// One table of hyperparameters and options.
//
// Every tunable is declared exactly once as a ParamSpec (name, type, default, bounds or
// choices, help, aliases). The CLI builds its flags from the specs, config files and model
// files are read through the same specs, so a value is checked the same way wherever it
// comes from. A Config holds validated values as strings and converts them on access.
//
// A component with a typed parameter struct binds each spec to one member in a ParamTable:
// the table then fills the struct from a Config (no hand-written parsing, no struct
// defaults: the defaults are the specs'), and turns a struct back into values (presets
// written as typed values). Adding a parameter is one table entry.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <type_traits>
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
  /// Other spellings accepted wherever a value is read (flags, config files, model files,
  /// compare's --set), e.g. an older name: {"n_epochs", "num_epochs"} for "epochs". A value
  /// is always stored and written under `name`.
  std::vector<std::string> aliases = {};

  /// The same spec with `a` as one more accepted spelling.
  ParamSpec alias(std::string a) && {
    aliases.push_back(std::move(a));
    return std::move(*this);
  }
  /// The same spec with its lower bound excluded (a learning rate > 0).
  ParamSpec open_min() && {
    min_exclusive = true;
    return std::move(*this);
  }
  /// The same spec with its upper bound excluded (a probability < 1).
  ParamSpec open_max() && {
    max_exclusive = true;
    return std::move(*this);
  }
  /// True when `n` is the name or one of the aliases.
  bool answers_to(const std::string& n) const;
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

/// The spec of `specs` named `name` (or with `name` among its aliases); nullptr when none.
const ParamSpec* find_spec(const std::vector<ParamSpec>& specs, const std::string& name);

/// A set of values checked against a list of specs.
class Config {
 public:
  Config() = default;
  /// Starts from every spec's default.
  explicit Config(std::vector<ParamSpec> specs);

  const std::vector<ParamSpec>& specs() const { return specs_; }
  /// True when a spec has this name or alias.
  bool has(const std::string& name) const;
  /// Sets a value from text; throws InputError naming `origin` (e.g. "--lr", "cfg.txt:3")
  /// and the parameter when the name is unknown or the value does not fit the spec. An alias
  /// sets the parameter it names. Getters below accept aliases too.
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

/// Text with the fewest digits that reads back as exactly `v`, in %g style ("0.07" for
/// 0.07f, "200000", "0.6"): parameter defaults and presets written from typed values.
std::string exact_text(float v);
std::string exact_text(double v);
/// An integer as its decimal text.
template <class T>
requires std::is_integral_v<T> std::string exact_text(T v) {
  return std::to_string(v);
}

/// Throws InputError(what) (a value outside a table's choices, from a Config built over
/// other specs) or, with `bug`, Error(what) (a table binding a spec to a member of the
/// wrong type).
[[noreturn]] void throw_param_error(const std::string& what, bool bug = false);

/// A typed view of a table: each ParamSpec bound to one member of the struct P. P needs no
/// default member values: read(Config(specs())) gives the specs' defaults.
///
///   ParamTable<MyParams> t;
///   t.field(&MyParams::epochs, param_int("epochs", "10", 0, 1e5, "training epochs")
///                                  .alias("n_epochs"));
///   t.choice(&MyParams::loss, param_choice("loss", "ce", {}, "..."),
///            {{"ce", Loss::Ce}, {"bpr", Loss::Bpr}});
///   MyParams p = t.read(config);
///
/// Members may be int64_t, int32_t, double, float (read as double, then rounded), bool,
/// std::string, std::vector<int64_t>, or an enum through choice().
template <class P>
class ParamTable {
 public:
  /// Binds `spec` to `member`; the member's type must suit the spec's type.
  template <class T>
  ParamTable& field(T P::*member, ParamSpec spec) {
    check_type<T>(spec);
    const std::string name = spec.name;
    specs_.push_back(std::move(spec));
    readers_.push_back([member, name](const Config& c, P& p) { p.*member = get<T>(c, name); });
    writers_.push_back([member](const P& p) { return text_of(p.*member); });
    return *this;
  }
  /// Binds a String spec to an enum member: `values` maps each choice to its value (the
  /// spec's choices are these names, in this order).
  template <class E>
  ParamTable& choice(E P::*member, ParamSpec spec, std::vector<std::pair<std::string, E>> values) {
    spec.type = ParamType::String;
    spec.choices.clear();
    for (const auto& v : values) spec.choices.push_back(v.first);
    specs_.push_back(std::move(spec));
    const std::string name = specs_.back().name;
    readers_.push_back([member, name, values](const Config& c, P& p) {
      const std::string& s = c.get_string(name);
      for (const auto& [text, value] : values)
        if (text == s) {
          p.*member = value;
          return;
        }
      std::string list;
      for (const auto& v : values) list += (list.empty() ? "" : ", ") + v.first;
      throw_param_error("parameter '" + name + "' must be one of " + list + ", got '" + s + "'");
    });
    writers_.push_back([member, name, values](const P& p) {
      for (const auto& [text, value] : values)
        if (value == p.*member) return text;
      throw_param_error("parameter '" + name + "': a value without a name in its table", true);
    });
    return *this;
  }
  const std::vector<ParamSpec>& specs() const { return specs_; }
  /// Every member from `c` (a Config over specs(), or a superset of them).
  P read(const Config& c) const {
    P p{};
    for (const auto& r : readers_) r(c, p);
    return p;
  }
  P defaults() const { return read(Config(specs_)); }
  /// (name, text) of every member of `p` that differs from the default: a preset written as
  /// a typed struct. Each value is checked against its spec (an out-of-range preset throws
  /// InputError); floats are written as their shortest exact text ("0.2").
  std::vector<std::pair<std::string, std::string>> changes(const P& p) const {
    std::vector<std::pair<std::string, std::string>> out;
    const Config def(specs_);
    for (size_t i = 0; i < specs_.size(); ++i) {
      const std::string text = writers_[i](p);
      if (canonical_value(specs_[i], text, "preset") != def.raw(specs_[i].name))
        out.emplace_back(specs_[i].name, text);
    }
    return out;
  }

 private:
  template <class T>
  static void check_type(const ParamSpec& s) {
    ParamType want = ParamType::String;
    if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>)
      want = ParamType::Int;
    else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>)
      want = ParamType::Float;
    else if constexpr (std::is_same_v<T, bool>)
      want = ParamType::Bool;
    else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
      want = ParamType::IntList;
    else
      static_assert(std::is_same_v<T, std::string>, "unsupported parameter member type");
    if (s.type != want) throw_type_mismatch(s.name);
  }
  template <class T>
  static T get(const Config& c, const std::string& n) {
    if constexpr (std::is_same_v<T, int64_t>) return c.get_int(n);
    if constexpr (std::is_same_v<T, int32_t>) return static_cast<int32_t>(c.get_int(n));
    if constexpr (std::is_same_v<T, double>) return c.get_float(n);
    if constexpr (std::is_same_v<T, float>) return static_cast<float>(c.get_float(n));
    if constexpr (std::is_same_v<T, bool>) return c.get_bool(n);
    if constexpr (std::is_same_v<T, std::string>) return c.get_string(n);
    if constexpr (std::is_same_v<T, std::vector<int64_t>>) return c.get_int_list(n);
  }
  template <class T>
  static std::string text_of(const T& v) {
    if constexpr (std::is_same_v<T, bool>)
      return v ? "true" : "false";
    else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
      return exact_text(v);
    else if constexpr (std::is_same_v<T, std::string>)
      return v;
    else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      std::string s;
      for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
      return s;
    } else
      return std::to_string(v);
  }
  [[noreturn]] static void throw_type_mismatch(const std::string& name);

  std::vector<ParamSpec> specs_;
  std::vector<std::function<void(const Config&, P&)>> readers_;
  std::vector<std::function<std::string(const P&)>> writers_;
};

template <class P>
void ParamTable<P>::throw_type_mismatch(const std::string& name) {
  throw_param_error("parameter '" + name + "': its spec type does not suit its member", true);
}

}  // namespace seqrec
