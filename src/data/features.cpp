// Feature files (seqrec/features.hpp): format detection, column roles, text hashing, the
// sparse feature table and its alignment to a Vocab.
#include "seqrec/features.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/text_util.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

namespace dd = data_detail;

const char* feature_role_name(FeatureRole r) {
  switch (r) {
    case FeatureRole::Id:
      return "id";
    case FeatureRole::Cat:
      return "cat";
    case FeatureRole::Multi:
      return "multi";
    case FeatureRole::Text:
      return "text";
    case FeatureRole::Num:
      return "num";
    case FeatureRole::NumSeq:
      return "num_seq";
    case FeatureRole::Skip:
      return "skip";
  }
  return "?";
}

namespace {

constexpr uint64_t kTrigramSeed = 0x7F4A7C159E3779B9ULL;
constexpr uint64_t kWordSeed = 0x2545F4914F6CDD1DULL;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string> split(std::string_view s, std::string_view sep) {
  std::vector<std::string> out;
  if (sep.empty()) {
    out.emplace_back(s);
    return out;
  }
  size_t pos = 0;
  while (true) {
    const size_t next = s.find(sep, pos);
    if (next == std::string_view::npos) {
      out.emplace_back(s.substr(pos));
      return out;
    }
    out.emplace_back(s.substr(pos, next - pos));
    pos = next + sep.size();
  }
}

/// Fields of a comma-separated line with RFC 4180 quotes ("a, b" and "" inside quotes).
bool split_csv(std::string_view s, std::vector<std::string>& out) {
  out.clear();
  std::string cur;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          cur.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur.push_back(c);
      }
    } else if (c == '"' && trim(cur).empty() && !was_quoted) {
      cur.clear();
      quoted = was_quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(cur));
      cur.clear();
      was_quoted = false;
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(std::move(cur));
  return !quoted;  // an unterminated quote is malformed
}

bool is_id_name(std::string_view n) {
  const std::string l = dd::to_lower(n);
  for (const char* c :
       {"id", "item", "item_id", "itemid", "movieid", "movie_id", "user", "user_id", "userid",
        "asin", "product_id", "productid", "news_id", "article_id", "session_id"})
    if (l == c) return true;
  return false;
}

/// One line of the file, split into fields.
struct Row {
  int64_t line = 0;
  std::vector<std::string> f;
};

/// Builds a FeatureTable row by row.
class Builder {
 public:
  Builder(FeatureTable& t, const FeatureReadOptions& opt) : t_(t), opt_(opt) {}

