#include "tune/space.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "app/param_flags.hpp"
#include "seqrec/error.hpp"

namespace seqrec::tune {

using json = nlohmann::json;

namespace {

/// The text a Config takes for a JSON value of a space file.
std::string json_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return exact_text(v.get<double>());
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ",") + json_text(e);
    return s;
  }
  return v.dump();
}

const char* kind_name(DimKind k) {
  return k == DimKind::Int ? "int" : k == DimKind::Float ? "float" : "categorical";
}

}  // namespace

json SearchSpace::to_json() const {
  json params = json::array();
  for (const auto& d : dims) {
    json e = {{"name", d.name}, {"type", kind_name(d.kind)}};
    if (d.kind == DimKind::Categorical) {
      e["values"] = d.choice_json;
    } else {
      e["low"] = d.low;
      e["high"] = d.high;
      if (d.step > 0) e["step"] = d.step;
      if (d.log) e["log"] = true;
    }
    params.push_back(e);
  }
  json f = json::object();
  for (const auto& [k, v] : fixed) f[k] = v;
  return {{"model", model}, {"params", params}, {"fixed", f}};
}

SearchSpace parse_space(const json& doc, const std::string& model,
                        const std::vector<ParamSpec>& specs, const std::string& origin) {
  auto fail = [&](const std::string& where, const std::string& what) -> void {
    throw InputError(origin + ": " + (where.empty() ? "" : where + ": ") + what);
  };
  if (!doc.is_object()) fail("", "a search space is a JSON object with a \"params\" list");
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (it.key() != "model" && it.key() != "params" && it.key() != "fixed" &&
        it.key() != "description")
      fail("", "unknown key \"" + it.key() + "\" (model, description, params, fixed)");
  SearchSpace s;
  s.model = model;
  s.source = origin;
  if (doc.contains("model")) {
    if (!doc["model"].is_string() || doc["model"].get<std::string>() != model)
      fail("\"model\"", "the space is for model " + json_text(doc["model"]) + ", not " + model);
  }
  std::vector<std::string> names;
  for (const auto& p : specs) names.push_back(p.name);
  auto spec_of = [&](const std::string& where, const json& name) -> const ParamSpec& {
    if (!name.is_string()) fail(where, "\"name\" must be a parameter name (text)");
    const std::string n = name.get<std::string>();
    const ParamSpec* sp = find_spec(specs, n);
    if (!sp) {
      const std::string near = cli::nearest_name(n, names);
      fail(where, "unknown parameter '" + n + "' of model " + model +
                      (near.empty() ? std::string() : " (did you mean '" + near + "'?)") +
                      " (see `seqrec models`)");
    }
    return *sp;
  };
  std::set<std::string> seen;
  if (doc.contains("fixed")) {
    if (!doc["fixed"].is_object()) fail("\"fixed\"", "must be an object {\"param\": value}");
    for (auto it = doc["fixed"].begin(); it != doc["fixed"].end(); ++it) {
      const std::string where = "fixed." + it.key();
      const ParamSpec& sp = spec_of(where, it.key());
      try {
        s.fixed.emplace_back(sp.name, canonical_value(sp, json_text(it.value()), ""));
      } catch (const InputError& e) {
        fail(where, e.what());
      }
      seen.insert(sp.name);
    }
  }
  if (!doc.contains("params") || !doc["params"].is_array())
    fail("", "\"params\" must be a list of {\"name\", \"type\", ...} entries");
  const json& params = doc["params"];
  for (size_t i = 0; i < params.size(); ++i) {
    const json& e = params[i];
    std::string where = "params[" + std::to_string(i) + "]";
    if (!e.is_object()) fail(where, "each entry is an object {\"name\", \"type\", ...}");
    if (e.contains("name") && e["name"].is_string())
      where += " (" + e["name"].get<std::string>() + ")";
    for (auto it = e.begin(); it != e.end(); ++it)
      if (it.key() != "name" && it.key() != "type" && it.key() != "low" && it.key() != "high" &&
          it.key() != "step" && it.key() != "log" && it.key() != "values")
        fail(where, "unknown key \"" + it.key() + "\" (name, type, low, high, step, log, values)");
    const ParamSpec& sp = spec_of(where, e.value("name", json()));
    if (!seen.insert(sp.name).second)
      fail(where, "parameter '" + sp.name + "' appears twice (in params or fixed)");
    Dimension d;
    d.name = sp.name;
    const std::string type = e.value("type", std::string());
    if (type == "int")
      d.kind = DimKind::Int;
    else if (type == "float")
      d.kind = DimKind::Float;
    else if (type == "categorical")
      d.kind = DimKind::Categorical;
    else
      fail(where,
           "\"type\" must be int, float or categorical, got " + json_text(e.value("type", json())));
    if (d.kind == DimKind::Categorical) {
      for (const char* k : {"low", "high", "step", "log"})
        if (e.contains(k))
          fail(where, std::string("\"") + k + "\" does not apply to a categorical entry");
      if (!e.contains("values") || !e["values"].is_array() || e["values"].empty())
        fail(where, "a categorical entry needs a non-empty \"values\" list");
      std::set<std::string> distinct;
      for (const auto& v : e["values"]) {
        std::string text;
        try {
          text = canonical_value(sp, json_text(v), "");
        } catch (const InputError& err) {
          fail(where, "value " + v.dump() + ": " + err.what());
        }
        if (!distinct.insert(text).second) fail(where, "value " + v.dump() + " appears twice");
        d.choices.push_back(text);
        d.choice_json.push_back(v);
      }
    } else {
      if (e.contains("values"))
        fail(where, "\"values\" goes with type categorical; use low and high");
      const bool int_param = sp.type == ParamType::Int || sp.type == ParamType::IntList;
      if (d.kind == DimKind::Int && !int_param)
        fail(where, "type int does not suit parameter '" + sp.name + "' (a " +
                        cli::type_word(sp.type) + " parameter)");
      if (d.kind == DimKind::Float && sp.type != ParamType::Float)
        fail(where, "type float does not suit parameter '" + sp.name + "' (a " +
                        cli::type_word(sp.type) + " parameter" +
                        (int_param ? "; use type int" : "; use type categorical") + ")");
      if (!e.contains("low") || !e.contains("high") || !e["low"].is_number() ||
          !e["high"].is_number())
        fail(where, "a range needs numbers \"low\" and \"high\"");
      d.low = e["low"].get<double>();
      d.high = e["high"].get<double>();
      if (!(d.low < d.high))
        fail(where, "empty range: low (" + json_text(e["low"]) + ") must be below high (" +
                        json_text(e["high"]) + ")");
      if (d.kind == DimKind::Int && (d.low != std::floor(d.low) || d.high != std::floor(d.high)))
        fail(where, "an int range needs whole numbers for low and high");
      d.log = e.value("log", false);
      if (e.contains("log") && !e["log"].is_boolean()) fail(where, "\"log\" is true or false");
      if (e.contains("step")) {
        if (!e["step"].is_number() || !(e["step"].get<double>() > 0))
          fail(where, "\"step\" must be a positive number");
        d.step = e["step"].get<double>();
        if (d.log) fail(where, "\"step\" and \"log\" do not go together");
        if (d.kind == DimKind::Int && d.step != std::floor(d.step))
          fail(where, "an int range needs a whole \"step\"");
      }
      if (d.log && d.low <= 0) fail(where, "a log range needs low > 0");
      for (double b : {d.low, d.high}) {
        try {
          canonical_value(
              sp, d.kind == DimKind::Int ? std::to_string(static_cast<int64_t>(b)) : exact_text(b),
              "");
        } catch (const InputError& err) {
          fail(where, "bound " + exact_text(b) + ": " + err.what());
        }
      }
    }
    s.dims.push_back(std::move(d));
  }
  return s;
}

