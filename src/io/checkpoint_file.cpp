// Checkpoint files: model files with a "checkpoint" header object and "train.*" tensors
// (see include/seqrec/checkpoint.hpp and docs/file-formats.md).
#include <string>

#include "io/model_file.hpp"
#include "seqrec/checkpoint.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

namespace mf = model_file;

void save_checkpoint(const std::string& path, const Model& model, const Vocab& items,
                     std::span<const int64_t> item_counts, const nlohmann::json& meta,
                     const TrainingState& state, const nlohmann::json& info) {
  nlohmann::json ck = info.is_object() ? info : nlohmann::json::object();
  ck["epoch"] = state.epoch;
  ck["stopped_early"] = state.stopped_early;
  ck["state"] = state.values.is_null() ? nlohmann::json::object() : state.values;
  mf::write(path, model, items, item_counts, meta, &ck, state.tensors);
}

Checkpoint load_checkpoint(const std::string& path) {
  mf::Contents c = mf::read(path);
  const auto it = c.header.find("checkpoint");
  if (it == c.header.end())
    throw InputError(path, 0,
                     "not a training checkpoint but a final model file (written by `seqrec "
                     "train -o`); resume from the file given to --checkpoint");
  const nlohmann::json& ck = *it;
  if (!ck.is_object()) throw InputError(path, 0, "header field 'checkpoint' is not an object");
  auto bad = [&](const std::string& field, const char* what) {
    throw InputError(path, 0, "checkpoint field '" + field + "' missing or not " + what);
  };
  const auto ep = ck.find("epoch");
  if (ep == ck.end() || !ep->is_number_integer() || *ep < 0) bad("epoch", "an integer >= 0");
  const auto se = ck.find("stopped_early");
  if (se == ck.end() || !se->is_boolean()) bad("stopped_early", "a boolean");
  const auto st = ck.find("state");
  if (st == ck.end() || !st->is_object()) bad("state", "an object");
  Checkpoint out;
  out.state.epoch = ep->get<int64_t>();
  out.state.stopped_early = se->get<bool>();
  out.state.values = *st;
  out.state.tensors = std::move(c.train_tensors);
  out.state.weights = std::move(c.model_tensors);
  out.state.source = path;
  out.info = ck;
  out.bundle = std::move(c.bundle);
  return out;
}

std::string model_file_kind(const std::string& path) {
  const nlohmann::json h = mf::peek_header(path);
  if (!h.is_object()) return "";
  return h.contains("checkpoint") ? "checkpoint" : "model";
}

}  // namespace seqrec
