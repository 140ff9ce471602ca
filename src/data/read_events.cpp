// read_events: format detection, the parsers of the four formats, grouping into sequences,
// and the binary cache around them.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "data/event_cache.hpp"
#include "data/read_text.hpp"
#include "data/text_util.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

using namespace data_detail;

Format parse_format(const std::string& name) {
  const std::string n = to_lower(name);
  if (n.empty() || n == "auto") return Format::Auto;
  if (n == "delimited" || n == "tsv" || n == "csv" || n == "gru4rec") return Format::Delimited;
  if (n == "inter" || n == "recbole") return Format::Inter;
  if (n == "sequences" || n == "sequence" || n == "seq" || n == "txt") return Format::Sequences;
  if (n == "pairs" || n == "pair") return Format::Pairs;
  throw InputError("unknown format '" + name +
                   "': expected one of auto, delimited (tsv, csv), inter, sequences, pairs");
}

const char* format_name(Format f) {
  switch (f) {
    case Format::Auto:
      return "auto";
    case Format::Delimited:
      return "delimited";
    case Format::Inter:
      return "inter";
    case Format::Sequences:
      return "sequences";
    case Format::Pairs:
      return "pairs";
  }
  return "unknown";
}

namespace {

constexpr size_t kSampleLines = 1000;
constexpr int32_t kMaxIndex = std::numeric_limits<int32_t>::max();

// Column names recognised in headers (lower case, ':type' suffix removed), by priority.
const std::vector<std::string> kSessionNames = {"sessionid", "session_id", "session",  "user_id",
                                                "userid",    "user",       "visitorid"};
const std::vector<std::string> kItemNames = {"itemid",  "item_id",    "item",     "movie_id",
                                             "movieid", "product_id", "productid"};
const std::vector<std::string> kTimeNames = {"time", "timestamp", "ts"};

// Iterates the non-empty lines of a buffer, tracking 1-based line numbers. Accepts LF and
// CRLF; lines holding only spaces/tabs count as empty.
struct LineIter {
  const char* p;
  const char* end;
  int64_t lineno = 0;
  bool next(std::string_view* line) {
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* e = nl ? nl : end;
      std::string_view l(p, static_cast<size_t>(e - p));
      p = nl ? nl + 1 : end;
      ++lineno;
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      if (l.empty()) continue;
      if (l.front() == ' ' || l.front() == '\t') {
        size_t i = l.find_first_not_of(" \t\r");
        if (i == std::string_view::npos) continue;
      }
      *line = l;
      return true;
    }
    return false;
  }
};

// Quoted CSV is rewritten before it is read (rewrite_quoted), with this byte between fields.
constexpr char kUnitSeparator = '\x1F';

struct Splitter {
  bool whitespace = true;  // runs of spaces/tabs separate fields
  char delim = ' ';
  char quoted = 0;  // the file's delimiter when it had quoted fields (delim is then kUnitSeparator)
  std::string describe() const {
    if (whitespace) return "whitespace";
    const char d = quoted ? quoted : delim;
    return (d == '\t' ? std::string("tab") : std::string("'") + d + "'") +
           (quoted ? " (with quoted fields)" : "");
  }
};

// Blanks around a field go; so do the quotes around a field ("a") of a file that was not
// rewritten from quoted CSV (a rewritten one has none left: its quotes were the syntax).
inline std::string_view trim(std::string_view f, bool unquote = true) {
  while (!f.empty() && (f.front() == ' ' || f.front() == '\t')) f.remove_prefix(1);
  while (!f.empty() && (f.back() == ' ' || f.back() == '\t')) f.remove_suffix(1);
  if (unquote && f.size() >= 2 && f.front() == '"' && f.back() == '"')
    f = f.substr(1, f.size() - 2);
  return f;
}

// Splits `line` into `out` (cleared first).
inline void split(std::string_view line, const Splitter& sp, std::vector<std::string_view>* out) {
  out->clear();
  const char* p = line.data();
  const char* e = p + line.size();
  if (sp.whitespace) {
    while (p < e) {
      while (p < e && (*p == ' ' || *p == '\t')) ++p;
      if (p >= e) break;
      const char* b = p;
      while (p < e && *p != ' ' && *p != '\t') ++p;
      std::string_view f(b, static_cast<size_t>(p - b));
      if (f.size() >= 2 && f.front() == '"' && f.back() == '"') f = f.substr(1, f.size() - 2);
      out->push_back(f);
    }
    return;
  }
  const char d = sp.delim;
  const char* b = p;
  while (true) {
    const char* q = static_cast<const char*>(std::memchr(b, d, static_cast<size_t>(e - b)));
    if (!q) {
      out->push_back(trim(std::string_view(b, static_cast<size_t>(e - b)), !sp.quoted));
      break;
    }
    out->push_back(trim(std::string_view(b, static_cast<size_t>(q - b)), !sp.quoted));
    b = q + 1;
  }
}

std::string column_name(std::string_view raw) {
  std::string n = to_lower(trim(raw));
  const size_t colon = n.rfind(':');
  if (colon != std::string::npos && colon > 0) n.resize(colon);  // RecBole "user_id:token"
  return n;
}

int find_name(const std::vector<std::string>& names, const std::vector<std::string>& candidates) {
  for (const auto& c : candidates) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == c) return static_cast<int>(i);
    }
  }
  return -1;
}

