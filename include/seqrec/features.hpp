// Item and user features: files that describe an item (or a user) by its id, read into a
// sparse feature matrix over one feature index space, and aligned to the Vocab of a log.
//
// Formats (docs/file-formats.md#feature-files):
//   - delimited tables with a header (tab, comma with "quotes", ';' or '|'), columns typed
//     by an option string or detected;
//   - MovieLens' '::'-separated movies.dat (MovieID::Title (Year)::Genre|Genre) and
//     users.dat (UserID::Gender::Age::Occupation::Zip), recognised by their shape;
//   - RecBole atomic files (.item/.user): tab-separated, header `name:token`,
//     `name:token_seq`, `name:float`, `name:float_seq`;
//   - S3-Rec's item -> [attribute ids] JSON object (Beauty_item2attributes.json).
//
// Every column becomes features: a categorical value is one feature ("genres=Comedy",
// weight 1), a numeric column one feature whose weight is the standardised value, and text
// is hashed (DSSM's letter trigrams of "#word#" and, optionally, the words themselves) into
// `text_buckets` shared features.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "seqrec/dataset.hpp"

namespace seqrec {

/// What a column of a feature file holds.
enum class FeatureRole {
  Id,      ///< the item (or user) id; exactly one column
  Cat,     ///< one categorical value
  Multi,   ///< several categorical values separated by FeatureColumn::sep
  Text,    ///< free text: hashed letter trigrams and words
  Num,     ///< a number (standardised over the file)
  NumSeq,  ///< numbers separated by sep, one feature per position (RecBole float_seq)
  Skip,    ///< ignored
};

/// The name of a role as written in a column specification ("id", "cat", "multi", ...).
const char* feature_role_name(FeatureRole r);

/// One column and what it holds.
struct FeatureColumn {
  std::string name;   ///< header name (or "colN" without a header)
  int32_t index = 0;  ///< 0-based field position
  FeatureRole role = FeatureRole::Skip;
  std::string sep;  ///< separator of Multi / NumSeq values
};

/// How to read a feature file.
struct FeatureReadOptions {
  /// Column roles, "" = detected. Comma-separated NAME=ROLE entries, NAME a header name or
  /// a 0-based field number; ROLE one of id, cat, multi[:SEP] (SEP default '|'), text,
  /// num, skip. Columns not named are detected (or skipped when the entry `*=skip` is
  /// given). E.g. "movieId=id,genres=multi:|,title=text".
  std::string columns;
  /// Hash space of text features: letter trigrams and words land in this many buckets.
  int64_t text_buckets = 32768;
  bool text_trigrams = true;  ///< DSSM letter trigrams of "#word#"
  bool text_words = true;     ///< word unigrams
  /// MovieLens movies.dat: the year in "Title (1995)" becomes the categorical feature
  /// year=1995 and is removed from the title text.
  bool title_year = true;
};

/// Bounds of FeatureReadOptions::text_buckets (anything else is an InputError).
inline constexpr int64_t kMinTextBuckets = 16;
inline constexpr int64_t kMaxTextBuckets = int64_t{1} << 24;

/// A feature file as read: one row of sparse features per id, in file order.
struct FeatureTable {
  std::string source;  ///< the path
  std::string format;  ///< "movielens-movies", "movielens-users", "recbole", "json", "table"
  Vocab ids;           ///< row r is the features of ids.token(r)
  std::vector<int64_t> offsets{0};  ///< CSR: row r's entries are [offsets[r], offsets[r+1])
  std::vector<int32_t> index;       ///< feature index of each entry, in [0, n_features)
  std::vector<float> value;         ///< its weight
  /// Names of the dense (non-hashed) features: "genres=Comedy", "age" (numeric), ...;
  /// features [dense_features(), n_features) are the text hash buckets.
  std::vector<std::string> names;
  int64_t text_buckets = 0;  ///< 0 when no column is text
  std::vector<FeatureColumn> columns;
  /// The options the file was read with (what encoding a new item the same way needs).
  FeatureReadOptions read_options;
  /// Mean and standard deviation (over the rows that have it) of each numeric feature, by
  /// feature index: a numeric value v is stored as (v - mean) / sd (0 when sd is 0).
  struct NumericStat {
    int32_t feature = 0;
    double mean = 0.0, sd = 0.0;
  };
  std::vector<NumericStat> numeric;

