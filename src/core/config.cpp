#include "seqrec/config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "seqrec/error.hpp"

namespace seqrec {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string where(const std::string& origin, const ParamSpec& spec) {
  return (origin.empty() ? std::string() : origin + ": ") + "parameter '" + spec.name + "'";
}

bool parse_int(const std::string& s, int64_t* out) {
  const char* b = s.data();
  const char* e = b + s.size();
  auto [p, ec] = std::from_chars(b, e, *out);
  return ec == std::errc() && p == e;
}

bool parse_float(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE && std::isfinite(*out);
}

/// A bound as a person writes it: 1000000, not 1e+06; 0.95, not 0.94999999999999996.
std::string fmt_bound(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

void check_range(const ParamSpec& spec, double v, const std::string& origin,
                 const std::string& text) {
  const bool below = spec.min_exclusive ? !(v > spec.min) : v < spec.min;
  const bool above = spec.max_exclusive ? !(v < spec.max) : v > spec.max;
  if (below || above)
    throw InputError(where(origin, spec) + " must be " + range_text(spec) + ", got '" + text + "'");
}

}  // namespace

std::string range_text(const ParamSpec& spec) {
  const bool has_min = spec.min > -1e299;
  const bool has_max = spec.max < 1e299;
  if (has_min && has_max) {
    if (!spec.min_exclusive && !spec.max_exclusive)
      return "between " + fmt_bound(spec.min) + " and " + fmt_bound(spec.max);
    return "in " + std::string(spec.min_exclusive ? "(" : "[") + fmt_bound(spec.min) + ", " +
           fmt_bound(spec.max) + (spec.max_exclusive ? ")" : "]");
  }
  if (has_min) return (spec.min_exclusive ? "> " : ">= ") + fmt_bound(spec.min);
  if (has_max) return (spec.max_exclusive ? "< " : "<= ") + fmt_bound(spec.max);
  return "";
}

std::string canonical_value(const ParamSpec& spec, const std::string& raw,
                            const std::string& origin) {
  const std::string value = trim(raw);
  switch (spec.type) {
    case ParamType::Int: {
      int64_t v = 0;
      double d = 0;
      // Accept "1e6"-style integers as long as they are whole numbers.
      if (!parse_int(value, &v)) {
        if (!parse_float(value, &d) || d != std::floor(d) || std::fabs(d) > 9.2e18)
          throw InputError(where(origin, spec) + " expects an integer, got '" + value + "'");
        v = static_cast<int64_t>(d);
      }
      check_range(spec, static_cast<double>(v), origin, value);
      return std::to_string(v);
    }
    case ParamType::Float: {
      double d = 0;
      if (!parse_float(value, &d))
        throw InputError(where(origin, spec) + " expects a finite number, got '" + value + "'");
      check_range(spec, d, origin, value);
      std::ostringstream o;
      o.precision(17);
      o << d;
      return o.str();
    }
    case ParamType::Bool: {
      const std::string l = lower(value);
      if (l == "1" || l == "true" || l == "yes" || l == "on") return "true";
      if (l == "0" || l == "false" || l == "no" || l == "off") return "false";
      throw InputError(where(origin, spec) + " expects true or false, got '" + value + "'");
    }
    case ParamType::String: {
      if (!spec.choices.empty() &&
          std::find(spec.choices.begin(), spec.choices.end(), value) == spec.choices.end()) {
        std::string list;
        for (const auto& c : spec.choices) list += (list.empty() ? "" : ", ") + c;
        throw InputError(where(origin, spec) + " must be one of " + list + ", got '" + value + "'");
      }
      return value;
    }
    case ParamType::IntList: {
      std::string out;
      std::string item;
      std::string v = value;
      // Accept "100,100", "[100, 100]" and "100 100".
      v.erase(std::remove(v.begin(), v.end(), '['), v.end());
      v.erase(std::remove(v.begin(), v.end(), ']'), v.end());
      std::replace(v.begin(), v.end(), ' ', ',');
      std::stringstream ss(v);
      int count = 0;
      while (std::getline(ss, item, ',')) {
        item = trim(item);
        if (item.empty()) continue;
        int64_t x = 0;
        if (!parse_int(item, &x))
          throw InputError(where(origin, spec) +
                           " expects a comma-separated list of integers, got '" + value + "'");
        check_range(spec, static_cast<double>(x), origin, item);
        out += (count++ ? "," : "") + std::to_string(x);
      }
      if (count == 0)
        throw InputError(where(origin, spec) + " expects at least one integer, got '" + value +
                         "'");
      return out;
    }
  }
  return value;
}

bool ParamSpec::answers_to(const std::string& n) const {
  return n == name || std::find(aliases.begin(), aliases.end(), n) != aliases.end();
}

const ParamSpec* find_spec(const std::vector<ParamSpec>& specs, const std::string& name) {
  for (const auto& s : specs)
    if (s.name == name) return &s;
  for (const auto& s : specs)
    if (s.answers_to(name)) return &s;
  return nullptr;
}

namespace {
/// The fewest significant digits (from `lo`) that read back as exactly `v`, printed as %g
/// does: "0.07", "200000", "1000000000" (not to_chars' shortest "2e+05").
template <class T>
std::string round_trip_text(T v, int lo, int hi) {
  char buf[48];
  for (int prec = lo; prec <= hi; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(v));
    T back{};
    if constexpr (std::is_same_v<T, float>)
      back = std::strtof(buf, nullptr);
    else
      back = std::strtod(buf, nullptr);
    if (back == v) break;
  }
  return buf;
}
}  // namespace