  int32_t dense(const std::string& name) {
    auto [it, ins] = dense_.emplace(name, static_cast<int32_t>(t_.names.size()));
    if (ins) t_.names.push_back(name);
    return it->second;
  }
  void begin_row(const std::string& id, int64_t line) {
    const int32_t before = t_.ids.size();
    const int32_t r = t_.ids.add(id);
    if (r < before)
      throw InputError(t_.source, line,
                       "id " + dd::quote(id) + " appears twice (first on line " +
                           std::to_string(lines_[static_cast<size_t>(r)]) + ")");
    lines_.push_back(line);
    idx_.clear();
    val_.clear();
  }
  void add(int32_t index, float v) {
    idx_.push_back(index);
    val_.push_back(v);
  }
  void add_numeric(const std::string& name, float v) {
    const int32_t i = dense(name);
    numeric_.emplace(i, 0);
    add(i, v);
  }
  /// Text buckets are written as -(bucket + 1) until the number of dense features is known.
  void add_text(std::string_view text) {
    text_used_ = true;
    tmp_i_.clear();
    tmp_v_.clear();
    hash_text(text, opt_.text_buckets, opt_.text_trigrams, opt_.text_words, 0, tmp_i_, tmp_v_);
    for (size_t k = 0; k < tmp_i_.size(); ++k) add(-(tmp_i_[k] + 1), tmp_v_[k]);
  }
  void end_row() {
    t_.index.insert(t_.index.end(), idx_.begin(), idx_.end());
    t_.value.insert(t_.value.end(), val_.begin(), val_.end());
    t_.offsets.push_back(static_cast<int64_t>(t_.index.size()));
  }
  /// Final indices, numeric columns standardised, every row sorted with duplicates summed.
  void finish() {
    t_.text_buckets = text_used_ ? opt_.text_buckets : 0;
    const int32_t D = t_.dense_features();
    // Mean and standard deviation of each numeric feature over the rows that have it.
    std::unordered_map<int32_t, std::pair<double, double>> stats;  // sum, sum of squares
    std::unordered_map<int32_t, int64_t> count;
    for (size_t k = 0; k < t_.index.size(); ++k) {
      const int32_t i = t_.index[k];
      if (i >= 0 && numeric_.count(i)) {
        auto& s = stats[i];
        s.first += t_.value[k];
        s.second += static_cast<double>(t_.value[k]) * t_.value[k];
        ++count[i];
      }
    }
    for (size_t k = 0; k < t_.index.size(); ++k) {
      int32_t& i = t_.index[k];
      if (i < 0) {
        i = D + (-i - 1);
      } else if (numeric_.count(i)) {
        const double n = static_cast<double>(count[i]);
        const double mean = stats[i].first / n;
        const double var = std::max(0.0, stats[i].second / n - mean * mean);
        const double sd = std::sqrt(var);
        t_.value[k] = sd > 0 ? static_cast<float>((t_.value[k] - mean) / sd) : 0.0f;
      }
    }
    t_.numeric.clear();
    for (const auto& [i, s] : stats) {
      const double n = static_cast<double>(count[i]);
      const double mean = s.first / n;
      t_.numeric.push_back({i, mean, std::sqrt(std::max(0.0, s.second / n - mean * mean))});
    }
    std::sort(t_.numeric.begin(), t_.numeric.end(),
              [](const auto& a, const auto& b) { return a.feature < b.feature; });
    std::vector<std::pair<int32_t, float>> row;
    std::vector<int64_t> off{0};
    std::vector<int32_t> idx;
    std::vector<float> val;
    for (int32_t r = 0; r < t_.rows(); ++r) {
      row.clear();
      for (int64_t k = t_.offsets[static_cast<size_t>(r)];
           k < t_.offsets[static_cast<size_t>(r) + 1]; ++k)
        row.emplace_back(t_.index[static_cast<size_t>(k)], t_.value[static_cast<size_t>(k)]);
      std::sort(row.begin(), row.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (size_t k = 0; k < row.size(); ++k) {
        if (!idx.empty() && static_cast<int64_t>(idx.size()) > off.back() &&
            idx.back() == row[k].first) {
          val.back() += row[k].second;
        } else {
          idx.push_back(row[k].first);
          val.push_back(row[k].second);
        }
      }
      off.push_back(static_cast<int64_t>(idx.size()));
    }
    t_.offsets = std::move(off);
    t_.index = std::move(idx);
    t_.value = std::move(val);
  }

 private:
  FeatureTable& t_;
  const FeatureReadOptions& opt_;
  std::unordered_map<std::string, int32_t> dense_;
  std::unordered_map<int32_t, int> numeric_;
  std::vector<int64_t> lines_;
  std::vector<int32_t> idx_, tmp_i_;
  std::vector<float> val_, tmp_v_;
  bool text_used_ = false;
};

float parse_number(const FeatureTable& t, int64_t line, const std::string& column,
                   std::string_view s) {
  double v;
  if (!dd::parse_double(trim(s), &v))
    throw InputError(t.source, line,
                     "column '" + column + "': " + dd::quote(s) + " is not a number");
  return static_cast<float>(v);
}

/// Adds the features of field `s` of column `c` to the current row.
void add_field(Builder& b, const FeatureTable& t, int64_t line, const FeatureColumn& c,
               std::string_view s) {
  s = trim(s);
  if (s.empty()) return;  // a missing value has no features
  switch (c.role) {
    case FeatureRole::Id:
    case FeatureRole::Skip:
      return;
    case FeatureRole::Cat:
      b.add(b.dense(c.name + "=" + std::string(s)), 1.0f);
      return;
    case FeatureRole::Multi:
      for (const auto& v : split(s, c.sep)) {
        const std::string_view x = trim(v);
        if (!x.empty()) b.add(b.dense(c.name + "=" + std::string(x)), 1.0f);
      }
      return;
    case FeatureRole::Text:
      b.add_text(s);
      return;
    case FeatureRole::Num:
      b.add_numeric(c.name, parse_number(t, line, c.name, s));
      return;
    case FeatureRole::NumSeq: {
      const auto parts = split(s, c.sep);
      for (size_t k = 0; k < parts.size(); ++k)
        if (!trim(parts[k]).empty())
          b.add_numeric(c.name + "[" + std::to_string(k) + "]",
                        parse_number(t, line, c.name, parts[k]));
      return;
    }
  }
}

FeatureRole parse_role(const std::string& s, std::string* sep, const std::string& entry) {
  std::string role = s;
  const size_t colon = s.find(':');
  if (colon != std::string::npos) {
    role = s.substr(0, colon);
    *sep = s.substr(colon + 1);
    if (sep->empty()) throw InputError("--feature-columns: '" + entry + "': empty separator");
  }
  for (FeatureRole r : {FeatureRole::Id, FeatureRole::Cat, FeatureRole::Multi, FeatureRole::Text,
                        FeatureRole::Num, FeatureRole::NumSeq, FeatureRole::Skip}) {
    if (role == feature_role_name(r)) {
      if (colon != std::string::npos && r != FeatureRole::Multi && r != FeatureRole::NumSeq)
        throw InputError("--feature-columns: '" + entry +
                         "': only multi and num_seq take a ':SEP'");
      if (colon == std::string::npos) *sep = r == FeatureRole::NumSeq ? " " : "|";
      return r;
    }
  }
  throw InputError("--feature-columns: '" + entry + "': unknown role '" + role +
                   "' (known: id, cat, multi[:SEP], text, num, num_seq[:SEP], skip)");
}

/// Detects the role of a column of a headed table from its values.
FeatureRole detect_role(const std::vector<Row>& rows, size_t col) {
  int64_t n = 0, numeric = 0, pipes = 0, spaces = 0;
  std::unordered_map<std::string, int> distinct;
  for (const Row& r : rows) {
    if (col >= r.f.size()) continue;
    const std::string_view v = trim(r.f[col]);
    if (v.empty()) continue;
    ++n;
    double x;
    numeric += dd::parse_double(v, &x);
    pipes += v.find('|') != std::string_view::npos;
    spaces += v.find(' ') != std::string_view::npos;
    if (distinct.size() <= 64) distinct.emplace(v, 0);
  }
  if (n == 0) return FeatureRole::Skip;
  if (numeric == n) return distinct.size() <= 64 ? FeatureRole::Cat : FeatureRole::Num;
  if (pipes > 0 && spaces * 2 < n) return FeatureRole::Multi;
  if (spaces * 10 >= n * 3) return FeatureRole::Text;
  return FeatureRole::Cat;
}

/// Applies the user's column specification to the columns named in `header` (which hold
/// the detected or format-given roles already). Returns whether the spec said "*=skip".
void apply_spec(const FeatureTable& t, const std::string& spec, std::vector<FeatureColumn>& cols,
                std::vector<bool>& given) {
  given.assign(cols.size(), false);
  if (spec.empty()) return;
  bool rest_skip = false;
  for (const FeatureColumn& e : parse_feature_columns(spec)) {
    if (e.name == "*") {
      if (e.role != FeatureRole::Skip)
        throw InputError("--feature-columns: '*' can only be skipped (*=skip)");
      rest_skip = true;
      continue;
    }
    int64_t found = -1;
    for (size_t k = 0; k < cols.size(); ++k)
      if (cols[k].name == e.name) found = static_cast<int64_t>(k);
    if (found < 0 && !e.name.empty() && std::all_of(e.name.begin(), e.name.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      const int64_t k = std::stoll(e.name.substr(0, 9));
      if (k < static_cast<int64_t>(cols.size())) found = k;
    }
    if (found < 0) {
      std::string names;
      for (const auto& c : cols) names += (names.empty() ? "" : ", ") + c.name;
      throw InputError(t.source, 0,
                       "--feature-columns names column '" + e.name +
                           "', which the file does not have (its columns: " + names + ")");
    }
    if (given[static_cast<size_t>(found)])
      throw InputError("--feature-columns: column '" + cols[static_cast<size_t>(found)].name +
                       "' is given two roles");
    given[static_cast<size_t>(found)] = true;
    cols[static_cast<size_t>(found)].role = e.role;
    cols[static_cast<size_t>(found)].sep = e.sep;
  }
  // A role given for one column takes the id away from a detected one.
  bool id_given = false;
  for (size_t k = 0; k < cols.size(); ++k) id_given |= given[k] && cols[k].role == FeatureRole::Id;
  for (size_t k = 0; k < cols.size(); ++k) {
    if (given[k]) continue;
    if (id_given && cols[k].role == FeatureRole::Id) cols[k].role = FeatureRole::Cat;
    if (rest_skip) cols[k].role = FeatureRole::Skip;
  }
}

int64_t id_column(const FeatureTable& t, const std::vector<FeatureColumn>& cols) {
  int64_t id = -1;
  for (size_t k = 0; k < cols.size(); ++k) {
    if (cols[k].role != FeatureRole::Id) continue;
    if (id >= 0)
      throw InputError(t.source, 0,
                       "conflicting column roles: both '" + cols[static_cast<size_t>(id)].name +
                           "' and '" + cols[k].name + "' are the id column");
    id = static_cast<int64_t>(k);
  }
  if (id < 0) throw InputError(t.source, 0, "no column has the role id (--feature-columns)");
  return id;
}

void build_rows(Builder& b, FeatureTable& t, const std::vector<Row>& rows) {
  const int64_t id = id_column(t, t.columns);
  for (const Row& r : rows) {
    if (r.f.size() != t.columns.size())
      throw InputError(t.source, r.line,
                       "expected " + std::to_string(t.columns.size()) + " fields, found " +
                           std::to_string(r.f.size()));
    const std::string_view key = trim(r.f[static_cast<size_t>(id)]);
    if (key.empty()) throw InputError(t.source, r.line, "empty id");
    b.begin_row(std::string(key), r.line);
    for (size_t k = 0; k < t.columns.size(); ++k) add_field(b, t, r.line, t.columns[k], r.f[k]);
    b.end_row();
  }
}

/// Lines of the text, without '\r', blank lines skipped.
template <class F>
void for_lines(std::string_view text, F&& f) {
  int64_t line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    ++line;
    pos = end + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (trim(l).empty()) continue;
    f(l, line);
  }
}

void read_movielens(Builder& b, FeatureTable& t, std::string_view text,
                    const FeatureReadOptions& opt) {
  std::vector<Row> rows;
  size_t width = 0;
  for_lines(text, [&](std::string_view l, int64_t line) {
    rows.push_back({line, split(l, "::")});
    if (width == 0) width = rows.back().f.size();
  });
  t.columns.clear();
  if (width == 3) {
    t.format = "movielens-movies";
    t.columns = {{"id", 0, FeatureRole::Id, ""},
                 {"title", 1, FeatureRole::Text, ""},
                 {"genres", 2, FeatureRole::Multi, "|"}};
  } else if (width == 5) {
    t.format = "movielens-users";
    t.columns = {{"id", 0, FeatureRole::Id, ""},
                 {"gender", 1, FeatureRole::Cat, ""},
                 {"age", 2, FeatureRole::Cat, ""},
                 {"occupation", 3, FeatureRole::Cat, ""},
                 {"zip", 4, FeatureRole::Cat, ""}};
  } else {
    t.format = "movielens";
    for (size_t k = 0; k < width; ++k)
      t.columns.push_back({"col" + std::to_string(k), static_cast<int32_t>(k),
                           k == 0 ? FeatureRole::Id : detect_role(rows, k), "|"});
  }
  std::vector<bool> given;
  apply_spec(t, opt.columns, t.columns, given);
  // movies.dat titles end in " (1995)": the year becomes a categorical feature.
  const bool years =
      t.format == "movielens-movies" && opt.title_year && t.columns[1].role == FeatureRole::Text;
  if (!years) return build_rows(b, t, rows);
  const int64_t id = id_column(t, t.columns);
  for (Row& r : rows) {
    if (r.f.size() != t.columns.size())
      throw InputError(t.source, r.line,
                       "expected " + std::to_string(t.columns.size()) +
                           " '::'-separated fields, found " + std::to_string(r.f.size()));
    std::string& title = r.f[1];
    std::string year;
    const std::string_view tt = trim(title);
    if (tt.size() >= 7 && tt.back() == ')' && tt[tt.size() - 6] == '(' &&
        std::all_of(tt.end() - 5, tt.end() - 1,
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      year = std::string(tt.substr(tt.size() - 5, 4));
      title = std::string(trim(tt.substr(0, tt.size() - 6)));
    }
    const std::string_view key = trim(r.f[static_cast<size_t>(id)]);
    if (key.empty()) throw InputError(t.source, r.line, "empty id");
    b.begin_row(std::string(key), r.line);
    for (size_t k = 0; k < t.columns.size(); ++k) add_field(b, t, r.line, t.columns[k], r.f[k]);
    if (!year.empty()) b.add(b.dense("year=" + year), 1.0f);
    b.end_row();
  }
}

bool recbole_header(std::string_view first) {
  if (first.find('\t') == std::string_view::npos && first.find(':') == std::string_view::npos)
    return false;
  for (const auto& f : split(first, "\t")) {
    const size_t c = f.rfind(':');
    if (c == std::string::npos) return false;
    const std::string ty = f.substr(c + 1);
    if (ty != "token" && ty != "token_seq" && ty != "float" && ty != "float_seq") return false;
  }
  return true;
}

void read_table(Builder& b, FeatureTable& t, std::string_view text, const FeatureReadOptions& opt,
                bool recbole) {
  std::vector<Row> rows;
  std::vector<std::string> header;
  char delim = '\t';
  bool first = true;
  for_lines(text, [&](std::string_view l, int64_t line) {
    if (first) {
      first = false;
      if (recbole)
        delim = '\t';
      else if (l.find('\t') != std::string_view::npos)
        delim = '\t';
      else if (l.find(',') != std::string_view::npos)
        delim = ',';
      else if (l.find(';') != std::string_view::npos)
        delim = ';';
      else if (l.find('|') != std::string_view::npos)
        delim = '|';
    }
    Row r{line, {}};
    if (delim == ',') {
      if (!split_csv(l, r.f)) throw InputError(t.source, line, "unterminated quoted field");
    } else {
      r.f = split(l, std::string_view(&delim, 1));
    }
    if (header.empty()) {
      header = std::move(r.f);
      if (header.empty()) throw InputError(t.source, line, "empty header");
    } else {
      rows.push_back(std::move(r));
    }
  });
  if (header.empty()) throw InputError(t.source, 0, "the file is empty");
  t.columns.clear();
  bool have_id = false;
  for (size_t k = 0; k < header.size(); ++k) {
    FeatureColumn c;
    c.index = static_cast<int32_t>(k);
    std::string name(trim(header[k]));
    if (recbole) {
      const size_t colon = name.rfind(':');
      const std::string ty = name.substr(colon + 1);
      name = name.substr(0, colon);
      c.role = ty == "token"       ? FeatureRole::Cat
               : ty == "token_seq" ? FeatureRole::Multi
               : ty == "float"     ? FeatureRole::Num
                                   : FeatureRole::NumSeq;
      c.sep = " ";
    } else {
      c.role = detect_role(rows, k);
      c.sep = "|";
    }
    if (name.empty()) name = "col" + std::to_string(k);
    c.name = name;
    if (!have_id && is_id_name(name)) {
      c.role = FeatureRole::Id;
      have_id = true;
    }
    t.columns.push_back(std::move(c));
  }
  if (!have_id) t.columns[0].role = FeatureRole::Id;
  std::vector<bool> given;
  apply_spec(t, opt.columns, t.columns, given);
  build_rows(b, t, rows);
}

void read_json(Builder& b, FeatureTable& t, std::string_view text, const FeatureReadOptions& opt) {
  if (!opt.columns.empty())
    throw InputError(t.source, 0,
                     "--feature-columns does not apply to a JSON feature file (item -> list of "
                     "attribute ids)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(t.source, 0, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object())
    throw InputError(t.source, 0, "expected one JSON object: item id -> list of attribute ids");
  t.format = "json";
  t.columns = {{"id", 0, FeatureRole::Id, ""}, {"attr", 1, FeatureRole::Multi, ""}};
  auto text_of = [&](const std::string& key, const nlohmann::json& v) -> std::string {
    if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    if (v.is_string()) return v.get<std::string>();
    throw InputError(t.source, 0,
                     "item " + dd::quote(key) + ": attributes must be integers or strings, got " +
                         v.dump().substr(0, 40));
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    b.begin_row(it.key(), 0);
    const nlohmann::json& v = it.value();
    if (v.is_array()) {
      for (const auto& x : v) b.add(b.dense("attr=" + text_of(it.key(), x)), 1.0f);
    } else if (!v.is_null()) {
      b.add(b.dense("attr=" + text_of(it.key(), v)), 1.0f);
    }
    b.end_row();
  }
}

}  // namespace

void hash_text(std::string_view text, int64_t buckets, bool trigrams, bool words, int32_t base,
               std::vector<int32_t>& index, std::vector<float>& value) {
  std::vector<int32_t> hits;
  std::string w;
  auto flush = [&] {
    if (w.empty()) return;
    if (words)
      hits.push_back(
          static_cast<int32_t>(dd::hash_bytes(w, kWordSeed) % static_cast<uint64_t>(buckets)));
    if (trigrams) {
      const std::string m = "#" + w + "#";
      for (size_t i = 0; i + 3 <= m.size(); ++i)
        hits.push_back(
            static_cast<int32_t>(dd::hash_bytes(std::string_view(m).substr(i, 3), kTrigramSeed) %
                                 static_cast<uint64_t>(buckets)));
    }
    w.clear();
  };
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80)
      w.push_back(static_cast<char>(std::tolower(c)));
    else
      flush();
  }
  flush();
  std::sort(hits.begin(), hits.end());
  for (size_t k = 0; k < hits.size();) {
    size_t e = k;
    while (e < hits.size() && hits[e] == hits[k]) ++e;
    index.push_back(base + hits[k]);
    value.push_back(static_cast<float>(e - k));
    k = e;
  }
}