bool is_known_name(const std::string& n) {
  for (const auto* list : {&kSessionNames, &kItemNames, &kTimeNames}) {
    if (std::find(list->begin(), list->end(), n) != list->end()) return true;
  }
  return n == "eventdate" || n == "timeframe" || n == "rating";
}

// How to read a file, as decided by detection and the options.
struct Plan {
  Format format = Format::Auto;
  Splitter sp;
  bool header = false;
  std::vector<std::string> raw_names;  // header fields as written
  std::vector<std::string> names;      // normalised (lower case, no :type)
  size_t n_fields = 0;                 // expected fields per line (0 = not checked)
  int session_col = -1, item_col = -1, time_col = -1;
  int date_col = -1, offset_ms_col = -1;  // DIGINETICA: time = date + timeframe/1000
  bool seq_ids = false;
  int64_t first_data_line = 0;  // line number of the first data line
};

std::string describe_plan(const Plan& p) {
  std::string s = std::string(format_name(p.format)) + ", fields separated by " + p.sp.describe();
  s += p.header ? ", header" : ", no header";
  auto col = [&](int c) {
    if (c < 0) return std::string("-");
    if (p.header && static_cast<size_t>(c) < p.raw_names.size())
      return p.raw_names[static_cast<size_t>(c)];
    return "column " + std::to_string(c);
  };
  if (p.format == Format::Sequences) {
    s += p.seq_ids ? "; first token = sequence id" : "; no ids (line numbers)";
    return s;
  }
  s += "; session=" + col(p.session_col) + " item=" + col(p.item_col);
  if (p.date_col >= 0) {
    s += " time=" + col(p.date_col) +
         (p.offset_ms_col >= 0 ? "+" + col(p.offset_ms_col) + "/1000" : "");
  } else {
    s += " time=" + (p.time_col >= 0 ? col(p.time_col) : std::string("none"));
  }
  return s;
}

Splitter parse_delimiter_option(const std::string& d, const std::string& path) {
  Splitter sp;
  const std::string l = to_lower(d);
  if (d == " " || l == "space" || l == "whitespace" || l == "ws") return sp;
  sp.whitespace = false;
  if (d == "\\t" || l == "tab" || d == "\t") {
    sp.delim = '\t';
  } else if (d.size() == 1) {
    sp.delim = d[0];
  } else if (l == "comma") {
    sp.delim = ',';
  } else if (l == "semicolon") {
    sp.delim = ';';
  } else {
    throw InputError(path, 0, "delimiter '" + d + "' must be a single character (or tab, space)");
  }
  return sp;
}

// Picks the delimiter: the first of tab , ; | that occurs the same (non-zero) number of
// times on every sampled line; otherwise whitespace.
Splitter detect_delimiter(const std::vector<std::string_view>& sample) {
  Splitter sp;
  for (char c : {'\t', ',', ';', '|'}) {
    const auto k = std::count(sample[0].begin(), sample[0].end(), c);
    if (k == 0) continue;
    bool same = true;
    for (auto l : sample) {
      if (std::count(l.begin(), l.end(), c) != k) {
        same = false;
        break;
      }
    }
    if (same) {
      sp.whitespace = false;
      sp.delim = c;
      return sp;
    }
  }
  return sp;
}