  int32_t rows() const { return ids.size(); }
  int32_t dense_features() const { return static_cast<int32_t>(names.size()); }
  int32_t n_features() const { return static_cast<int32_t>(names.size() + text_buckets); }
  /// A description for model files and messages: source, format, columns and roles,
  /// feature counts. Always valid for JSON: bytes of the path, column names or separators
  /// that are not UTF-8 (a Latin-1 header) are written as "\xNN".
  nlohmann::json describe() const;
};

/// Reads a feature file. Throws InputError naming the file and line for a malformed row
/// (wrong number of fields, a duplicate id, a number that does not parse), for conflicting
/// or unknown column roles, for text_buckets outside [kMinTextBuckets, kMaxTextBuckets],
/// and for a file without rows; IoError when it cannot be read.
FeatureTable read_features(const std::string& path, const FeatureReadOptions& opt = {});

/// Parses a column specification (FeatureReadOptions::columns) into (name, role, sep)
/// entries; throws InputError for an unknown role or a column named twice.
std::vector<FeatureColumn> parse_feature_columns(const std::string& spec);

/// The hashed text features of `text` (lower-cased ASCII letters and digits; everything
/// else separates words): for each word w, the letter trigrams of "#w#" and w itself, each
/// hashed into [0, buckets), with counts as weights (sorted by bucket, merged). Appended
/// to (index, value), bucket b written as base + b.
void hash_text(std::string_view text, int64_t buckets, bool trigrams, bool words, int32_t base,
               std::vector<int32_t>& index, std::vector<float>& value);

/// Encodes the features of one new item exactly as read_features() encoded the rows of
/// the file a model was trained with: the same columns and roles, the same dense feature
/// names (a categorical value the file never had gives no feature), the numeric columns
/// standardised with the file's mean and deviation, text hashed into the same buckets with
/// the same n-gram settings. It travels in a model file's metadata
/// (meta["item_feature_encoder"], written by `seqrec train --item-features`), so that a
/// server can add items with only the model file (POST /v1/items).
class FeatureEncoder {
 public:
  FeatureEncoder() = default;
  /// The encoder of a table as read_features() returned it.
  explicit FeatureEncoder(const FeatureTable& table);
  /// From to_json(); InputError naming `where` when it is malformed.
  static FeatureEncoder from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;

  /// The result of encode(): a sorted sparse row, duplicates summed.
  struct Row {
    std::vector<int32_t> index;
    std::vector<float> value;
    /// Values that name no feature of the file (a new genre, a numeric column the file
    /// never filled): they add nothing, and are listed as "column=value".
    std::vector<std::string> unknown_values;
  };
  /// Encodes {"column": value, ...}. Values by role: cat a string or number; multi a
  /// string (split at the column's separator) or an array of strings/numbers; text a
  /// string; num a number or a numeric string; num_seq an array of numbers or a string
  /// split at the separator; a skip column is ignored; null or "" is a missing value.
  /// InputError naming the field ("features.genres") for a column the file does not have,
  /// the id column, a value of the wrong type, a string longer than max_value_bytes, or a
  /// non-finite number.
  Row encode(const nlohmann::json& features, size_t max_value_bytes = 65536) const;

  int32_t n_features() const { return static_cast<int32_t>(names_.size() + text_buckets_); }
  const std::vector<FeatureColumn>& columns() const { return columns_; }
  const std::string& format() const { return format_; }

 private:
  std::string format_;
  std::vector<FeatureColumn> columns_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, int32_t> index_;                  // dense name -> feature
  std::unordered_map<int32_t, std::pair<double, double>> numeric_;  // feature -> mean, sd
  int64_t text_buckets_ = 0;
  bool trigrams_ = true, words_ = true, title_year_ = false;
};

/// Features of the items (or users) of a Vocab: row i belongs to vocab.token(i).
struct SparseFeatures {
  int32_t n_features = 0;
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> index;
  std::vector<float> value;

  int32_t rows() const { return static_cast<int32_t>(offsets.size()) - 1; }
  std::span<const int32_t> row_index(int32_t r) const {
    return {
        index.data() + offsets[static_cast<size_t>(r)],
        static_cast<size_t>(offsets[static_cast<size_t>(r) + 1] - offsets[static_cast<size_t>(r)])};
  }
  std::span<const float> row_value(int32_t r) const {
    return {
        value.data() + offsets[static_cast<size_t>(r)],
        static_cast<size_t>(offsets[static_cast<size_t>(r) + 1] - offsets[static_cast<size_t>(r)])};
  }
};

/// How a feature table met a Vocab.
struct FeatureAlignment {
  int64_t matched = 0;           ///< vocab ids with a row in the file
  int64_t without_features = 0;  ///< vocab ids the file lacks (an empty row each)
  int64_t not_in_vocab = 0;      ///< file rows whose id the vocab lacks (ignored)
  nlohmann::json to_json() const;
};

/// The rows of `table` in the order of `vocab` (ids the file lacks get an empty row).
/// Throws InputError naming the file when no id is in common ("a feature file for another
/// data set?"). `what` names the ids in that message ("item", "user").
SparseFeatures align_features(const FeatureTable& table, const Vocab& vocab,
                              FeatureAlignment* report, const std::string& what = "item");

}  // namespace seqrec
