// The registry of model types. Each type's file defines `ModelInfo NAME_model_info()`;
// registering a new type is one line in SEQREC_MODEL_TYPES below.
#include <string>

#include "seqrec/error.hpp"
#include "seqrec/model.hpp"

// clang-format off
#define SEQREC_MODEL_TYPES(X) \
  X(pop)                      \
  X(sr)                       \
  X(vsknn)                    \
  X(gru4rec)                  \
  X(sasrec)                   \
  X(dssm)
// clang-format on

namespace seqrec {

#define SEQREC_DECLARE_MODEL(name) ModelInfo name##_model_info();
SEQREC_MODEL_TYPES(SEQREC_DECLARE_MODEL)
#undef SEQREC_DECLARE_MODEL

const std::vector<ModelInfo>& model_registry() {
#define SEQREC_LIST_MODEL(name) name##_model_info(),
  static const std::vector<ModelInfo> registry = {SEQREC_MODEL_TYPES(SEQREC_LIST_MODEL)};
#undef SEQREC_LIST_MODEL
  return registry;
}

const ModelInfo& find_model(std::string_view type) {
  const auto& reg = model_registry();
  for (const ModelInfo& m : reg) {
    if (m.type == type) return m;
  }
  std::string known;
  for (const ModelInfo& m : reg) known += (known.empty() ? "" : ", ") + m.type;
  throw InputError("unknown model type '" + std::string(type) + "' (known: " + known + ")");
}

Config default_config(std::string_view type) {
  return Config(find_model(type).params);
}

const Preset& find_preset(const ModelInfo& info, const std::string& name) {
  for (const auto& p : info.presets)
    if (p.name == name) return p;
  std::string known;
  for (const auto& p : info.presets) known += (known.empty() ? "" : ", ") + p.name;
  throw InputError("--preset: model '" + info.type + "' has no preset '" + name + "'" +
                   (known.empty() ? std::string(" (it has none)") : " (known: " + known + ")"));
}

void apply_preset(Config& cfg, const ModelInfo& info, const std::string& name) {
  for (const auto& [param, value] : find_preset(info, name).values)
    cfg.set(param, value, "preset " + name);
}

Config model_config(const ModelInfo& info, const std::string& preset,
                    const std::string& config_file) {
  Config cfg(info.params);
  if (!preset.empty()) apply_preset(cfg, info, preset);
  if (!config_file.empty()) cfg.load_file(config_file);
  return cfg;
}

namespace {
[[noreturn]] void missing(const Model& m, const char* method, const char* capability) {
  throw Error("model '" + m.type() + "' does not implement " + method + ", which " + capability +
              " requires");
}
}  // namespace

void Model::step(SessionState&, int32_t) const {
  missing(*this, "step()", "incremental inference (new_state)");
}
void Model::score_state(const SessionState&, float*) const {
  missing(*this, "score_state()", "incremental inference (new_state)");
}
void Model::query_vectors(std::span<const std::span<const int32_t>>, std::span<const PrefixQuery>,
                          float*) const {
  missing(*this, "query_vectors()", "a dot-product head (dot_product_head)");
}
void Model::state_query(const SessionState&, float*) const {
  missing(*this, "state_query()", "a dot-product head with incremental inference");
}
void Model::encode_item(std::span<const int32_t>, std::span<const float>, float*, float*) const {
  missing(*this, "encode_item()", "adding items by their features (adds_items)");
}
void Model::query_vectors_with(std::span<const std::span<const int32_t>> seqs,
                               std::span<const PrefixQuery> queries, const float*, int32_t n_extra,
                               float* out) const {
  if (n_extra > 0) missing(*this, "query_vectors_with()", "adding items (adds_items)");
  query_vectors(seqs, queries, out);
}
std::string Model::encode_state(const SessionState&) const {
  missing(*this, "encode_state()", "incremental inference (new_state)");
}
std::unique_ptr<SessionState> Model::decode_state(std::string_view) const {
  missing(*this, "decode_state()", "incremental inference (new_state)");
}

std::unique_ptr<Model> create_model(std::string_view type, const Config& config) {
  const ModelInfo& info = find_model(type);
  // Every parameter of the type must be present: a Config built over another table
  // would otherwise fail later, far from its cause.
  for (const ParamSpec& p : info.params) {
    if (!config.has(p.name)) {
      throw InputError("model '" + info.type + "': the configuration has no parameter '" + p.name +
                       "'");
    }
  }
  return info.create(config);
}

}  // namespace seqrec