std::vector<FeatureColumn> parse_feature_columns(const std::string& spec) {
  std::vector<FeatureColumn> out;
  for (const auto& raw : split(spec, ",")) {
    const std::string entry(trim(raw));
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError("--feature-columns: '" + entry + "' is not NAME=ROLE");
    FeatureColumn c;
    c.name = std::string(trim(std::string_view(entry).substr(0, eq)));
    c.role = parse_role(std::string(trim(std::string_view(entry).substr(eq + 1))), &c.sep, entry);
    for (const auto& o : out)
      if (o.name == c.name)
        throw InputError("--feature-columns: column '" + c.name + "' is given two roles");
    out.push_back(std::move(c));
  }
  return out;
}

FeatureTable read_features(const std::string& path, const FeatureReadOptions& opt) {
  if (opt.text_buckets < kMinTextBuckets || opt.text_buckets > kMaxTextBuckets)
    throw InputError("text_buckets must be in [" + std::to_string(kMinTextBuckets) + ", " +
                     std::to_string(kMaxTextBuckets) + "], got " +
                     std::to_string(opt.text_buckets));
  FeatureTable t;
  t.source = path;
  t.read_options = opt;
  const std::string text = dd::read_file(path);
  Builder b(t, opt);
  size_t p = 0;
  while (p < text.size() && std::isspace(static_cast<unsigned char>(text[p]))) ++p;
  if (p == text.size()) throw InputError(path, 0, "the feature file is empty");
  std::string_view first(text);
  first = first.substr(
      p, first.find('\n', p) == std::string::npos ? std::string::npos : first.find('\n', p) - p);
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  const bool recbole_ext = path.ends_with(".item") || path.ends_with(".user");
  if (text[p] == '{') {
    read_json(b, t, text, opt);
  } else if (first.find("::") != std::string_view::npos) {
    read_movielens(b, t, text, opt);
  } else if (recbole_ext || recbole_header(first)) {
    if (!recbole_header(first))
      throw InputError(path, 1,
                       "a RecBole atomic file needs a header of name:type fields (token, "
                       "token_seq, float, float_seq), tab-separated");
    t.format = "recbole";
    read_table(b, t, text, opt, true);
  } else {
    t.format = "table";
    read_table(b, t, text, opt, false);
  }
  if (t.rows() == 0) throw InputError(path, 0, "the feature file has no rows");
  b.finish();
  return t;
}

