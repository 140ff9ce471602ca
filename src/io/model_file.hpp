// Constants and helpers of the model file format (v1), shared by the writer, the reader
// and the tests. The layout is documented in docs/file-formats.md.
#pragma once

#include <cstddef>
#include <cstdint>

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

}  // namespace seqrec::model_file
