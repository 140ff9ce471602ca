// A live session as bytes, for keeping it outside the process: the value of a session in
// the Redis store and a record of a snapshot file share this encoding. Also the
// fingerprints that tell whether a stored session was written under the same catalogue
// (its history's item indices mean the same items) and the same model (its state can be
// continued), identical in every process that loaded the same model file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "seqrec/dataset.hpp"
#include "seqrec/model.hpp"

namespace seqrec::serve {

/// One session as stored.
struct StoredSession {
  uint64_t catalogue_fp = 0;  ///< catalogue_fingerprint() of the items `history` indexes
  uint64_t model_fp = 0;      ///< model_fingerprint() of the model that produced `state`
  int64_t length = 0;         ///< known events, all of them
  std::optional<double> last_event_timestamp;
  double last_used_unix = 0.0;   ///< wall-clock seconds of the last update
  std::vector<int32_t> history;  ///< the kept events, oldest first
  std::string state;             ///< Model::encode_state(), empty for models without state
};

/// "SQSS", format version (u32), catalogue and model fingerprints (u64), length (i64), a
/// flag and the last event timestamp (f64), last use (f64), history (u32 count + i32 each),
/// state (u32 size + bytes); little-endian.
std::string encode_session(const StoredSession& s);
/// Decodes encode_session()'s bytes; false (and `why`) for another format version or
/// damaged bytes. Indices are not range-checked here.
bool decode_session(std::string_view bytes, StoredSession& out, std::string* why = nullptr);

/// FNV-1a over the catalogue's item ids in order (two catalogues with the same fingerprint
/// give every index the same item).
uint64_t catalogue_fingerprint(const Vocab& items);
/// A 64-bit hash of the model's type, configuration and saved tensors: the same in every
/// process that loaded the same model file, different after retraining.
uint64_t model_fingerprint(const Model& model);

/// Writes `bytes` to `path` atomically: a new file created exclusively in the same folder
/// (mkostemp), written, fsynced, renamed over `path`, and the folder synced. IoError naming
/// the path on failure (the temporary file is removed).
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace seqrec::serve