std::string exact_text(float v) {
  return round_trip_text(v, 6, 9);
}

std::string exact_text(double v) {
  return round_trip_text(v, 15, 17);
}

void throw_param_error(const std::string& what, bool bug) {
  if (bug) throw Error(what);
  throw InputError(what);
}

Config::Config(std::vector<ParamSpec> specs) : specs_(std::move(specs)) {
  for (const auto& s : specs_) values_[s.name] = canonical_value(s, s.default_value, "default");
}

bool Config::has(const std::string& name) const {
  return find_spec(specs_, name) != nullptr;
}

const ParamSpec& Config::spec(const std::string& name) const {
  if (const ParamSpec* s = find_spec(specs_, name)) return *s;
  throw InputError("unknown parameter '" + name + "'");
}

void Config::set(const std::string& name, const std::string& value, const std::string& origin) {
  const ParamSpec* found = find_spec(specs_, name);
  if (!found) {
    std::string known;
    for (const auto& s : specs_) known += (known.empty() ? "" : ", ") + s.name;
    throw InputError((origin.empty() ? std::string() : origin + ": ") + "unknown parameter '" +
                     name + "' (known: " + known + ")");
  }
  values_[found->name] = canonical_value(*found, value, origin);
}

const std::string& Config::raw(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) it = values_.find(spec(name).name);
  return it->second;
}

int64_t Config::get_int(const std::string& name) const {
  return std::stoll(raw(name));
}
double Config::get_float(const std::string& name) const {
  return std::stod(raw(name));
}
bool Config::get_bool(const std::string& name) const {
  return raw(name) == "true";
}
const std::string& Config::get_string(const std::string& name) const {
  return raw(name);
}

std::vector<int64_t> Config::get_int_list(const std::string& name) const {
  std::vector<int64_t> out;
  std::stringstream ss(raw(name));
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

void Config::load_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw IoError("cannot open config file '" + path + "'");
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    nlohmann::json j;
    try {
      f >> j;
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path, 0, std::string("invalid JSON: ") + e.what());
    }
    from_json(j, path);
    return;
  }
  std::string line;
  int64_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      throw InputError(path, lineno, "expected 'name = value', got '" + line + "'");
    set(trim(line.substr(0, eq)), trim(line.substr(eq + 1)), path + ":" + std::to_string(lineno));
  }
}

nlohmann::json Config::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& s : specs_) {
    const std::string& v = values_.at(s.name);
    switch (s.type) {
      case ParamType::Int:
        j[s.name] = std::stoll(v);
        break;
      case ParamType::Float:
        j[s.name] = std::stod(v);
        break;
      case ParamType::Bool:
        j[s.name] = (v == "true");
        break;
      case ParamType::String:
        j[s.name] = v;
        break;
      case ParamType::IntList:
        j[s.name] = get_int_list(s.name);
        break;
    }
  }
  return j;
}

void Config::from_json(const nlohmann::json& j, const std::string& origin) {
  if (!j.is_object()) throw InputError(origin + ": expected a JSON object of parameters");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    std::string text;
    if (v.is_string()) {
      text = v.get<std::string>();
    } else if (v.is_boolean()) {
      text = v.get<bool>() ? "true" : "false";
    } else if (v.is_number_integer()) {
      text = std::to_string(v.get<int64_t>());
    } else if (v.is_number()) {
      std::ostringstream o;
      o.precision(17);
      o << v.get<double>();
      text = o.str();
    } else if (v.is_array()) {
      for (const auto& x : v) {
        if (!x.is_number_integer())
          throw InputError(origin + ": parameter '" + it.key() + "' expects a list of integers");
        text += (text.empty() ? "" : ",") + std::to_string(x.get<int64_t>());
      }
    } else {
      throw InputError(origin + ": parameter '" + it.key() + "' has an unsupported JSON type");
    }
    set(it.key(), text, origin);
  }
}

}  // namespace seqrec
