// Binary cache of parsed EventLogs: cache_dir/<hash>.bin, keyed by the input file's
// absolute path, size, mtime and every ReadOptions field.
#pragma once

#include <string>

#include "seqrec/data.hpp"

namespace seqrec::data_detail {

/// The key string (hashed into the file name and stored inside the file).
/// Throws IoError when `path` cannot be examined.
std::string cache_key(const std::string& path, const ReadOptions& opt);
std::string cache_path_for_key(const std::string& cache_dir, const std::string& key);

/// Loads `file` if it exists and holds `key` with a valid layout. On any problem returns
/// false and says why in *why (empty when the file simply does not exist).
bool load_cache(const std::string& file, const std::string& key, EventLog* log, Format* format,
                std::string* why);
/// Writes the cache atomically (temp file + rename). Returns false (with *why) on failure.
bool save_cache(const std::string& file, const std::string& key, const EventLog& log, Format format,
                std::string* why);

}  // namespace seqrec::data_detail
