// Small helpers shared by the data readers and writers: whole-file reading, atomic
// buffered writing, a fast string_view -> index table, and number/date parsing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace seqrec::io {
class OutputFile;
}

namespace seqrec::data_detail {

/// Reads the whole file into a string. IoError naming the path on failure.
std::string read_file(const std::string& path);

/// The bytes of a file: memory-mapped for regular files (no copy), read into memory for
/// anything else (pipes). IoError naming the path on failure.
class FileData {
 public:
  explicit FileData(const std::string& path);
  ~FileData();
  FileData(const FileData&) = delete;
  FileData& operator=(const FileData&) = delete;
  std::string_view view() const {
    return map_ ? std::string_view(static_cast<const char*>(map_), size_) : std::string_view(copy_);
  }
  /// Unmaps / frees the bytes (view() becomes empty).
  void release();

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
  std::string copy_;
};

/// Buffered writing through an io::OutputFile: a regular file is replaced atomically by
/// commit() (a temporary file created exclusively, then renamed), a device or FIFO written
/// through; the destructor drops an uncommitted file. IoError on any failure.
class AtomicWriter {
 public:
  explicit AtomicWriter(std::string path);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  void write(std::string_view s) {
    if (buf_.size() + s.size() > kFlushAt) {
      flush();
      if (s.size() >= kFlushAt) return write_direct(s);
    }
    buf_.append(s);
  }
  void put(char c) {
    if (buf_.size() + 1 > kFlushAt) flush();
    buf_.push_back(c);
  }
  void write_int(int64_t v);
  /// Shortest text that reads back as exactly `v` (integers without a decimal point).
  void write_double(double v);
  void commit();
  const std::string& path() const { return path_; }

 private:
  static constexpr size_t kFlushAt = 1 << 20;
  void flush();
  void write_direct(std::string_view s);
  std::string path_;
  std::unique_ptr<io::OutputFile> out_;
  std::string buf_;
};

/// 64-bit hash of a byte string (wyhash-style mixing, 8 bytes at a time).
inline uint64_t hash_bytes(std::string_view s, uint64_t seed = 0x9E3779B97F4A7C15ULL) {
  auto mix = [](uint64_t a, uint64_t b) {
    __uint128_t r = static_cast<__uint128_t>(a) * b;
    return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
  };
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = seed ^ (n * 0xA0761D6478BD642FULL);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix(h ^ w, 0xE7037ED1A0B428DBULL);
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  if (n > 0) std::memcpy(&w, p, n);
  h = mix(h ^ w ^ 0x8EBC6AF09C88C6E3ULL, 0x589965CC75374CC3ULL);
  return mix(h, 0x1D8E4E27C47D124FULL);
}

/// Open-addressing table from a token to a dense index in insertion order. A slot is 16
/// bytes: a 32-bit tag (hash bits + length), the index, and the first 8 bytes of the key,
/// so that keys of up to 8 bytes are compared without leaving the slot. The table owns
/// copies of its keys (in one arena). Keys longer than kMaxKey bytes are not accepted
/// (get_or_add returns -1).
class TokenTable {
 public:
  static constexpr size_t kMaxKey = (1u << 24) - 1;

  explicit TokenTable(size_t expected = 1024) { rehash(expected * 2 + 16); }
  /// Index of `key`; if absent, inserts it with index size() and sets *inserted.
  int32_t get_or_add(std::string_view key, bool* inserted) {
    *inserted = false;
    if (key.size() > kMaxKey) return -1;
    Slot probe;
    make(key, &probe);
    size_t pos = position(probe.tag);
    while (true) {
      Slot& s = slots_[pos];
      if (s.index < 0) break;
      if (equal(s, probe, key)) return s.index;
      pos = (pos + 1) & mask_;
    }
    probe.index = static_cast<int32_t>(entries_.size());
    entries_.push_back((static_cast<uint64_t>(arena_.size()) << 24) | key.size());
    arena_.append(key);
    slots_[pos] = probe;
    *inserted = true;
    if (entries_.size() * 2 > slots_.size()) rehash(slots_.size() * 2);
    return probe.index;
  }
  int32_t find(std::string_view key) const {
    if (key.size() > kMaxKey) return -1;
    Slot probe;
    make(key, &probe);
    size_t pos = position(probe.tag);
    while (true) {
      const Slot& s = slots_[pos];
      if (s.index < 0) return -1;
      if (equal(s, probe, key)) return s.index;
      pos = (pos + 1) & mask_;
    }
  }
  size_t size() const { return entries_.size(); }
  std::string_view key(size_t i) const {
    return std::string_view(arena_).substr(entries_[i] >> 24, entries_[i] & kMaxKey);
  }

 private:
  struct Slot {
    uint64_t w = 0;  // the first 8 bytes of the key, zero padded
    uint32_t tag = 0;
    int32_t index = -1;
  };
  static void make(std::string_view key, Slot* s) {
    uint64_t h;
    if (key.size() <= 8) {
      std::memcpy(&s->w, key.data(), key.size());
      h = (s->w ^ (key.size() * 0xA0761D6478BD642FULL)) * 0xBF58476D1CE4E5B9ULL;
      h = (h ^ (h >> 31)) * 0x94D049BB133111EBULL;
      h ^= h >> 29;
    } else {
      std::memcpy(&s->w, key.data(), 8);
      h = hash_bytes(key);
    }
    s->tag = (static_cast<uint32_t>(h >> 32) & ~31u) |
             static_cast<uint32_t>(std::min<size_t>(key.size(), 31));
  }
  size_t position(uint32_t tag) const {
    return static_cast<size_t>((static_cast<uint64_t>(tag) * 0x9E3779B97F4A7C15ULL) >> shift_);
  }
  bool equal(const Slot& s, const Slot& probe, std::string_view key) const {
    if (s.tag != probe.tag || s.w != probe.w) return false;
    if (key.size() <= 8) return true;
    const uint64_t e = entries_[static_cast<size_t>(s.index)];
    return (e & kMaxKey) == key.size() &&
           std::memcmp(arena_.data() + (e >> 24), key.data(), key.size()) == 0;
  }
  void rehash(size_t want) {
    size_t cap = 16;
    int bits = 4;
    while (cap < want) cap <<= 1, ++bits;
    std::vector<Slot> old(cap);
    old.swap(slots_);
    mask_ = cap - 1;
    shift_ = 64 - bits;
    for (const Slot& s : old) {
      if (s.index < 0) continue;
      size_t pos = position(s.tag);
      while (slots_[pos].index >= 0) pos = (pos + 1) & mask_;
      slots_[pos] = s;
    }
  }
  std::vector<Slot> slots_;
  std::string arena_;
  std::vector<uint64_t> entries_;  // arena offset << 24 | length
  size_t mask_ = 0;
  int shift_ = 60;
};

/// Parses the whole of `s` as a finite double. False on junk, NaN, inf or overflow.
bool parse_double(std::string_view s, double* out);
/// Parses "YYYY-MM-DD" optionally followed by [T or space]"HH:MM[:SS[.fff]]" and an
/// optional "Z", as UTC seconds since 1970-01-01.
bool parse_date(std::string_view s, double* out);
/// True when `s` is a (possibly signed) decimal number.
bool is_number(std::string_view s);
/// Lower-cased copy.
std::string to_lower(std::string_view s);
/// Printable excerpt of a token for error messages (control bytes escaped, truncated).
std::string quote(std::string_view s, size_t max = 40);

}  // namespace seqrec::data_detail