namespace {

/// `s` with every byte that is not part of a valid UTF-8 sequence written as "\xNN", so that
/// a description can go into JSON (model headers, checkpoints) whatever the file's encoding.
std::string json_safe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len > 1) {
      bool ok = i + len <= s.size();
      for (size_t k = 1; ok && k < len; ++k)
        ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      if (ok) {  // no overlong forms, surrogates or code points past U+10FFFF
        const auto c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xc0 || c == 0xc1 || (c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) ||
               (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90) || c > 0xf4);
      }
      if (!ok) len = 0;
    }
    if (len == 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

}  // namespace

nlohmann::json FeatureTable::describe() const {
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : columns) {
    nlohmann::json e = {{"name", json_safe(c.name)}, {"role", feature_role_name(c.role)}};
    if (c.role == FeatureRole::Multi || c.role == FeatureRole::NumSeq) e["sep"] = json_safe(c.sep);
    cols.push_back(std::move(e));
  }
  return {{"source", json_safe(source)},
          {"format", format},
          {"rows", rows()},
          {"n_features", n_features()},
          {"dense_features", dense_features()},
          {"text_buckets", text_buckets},
          {"columns", std::move(cols)}};
}

nlohmann::json FeatureAlignment::to_json() const {
  return {
      {"matched", matched}, {"without_features", without_features}, {"not_in_log", not_in_vocab}};
}

