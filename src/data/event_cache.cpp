#include "data/event_cache.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "data/text_util.hpp"
#include "seqrec/error.hpp"

namespace seqrec::data_detail {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'S', 'Q', 'R', 'C', 'E', 'V', 'T', '1'};
constexpr uint32_t kVersion = 1;
// Bump when the parser's behaviour changes, so old caches are rebuilt.
constexpr const char* kParserVersion = "parser-1";

template <class T>
void put_pod(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <class T>
void put_array(std::string& out, const std::vector<T>& v) {
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

struct Reader {
  const char* p;
  const char* end;
  template <class T>
  bool pod(T* v) {
    if (static_cast<size_t>(end - p) < sizeof(T)) return false;
    std::memcpy(v, p, sizeof(T));
    p += sizeof(T);
    return true;
  }
  template <class T>
  bool array(std::vector<T>* v, uint64_t n) {
    if (n > static_cast<uint64_t>(end - p) / sizeof(T)) return false;
    v->resize(n);
    if (n) std::memcpy(v->data(), p, n * sizeof(T));
    p += n * sizeof(T);
    return true;
  }
  bool bytes(std::string_view* s, uint64_t n) {
    if (n > static_cast<uint64_t>(end - p)) return false;
    *s = std::string_view(p, n);
    p += n;
    return true;
  }
};

void put_strings(std::string& out, const std::vector<std::string>& v) {
  uint64_t total = 0;
  for (const auto& s : v) total += s.size();
  put_pod(out, static_cast<uint64_t>(v.size()));
  put_pod(out, total);
  for (const auto& s : v) put_pod(out, static_cast<uint32_t>(s.size()));
  for (const auto& s : v) out.append(s);
}

bool get_strings(Reader& r, std::vector<uint32_t>* lens, std::string_view* blob) {
  uint64_t n, total;
  if (!r.pod(&n) || !r.pod(&total) || !r.array(lens, n) || !r.bytes(blob, total)) return false;
  uint64_t sum = 0;
  for (uint32_t l : *lens) sum += l;
  return sum == total;
}

}  // namespace

std::string cache_key(const std::string& path, const ReadOptions& opt) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec) throw IoError("cannot resolve '" + path + "': " + ec.message());
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw IoError("cannot open '" + path + "': " + std::generic_category().message(errno));
  }
  std::string key;
  key += kParserVersion;
  key += '\n' + abs.lexically_normal().string();
  key += '\n' + std::to_string(static_cast<long long>(st.st_size));
  key += '\n' + std::to_string(static_cast<long long>(st.st_mtim.tv_sec)) + "." +
         std::to_string(static_cast<long long>(st.st_mtim.tv_nsec));
  key += '\n' + std::to_string(static_cast<long long>(st.st_ino));
  key += "\nformat=" + std::string(format_name(opt.format));
  key += "\ndelimiter=" + opt.delimiter;
  key += "\nheader=" + std::to_string(opt.header);
  key += "\nsession_col=" + opt.session_col;
  key += "\nitem_col=" + opt.item_col;
  key += "\ntime_col=" + opt.time_col;
  char scale[40];
  std::snprintf(scale, sizeof scale, "%a", opt.time_scale);
  key += "\ntime_scale=" + std::string(scale);
  key += "\nsequence_ids=" + std::to_string(opt.sequence_ids);
  return key;
}

std::string cache_path_for_key(const std::string& cache_dir, const std::string& key) {
  char name[40];
  std::snprintf(name, sizeof name, "%016llx%016llx.bin",
                static_cast<unsigned long long>(hash_bytes(key, 0x243F6A8885A308D3ULL)),
                static_cast<unsigned long long>(hash_bytes(key, 0x13198A2E03707344ULL)));
  return (fs::path(cache_dir) / name).string();
}

