// libFuzzer harness: the event-log reader with every format option, and what follows it
// (sequence statistics, the protocol choice, the two preprocessing pipelines); also the
// binary cache around the reader (a cache written and read back must give the same log, and
// a damaged cache file must be refused or give a consistent log, never crash).
//
// Input: 12 option bytes, then the file's bytes. Option byte 0 means "the default" (auto
// detection everywhere), so a plain text file with 12 zero bytes in front is a seed.
//   0 format        auto, delimited, inter, sequences, pairs
//   1 delimiter     detect, \t , ; space | tab comma semicolon, "\t" escaped, "ab" (refused),
//                   or the next byte itself
//   2 header        detect, none, yes
//   3-5 columns     session, item, time: detect, 0..3, a name, "none", "-1", a huge index
//   6 time unit     s, ms, us, ns, days; the high bit turns unit detection off
//   7 sequence ids  detect, no, yes
//   8 file name     .tsv .csv .inter .txt .dat (format detection looks at the extension)
//   9 protocol      auto, session, sequential; bit 2 remove repeats, bit 3 force
//  10 filters       min session length, min item support, k-cores (2 bits each)
//  11 mode          0: read text; 1: through the binary cache twice (written, then read back);
//                   2: the rest of the input is a cache file after a valid key
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/event_cache.hpp"
#include "data/read_text.hpp"
#include "fuzz_util.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"

using namespace seqrec;
using seqrec::fuzz::Bytes;

namespace {

std::string column_spec(uint8_t b, const char* name) {
  switch (b % 10) {
    case 0:
      return "";
    case 1:
      return "0";
    case 2:
      return "1";
    case 3:
      return "2";
    case 4:
      return "3";
    case 5:
      return name;
    case 6:
      return "none";
    case 7:
      return "-1";
    case 8:
      return "99999999999999999999";
    default:
      return "Name:token";
  }
}

void check_sequences(const SequenceSet& s, int32_t n_items, const char* what) {
  const std::string w = what;
  SEQREC_FUZZ_CHECK(s.offsets.size() == s.ids.size() + 1, w);
  SEQREC_FUZZ_CHECK(s.offsets.front() == 0, w);
  SEQREC_FUZZ_CHECK(static_cast<size_t>(s.offsets.back()) == s.items.size(), w);
  SEQREC_FUZZ_CHECK(s.times.empty() || s.times.size() == s.items.size(), w);
  for (size_t i = 0; i < s.size(); ++i) {
    SEQREC_FUZZ_CHECK(s.offsets[i + 1] >= s.offsets[i], w);
  }
  for (int32_t it : s.items) SEQREC_FUZZ_CHECK(it >= 0 && it < n_items, w);
}

/// What read_events promises: consistent CSR, items in the vocabulary, non-empty
/// sequences, events in time order within a sequence.
void check_log(const EventLog& log) {
  check_sequences(log.seqs, log.items.size(), "read log");
  SEQREC_FUZZ_CHECK(log.seqs.n_events() > 0, "a log that reads has events");
  for (size_t i = 0; i < log.seqs.size(); ++i) {
    SEQREC_FUZZ_CHECK(log.seqs.length(i) > 0, "sequence " + std::to_string(i) + " is empty");
    const auto t = log.seqs.seq_times(i);
    for (size_t k = 1; k < t.size(); ++k) {
      // NaN times would break the ordering the sort relies on.
      SEQREC_FUZZ_CHECK(!std::isnan(t[k]), "a NaN time");
      SEQREC_FUZZ_CHECK(t[k - 1] <= t[k], "sequence " + std::to_string(i) + " not in time order");
    }
  }
}

bool same_log(const EventLog& a, const EventLog& b) {
  return a.items.tokens() == b.items.tokens() && a.seqs.ids == b.seqs.ids &&
         a.seqs.offsets == b.seqs.offsets && a.seqs.items == b.seqs.items &&
         a.seqs.times.size() == b.seqs.times.size() &&
         std::equal(a.seqs.times.begin(), a.seqs.times.end(), b.seqs.times.begin(),
                    [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); });
}