SparseFeatures align_features(const FeatureTable& table, const Vocab& vocab,
                              FeatureAlignment* report, const std::string& what) {
  SparseFeatures s;
  s.n_features = table.n_features();
  FeatureAlignment a;
  std::vector<char> used(static_cast<size_t>(table.rows()), 0);
  for (int32_t i = 0; i < vocab.size(); ++i) {
    const int32_t r = table.ids.find(vocab.token(i));
    if (r < 0) {
      ++a.without_features;
    } else {
      ++a.matched;
      used[static_cast<size_t>(r)] = 1;
      const auto b = table.offsets[static_cast<size_t>(r)],
                 e = table.offsets[static_cast<size_t>(r) + 1];
      s.index.insert(s.index.end(), table.index.begin() + b, table.index.begin() + e);
      s.value.insert(s.value.end(), table.value.begin() + b, table.value.begin() + e);
    }
    s.offsets.push_back(static_cast<int64_t>(s.index.size()));
  }
  for (char u : used) a.not_in_vocab += !u;
  if (a.matched == 0 && vocab.size() > 0)
    throw InputError(table.source, 0,
                     "no " + what + " id of the feature file is in the data (" +
                         std::to_string(table.rows()) + " ids in the file, e.g. " +
                         dd::quote(table.ids.token(0)) + "; " + std::to_string(vocab.size()) +
                         " in the data, e.g. " + dd::quote(vocab.token(0)) +
                         "): a feature file for another data set?");
  if (report) *report = a;
  return s;
}

