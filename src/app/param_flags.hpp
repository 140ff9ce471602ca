// Command-line flags generated from ParamSpec tables (CLI11): every spec `name_with_words`
// becomes the flag --name-with-words, and the flags the user gave are applied to a Config.
// Header-only, for the CLI front ends (tools/seqrec and app/compare_cli).
#pragma once

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "seqrec/config.hpp"
#include "seqrec/error.hpp"

namespace seqrec::cli {

/// "min_item_support" -> "min-item-support".
inline std::string dashed(std::string s) {
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}

/// --force, declared once for every command that writes files: it lets an output replace an
/// existing file of another kind (the rule of io::check_output, docs/cli.md "Output files");
/// `also` is what else it allows in this command. An output that is one of the command's
/// inputs is refused even with it.
inline CLI::Option* add_force_flag(CLI::App* cmd, bool& force, const std::string& also = "") {
  return cmd->add_flag("--force", force,
                       "replace an existing output file of another kind (a model file, a "
                       "checkpoint, an event log, JSON; see docs/cli.md, Output files)" +
                           (also.empty() ? std::string() : "; also " + also));
}

/// Levenshtein distance (insertions, deletions, substitutions).
inline size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

/// The candidate that `word` most likely misspells ("--num-epoch" -> "--num-epochs"), or ""
/// when none is close: at most a third of the word's letters differ (at least two may), or
/// the word is the start of exactly one candidate.
inline std::string nearest_name(const std::string& word,
                                const std::vector<std::string>& candidates) {
  // "-n" is one edit from every one-letter option: no guess beats a random one there.
  if (word.size() <= 2) return std::string();
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  std::vector<std::string> prefixed;
  for (const auto& c : candidates) {
    if (c == word) continue;
    if (word.size() >= 3 && c.rfind(word, 0) == 0) prefixed.push_back(c);
    const size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  if (best.empty() && prefixed.size() == 1) best = prefixed.front();
  return best;
}

inline std::string type_word(ParamType t) {
  switch (t) {
    case ParamType::Int:
      return "INT";
    case ParamType::Float:
      return "FLOAT";
    case ParamType::Bool:
      return "BOOL";
    case ParamType::String:
      return "TEXT";
    case ParamType::IntList:
      return "INTS";
  }
  return "TEXT";
}

/// How ParamFlags::add turns specs into flags.
struct FlagStyle {
  /// Check each value against its spec while the command line is parsed (a value out of
  /// range is then a command-line error, reported with the usage hint), not only when it
  /// is applied to a Config.
  bool check = false;
  /// A Bool spec becomes a switch (`--access-log`, no value) that sets it to true.
  bool bool_switch = false;
};

/// Flags generated from ParamSpec tables.
class ParamFlags {
 public:
  /// Adds one flag per spec to `app` under `group`; a name already added by an earlier
  /// table gets one flag whose help lists every meaning.
  void add(CLI::App* app, const std::vector<ParamSpec>& specs, const std::string& group,
           const std::string& prefix_help = "", FlagStyle style = {}) {
    for (const auto& s : specs) {
      std::string help = prefix_help + s.help;
      if (!s.default_value.empty() && !(style.bool_switch && s.type == ParamType::Bool))
        help += " [default: " + s.default_value + "]";
      if (auto it = options_.find(s.name); it != options_.end()) {
        it->second->description(it->second->get_description() + "\n" + help);
        continue;
      }
      for (const auto& a : s.aliases)
        help += (&a == &s.aliases.front() ? " (also --" : ", --") + dashed(a) +
                (&a == &s.aliases.back() ? ")" : "");
      CLI::Option* o = nullptr;
      if (style.bool_switch && s.type == ParamType::Bool) {
        o = app->add_flag("--" + dashed(s.name), switches_[s.name], help);
      } else {
        o = app->add_option("--" + dashed(s.name), values_[s.name], help);
        o->type_name(type_word(s.type));
        if (style.check) o->check(spec_validator(s));
      }
      o->group(group);
      options_[s.name] = o;
    }
    // Old or other spellings: hidden flags that set the parameter they name.
    for (const auto& s : specs)
      for (const auto& a : s.aliases) {
        if (options_.count(a) || aliases_.count(a)) continue;
        auto* o = app->add_option("--" + dashed(a), alias_values_[a], "= --" + dashed(s.name));
        o->group("");
        aliases_[a] = {s.name, o};
      }
  }
  /// Flags the user gave, as (name, value); an alias flag is reported under the name of
  /// its parameter.
  std::vector<std::pair<std::string, std::string>> given() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, opt] : options_) {
      if (opt->count() == 0) continue;
      if (auto sw = switches_.find(name); sw != switches_.end())
        out.emplace_back(name, sw->second ? "true" : "false");
      else
        out.emplace_back(name, values_.at(name));
    }
    for (const auto& [alias, target] : aliases_)
      if (target.second->count() > 0) {
        for (const auto& [name, value] : out)
          if (name == target.first)
            throw InputError("--" + dashed(alias) + " and --" + dashed(name) +
                             " set the same parameter: give one of them");
        out.emplace_back(target.first, alias_values_.at(alias));
      }
    return out;
  }
  /// Applies the given flags that `config` knows; returns the names it did not know.
  std::vector<std::string> apply(Config& config) const {
    std::vector<std::string> unknown;
    for (const auto& [name, value] : given()) {
      if (config.has(name))
        config.set(name, value, "--" + dashed(name));
      else
        unknown.push_back(name);
    }
    return unknown;
  }

  /// A CLI11 check of one value against `spec` (type, range, choices), with the table's
  /// message; its description (shown in --help) is the range or the choices.
  static CLI::Validator spec_validator(const ParamSpec& spec) {
    auto bound = [](double v) {
      char b[32];
      std::snprintf(b, sizeof b, "%.15g", v);
      return std::string(b);
    };
    std::string desc;
    if (spec.type == ParamType::Int || spec.type == ParamType::Float) {
      const bool has_min = spec.min > -1e299, has_max = spec.max < 1e299;
      if (has_min && has_max)
        desc = std::string(spec.min_exclusive ? "(" : "[") + bound(spec.min) + ", " +
               bound(spec.max) + (spec.max_exclusive ? ")" : "]");
      else if (has_min || has_max)
        desc = range_text(spec);
    }
    for (const auto& c : spec.choices) desc += (desc.empty() ? "" : "|") + c;
    return CLI::Validator(
        [spec](std::string& value) -> std::string {
          try {
            canonical_value(spec, value, "");
          } catch (const std::exception& e) {
            return e.what();
          }
          return std::string();
        },
        desc);
  }

 private:
  std::map<std::string, std::string> values_, alias_values_;
  std::map<std::string, bool> switches_;
  std::map<std::string, CLI::Option*> options_;
  std::map<std::string, std::pair<std::string, CLI::Option*>> aliases_;  ///< alias -> (name, flag)
};

}  // namespace seqrec::cli