bool load_cache(const std::string& file, const std::string& key, EventLog* log, Format* format,
                std::string* why) {
  why->clear();
  std::error_code ec;
  if (!fs::exists(file, ec)) return false;
  std::unique_ptr<FileData> bytes;
  try {
    bytes = std::make_unique<FileData>(file);
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
  const std::string_view data = bytes->view();
  Reader r{data.data(), data.data() + data.size()};
  auto bad = [&](const char* what) {
    *why = "cache file '" + file + "' ignored: " + what;
    return false;
  };
  char magic[8];
  uint32_t version, flags;
  if (!r.pod(&magic) || std::memcmp(magic, kMagic, 8) != 0) return bad("bad magic");
  if (!r.pod(&version) || version != kVersion) return bad("unsupported version");
  if (!r.pod(&flags)) return bad("truncated");
  // Bit 0: times present; bits 8-15: the format the text was read as (never Auto). Anything
  // else comes from damage or another writer, and the log is parsed again.
  const uint32_t stored_format = (flags >> 8) & 0xffu;
  if ((flags & ~0xff01u) != 0) return bad("unknown flag bits");
  if (stored_format < static_cast<uint32_t>(Format::Delimited) ||
      stored_format > static_cast<uint32_t>(Format::Pairs)) {
    return bad("unknown format byte");
  }
  uint64_t key_len;
  std::string_view stored_key;
  if (!r.pod(&key_len) || !r.bytes(&stored_key, key_len)) return bad("truncated");
  if (stored_key != key) return bad("key mismatch (hash collision or stale file)");
  uint64_t n_seqs, n_events;
  if (!r.pod(&n_seqs) || !r.pod(&n_events)) return bad("truncated");
  std::vector<uint32_t> item_lens, id_lens;
  std::string_view item_blob, id_blob, source;
  uint64_t source_len;
  if (!get_strings(r, &item_lens, &item_blob) || !get_strings(r, &id_lens, &id_blob))
    return bad("truncated");
  if (id_lens.size() != n_seqs) return bad("inconsistent sizes");
  if (!r.pod(&source_len) || !r.bytes(&source, source_len)) return bad("truncated");
  EventLog out;
  SequenceSet& s = out.seqs;
  if (!r.array(&s.offsets, n_seqs + 1) || !r.array(&s.items, n_events)) return bad("truncated");
  if ((flags & 1u) && !r.array(&s.times, n_events)) return bad("truncated");
  if (r.p != r.end) return bad("trailing bytes");
  if (s.offsets.front() != 0 || static_cast<uint64_t>(s.offsets.back()) != n_events)
    return bad("inconsistent offsets");
  for (size_t i = 0; i < n_seqs; ++i) {
    if (s.offsets[i + 1] < s.offsets[i]) return bad("inconsistent offsets");
  }
  out.items.reserve(item_lens.size());
  size_t pos = 0;
  for (uint32_t l : item_lens) {
    out.items.add(item_blob.substr(pos, l));
    pos += l;
  }
  if (static_cast<size_t>(out.items.size()) != item_lens.size()) return bad("duplicate items");
  const int32_t n_items = out.items.size();
  for (int32_t it : s.items) {
    if (it < 0 || it >= n_items) return bad("item index out of range");
  }
  s.ids.reserve(n_seqs);
  pos = 0;
  for (uint32_t l : id_lens) {
    s.ids.emplace_back(id_blob.substr(pos, l));
    pos += l;
  }
  out.source = std::string(source);
  *log = std::move(out);
  *format = static_cast<Format>(stored_format);
  return true;
}

bool save_cache(const std::string& file, const std::string& key, const EventLog& log, Format format,
                std::string* why) {
  try {
    std::error_code ec;
    fs::create_directories(fs::path(file).parent_path(), ec);
    if (ec) {
      *why = "cannot create cache folder '" + fs::path(file).parent_path().string() +
             "': " + ec.message();
      return false;
    }
    const SequenceSet& s = log.seqs;
    std::string head;
    head.append(kMagic, 8);
    put_pod(head, kVersion);
    put_pod(head, static_cast<uint32_t>((s.has_times() ? 1u : 0u) |
                                        (static_cast<uint32_t>(format) << 8)));
    put_pod(head, static_cast<uint64_t>(key.size()));
    head.append(key);
    put_pod(head, static_cast<uint64_t>(s.size()));
    put_pod(head, static_cast<uint64_t>(s.n_events()));
    put_strings(head, log.items.tokens());
    put_strings(head, s.ids);
    put_pod(head, static_cast<uint64_t>(log.source.size()));
    head.append(log.source);
    AtomicWriter w(file);
    w.write(head);
    w.write(std::string_view(reinterpret_cast<const char*>(s.offsets.data()),
                             s.offsets.size() * sizeof(int64_t)));
    w.write(std::string_view(reinterpret_cast<const char*>(s.items.data()),
                             s.items.size() * sizeof(int32_t)));
    if (s.has_times()) {
      w.write(std::string_view(reinterpret_cast<const char*>(s.times.data()),
                               s.times.size() * sizeof(double)));
    }
    w.commit();
    return true;
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
}

}  // namespace seqrec::data_detail