int resolve_column(const std::string& spec, const char* what, const Plan& p, size_t n_fields,
                   const std::string& path) {
  if (spec.empty()) return -1;
  if (std::all_of(spec.begin(), spec.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (spec.size() > 6 || static_cast<size_t>(std::stoi(spec)) >= n_fields) {
      throw InputError(path, p.first_data_line,
                       std::string(what) + " column " + spec + " does not exist: lines have " +
                           std::to_string(n_fields) + " fields (columns are numbered from 0)");
    }
    return std::stoi(spec);
  }
  if (!p.header) {
    throw InputError(path, p.first_data_line,
                     std::string(what) + " column '" + spec +
                         "' is given by name but the file has no header line; give a 0-based "
                         "column number instead");
  }
  const std::string want = column_name(spec);
  for (size_t i = 0; i < p.names.size(); ++i) {
    if (p.names[i] == want) return static_cast<int>(i);
  }
  std::string have;
  for (const auto& n : p.raw_names) have += (have.empty() ? "" : ", ") + n;
  throw InputError(
      path, 1, std::string(what) + " column '" + spec + "' not found in the header (" + have + ")");
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

[[noreturn]] void ambiguous(const std::string& path, const std::string& why) {
  throw InputError(path, 1,
                   "cannot tell the file format (" + why +
                       "); choose one with --format delimited|inter|sequences|pairs");
}

// ---- Quoted CSV (RFC 4180): "a,b" is one field, "" inside quotes is one quote, and a quoted
// field may span lines. Such a file is rewritten once into plain delimited text with
// kUnitSeparator between fields, which the readers below take as it is. Line numbers stay
// those of the file: a record that spans k lines is followed by k - 1 empty lines.

// Reads the records of quoted CSV with one delimiter.
class QuotedReader {
 public:
  QuotedReader(std::string_view data, char delim, const std::string& path)
      : d_(data), delim_(delim), path_(path) {}
  /// Appends the next record's fields to *out, separated by kUnitSeparator (no line end);
  /// sets *fields, *lineno (its first line) and *extra (the line breaks inside its quoted
  /// fields, each turned into a space). `breaks` (may be null) gets, per column, the first
  /// line with such a break. False at the end of the data.
  bool next(std::string* out, size_t* fields, int64_t* lineno, int64_t* extra,
            std::vector<int64_t>* breaks) {
    const size_t n = d_.size();
    if (pos_ >= n) return false;
    *lineno = line_;
    *extra = 0;
    *fields = 0;
    while (true) {
      const size_t col = (*fields)++;
      if (col > 0) out->push_back(kUnitSeparator);
      size_t q = pos_;
      while (q < n && (d_[q] == ' ' || d_[q] == '\t') && d_[q] != delim_) ++q;
      if (q < n && d_[q] == '"') {
        const int64_t opened = line_;
        pos_ = q + 1;
        while (true) {
          if (pos_ >= n)
            throw InputError(path_, opened,
                             "a quoted field (column " + std::to_string(col) +
                                 ") opened on this line is never closed: a quote inside a "
                                 "quoted field is written twice (\"\")");
          const char c = d_[pos_++];
          if (c == '"') {
            if (pos_ < n && d_[pos_] == '"') {
              out->push_back('"');
              ++pos_;
              continue;
            }
            break;
          }
          if (c == '\n' || c == '\r') {
            if (c == '\n') {
              ++line_;
              ++*extra;
            }
            if (breaks != nullptr) {
              if (breaks->size() <= col) breaks->resize(col + 1, 0);
              if ((*breaks)[col] == 0) (*breaks)[col] = opened;
            }
            out->push_back(' ');
            continue;
          }
          put(out, c);
        }
        while (pos_ < n && (d_[pos_] == ' ' || d_[pos_] == '\t') && d_[pos_] != delim_) ++pos_;
        if (pos_ < n && d_[pos_] != delim_ && d_[pos_] != '\n' && d_[pos_] != '\r')
          throw InputError(path_, line_,
                           "text after the closing quote of a quoted field (column " +
                               std::to_string(col) +
                               "): a quote inside a quoted field is written twice (\"\")");
      } else {
        while (pos_ < n && d_[pos_] != delim_ && d_[pos_] != '\n') put(out, d_[pos_++]);
      }
      if (pos_ >= n) return true;
      if (d_[pos_] == delim_) {
        ++pos_;
        continue;
      }
      if (d_[pos_] == '\r') ++pos_;
      if (pos_ < n && d_[pos_] == '\n') {
        ++pos_;
        ++line_;
      }
      return true;
    }
  }

 private:
  void put(std::string* out, char c) const {
    if (c == kUnitSeparator)
      throw InputError(path_, line_,
                       "the control character 0x1F (unit separator) in a file with quoted "
                       "fields is not supported");
    out->push_back(c);
  }
  std::string_view d_;
  size_t pos_ = 0;
  int64_t line_ = 1;
  char delim_;
  const std::string& path_;
};

// The delimiter of a file with quotes, read as quoted CSV: the one given, tab for RecBole
// files, else the first of tab , ; | that gives the sampled records one number (>= 2) of
// fields. 0 when the file is not delimited text.
char quoted_delimiter(std::string_view data, const std::string& path, const ReadOptions& opt) {
  if (!opt.delimiter.empty()) {
    const Splitter sp = parse_delimiter_option(opt.delimiter, path);
    return sp.whitespace ? 0 : sp.delim;
  }
  if (opt.format == Format::Inter ||
      (opt.format == Format::Auto &&
       to_lower(std::filesystem::path(path).extension().string()) == ".inter"))
    return '\t';
  std::string errors[4];  // what reading each candidate as quoted CSV ran into
  const char candidates[4] = {'\t', ',', ';', '|'};
  for (int k = 0; k < 4; ++k) {
    const char c = candidates[k];
    try {
      QuotedReader r(data, c, path);  // stops after kSampleLines records
      std::string rec;
      size_t fields = 0, want = 0, sampled = 0;
      int64_t line = 0, extra = 0;
      bool same = true;
      while (sampled < kSampleLines && same && r.next(&rec, &fields, &line, &extra, nullptr)) {
        const bool blank = rec.find_first_not_of(" \t\r") == std::string::npos;
        rec.clear();
        if (blank) continue;
        if (sampled++ == 0) want = fields;
        same = fields == want;
      }
      if (same && want >= 2) return c;
    } catch (const InputError& e) {
      errors[k] = e.what();
    }
  }
  // No delimiter works with quotes. If one works without them and its quoting is broken
  // (a quote never closed, text after a closing quote), say so rather than read the quotes
  // as part of the ids.
  LineIter it{data.data(), data.data() + data.size()};
  std::vector<std::string_view> sample;
  std::string_view line;
  while (sample.size() < kSampleLines && it.next(&line)) sample.push_back(line);
  if (sample.empty()) return 0;
  const Splitter plain = detect_delimiter(sample);
  for (int k = 0; k < 4; ++k)
    if (!plain.whitespace && plain.delim == candidates[k] && !errors[k].empty())
      throw InputError(errors[k]);
  return 0;
}

// The whole file rewritten (see above); `breaks` gets, per column, the first line of a
// quoted field with a line break.
std::string rewrite_quoted(std::string_view data, char delim, const std::string& path,
                           std::vector<int64_t>* breaks) {
  std::string out;
  out.reserve(data.size() + data.size() / 8);
  QuotedReader r(data, delim, path);
  size_t fields = 0;
  int64_t line = 0, extra = 0;
  while (r.next(&out, &fields, &line, &extra, breaks))
    out.append(static_cast<size_t>(extra) + 1, '\n');
  return out;
}

Plan make_plan(std::string_view data, const std::string& path, const ReadOptions& opt,
               char quoted = 0) {
  Plan p;
  p.format = opt.format;
  if (p.format == Format::Auto) {
    std::string ext = to_lower(std::filesystem::path(path).extension().string());
    if (ext == ".inter") p.format = Format::Inter;
  }
  LineIter it{data.data(), data.data() + data.size()};
  std::vector<std::string_view> sample;
  std::vector<int64_t> sample_lineno;
  std::string_view line;
  while (sample.size() < kSampleLines && it.next(&line)) {
    sample.push_back(line);
    sample_lineno.push_back(it.lineno);
  }
  if (sample.empty()) throw InputError(path, 1, "the file is empty (no data lines)");

  // Delimiter.
  if (quoted) {
    p.sp.whitespace = false;
    p.sp.delim = kUnitSeparator;
    p.sp.quoted = quoted;
  } else if (!opt.delimiter.empty()) {
    p.sp = parse_delimiter_option(opt.delimiter, path);
  } else if (p.format == Format::Inter) {
    p.sp.whitespace = false;
    p.sp.delim = '\t';
  } else if (p.format == Format::Sequences) {
    p.sp.whitespace = true;
  } else {
    p.sp = detect_delimiter(sample);
  }

  // Header.
  std::vector<std::string_view> first, fields;
  split(sample[0], p.sp, &first);
  bool recognised = false;
  for (auto f : first) recognised = recognised || is_known_name(column_name(f));
  if (p.format == Format::Inter) {
    p.header = opt.header != 0;
  } else if (opt.header >= 0) {
    p.header = opt.header == 1;
  } else if (recognised) {
    p.header = true;
  } else if (p.format != Format::Sequences && sample.size() >= 2 &&
             std::none_of(first.begin(), first.end(),
                          [](std::string_view f) { return is_number(f); })) {
    // An unrecognised header: all names, while the next line has numbers.
    split(sample[1], p.sp, &fields);
    p.header =
        std::any_of(fields.begin(), fields.end(), [](std::string_view f) { return is_number(f); });
  }
  if (p.header) {
    for (auto f : first) {
      p.raw_names.emplace_back(trim(f));
      p.names.push_back(column_name(f));
    }
  }
  const size_t data_begin = p.header ? 1 : 0;
  if (data_begin >= sample.size()) {
    throw InputError(path, sample_lineno[0], "the file has a header line but no data lines");
  }
  p.first_data_line = sample_lineno[data_begin];

  // Format.
  if (p.format == Format::Auto) {
    if (p.header) {
      p.format = Format::Delimited;
    } else {
      size_t lo = std::numeric_limits<size_t>::max(), hi = 0;
      bool all_numeric = true, inner_space = false;
      for (size_t i = data_begin; i < sample.size(); ++i) {
        split(sample[i], p.sp, &fields);
        lo = std::min(lo, fields.size());
        hi = std::max(hi, fields.size());
        for (auto f : fields) {
          if (all_numeric && !is_number(f)) all_numeric = false;
          if (!p.sp.whitespace && f.find_first_of(" \t") != std::string_view::npos)
            inner_space = true;
        }
      }
      const size_t n_lines = sample.size() - data_begin;
      if (inner_space) {
        ambiguous(path, "fields separated by " + p.sp.describe() + " contain spaces");
      } else if (lo == hi && lo == 2) {
        p.format = Format::Pairs;
      } else if (lo == hi && lo >= 3 && !p.sp.whitespace) {
        p.format = Format::Delimited;
      } else if (lo == hi && lo >= 3 && all_numeric && n_lines >= 2) {
        p.format = Format::Delimited;
      } else if (lo != hi && p.sp.whitespace) {
        p.format = Format::Sequences;
      } else if (lo == hi && lo == 1) {
        ambiguous(path, "every line holds a single field");
      } else if (lo == hi && lo >= 3) {
        ambiguous(path, "every line holds " + std::to_string(lo) +
                            " space-separated fields, not all numeric: a table or fixed-length "
                            "sequences?");
      } else {
        ambiguous(path, "lines hold between " + std::to_string(lo) + " and " + std::to_string(hi) +
                            " fields separated by " + p.sp.describe());
      }
    }
  }

  if (p.format == Format::Sequences) {
    if (!opt.delimiter.empty() && !quoted) p.sp = parse_delimiter_option(opt.delimiter, path);
    if (opt.sequence_ids >= 0) {
      p.seq_ids = opt.sequence_ids == 1;
    } else {
      // Ids when the first tokens of the sampled lines are consecutive integers n, n+1, ...
      // and every line has at least one item after the id.
      bool ids = sample.size() - data_begin >= 2;
      int64_t prev = 0;
      for (size_t i = data_begin; ids && i < sample.size(); ++i) {
        split(sample[i], p.sp, &fields);
        int64_t v = 0;
        const auto f = fields.empty() ? std::string_view() : fields[0];
        auto r = std::from_chars(f.data(), f.data() + f.size(), v);
        if (fields.size() < 2 || r.ec != std::errc() || r.ptr != f.data() + f.size() ||
            (i > data_begin && v != prev + 1)) {
          ids = false;
        }
        prev = v;
      }
      p.seq_ids = ids;
    }
    return p;
  }

  split(sample[data_begin], p.sp, &fields);
  const size_t n = p.header ? p.names.size() : fields.size();
  p.n_fields = n;
  p.session_col = resolve_column(opt.session_col, "session", p, n, path);
  p.item_col = resolve_column(opt.item_col, "item", p, n, path);
  const std::string tl = to_lower(opt.time_col);
  const bool no_time = tl == "none" || p.format == Format::Pairs;
  if (!no_time) p.time_col = resolve_column(opt.time_col, "time", p, n, path);

  if (p.header) {
    if (p.session_col < 0) p.session_col = find_name(p.names, kSessionNames);
    if (p.item_col < 0) p.item_col = find_name(p.names, kItemNames);
    if (!no_time && p.time_col < 0 && opt.time_col.empty()) {
      p.time_col = find_name(p.names, kTimeNames);
      if (p.time_col < 0) {
        p.date_col = find_name(p.names, {"eventdate"});
        if (p.date_col >= 0) p.offset_ms_col = find_name(p.names, {"timeframe"});
      }
    }
    if (p.session_col < 0) {
      throw InputError(path, 1,
                       "no session column in the header (" + join(p.raw_names) +
                           "): expected one of SessionId, session_id, session, user_id, UserId, "
                           "user, visitorid, or give --session-col");
    }
    if (p.item_col < 0) {
      throw InputError(path, 1,
                       "no item column in the header (" + join(p.raw_names) +
                           "): expected one of ItemId, item_id, item, movie_id, product_id, or "
                           "give --item-col");
    }
  } else {
    if (p.session_col < 0) p.session_col = 0;
    if (p.item_col < 0) p.item_col = 1;
    if (!no_time && p.time_col < 0 && opt.time_col.empty()) {
      if (n == 3) p.time_col = 2;
      if (n >= 4) p.time_col = static_cast<int>(n) - 1;  // u.data: user item rating time
    }
    if (n < 2 || static_cast<size_t>(std::max(p.session_col, p.item_col)) >= n) {
      throw InputError(path, p.first_data_line,
                       "expected at least 2 fields (session, item) separated by " +
                           p.sp.describe() + ", found " + std::to_string(n));
    }
  }
  if (p.session_col == p.item_col) {
    throw InputError(path, 1, "the session and item columns are the same column");
  }
  return p;
}

// Events as parsed, before grouping.
struct Events {
  std::vector<int32_t> seq;   // sequence index (first appearance order)
  std::vector<int32_t> item;  // item index
  std::vector<double> time;   // empty without times
  std::vector<std::string> ids;
};

class ItemTable {
 public:
  ItemTable(Vocab* vocab, size_t expected) : vocab_(vocab), table_(expected) {}
  int32_t get(std::string_view tok, const std::string& path, int64_t lineno) {
    bool inserted;
    if (table_.size() >= static_cast<size_t>(kMaxIndex)) {
      const int32_t i = table_.find(tok);
      if (i >= 0) return i;
      throw InputError(path, lineno, "more than 2^31-1 (2147483647) distinct items");
    }
    const int32_t i = table_.get_or_add(tok, &inserted);
    if (i < 0) throw InputError(path, lineno, "item id longer than 16 MB");
    if (inserted) vocab_->add(tok);
    return i;
  }

 private:
  Vocab* vocab_;
  TokenTable table_;
};

// Session/user ids -> sequence index (first appearance order). Logs are usually sorted
// by session id, so while every new id is greater than all earlier ones (in (length,
// bytes) order, which is numeric order for decimal ids) it cannot be a repeat and needs
// no hash lookup; the hash table is built only when the order breaks.
class SeqTable {
 public:
  int32_t get(std::string_view tok, const std::string& path, int64_t lineno) {
    if (last_ >= 0 && tok == last_tok_) return last_;  // the same session as the line before
    if (keys_.size() >= static_cast<size_t>(kMaxIndex)) {
      throw InputError(path, lineno, "more than 2^31-1 distinct sessions/users");
    }
    if (!hashed_) {
      if (keys_.empty() || greater(tok, max_tok_)) {
        max_tok_ = tok;
        keys_.push_back(tok);
        return remember(tok, static_cast<int32_t>(keys_.size() - 1));
      }
      hashed_ = true;
      table_ = TokenTable(keys_.size() * 2);
      bool inserted;
      for (auto k : keys_) table_.get_or_add(k, &inserted);
    }
    bool inserted;
    const int32_t i = table_.get_or_add(tok, &inserted);
    if (i < 0) throw InputError(path, lineno, "session id longer than 16 MB");
    if (inserted) keys_.push_back(tok);
    return remember(tok, i);
  }
  std::vector<std::string> ids() const { return {keys_.begin(), keys_.end()}; }

 private:
  static bool greater(std::string_view a, std::string_view b) {
    return a.size() != b.size() ? a.size() > b.size() : a > b;
  }
  int32_t remember(std::string_view tok, int32_t i) {
    last_tok_ = tok;
    last_ = i;
    return i;
  }
  std::vector<std::string_view> keys_;  // views into the file buffer
  TokenTable table_{16};
  bool hashed_ = false;
  std::string_view max_tok_, last_tok_;
  int32_t last_ = -1;
};

double parse_time_field(std::string_view f, double scale, const Plan& p, int col,
                        const std::string& path, int64_t lineno) {
  double v;
  if (parse_double(f, &v)) {
    v *= scale;
    if (std::isfinite(v)) return v;
  } else if (parse_date(f, &v)) {
    return v;
  }
  std::string name =
      p.header ? "'" + p.raw_names[static_cast<size_t>(col)] + "'" : std::to_string(col);
  throw InputError(path, lineno,
                   "time " + quote(f) + " (column " + name +
                       ") is not a finite number of seconds or a YYYY-MM-DD[ HH:MM:SS] date");
}

Events parse_columns(std::string_view data, const std::string& path, const Plan& p,
                     const ReadOptions& opt, Vocab* vocab) {
  Events ev;
  const size_t guess = data.size() / 24 + 16;
  ev.seq.reserve(guess);
  ev.item.reserve(guess);
  const bool with_time = p.time_col >= 0 || p.date_col >= 0;
  if (with_time) ev.time.reserve(guess);
  ItemTable items(vocab, 1 << 14);
  SeqTable seqs;
  LineIter it{data.data(), data.data() + data.size()};
  std::string_view line;
  std::vector<std::string_view> f;
  f.reserve(16);
  if (p.header) it.next(&line);
  const size_t need = static_cast<size_t>(std::max(
                          {p.session_col, p.item_col, p.time_col, p.date_col, p.offset_ms_col})) +
                      1;
  while (it.next(&line)) {
    split(line, p.sp, &f);
    if ((p.n_fields && f.size() != p.n_fields) || f.size() < need) {
      throw InputError(path, it.lineno,
                       "expected " + std::to_string(p.n_fields ? p.n_fields : need) +
                           " fields separated by " + p.sp.describe() + " (as in line " +
                           std::to_string(p.header ? 1 : p.first_data_line) + "), found " +
                           std::to_string(f.size()));
    }
    const std::string_view s = f[static_cast<size_t>(p.session_col)];
    const std::string_view i = f[static_cast<size_t>(p.item_col)];
    if (s.empty()) throw InputError(path, it.lineno, "empty session id");
    if (i.empty()) throw InputError(path, it.lineno, "empty item id");
    ev.seq.push_back(seqs.get(s, path, it.lineno));
    ev.item.push_back(items.get(i, path, it.lineno));
    if (p.time_col >= 0) {
      ev.time.push_back(parse_time_field(f[static_cast<size_t>(p.time_col)], opt.time_scale, p,
                                         p.time_col, path, it.lineno));
    } else if (p.date_col >= 0) {
      double t = parse_time_field(f[static_cast<size_t>(p.date_col)], opt.time_scale, p, p.date_col,
                                  path, it.lineno);
      if (p.offset_ms_col >= 0) {
        double ms;
        const auto o = f[static_cast<size_t>(p.offset_ms_col)];
        if (!parse_double(o, &ms)) {
          throw InputError(path, it.lineno,
                           "timeframe " + quote(o) + " is not a number of milliseconds");
        }
        t += ms * 1e-3;
      }
      ev.time.push_back(t);
    }
  }
  ev.ids = seqs.ids();
  return ev;
}

Events parse_sequences(std::string_view data, const std::string& path, const Plan& p,
                       Vocab* vocab) {
  Events ev;
  const size_t guess = data.size() / 6 + 16;
  ev.seq.reserve(guess);
  ev.item.reserve(guess);
  ItemTable items(vocab, 1 << 14);
  SeqTable seqs;
  LineIter it{data.data(), data.data() + data.size()};
  std::string_view line;
  std::vector<std::string_view> f;
  if (p.header) it.next(&line);
  int32_t n_lines = 0;
  while (it.next(&line)) {
    split(line, p.sp, &f);
    size_t k = 0;
    int32_t sid;
    if (p.seq_ids) {
      if (f.size() < 2) continue;  // an id without items: nothing to keep
      sid = seqs.get(f[0], path, it.lineno);
      k = 1;
    } else {
      if (n_lines == kMaxIndex) throw InputError(path, it.lineno, "more than 2^31-1 sequences");
      sid = n_lines++;
      ev.ids.push_back(std::to_string(it.lineno));
    }
    for (; k < f.size(); ++k) {
      ev.seq.push_back(sid);
      ev.item.push_back(items.get(f[k], path, it.lineno));
    }
  }
  if (p.seq_ids) ev.ids = seqs.ids();
  return ev;
}

// Groups events into sequences (first-appearance order), then orders each sequence by
// time, stably.
SequenceSet group(Events&& ev) {
  SequenceSet out;
  const size_t n_seq = ev.ids.size();
  const size_t n = ev.item.size();
  const bool with_time = !ev.time.empty();
  std::vector<int64_t> offsets(n_seq + 1, 0);
  bool contiguous = true;
  for (size_t e = 0; e < n; ++e) {
    ++offsets[static_cast<size_t>(ev.seq[e]) + 1];
    if (e > 0 && ev.seq[e] < ev.seq[e - 1]) contiguous = false;
  }
  for (size_t s = 0; s < n_seq; ++s) offsets[s + 1] += offsets[s];
  if (contiguous) {
    out.items = std::move(ev.item);
    out.times = std::move(ev.time);
  } else {
    out.items.resize(n);
    if (with_time) out.times.resize(n);
    std::vector<int64_t> pos(offsets.begin(), offsets.end() - 1);
    for (size_t e = 0; e < n; ++e) {
      const int64_t d = pos[static_cast<size_t>(ev.seq[e])]++;
      out.items[static_cast<size_t>(d)] = ev.item[e];
      if (with_time) out.times[static_cast<size_t>(d)] = ev.time[e];
    }
    std::vector<int32_t>().swap(ev.item);
    std::vector<double>().swap(ev.time);
  }
  std::vector<int32_t>().swap(ev.seq);
  if (with_time) {
    std::vector<std::pair<double, int32_t>> tmp;
    for (size_t s = 0; s < n_seq; ++s) {
      const auto b = static_cast<size_t>(offsets[s]), e = static_cast<size_t>(offsets[s + 1]);
      if (std::is_sorted(out.times.begin() + static_cast<ptrdiff_t>(b),
                         out.times.begin() + static_cast<ptrdiff_t>(e))) {
        continue;
      }
      tmp.clear();
      for (size_t k = b; k < e; ++k) tmp.emplace_back(out.times[k], out.items[k]);
      std::stable_sort(tmp.begin(), tmp.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      for (size_t k = b; k < e; ++k) {
        out.times[k] = tmp[k - b].first;
        out.items[k] = tmp[k - b].second;
      }
    }
  }
  out.offsets = std::move(offsets);
  out.ids = std::move(ev.ids);
  return out;
}

// Parses the bytes of `path` (`release` is called once they are no longer needed).
EventLog parse_text(std::string_view data, const std::string& path, const ReadOptions& opt,
                    ReadInfo* info, const std::function<void()>& release) {
  // Binary junk guard: a NUL byte in the first block means this is not a text log.
  const size_t probe = std::min<size_t>(data.size(), 1 << 16);
  if (std::memchr(data.data(), '\0', probe) != nullptr) {
    LineIter it{data.data(), data.data() + probe};
    std::string_view l;
    int64_t line = 1;
    while (it.next(&l)) {
      if (l.find('\0') != std::string_view::npos) {
        line = it.lineno;
        break;
      }
    }
    throw InputError(path, line, "binary data (NUL bytes): not a text interaction log");
  }
  if (data.size() >= 3 && static_cast<unsigned char>(data[0]) == 0xEF &&
      static_cast<unsigned char>(data[1]) == 0xBB && static_cast<unsigned char>(data[2]) == 0xBF) {
    data.remove_prefix(3);  // UTF-8 byte order mark
  }
  // Quoted CSV: rewritten into plain delimited text first (only files with a quote pay).
  std::string rewritten;
  std::vector<int64_t> breaks;
  char quoted = 0;
  if (opt.format != Format::Sequences && std::memchr(data.data(), '"', data.size()) != nullptr) {
    quoted = quoted_delimiter(data, path, opt);
    if (quoted) {
      rewritten = rewrite_quoted(data, quoted, path, &breaks);
      data = rewritten;
    }
  }
  Plan plan = make_plan(data, path, opt, quoted);
  for (const int col :
       {plan.session_col, plan.item_col, plan.time_col, plan.date_col, plan.offset_ms_col}) {
    // A line break inside a field that is read (an id or a time) has no faithful reading:
    // ids are written to one-line-per-event files. In other columns it became a space.
    if (col < 0 || static_cast<size_t>(col) >= breaks.size() ||
        breaks[static_cast<size_t>(col)] == 0)
      continue;
    const std::string name = plan.header && static_cast<size_t>(col) < plan.raw_names.size()
                                 ? "'" + plan.raw_names[static_cast<size_t>(col)] + "'"
                                 : std::to_string(col);
    throw InputError(path, breaks[static_cast<size_t>(col)],
                     "a quoted field of column " + name +
                         " holds a line break: session ids, item ids and times cannot span "
                         "lines (line breaks are accepted only in the columns seqrec does not "
                         "read)");
  }
  if (info) {
    info->format = plan.format;
    info->layout = describe_plan(plan);
  }
  EventLog log;
  log.source = path;
  Events ev = plan.format == Format::Sequences ? parse_sequences(data, path, plan, &log.items)
                                               : parse_columns(data, path, plan, opt, &log.items);
  if (ev.item.empty()) throw InputError(path, 0, "no events found (" + describe_plan(plan) + ")");
  if (release) release();
  log.seqs = group(std::move(ev));
  return log;
}

EventLog parse_file(const std::string& path, const ReadOptions& opt, ReadInfo* info) {
  FileData file(path);
  return parse_text(file.view(), path, opt, info, [&] { file.release(); });
}

// The median of the times (of at most 100,001 evenly spaced ones: enough to tell units).
double median_time(const std::vector<double>& t) {
  const size_t n = t.size();
  const size_t step = std::max<size_t>(1, n / 100000);
  std::vector<double> v;
  v.reserve(n / step + 1);
  for (size_t i = 0; i < n; i += step) v.push_back(t[i]);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string year_of(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", 1970.0 + seconds / 31556952.0);
  return buf;
}

// Times far beyond the year 2200 are not seconds: milliseconds (or finer) read as seconds
// make every session look a thousand times shorter and the session protocol's "last day"
// a minute and a half. Converts them (opt.detect_time_unit) or notes it.
void check_time_unit(EventLog* log, const ReadOptions& opt, ReadInfo* info) {
  std::vector<double>& t = log->seqs.times;
  if (t.empty()) return;
  const double med = median_time(t);
  if (!(med > kLatestPlausibleTime)) return;
  if (!opt.detect_time_unit) {
    info->time_note = "the times read as seconds have a median of " + sci(med) + " (the year " +
                      year_of(med) +
                      "); if they are milliseconds, microseconds or nanoseconds give --time-unit "
                      "ms, us or ns (or --time-unit auto to detect it)";
    return;
  }
  static const struct {
    const char* unit;
    const char* name;
    double div;
    const char* div_text;
  } kUnits[] = {{"ms", "milliseconds", 1e3, "1,000"},
                {"us", "microseconds", 1e6, "1,000,000"},
                {"ns", "nanoseconds", 1e9, "1,000,000,000"}};
  for (const auto& u : kUnits) {
    if (med / u.div > kLatestPlausibleTime) continue;
    const double f = 1.0 / u.div;
    for (double& x : t) x *= f;
    info->time_unit = u.unit;
    info->time_note = std::string("the times are ") + u.name + ", not seconds: as seconds their " +
                      "median " + sci(med) + " would be the year " + year_of(med) +
                      " (beyond 2200), so every time was divided by " + u.div_text +
                      "; give --time-unit " + u.unit + " to say so, or --time-unit s to read " +
                      "them as seconds";
    return;
  }
  info->time_note = "the times have a median of " + sci(med) +
                    ", beyond the year 2200 even as nanoseconds; they were kept as they are "
                    "(give --time-unit to name their unit)";
}

}  // namespace

std::string cache_file_for(const std::string& path, const ReadOptions& opt) {
  if (opt.cache_dir.empty()) return {};
  return cache_path_for_key(opt.cache_dir, cache_key(path, opt));
}

EventLog read_events(const std::string& path, const ReadOptions& opt, ReadInfo* info) {
  ReadInfo local;
  if (!info) info = &local;
  *info = ReadInfo{};
  EventLog log;
  if (opt.cache_dir.empty()) {
    log = parse_file(path, opt, info);
  } else {
    // The cache holds the times as parsed; the unit check runs after it, on every read.
    const std::string key = cache_key(path, opt);
    info->cache_path = cache_path_for_key(opt.cache_dir, key);
    std::string why;
    if (load_cache(info->cache_path, key, &log, &info->format, &why)) {
      info->from_cache = true;
      info->layout = "binary cache " + info->cache_path;
      log.source = path;
    } else {
      log = parse_file(path, opt, info);
      std::string why_save;
      info->cache_written = save_cache(info->cache_path, key, log, info->format, &why_save);
      info->cache_note = why.empty() ? why_save : why + (why_save.empty() ? "" : "; " + why_save);
    }
  }
  check_time_unit(&log, opt, info);
  return log;
}

EventLog events_from_columns(EventColumns cols, const ReadOptions& opt, ReadInfo* info) {
  ReadInfo local;
  if (!info) info = &local;
  *info = ReadInfo{};
  const std::string& src = cols.source.empty() ? std::string("events") : cols.source;
  const size_t n = cols.item.size();
  if (n == 0) throw InputError(src, 0, "no events");
  if (cols.seq.size() != n || (!cols.time.empty() && cols.time.size() != n))
    throw InputError(src, 0,
                     "columns of different lengths: " + std::to_string(cols.seq.size()) +
                         " sessions, " + std::to_string(n) + " items, " +
                         std::to_string(cols.time.size()) + " times");
  if (cols.item_ids.size() > static_cast<size_t>(kMaxIndex) ||
      cols.seq_ids.size() > static_cast<size_t>(kMaxIndex))
    throw InputError(src, 0, "more than 2^31-1 distinct items or sequences");
  const auto n_items = static_cast<int32_t>(cols.item_ids.size());
  const auto n_seqs = static_cast<int32_t>(cols.seq_ids.size());
  const bool scale = opt.time_scale != 1.0;
  for (size_t e = 0; e < n; ++e) {
    if (cols.item[e] < 0 || cols.item[e] >= n_items)
      throw InputError(src, static_cast<int64_t>(e) + 1,
                       "item index " + std::to_string(cols.item[e]) + " outside [0, " +
                           std::to_string(n_items) + ")");
    if (cols.seq[e] < 0 || cols.seq[e] >= n_seqs)
      throw InputError(src, static_cast<int64_t>(e) + 1,
                       "sequence index " + std::to_string(cols.seq[e]) + " outside [0, " +
                           std::to_string(n_seqs) + ")");
    if (!cols.time.empty()) {
      double& t = cols.time[e];
      if (!std::isfinite(t))
        throw InputError(src, static_cast<int64_t>(e) + 1,
                         std::string("time is ") + (std::isnan(t) ? "NaN" : "infinite"));
      if (scale) t *= opt.time_scale;
    }
  }
  EventLog log;
  log.source = src;
  for (const std::string& id : cols.item_ids) {
    if (id.empty()) throw InputError(src, 0, "an empty item id");
    const int32_t before = log.items.size();
    log.items.add(id);
    if (log.items.size() == before)
      throw InputError(src, 0, "item id '" + id + "' appears twice in the item list");
  }
  Events ev;
  ev.seq = std::move(cols.seq);
  ev.item = std::move(cols.item);
  ev.time = std::move(cols.time);
  ev.ids = std::move(cols.seq_ids);
  log.seqs = group(std::move(ev));
  check_time_unit(&log, opt, info);
  return log;
}

EventLog read_events(const std::string& path, const ReadOptions& opt) {
  return read_events(path, opt, nullptr);
}

EventLog data_detail::read_events_text(std::string_view data, const std::string& path,
                                       const ReadOptions& opt, ReadInfo* info) {
  ReadInfo local;
  if (!info) info = &local;
  *info = ReadInfo{};
  EventLog log = parse_text(data, path, opt, info, {});
  check_time_unit(&log, opt, info);
  return log;
}

}  // namespace seqrec