void prepare(const EventLog& log, uint8_t protocol, uint8_t filters, const ReadInfo& info) {
  (void)sequence_stats(log.seqs);
  (void)choose_protocol(log.seqs);
  PrepareOptions po;
  po.protocol = protocol % 3 == 0 ? "auto" : protocol % 3 == 1 ? "session" : "sequential";
  po.session.remove_repeats = po.sequential.remove_repeats = protocol & 4;
  po.force = protocol & 8;
  po.session.min_session_length = 1 + (filters & 3);
  po.session.min_item_support = 1 + ((filters >> 2) & 3);
  po.sequential.user_core = 1 + ((filters >> 4) & 3);
  po.sequential.item_core = 1 + ((filters >> 6) & 3);
  const double windows[] = {86400.0, 1.0, 0.0, 1e9};
  po.session.test_seconds = windows[(protocol >> 4) & 3];
  po.session.valid_seconds = windows[(protocol >> 6) & 3];
  PreparedSplit split;
  try {
    split = prepare_split(log, po, &info);
  } catch (const InputError&) {
    return;  // a degenerate or impossible split, refused with a message
  }
  const int32_t n = split.items.size();
  check_sequences(split.train_full, n, "train_full");
  check_sequences(split.test, n, "test");
  check_sequences(split.train_tr, n, "train_tr");
  check_sequences(split.valid, n, "valid");
  (void)split_predictions(split.test, split.protocol);
  (void)split.stats.dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  ReadOptions opt;
  const Format formats[] = {Format::Auto, Format::Delimited, Format::Inter, Format::Sequences,
                            Format::Pairs};
  opt.format = formats[in.pick(5)];
  const uint8_t d = in.byte();
  const char* delims[] = {"", "\t", ",", ";", " ", "|", "tab", "comma", "semicolon", "\\t", "ab"};
  if (d % 12 < 11) {
    opt.delimiter = delims[d % 12];
  } else {
    opt.delimiter = std::string(1, static_cast<char>(in.byte()));
  }
  opt.header = static_cast<int>(in.pick(3)) - 1;
  opt.session_col = column_spec(in.byte(), "session_id");
  opt.item_col = column_spec(in.byte(), "ItemId");
  opt.time_col = column_spec(in.byte(), "timestamp");
  const uint8_t unit = in.byte();
  const double scales[] = {1.0, 1e-3, 1e-6, 1e-9, 86400.0};
  opt.time_scale = scales[(unit & 0x7f) % 5];
  opt.detect_time_unit = !(unit & 0x80);
  opt.sequence_ids = static_cast<int>(in.pick(3)) - 1;
  const char* names[] = {"log.tsv", "log.csv", "log.inter", "log.txt", "log.dat"};
  const std::string name = names[in.pick(5)];
  const uint8_t protocol = in.byte();
  const uint8_t filters = in.byte();
  const uint8_t mode = in.byte() % 3;
  const std::string_view text = in.rest();

  if (mode == 2) {
    // A cache file: a valid prefix up to the key, then the fuzzer's bytes.
    const std::string key = "fuzz-key";
    std::string file("SQRCEVT1", 8);
    const uint32_t version = 1;
    file.append(reinterpret_cast<const char*>(&version), 4);
    const std::string_view flags = in.take(4);
    file.append(flags);
    file.append(4 - flags.size(), '\0');
    const uint64_t key_len = key.size();
    file.append(reinterpret_cast<const char*>(&key_len), 8);
    file += key;
    file.append(in.rest());
    const std::string path = fuzz::write_scratch("cache.bin", file);
    EventLog log;
    Format f = Format::Auto;
    std::string why;
    if (data_detail::load_cache(path, key, &log, &f, &why)) {
      check_sequences(log.seqs, log.items.size(), "cached log");
      (void)format_name(f);
    }
    return 0;
  }

  ReadInfo info;
  EventLog log;
  try {
    if (mode == 0) {
      // The bytes in a buffer of their exact size, so that ASan sees reads past the end.
      log = data_detail::read_events_text(text, name, opt, &info);
    } else {
      const std::string path = fuzz::write_scratch(name, text);
      const std::string cache = fuzz::scratch_dir() + "/cache";
      std::filesystem::remove_all(cache);
      opt.cache_dir = cache;
      log = read_events(path, opt, &info);
      SEQREC_FUZZ_CHECK(!info.from_cache, "a fresh cache folder");
      if (info.cache_written) {
        ReadInfo again;
        const EventLog cached = read_events(path, opt, &again);
        SEQREC_FUZZ_CHECK(again.from_cache, again.cache_note);
        SEQREC_FUZZ_CHECK(same_log(log, cached), "the cached log differs from the parsed one");
        SEQREC_FUZZ_CHECK(again.format == info.format, "the cached format differs");
      }
    }
  } catch (const InputError&) {
    return 0;  // refused with a message naming the file and line
  }
  check_log(log);
  prepare(log, protocol, filters, info);
  return 0;
}
