// Constants and helpers of the model file format (v1), shared by the writer, the reader
// and the tests. The layout is documented in docs/file-formats.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "seqrec/model.hpp"

namespace seqrec::io {
class OutputFile;
}

namespace seqrec::model_file {

inline constexpr char kMagic[8] = {'S', 'Q', 'R', 'C', 'M', 'O', 'D', 'L'};
inline constexpr char kEndMagic[8] = {'S', 'Q', 'R', 'C', 'E', 'N', 'D', '\0'};
inline constexpr uint32_t kFormatVersion = 1;
/// magic (8) + format version u32 + reserved u32 + header length u64.
inline constexpr size_t kPrefixSize = 24;
/// checksum u64 + end magic (8).
inline constexpr size_t kTrailerSize = 16;
/// Alignment of the data section and of every tensor in it.
inline constexpr size_t kAlign = 64;
/// Tensor names with this prefix belong to the bundle, not the model.
inline constexpr const char* kBundlePrefix = "bundle.";
/// Tensor names with this prefix hold a checkpoint's training state (optimiser moments,
/// best weights, ...), not the model.
inline constexpr const char* kTrainPrefix = "train.";

inline constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnvPrime = 0x100000001b3ull;

/// FNV-1a 64 over `n` bytes, continuing from `h`.
inline uint64_t fnv1a64(const void* data, size_t n, uint64_t h = kFnvOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kFnvPrime;
  }
  return h;
}

inline constexpr size_t align_up(size_t x, size_t a = kAlign) {
  return (x + a - 1) / a * a;
}

/// Writes a model file through an io::OutputFile (a regular file atomically: temporary
/// file, fsync, rename; see io/output_file.hpp). With `checkpoint` non-null the header gets
/// a "checkpoint" key with that object and `train_tensors` are stored under kTrainPrefix +
/// their name. save_model and save_checkpoint call this.
void write(const std::string& path, const Model& model, const Vocab& items,
           std::span<const int64_t> item_counts, const nlohmann::json& meta,
           const nlohmann::json* checkpoint, const std::vector<TensorEntry>& train_tensors);
/// The same into an OutputFile opened earlier (say, before a long training, so that an
/// unwritable output fails first); commits it.
void write(io::OutputFile& out, const Model& model, const Vocab& items,
           std::span<const int64_t> item_counts, const nlohmann::json& meta,
           const nlohmann::json* checkpoint, const std::vector<TensorEntry>& train_tensors);

/// A model file read back and validated: the bundle (model loaded), the JSON header, the
/// model's tensors and the kTrainPrefix tensors (prefix stripped). The entries point into
/// bundle.storage.
struct Contents {
  ModelBundle bundle;
  nlohmann::json header;
  std::vector<TensorEntry> model_tensors, train_tensors;
};
Contents read(const std::string& path);

/// The JSON header of a model file, read without the data section (no checksum check):
/// null when `path` is not a readable seqrec model file. For quick questions such as
/// "is this file a checkpoint?" before overwriting it.
nlohmann::json peek_header(const std::string& path);

}  // namespace seqrec::model_file