FeatureEncoder::FeatureEncoder(const FeatureTable& t)
    : format_(t.format),
      columns_(t.columns),
      names_(t.names),
      text_buckets_(t.text_buckets),
      trigrams_(t.read_options.text_trigrams),
      words_(t.read_options.text_words),
      title_year_(t.format == "movielens-movies" && t.read_options.title_year) {
  for (size_t i = 0; i < names_.size(); ++i) index_.emplace(names_[i], static_cast<int32_t>(i));
  for (const auto& n : t.numeric) numeric_[n.feature] = {n.mean, n.sd};
}

nlohmann::json FeatureEncoder::to_json() const {
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : columns_)
    cols.push_back({{"name", c.name}, {"role", feature_role_name(c.role)}, {"sep", c.sep}});
  nlohmann::json num = nlohmann::json::array();
  std::vector<std::pair<int32_t, std::pair<double, double>>> ns(numeric_.begin(), numeric_.end());
  std::sort(ns.begin(), ns.end());
  for (const auto& [f, ms] : ns) num.push_back({f, ms.first, ms.second});
  // Names may hold bytes that are not UTF-8 (a Latin-1 file): kept as bytes in a binary
  // array so that they round-trip exactly.
  nlohmann::json names = nlohmann::json::array();
  bool utf8 = true;
  for (const auto& n : names_) utf8 = utf8 && json_safe(n) == n;
  for (const auto& n : names_) {
    if (utf8)
      names.push_back(n);
    else
      names.push_back(nlohmann::json::array_t(n.begin(), n.end()));
  }
  return {{"version", 1},
          {"format", format_},
          {"columns", std::move(cols)},
          {"names", std::move(names)},
          {"numeric", std::move(num)},
          {"text_buckets", text_buckets_},
          {"text_trigrams", trigrams_},
          {"text_words", words_},
          {"title_year", title_year_}};
}

