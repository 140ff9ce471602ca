// libFuzzer harness: the feature-file reader (read_features: MovieLens movies.dat and
// users.dat, RecBole atomic files, S3-Rec's item -> attributes JSON, delimited tables) with
// column roles (--feature-columns) and text hashing options, then the alignment of the table
// to a vocabulary (align_features).
//
// Input: 4 option bytes, then the file's bytes. Option byte 0 means "the default" (detection
// everywhere), so a feature file with 4 zero bytes in front is a seed.
//   0 file name     .dat .item .user .csv .tsv .json .txt (RecBole is also told by its name)
//   1 columns       "" (detected), one of a few fixed specifications, or (values >= 0x80)
//                   the next (byte & 0x3f) bytes of the input as the specification itself
//   2 text          bits 0-2 text buckets (16, 17, 64, 1000, 32768, 2^24, 15 and 2^24 + 1,
//                   the last two refused); bit 3 no trigrams, bit 4 no words, bit 5 no year
//   3 alignment     which ids make the vocabulary: every other row's id (from the byte's
//                   value), plus ids the file lacks
// Invariants of a table that reads: a consistent CSR over rows() rows, every feature index
// in [0, n_features), finite weights, one name per dense feature, a column list with one id
// column, describe() that serialises; the alignment has one row per vocabulary id, each the
// table's row for that id (or empty), and counts that add up.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "seqrec/dataset.hpp"
#include "seqrec/error.hpp"
#include "seqrec/features.hpp"

using namespace seqrec;
using seqrec::fuzz::Bytes;

namespace {

const char* const kNames[] = {"features.dat", "movies.dat", "users.dat", "f.item", "f.user",
                              "f.csv",        "f.tsv",      "f.json",    "f.txt"};

const char* const kSpecs[] = {
    "",
    "0=id",
    "0=id,1=text,2=multi:|",
    "0=id,1=cat,2=num,3=cat,4=skip",
    "movieId=id,genres=multi:|,title=text",
    "item_id=id,title=text,categories=multi: ,price=num",
    "0=id,*=skip",
    "id=id,v=num_seq: ",
    "0=id,1=num_seq:;,2=multi:,",
    "1=id,0=text",
    "0=id,0=cat",          // a column named twice: refused
    "0=id,1=unknownrole",  // refused
    "2147483648=id",       // a field number past any line
    "0=id,1=multi:",       // empty separator: refused
};

void check_table(const FeatureTable& t) {
  const int32_t rows = t.rows();
  SEQREC_FUZZ_CHECK(rows > 0, "a table that reads has rows");
  SEQREC_FUZZ_CHECK(t.offsets.size() == static_cast<size_t>(rows) + 1, "offsets per row");
  SEQREC_FUZZ_CHECK(t.offsets.front() == 0, "offsets start at 0");
  for (size_t r = 0; r + 1 < t.offsets.size(); ++r)
    SEQREC_FUZZ_CHECK(t.offsets[r + 1] >= t.offsets[r], "row " + std::to_string(r));
  SEQREC_FUZZ_CHECK(static_cast<size_t>(t.offsets.back()) == t.index.size(), "CSR end");
  SEQREC_FUZZ_CHECK(t.index.size() == t.value.size(), "one weight per index");
  SEQREC_FUZZ_CHECK(t.text_buckets >= 0, "text buckets");
  const int64_t n_features = static_cast<int64_t>(t.names.size()) + t.text_buckets;
  SEQREC_FUZZ_CHECK(n_features == t.n_features(), "n_features");
  for (size_t i = 0; i < t.index.size(); ++i) {
    SEQREC_FUZZ_CHECK(
        t.index[i] >= 0 && t.index[i] < n_features,
        "feature index " + std::to_string(t.index[i]) + " of " + std::to_string(n_features));
    SEQREC_FUZZ_CHECK(std::isfinite(t.value[i]), "weight " + std::to_string(t.value[i]));
  }
  int ids = 0;
  for (const FeatureColumn& c : t.columns) ids += c.role == FeatureRole::Id;
  SEQREC_FUZZ_CHECK(ids == 1, "one id column, not " + std::to_string(ids));
  (void)t.describe().dump();
}

void check_alignment(const FeatureTable& t, uint8_t how) {
  Vocab vocab;
  const int32_t step = 1 + how % 3;
  int32_t expected = 0;
  for (int32_t r = (how >> 2) % 2; r < t.rows(); r += step) {
    vocab.add(t.ids.token(r));
    ++expected;
  }
  const int32_t extra = (how >> 3) % 3;
  for (int32_t i = 0; i < extra; ++i) {
    const std::string id = "\x01no such id " + std::to_string(i);
    if (t.ids.find(id) < 0) vocab.add(id);
  }
  FeatureAlignment a;
  SparseFeatures s;
  try {
    s = align_features(t, vocab, &a);
  } catch (const InputError&) {
    SEQREC_FUZZ_CHECK(expected == 0, "alignment refused with ids in common");
    return;
  }
  SEQREC_FUZZ_CHECK(a.matched == expected, "matched " + std::to_string(a.matched));
  SEQREC_FUZZ_CHECK(a.matched + a.without_features == vocab.size(), "alignment counts");
  SEQREC_FUZZ_CHECK(a.matched + a.not_in_vocab == t.rows(), "rows not in the vocabulary");
  SEQREC_FUZZ_CHECK(s.rows() == vocab.size(), "one row per vocabulary id");
  SEQREC_FUZZ_CHECK(s.n_features == t.n_features(), "feature count kept");
  SEQREC_FUZZ_CHECK(static_cast<size_t>(s.offsets.back()) == s.index.size(), "CSR end");
  for (int32_t i = 0; i < vocab.size(); ++i) {
    const int32_t r = t.ids.find(vocab.token(i));
    const size_t want = r < 0 ? 0
                              : static_cast<size_t>(t.offsets[static_cast<size_t>(r) + 1] -
                                                    t.offsets[static_cast<size_t>(r)]);
    SEQREC_FUZZ_CHECK(s.row_index(i).size() == want, "row " + std::to_string(i) + " length");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const uint8_t name = in.byte(), spec = in.byte(), text = in.byte(), align = in.byte();
  FeatureReadOptions opt;
  if (spec & 0x80) {
    opt.columns = std::string(in.take(spec & 0x3f));
  } else {
    opt.columns = kSpecs[spec % (sizeof kSpecs / sizeof kSpecs[0])];
  }
  static const int64_t kBuckets[] = {
      16, 17, 64, 1000, 32768, kMaxTextBuckets, 15, kMaxTextBuckets + 1};
  opt.text_buckets = kBuckets[text & 7];
  opt.text_trigrams = !(text & 8);
  opt.text_words = !(text & 16);
  opt.title_year = !(text & 32);
  const std::string path =
      seqrec::fuzz::write_scratch(kNames[name % (sizeof kNames / sizeof kNames[0])], in.rest());
  FeatureTable t;
  try {
    t = read_features(path, opt);
  } catch (const InputError& e) {
    // A refusal must say what is wrong; the file's own problems name the file.
    SEQREC_FUZZ_CHECK(*e.what() != '\0', "an empty message");
    return 0;
  }
  check_table(t);
  check_alignment(t, align);
  return 0;
}
