#include "serve/session_codec.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/model_file.hpp"
#include "seqrec/error.hpp"
#include "seqrec/tensor_io.hpp"

namespace seqrec::serve {

namespace {

static_assert(std::endian::native == std::endian::little,
              "the session encoding is little-endian; big-endian hosts need byte swapping");
constexpr char kMagic[4] = {'S', 'Q', 'S', 'S'};
constexpr uint32_t kVersion = 1;

template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <class T>
bool take(std::string_view& in, T& v) {
  if (in.size() < sizeof v) return false;
  std::memcpy(&v, in.data(), sizeof v);
  in.remove_prefix(sizeof v);
  return true;
}

bool fail(std::string* why, const char* what) {
  if (why) *why = what;
  return false;
}

}  // namespace

std::string encode_session(const StoredSession& s) {
  std::string out;
  out.reserve(64 + 4 * s.history.size() + s.state.size());
  out.append(kMagic, 4);
  put(out, kVersion);
  put(out, s.catalogue_fp);
  put(out, s.model_fp);
  put(out, s.length);
  put(out, static_cast<uint8_t>(s.last_event_timestamp ? 1 : 0));
  put(out, s.last_event_timestamp.value_or(0.0));
  put(out, s.last_used_unix);
  put(out, static_cast<uint32_t>(s.history.size()));
  out.append(reinterpret_cast<const char*>(s.history.data()), 4 * s.history.size());
  put(out, static_cast<uint32_t>(s.state.size()));
  out.append(s.state);
  return out;
}

bool decode_session(std::string_view in, StoredSession& out, std::string* why) {
  if (in.size() < 4 || std::memcmp(in.data(), kMagic, 4) != 0)
    return fail(why, "not a seqrec session (bad magic)");
  in.remove_prefix(4);
  uint32_t version = 0;
  if (!take(in, version)) return fail(why, "truncated");
  if (version != kVersion) return fail(why, "another format version");
  uint8_t has_ts = 0;
  double ts = 0.0;
  uint32_t n = 0;
  if (!take(in, out.catalogue_fp) || !take(in, out.model_fp) || !take(in, out.length) ||
      !take(in, has_ts) || !take(in, ts) || !take(in, out.last_used_unix) || !take(in, n))
    return fail(why, "truncated");
  if (out.length < 0 || has_ts > 1) return fail(why, "damaged");
  out.last_event_timestamp.reset();
  if (has_ts) out.last_event_timestamp = ts;
  if (in.size() < 4 * static_cast<size_t>(n)) return fail(why, "truncated");
  out.history.resize(n);
  std::memcpy(out.history.data(), in.data(), 4 * static_cast<size_t>(n));
  in.remove_prefix(4 * static_cast<size_t>(n));
  if (!take(in, n) || in.size() != n) return fail(why, "truncated or trailing bytes");
  out.state.assign(in.data(), n);
  return true;
}

namespace {
/// A 64-bit hash of `n` bytes continuing from `h`, 8 bytes a step (FNV-1a byte by byte would
/// take ~0.1 s for a 100 MB model at every load): not cryptographic, a fingerprint only.
uint64_t hash_words(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  return model_file::fnv1a64(p + i, n - i, h);
}
}  // namespace

uint64_t catalogue_fingerprint(const Vocab& items) {
  uint64_t h = model_file::kFnvOffset;
  const uint64_t count = static_cast<uint64_t>(items.size());
  h = model_file::fnv1a64(&count, sizeof count, h);
  for (const std::string& t : items.tokens()) {
    const uint64_t len = t.size();
    h = model_file::fnv1a64(&len, sizeof len, h);
    h = model_file::fnv1a64(t.data(), t.size(), h);
  }
  return h;
}

uint64_t model_fingerprint(const Model& model) {
  uint64_t h = model_file::kFnvOffset;
  const std::string type = model.type();
  h = model_file::fnv1a64(type.data(), type.size() + 1, h);
  const std::string cfg = model.config().to_json().dump();
  h = model_file::fnv1a64(cfg.data(), cfg.size() + 1, h);
  TensorWriter w;
  model.save(w);
  for (const TensorEntry& e : w.entries()) {
    h = model_file::fnv1a64(e.name.data(), e.name.size() + 1, h);
    const auto dt = static_cast<uint8_t>(e.dtype);
    h = model_file::fnv1a64(&dt, 1, h);
    h = model_file::fnv1a64(e.shape.data(), e.shape.size() * sizeof(int64_t), h);
    h = hash_words(e.data, e.nbytes, h);
  }
  return h;
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::string tmpl = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0)
    throw IoError("cannot create a temporary file next to '" + path + "': " + std::strerror(errno));
  auto failed = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    throw IoError("cannot write '" + path + "' (" + what + "): " + std::strerror(err));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      failed("write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) failed("chmod");
  if (::fsync(fd) != 0) failed("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmpl.c_str());
    throw IoError("cannot write '" + path + "' (close): " + std::strerror(err));
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmpl.c_str());
    throw IoError("cannot rename the new snapshot to '" + path + "': " + std::strerror(err));
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace seqrec::serve