FeatureEncoder FeatureEncoder::from_json(const nlohmann::json& j, const std::string& where) {
  auto bad = [&](const std::string& why) -> void {
    throw InputError(where + ": the item feature encoder of the model is malformed (" + why + ")");
  };
  FeatureEncoder e;
  try {
    if (!j.is_object() || j.value("version", 0) != 1) bad("not version 1");
    e.format_ = j.at("format").get<std::string>();
    for (const auto& c : j.at("columns")) {
      FeatureColumn col;
      col.name = c.at("name").get<std::string>();
      col.sep = c.at("sep").get<std::string>();
      const std::string role = c.at("role").get<std::string>();
      bool found = false;
      for (FeatureRole r :
           {FeatureRole::Id, FeatureRole::Cat, FeatureRole::Multi, FeatureRole::Text,
            FeatureRole::Num, FeatureRole::NumSeq, FeatureRole::Skip})
        if (role == feature_role_name(r)) {
          col.role = r;
          found = true;
        }
      if (!found) bad("unknown role '" + role + "'");
      col.index = static_cast<int32_t>(e.columns_.size());
      e.columns_.push_back(std::move(col));
    }
    for (const auto& n : j.at("names")) {
      if (n.is_string()) {
        e.names_.push_back(n.get<std::string>());
      } else {
        std::string b;
        for (const auto& x : n) b.push_back(static_cast<char>(x.get<int>()));
        e.names_.push_back(std::move(b));
      }
      e.index_.emplace(e.names_.back(), static_cast<int32_t>(e.names_.size() - 1));
    }
    for (const auto& n : j.at("numeric")) {
      const int32_t f = n.at(0).get<int32_t>();
      if (f < 0 || f >= static_cast<int32_t>(e.names_.size())) bad("numeric feature out of range");
      e.numeric_[f] = {n.at(1).get<double>(), n.at(2).get<double>()};
    }
    e.text_buckets_ = j.at("text_buckets").get<int64_t>();
    if (e.text_buckets_ != 0 &&
        (e.text_buckets_ < kMinTextBuckets || e.text_buckets_ > kMaxTextBuckets))
      bad("text_buckets out of range");
    e.trigrams_ = j.at("text_trigrams").get<bool>();
    e.words_ = j.at("text_words").get<bool>();
    e.title_year_ = j.at("title_year").get<bool>();
  } catch (const nlohmann::json::exception& x) {
    bad(x.what());
  }
  return e;
}

