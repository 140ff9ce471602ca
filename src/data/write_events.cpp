// write_events: the four formats, written atomically (temp file + rename).
#include <string>

#include "data/text_util.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

using namespace data_detail;

namespace {

void check_tokens(const std::vector<std::string>& tokens, const char* what, const std::string& path,
                  bool no_space) {
  for (const auto& t : tokens) {
    if (t.empty() || t.find_first_of(no_space ? "\t\n\r " : "\t\n\r") != std::string::npos) {
      throw InputError("cannot write '" + path + "': " + what + " id " + quote(t) +
                       " is empty or contains a separator (tab, newline" +
                       (no_space ? ", space" : "") + ")");
    }
  }
}

}  // namespace

void write_events(const std::string& path, const SequenceSet& seqs, const Vocab& items,
                  Format format) {
  if (format == Format::Auto) format = Format::Delimited;
  const bool space_sep = format == Format::Sequences || format == Format::Pairs;
  check_tokens(items.tokens(), "item", path, space_sep);
  check_tokens(seqs.ids, "sequence", path, space_sep);
  for (int32_t it : seqs.items) {
    if (it < 0 || it >= items.size()) {
      throw InputError("cannot write '" + path + "': item index " + std::to_string(it) +
                       " is outside the vocabulary of " + std::to_string(items.size()) + " items");
    }
  }
  AtomicWriter w(path);
  const bool with_times = seqs.has_times();
  int64_t ordinal = 0;  // stands in for the time when the set has none
  auto put_time = [&](size_t e) {
    if (with_times) {
      w.write_double(seqs.times[e]);
    } else {
      w.write_int(ordinal);
    }
    ++ordinal;
  };
  switch (format) {
    case Format::Delimited:
    case Format::Inter: {
      w.write(format == Format::Delimited ? "SessionId\tItemId\tTime\n"
                                          : "session_id:token\titem_id:token\ttimestamp:float\n");
      for (size_t s = 0; s < seqs.size(); ++s) {
        const std::string& id = seqs.ids[s];
        for (int64_t e = seqs.offsets[s]; e < seqs.offsets[s + 1]; ++e) {
          w.write(id);
          w.put('\t');
          w.write(items.token(seqs.items[static_cast<size_t>(e)]));
          w.put('\t');
          put_time(static_cast<size_t>(e));
          w.put('\n');
        }
      }
      break;
    }
    case Format::Sequences:
      for (size_t s = 0; s < seqs.size(); ++s) {
        if (seqs.length(s) == 0) continue;
        w.write(seqs.ids[s]);
        for (int64_t e = seqs.offsets[s]; e < seqs.offsets[s + 1]; ++e) {
          w.put(' ');
          w.write(items.token(seqs.items[static_cast<size_t>(e)]));
        }
        w.put('\n');
      }
      break;
    case Format::Pairs:
      for (size_t s = 0; s < seqs.size(); ++s) {
        for (int64_t e = seqs.offsets[s]; e < seqs.offsets[s + 1]; ++e) {
          w.write(seqs.ids[s]);
          w.put(' ');
          w.write(items.token(seqs.items[static_cast<size_t>(e)]));
          w.put('\n');
        }
      }
      break;
    case Format::Auto:
      break;
  }
  w.commit();
}

}  // namespace seqrec
