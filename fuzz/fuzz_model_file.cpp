// libFuzzer harness: the model-file and checkpoint loaders, and what a loaded model does.
//
// The checksum over a model file would stop almost every mutation at "checksum mismatch",
// so the harness writes a correct one (and the end marker) before loading. Two layouts of
// the input:
//   - a whole model file ("SQRCMODL..."): used as it is, checksum fixed up; mutations reach
//     the prefix checks (version, header length, data size) and everything after;
//   - otherwise "JSON header \0 data section": the harness writes the prefix (magic,
//     version 1, the header's length), pads the header to 64 bytes and appends the data,
//     so that mutations of the JSON (names, shapes, offsets, configuration, item ids)
//     keep the file's framing intact. fuzz/make_corpus.sh turns model files into this
//     layout.
// A file that loads is then used like `seqrec recommend` and the server use it: scores for a
// few prefixes, session state stepped and scored, query vectors of a dot-product head, and
// saved again: the saved copy must load and give the same scores. A checkpoint is read with
// load_checkpoint as well.
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "io/model_file.hpp"
#include "seqrec/checkpoint.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"

using namespace seqrec;
namespace mf = seqrec::model_file;

namespace {

std::string build_file(const uint8_t* data, size_t size) {
  std::string file;
  if (size >= 8 && std::memcmp(data, mf::kMagic, 8) == 0) {
    file.assign(reinterpret_cast<const char*>(data), size);
  } else {
    const char* p = reinterpret_cast<const char*>(data);
    const void* nul = std::memchr(p, '\0', size);
    const size_t header_len = nul ? static_cast<size_t>(static_cast<const char*>(nul) - p) : size;
    file.append(mf::kMagic, 8);
    const uint32_t version = mf::kFormatVersion, reserved = 0;
    const uint64_t len = header_len;
    file.append(reinterpret_cast<const char*>(&version), 4);
    file.append(reinterpret_cast<const char*>(&reserved), 4);
    file.append(reinterpret_cast<const char*>(&len), 8);
    file.append(p, header_len);
    file.append(mf::align_up(file.size()) - file.size(), '\0');
    if (nul) file.append(p + header_len + 1, size - header_len - 1);
    file.append(16, '\0');  // checksum and end marker, below
  }
  if (file.size() >= mf::kPrefixSize + mf::kTrailerSize) {
    const size_t body = file.size() - mf::kTrailerSize;
    const uint64_t sum = mf::fnv1a64(file.data(), body);
    std::memcpy(file.data() + body, &sum, 8);
    std::memcpy(file.data() + body + 8, mf::kEndMagic, 8);
  }
  return file;
}

/// A few query prefixes over the model's items.
struct Queries {
  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::span<const int32_t>> spans;
  std::vector<PrefixQuery> queries;
  explicit Queries(int32_t n_items) {
    seqs.push_back({0});
    seqs.push_back({n_items - 1, 0, n_items / 2, n_items - 1, n_items / 3});
    for (const auto& s : seqs) spans.emplace_back(s);
    queries = {{0, 1}, {1, 1}, {1, 3}, {1, 5}};
  }
};

std::vector<float> use_model(const Model& m) {
  const int32_t n = m.n_items();
  SEQREC_FUZZ_CHECK(n > 0, "a loaded model has items");
  (void)m.type();
  (void)m.config().to_json().dump();
  SEQREC_FUZZ_CHECK(m.context_length() >= 0, "context length");
  const Queries q(n);
  std::vector<float> scores(q.queries.size() * static_cast<size_t>(n));
  m.score(q.spans, q.queries, scores.data());

  const DotProductHead head = m.dot_product_head();
  if (head.dim > 0) {
    SEQREC_FUZZ_CHECK(head.items != nullptr, "a head with dim > 0 has item vectors");
    std::vector<float> qv(q.queries.size() * static_cast<size_t>(head.dim));
    m.query_vectors(q.spans, q.queries, qv.data());
  }
  if (std::unique_ptr<SessionState> st = m.new_state()) {
    std::vector<float> out(static_cast<size_t>(n));
    std::vector<float> qv(static_cast<size_t>(std::max(head.dim, 0)));
    for (int32_t item : q.seqs[1]) {
      m.step(*st, item);
      m.score_state(*st, out.data());
      if (head.dim > 0) m.state_query(*st, qv.data());
    }
    std::unique_ptr<SessionState> copy = st->clone();
    (void)copy->bytes();
  }
  return scores;
}

bool same_scores(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  omp_set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_scratch("model.seqrec", build_file(data, size));
  (void)model_file_kind(path);  // the header-only look (peek_header)
  mf::Contents c;
  try {
    c = mf::read(path);
  } catch (const Error&) {
    return 0;  // refused with a message naming the file
  }
  const ModelBundle& b = c.bundle;
  SEQREC_FUZZ_CHECK(b.model != nullptr, "a loaded bundle has a model");
  SEQREC_FUZZ_CHECK(b.items.size() == b.model->n_items(), "catalogue and model agree");
  SEQREC_FUZZ_CHECK(b.item_counts.empty() || b.item_counts.size() == size_t(b.items.size()),
                    "item counts");
  std::vector<float> scores;
  try {
    scores = use_model(*b.model);
  } catch (const Error& e) {
    // A file that loads must be usable: an error here means a check missing in load().
    fuzz::fail(std::string("a loaded model fails: ") + e.what());
  }

  if (c.header.contains("checkpoint")) {
    try {
      const Checkpoint ck = load_checkpoint(path);
      SEQREC_FUZZ_CHECK(ck.state.epoch >= 0, "checkpoint epoch");
    } catch (const InputError&) {
    }
  }

  // Saved again, the model must load and score the same.
  const std::string again = fuzz::scratch_dir() + "/resaved.seqrec";
  try {
    save_model(again, b);
  } catch (const InputError&) {
    return 0;  // e.g. item ids that are not UTF-8 cannot go into the JSON header
  }
  ModelBundle b2;
  try {
    b2 = load_model(again);
  } catch (const Error& e) {
    fuzz::fail(std::string("a saved model does not load: ") + e.what());
  }
  SEQREC_FUZZ_CHECK(same_scores(scores, use_model(*b2.model)),
                    "the saved model scores differently");
  return 0;
}