FeatureEncoder::Row FeatureEncoder::encode(const nlohmann::json& features,
                                           size_t max_value_bytes) const {
  if (!features.is_object())
    throw InputError("'features' must be an object of column: value, got " +
                     std::string(features.type_name()));
  std::vector<std::pair<int32_t, float>> entries;
  Row row;
  auto field = [](const std::string& col) { return "'features." + col + "'"; };
  auto text_of = [&](const nlohmann::json& v, const std::string& col,
                     const char* want) -> std::string {
    std::string s;
    if (v.is_string())
      s = v.get<std::string>();
    else if (v.is_number_unsigned())
      s = std::to_string(v.get<uint64_t>());
    else if (v.is_number_integer())
      s = std::to_string(v.get<int64_t>());
    else if (v.is_number_float()) {
      std::ostringstream o;
      o << v.get<double>();
      s = o.str();
    } else
      throw InputError(field(col) + " must be " + want + ", got " + std::string(v.type_name()));
    if (s.size() > max_value_bytes)
      throw InputError(field(col) + " is longer than " + std::to_string(max_value_bytes) +
                       " bytes");
    return s;
  };
  auto dense = [&](const std::string& name, float v) {
    auto it = index_.find(name);
    if (it == index_.end())
      row.unknown_values.push_back(name);
    else
      entries.emplace_back(it->second, v);
  };
  auto numeric = [&](const std::string& col, const std::string& name, const nlohmann::json& v) {
    double x = 0;
    if (v.is_number()) {
      x = v.get<double>();
    } else if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (s.size() > max_value_bytes || !dd::parse_double(trim(s), &x))
        throw InputError(field(col) + ": " + dd::quote(s) + " is not a number");
    } else {
      throw InputError(field(col) + " must be a number, got " + std::string(v.type_name()));
    }
    if (!std::isfinite(x)) throw InputError(field(col) + " must be a finite number");
    auto it = index_.find(name);
    if (it == index_.end()) {
      row.unknown_values.push_back(name);
      return;
    }
    const auto st = numeric_.find(it->second);
    const double mean = st == numeric_.end() ? 0.0 : st->second.first;
    const double sd = st == numeric_.end() ? 0.0 : st->second.second;
    const float f = static_cast<float>(x);  // read_features keeps the value as a float first
    entries.emplace_back(it->second, sd > 0 ? static_cast<float>((f - mean) / sd) : 0.0f);
  };
  auto text = [&](std::string_view t) {
    std::vector<int32_t> ti;
    std::vector<float> tv;
    hash_text(t, text_buckets_, trigrams_, words_, static_cast<int32_t>(names_.size()), ti, tv);
    for (size_t k = 0; k < ti.size(); ++k) entries.emplace_back(ti[k], tv[k]);
  };
  for (auto it = features.begin(); it != features.end(); ++it) {
    const std::string& name = it.key();
    const FeatureColumn* c = nullptr;
    for (const auto& col : columns_)
      if (col.name == name) c = &col;
    if (!c) {
      std::string names;
      for (const auto& col : columns_)
        if (col.role != FeatureRole::Id && col.role != FeatureRole::Skip)
          names += (names.empty() ? "" : ", ") + col.name;
      throw InputError("unknown feature column " + field(name) +
                       " (the model's feature columns: " + names + ")");
    }
    const nlohmann::json& v = it.value();
    if (c->role == FeatureRole::Id)
      throw InputError(field(name) + " is the id column of the feature file; give the id as 'id'");
    if (c->role == FeatureRole::Skip || v.is_null()) continue;
    switch (c->role) {
      case FeatureRole::Cat: {
        const std::string s(trim(text_of(v, name, "a string or a number")));
        if (!s.empty()) dense(name + "=" + s, 1.0f);
        break;
      }
      case FeatureRole::Multi: {
        std::vector<std::string> parts;
        if (v.is_array()) {
          for (size_t k = 0; k < v.size(); ++k)
            parts.push_back(
                text_of(v[k], name + "[" + std::to_string(k) + "]", "a string or a number"));
        } else {
          const std::string s = text_of(v, name, "a string, a number or an array of them");
          if (c->sep.empty())
            parts.push_back(s);
          else
            for (auto& p : split(trim(s), c->sep)) parts.push_back(std::move(p));
        }
        for (const auto& p : parts) {
          const std::string x(trim(p));
          if (!x.empty()) dense(name + "=" + x, 1.0f);
        }
        break;
      }
      case FeatureRole::Text: {
        if (!v.is_string())
          throw InputError(field(name) + " must be a string, got " + std::string(v.type_name()));
        std::string s(trim(text_of(v, name, "a string")));
        if (s.empty()) break;
        if (title_year_ && columns_.size() > 1 && &columns_[1] == c) {
          // movies.dat: "Title (1995)" -> the text "Title" and the feature year=1995.
          if (s.size() >= 7 && s.back() == ')' && s[s.size() - 6] == '(' &&
              std::all_of(s.end() - 5, s.end() - 1,
                          [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); })) {
            const std::string year = s.substr(s.size() - 5, 4);
            s = std::string(trim(std::string_view(s).substr(0, s.size() - 6)));
            dense("year=" + year, 1.0f);
          }
        }
        if (!s.empty()) text(s);
        break;
      }
      case FeatureRole::Num:
        if (!(v.is_string() && trim(v.get<std::string>()).empty())) numeric(name, name, v);
        break;
      case FeatureRole::NumSeq: {
        std::vector<nlohmann::json> parts;
        if (v.is_array()) {
          for (const auto& x : v) parts.push_back(x);
        } else if (v.is_string()) {
          const std::string s = text_of(v, name, "a string");
          for (auto& p : split(s, c->sep)) parts.emplace_back(std::move(p));
        } else {
          throw InputError(field(name) + " must be an array of numbers, got " +
                           std::string(v.type_name()));
        }
        for (size_t k = 0; k < parts.size(); ++k) {
          if (parts[k].is_null() ||
              (parts[k].is_string() && trim(parts[k].get<std::string>()).empty()))
            continue;
          numeric(name, name + "[" + std::to_string(k) + "]", parts[k]);
        }
        break;
      }
      default:
        break;
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [i, v] : entries) {
    if (!row.index.empty() && row.index.back() == i) {
      row.value.back() += v;
    } else {
      row.index.push_back(i);
      row.value.push_back(v);
    }
  }
  return row;
}

}  // namespace seqrec
