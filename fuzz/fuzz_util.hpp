// Helpers shared by the libFuzzer harnesses in fuzz/: taking option bytes off the front of
// an input, temporary files on a RAM disk, and a check that aborts with a message (so that
// libFuzzer records the input as a finding).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace seqrec::fuzz {

/// Reads option bytes off the front of a fuzz input; past its end every byte reads as 0.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  /// An index below `n` (n >= 1).
  size_t pick(size_t n) { return byte() % n; }
  bool flag() { return byte() & 1; }
  /// Takes `n` bytes (or what is left) as text.
  std::string_view take(size_t n) {
    if (n > n_) n = n_;
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    n_ -= n;
    return s;
  }
  /// Everything not taken yet.
  std::string_view rest() const { return {reinterpret_cast<const char*>(p_), n_}; }
  const uint8_t* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  const uint8_t* p_;
  size_t n_;
};

/// A folder for the harness's files: $FUZZ_TMPDIR, else /dev/shm (a RAM disk, so that
/// writing an input per execution costs little), else $TMPDIR or /tmp; one per process.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string base;
    if (const char* d = std::getenv("FUZZ_TMPDIR"); d && *d) {
      base = d;
    } else if (::access("/dev/shm", W_OK) == 0) {
      base = "/dev/shm";
    } else if (const char* t = std::getenv("TMPDIR"); t && *t) {
      base = t;
    } else {
      base = "/tmp";
    }
    std::string tmpl = base + "/seqrec-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::perror("fuzz: mkdtemp");
      std::abort();
    }
    return tmpl;
  }();
  return dir;
}

/// Writes `bytes` to scratch_dir()/name (replacing it) and returns the path.
inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(("fuzz: cannot write " + path).c_str());
    std::abort();
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t k = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (k <= 0) {
      std::perror(("fuzz: cannot write " + path).c_str());
      std::abort();
    }
    done += static_cast<size_t>(k);
  }
  ::close(fd);
  return path;
}

/// A broken invariant: prints what and aborts (libFuzzer saves the input as a crash).
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define SEQREC_FUZZ_CHECK(cond, what)                                      \
  do {                                                                     \
    if (!(cond)) ::seqrec::fuzz::fail(std::string(#cond) + ": " + (what)); \
  } while (0)

}  // namespace seqrec::fuzz
