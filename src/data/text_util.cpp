#include "data/text_util.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "io/output_file.hpp"
#include "seqrec/error.hpp"

namespace seqrec::data_detail {

namespace {
std::string errno_text(int err) {
  return std::generic_category().message(err);
}
}  // namespace

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open '" + path + "': " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw IoError("cannot stat '" + path + "': " + errno_text(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw IoError("cannot read '" + path + "': it is a directory");
  }
  std::string data;
  if (S_ISREG(st.st_mode) && st.st_size > 0) data.reserve(static_cast<size_t>(st.st_size));
  // Read in chunks so that pipes and files that grow or shrink while read still work.
  constexpr size_t kChunk = 1 << 22;
  size_t used = 0;
  while (true) {
    data.resize(used + kChunk);
    const ssize_t n = ::read(fd, data.data() + used, kChunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw IoError("cannot read '" + path + "': " + errno_text(err));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(used);
  return data;
}

FileData::FileData(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open '" + path + "': " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    size_ = static_cast<size_t>(st.st_size);
    void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    ::close(fd);
    if (m == MAP_FAILED) {
      size_ = 0;
      copy_ = read_file(path);
    } else {
      map_ = m;
      ::madvise(map_, size_, MADV_SEQUENTIAL);
    }
    return;
  }
  ::close(fd);
  copy_ = read_file(path);
}

FileData::~FileData() {
  release();
}

void FileData::release() {
  if (map_) ::munmap(map_, size_);
  map_ = nullptr;
  size_ = 0;
  std::string().swap(copy_);
}

AtomicWriter::AtomicWriter(std::string path)
    : path_(std::move(path)), out_(std::make_unique<io::OutputFile>(path_)) {
  buf_.reserve(kFlushAt + 4096);
}

AtomicWriter::~AtomicWriter() = default;

void AtomicWriter::flush() {
  if (buf_.empty()) return;
  out_->write(buf_);
  buf_.clear();
}

void AtomicWriter::write_direct(std::string_view s) {
  out_->write(s);
}

void AtomicWriter::write_int(int64_t v) {
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
  write(std::string_view(tmp, static_cast<size_t>(r.ptr - tmp)));
}

void AtomicWriter::write_double(double v) {
  char tmp[64];
  if (v == std::trunc(v) && std::fabs(v) < 9.0e15) {
    write_int(static_cast<int64_t>(v));
    return;
  }
  auto r = std::to_chars(tmp, tmp + sizeof tmp, v);  // shortest round-trip form
  write(std::string_view(tmp, static_cast<size_t>(r.ptr - tmp)));
}

void AtomicWriter::commit() {
  flush();
  out_->commit();
}

bool parse_double(std::string_view s, double* out) {
  if (s.empty()) return false;
  const char* b = s.data();
  const char* e = b + s.size();
  if (*b == '+') ++b;  // from_chars refuses a leading '+'
  double v = 0;
  auto r = std::from_chars(b, e, v);
  if (r.ec != std::errc() || r.ptr != e || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

namespace {
bool digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}
// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}
}  // namespace

bool parse_date(std::string_view s, double* out) {
  int y, mo, d;
  if (!digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, &mo) ||
      s[7] != '-' || !digits(s, 8, 2, &d)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return false;
  double secs =
      static_cast<double>(days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d))) *
      86400.0;
  size_t pos = 10;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != ' ') return false;
    int h, mi, se = 0;
    if (!digits(s, pos + 1, 2, &h) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, &mi)) {
      return false;
    }
    pos += 6;
    double frac = 0;
    if (pos < s.size() && s[pos] == ':') {
      if (!digits(s, pos + 1, 2, &se)) return false;
      pos += 3;
      if (pos < s.size() && s[pos] == '.') {
        size_t e = pos + 1;
        while (e < s.size() && s[e] >= '0' && s[e] <= '9') ++e;
        if (e == pos + 1 || !parse_double(s.substr(pos, e - pos), &frac)) return false;
        pos = e;
      }
    }
    if (h > 23 || mi > 59 || se > 60) return false;
    if (pos < s.size() && s[pos] == 'Z') ++pos;
    if (pos != s.size()) return false;
    secs += h * 3600.0 + mi * 60.0 + se + frac;
  }
  *out = secs;
  return true;
}

bool is_number(std::string_view s) {
  double v;
  return parse_double(s, &v);
}

std::string to_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return r;
}

std::string quote(std::string_view s, size_t max) {
  std::string r = "'";
  size_t n = 0;
  for (unsigned char c : s) {
    if (n++ >= max) {
      r += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      r += "\\x";
      r += hex[c >> 4];
      r += hex[c & 15];
    } else {
      r += static_cast<char>(c);
    }
  }
  return r + "'";
}

}  // namespace seqrec::data_detail
