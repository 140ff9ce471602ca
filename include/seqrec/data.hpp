// Reading and writing interaction logs, the synthetic data generator, and the two
// preprocessing pipelines (session-based and sequential leave-one-out).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "seqrec/dataset.hpp"

namespace seqrec {

/// File formats seqrec reads and writes.
enum class Format {
  Auto,       ///< detect from the extension and the first lines
  Delimited,  ///< GRU4Rec style: delimited columns (session, item, time), header optional
  Inter,      ///< RecBole atomic file: header "user_id:token item_id:token timestamp:float"
  Sequences,  ///< one sequence per line: "[id] i1 i2 ..." (space separated)
  Pairs,      ///< "user item" per line, lines in time order per user (no timestamps)
};
Format parse_format(const std::string& name);  ///< "auto", "tsv"/"delimited", "inter", ...
const char* format_name(Format f);

struct ReadOptions {
  Format format = Format::Auto;
  std::string delimiter;    ///< "" = detect; "\t", ",", ";", " " ...
  int header = -1;          ///< -1 = detect, 0 = no header line, 1 = header line
  std::string session_col;  ///< column name or 0-based index; "" = detect
  std::string item_col;     ///< column name or 0-based index; "" = detect
  std::string time_col;     ///< column name or 0-based index; "" = detect, "none" = no time
  double time_scale = 1.0;  ///< raw time * time_scale = seconds (1e-3 for milliseconds)
  /// Detect milliseconds, microseconds and nanoseconds read as seconds: when the median time
  /// (after time_scale) lies beyond kLatestPlausibleTime, every time is divided by the
  /// smallest of 1e3, 1e6, 1e9 that brings it back (ReadInfo::time_note says so). Off when
  /// the user named the unit (`--time-unit s`); then such times only get a note.
  bool detect_time_unit = true;
  int sequence_ids = -1;  ///< Sequences format: -1 detect, 1 first token is the id, 0 not
  std::string cache_dir;  ///< binary cache folder; "" = no cache
};

/// Reads an interaction log. Events are grouped by session/user; within a sequence they
/// are ordered by time (stable, so file order breaks ties). Throws InputError naming the
/// file, the line and what was expected.
EventLog read_events(const std::string& path, const ReadOptions& opt = {});

/// What read_events did: the layout it detected and whether the binary cache was used.
struct ReadInfo {
  Format format = Format::Auto;  ///< the format actually read (after detection)
  std::string layout;  ///< e.g. "delimiter '\\t', header; session=SessionId item=ItemId time=Time"
  bool from_cache = false;     ///< loaded from the binary cache instead of parsed
  bool cache_written = false;  ///< a new cache file was written
  std::string cache_path;      ///< the cache file for this input ("" when no cache_dir)
  std::string cache_note;      ///< why the cache was not used or written, if it was not
  std::string time_unit;       ///< "ms", "us" or "ns" when detect_time_unit converted the times
  std::string time_note;       ///< what was noticed about the times and the flag that changes it
};

/// 2200-01-01T00:00:00Z in unix seconds: a median time beyond it is not seconds.
inline constexpr double kLatestPlausibleTime = 7258118400.0;
/// As above, and reports what was done in `info` (may be null).
EventLog read_events(const std::string& path, const ReadOptions& opt, ReadInfo* info);

/// Interaction columns already mapped to indices: event e is item `item[e]` (an index into
/// `item_ids`) of sequence `seq[e]` (an index into `seq_ids`). What a host with its own
/// table of events (the Python binding: a pandas DataFrame, factorised) hands over instead
/// of a file.
struct EventColumns {
  std::vector<int32_t> seq;
  std::vector<std::string> seq_ids;
  std::vector<int32_t> item;
  std::vector<std::string> item_ids;
  std::vector<double> time;  ///< one per event, or empty when there are no times
  std::string source;        ///< names the data in messages, e.g. "DataFrame"
};

/// Builds an EventLog from columns the way read_events builds one from a parsed file: the
/// events are grouped by sequence in index order (first appearance, when the indices were
/// assigned in order of appearance), each sequence ordered by time, stably; the times are
/// multiplied by opt.time_scale and checked for their unit (opt.detect_time_unit, reported
/// in `info`, may be null). The item vocabulary is `item_ids` in index order. Throws
/// InputError naming `source` and the 1-based row for an index out of range, a time that is
/// NaN or infinite, duplicate or empty ids, columns of different lengths, or no events.
EventLog events_from_columns(EventColumns cols, const ReadOptions& opt = {},
                             ReadInfo* info = nullptr);

/// The cache file read_events would use for `path` with `opt` (needs opt.cache_dir).
/// Throws IoError when `path` cannot be examined.
std::string cache_file_for(const std::string& path, const ReadOptions& opt);

/// Writes sequences with their original ids in `format` (Delimited = tab-separated with
/// header "SessionId\tItemId\tTime"). Refuses to overwrite `protect` paths (the inputs).
void write_events(const std::string& path, const SequenceSet& seqs, const Vocab& items,
                  Format format = Format::Delimited);

/// Synthetic sessions: Zipf-like popularity, item-to-item transitions, varied lengths,
/// timestamps. Seeded and reproducible.
struct GenerateOptions {
  int64_t n_events = 200000;
  int32_t n_items = 5000;
  double zipf_exponent = 1.0;  ///< popularity ~ 1 / rank^exponent
  double mean_length = 4.0;    ///< mean session length (lengths >= 1, long tail)
  double follow_prob = 0.6;    ///< P(next item follows the current item's transitions)
  int32_t n_successors = 8;    ///< likely next items per item
  double days = 30.0;          ///< time span of the log
  uint64_t seed = 42;
};
EventLog generate_sessions(const GenerateOptions& opt);

/// GRU4Rec preprocessing (session-based protocol).
struct SessionSplitOptions {
  int min_session_length = 2;      ///< drop shorter sessions (before and after item filter)
  int min_item_support = 5;        ///< drop items with fewer events
  double test_seconds = 86400.0;   ///< test = sessions whose last event is in the last N s
  double valid_seconds = 86400.0;  ///< the same split applied inside train, for validation
  bool remove_repeats = false;     ///< collapse consecutive repeats of the same item
};

/// Sequential preprocessing (leave-one-out per user).
struct SequentialSplitOptions {
  int user_core = 5;  ///< k-core: users need >= user_core items
  int item_core = 5;  ///< k-core: items need >= item_core users' events
  bool remove_repeats = false;
};

/// The four files of a split. Session protocol: train_full -> test is the final run,
/// train_tr -> valid the validation run. Sequential protocol: `test` holds each user's
/// full sequence (last item = target), `train_full` all but the last item, `valid` all but
/// the last (second-last = target) and `train_tr` all but the last two.
struct PreparedSplit {
  std::string protocol;  ///< "session" or "sequential"
  Vocab items;           ///< the catalogue: train_full items (session) / all items after filtering
                         ///< (sequential)
  SequenceSet train_full, test, train_tr, valid;
  nlohmann::json stats;  ///< what the filters removed and the size of each part
  /// Cold items (PrepareOptions::cold_items), catalogue indices in increasing order: none of
  /// their events is in train_full or train_tr; they stay test and validation targets.
  std::vector<int32_t> cold_items;
};

PreparedSplit prepare_session(const EventLog& log, const SessionSplitOptions& opt);
PreparedSplit prepare_sequential(const EventLog& log, const SequentialSplitOptions& opt);

/// The protocol `prepare --protocol auto` picks for a log, and why.
///
/// Rule: no timestamps -> sequential (the session protocol needs times). Otherwise the
/// sequences of 2 or more events are examined: when at least kUserHistoryShare of them
/// span more than kSessionSpanSeconds (first to last event), they are user histories,
/// not sessions -> sequential; else session. Sessions last minutes to hours (rsc15-100k:
/// 0% span more than a day, the DIGINETICA sample 0.07%); user logs span weeks to years
/// (ml-100k: 32% of the users, although most rated everything in one sitting).
struct ProtocolChoice {
  std::string protocol;         ///< "session" or "sequential"
  std::string reason;           ///< one clause: what was seen in the data
  bool user_histories = false;  ///< the sequences look like user histories
  nlohmann::json facts;         ///< the counts the rule looked at
};
inline constexpr double kSessionSpanSeconds = 86400.0;
inline constexpr double kUserHistoryShare = 0.10;
ProtocolChoice choose_protocol(const SequenceSet& seqs);

/// Everything `seqrec prepare` does between reading and writing.
struct PrepareOptions {
  std::string protocol = "auto";  ///< "auto" (choose_protocol), "session" or "sequential"
  SessionSplitOptions session;
  SequentialSplitOptions sequential;
  /// Write a degenerate split (see prepare_split) instead of throwing InputError.
  bool force = false;
  /// Cold-start protocol: this fraction of the catalogue's items (in [0, 1); 0 = off),
  /// drawn at random with `seed`, is held out of training (apply_cold_items).
  double cold_items = 0.0;
  uint64_t seed = 42;  ///< seed of prepare's random choices (the cold items)
};

/// The cold-start protocol on a prepared split: draws round(fraction x catalogue) items with
/// `seed` (the same items for the same catalogue and seed) and removes every event of them
/// from train_full and train_tr (training sequences left shorter than 2 are dropped). They
/// stay in the catalogue and as targets. Session protocol: test and validation sessions
/// are unchanged, so a cold item is a target and, for the predictions after it, input.
/// Sequential protocol: the targets are those of the split without cold items; each
/// test/validation history loses its cold events (the input of every prediction is the
/// training history), and a sequence whose history is left empty is dropped. Records
/// split.cold_items and stats "cold_items"; throws InputError when the fraction rounds to no
/// item, or leaves no warm item or no training sequence.
void apply_cold_items(PreparedSplit* split, double fraction, uint64_t seed);

/// A test set is degenerate when it gives fewer than kMinTestPredictions predictions or
/// holds fewer than kMinTestEventShare of the split's events (rsc15, GRU4Rec's benchmark:
/// 0.22%; the one-session test set of a millisecond log read as seconds: a few events).
inline constexpr int64_t kMinTestPredictions = 10;
inline constexpr double kMinTestEventShare = 0.001;

/// Predictions the evaluation protocol makes on a part of a split: session, every next
/// event (sum of length - 1); sequential, the last item of each sequence of 2+ events.
int64_t split_predictions(const SequenceSet& part, const std::string& protocol);

/// Chooses the protocol (opt.protocol "auto": choose_protocol), runs prepare_session or
/// prepare_sequential, and records in `stats`:
/// - "detected": sentences for the user (seqrec prepare prints them on stderr), each
///   saying what was detected, what the split holds because of it and which flag changes
///   it: the protocol auto chose; an explicit session protocol on what looks like user
///   histories; what `read` (may be null) noticed about the time unit; a forced split;
/// - "protocol_choice": the rule's facts, the protocol asked for and the one used;
/// - "test_predictions", "valid_predictions", "test_event_share".
/// Throws InputError for a degenerate test set (see kMinTestPredictions) unless opt.force.
PreparedSplit prepare_split(const EventLog& log, const PrepareOptions& opt,
                            const ReadInfo* read = nullptr);

/// `seqrec prepare -o DIR`: throws InputError unless `dir` does not exist or is an empty
/// folder; a non-empty folder is accepted with `force` (its files named like the split's
/// are overwritten, others stay). A path that is not a folder is always refused. The
/// split's files follow the output rule of every writer (docs/cli.md, "Output files"):
/// none may be the input log `input_path`, even with `force`.
void check_split_folder(const std::string& dir, bool force, const std::string& input_path = "");

/// The names of a prepared split folder's files, as write_split writes them: items.tsv,
/// train_full.tsv, test.tsv, train_tr.tsv, valid.tsv, split.json and (with cold items)
/// cold_items.tsv.
const std::vector<std::string>& split_file_names();

/// Writes items.tsv (the catalogue, one id per line in index order), train_full.tsv,
/// test.tsv, train_tr.tsv, valid.tsv and split.json into `dir`
/// (created if needed). Refuses to write over `input_path`.
void write_split(const std::string& dir, const PreparedSplit& split, const std::string& input_path);

// ---- Reading a prepared split folder (the folder write_split writes) ----

/// Reads items.tsv (header "ItemId", one id per line, index order).
Vocab read_item_list(const std::string& path);

/// Which part of a prepared split to use: the final run (train_full -> test) or the
/// validation run (train_tr -> valid).
enum class SplitPart { Test, Valid };

/// Training sequences over a catalogue.
struct TrainData {
  Vocab items;
  SequenceSet train;
  std::string protocol;  ///< from split.json, "" for a plain file
  std::string source;    ///< the file the sequences came from
  nlohmann::json split;  ///< split.json contents (empty for a plain file)
};

/// `path` is a folder written by `seqrec prepare` (items.tsv + train_full.tsv or
/// train_tr.tsv) or a log file (its items form the catalogue).
TrainData load_train_data(const std::string& path, SplitPart part, const ReadOptions& opt);

/// The files that load_train_data and load_test_data may read for `path`: the split's
/// files (split_file_names()) for a folder, else `path` itself. Commands refuse an output
/// that is one of them.
std::vector<std::string> data_input_files(const std::string& path);

/// Test sequences mapped onto a model's catalogue.
struct TestData {
  SequenceSet test;
  int64_t dropped_events = 0;  ///< events whose item the model does not know
  std::string protocol;        ///< from split.json, "" for a plain file
  /// The split's cold items (cold_items.tsv, see apply_cold_items) known to the model, as
  /// model indices in increasing order; empty for a split without them or a plain file.
  std::vector<int32_t> cold_items;
  std::string source;
};

/// `path` is a prepared folder (test.tsv or valid.tsv) or a log file.
TestData load_test_data(const std::string& path, SplitPart part, const Vocab& items,
                        const ReadOptions& opt);

/// Statistics of a set of sequences: count, events, items, length distribution.
nlohmann::json sequence_stats(const SequenceSet& s);

}  // namespace seqrec