SearchSpace load_space(const std::string& path, const std::string& model,
                       const std::vector<ParamSpec>& specs) {
  std::ifstream f(path);
  if (!f) throw InputError("--space: cannot read '" + path + "'");
  json doc;
  try {
    doc = json::parse(f);
  } catch (const json::exception& e) {
    throw InputError(path, 0, std::string("invalid JSON: ") + e.what());
  }
  return parse_space(doc, model, specs, path);
}

double snap(const Dimension& d, double x) {
  if (d.kind == DimKind::Categorical) {
    const double i = std::round(x);
    return std::clamp(i, 0.0, static_cast<double>(d.choices.size() - 1));
  }
  if (!std::isfinite(x)) x = d.low;
  if (d.step > 0) {
    const double n = std::floor((d.high - d.low) / d.step + 1e-9);
    x = d.low + std::clamp(std::round((x - d.low) / d.step), 0.0, n) * d.step;
    // The step's rounding error: 0.1 * 3 = 0.30000000000000004.
    x = std::round(x * 1e9) / 1e9;
  }
  if (d.kind == DimKind::Int) x = std::round(x);
  return std::clamp(x, d.low, d.high);
}

std::string value_text(const Dimension& d, double x) {
  x = snap(d, x);
  if (d.kind == DimKind::Categorical) return d.choices[static_cast<size_t>(x)];
  if (d.kind == DimKind::Int) return std::to_string(static_cast<int64_t>(x));
  return exact_text(x);
}

json value_json(const Dimension& d, double x) {
  x = snap(d, x);
  if (d.kind == DimKind::Categorical) return d.choice_json[static_cast<size_t>(x)];
  if (d.kind == DimKind::Int) return static_cast<int64_t>(x);
  return x;
}

double coordinate_of(const Dimension& d, const json& v, const std::string& origin) {
  if (d.kind == DimKind::Categorical) {
    for (size_t i = 0; i < d.choice_json.size(); ++i)
      if (d.choice_json[i] == v || d.choices[i] == json_text(v)) return static_cast<double>(i);
    throw InputError(origin + ": " + v.dump() + " is not one of the values of " + d.name);
  }
  if (!v.is_number())
    throw InputError(origin + ": " + d.name + " must be a number, got " + v.dump());
  const double x = v.get<double>();
  if (x < d.low - 1e-12 || x > d.high + 1e-12)
    throw InputError(origin + ": " + d.name + " = " + v.dump() + " lies outside the space");
  return x;
}

}  // namespace seqrec::tune
