// OutputFile and check_output (see io/output_file.hpp).
#include "io/output_file.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "io/model_file.hpp"
#include "seqrec/error.hpp"

namespace seqrec::io {

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string parent_of(const std::string& p) {
  const auto slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

std::string base_of(const std::string& p) {
  const auto slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

/// Paths that name an open descriptor of this process (/dev/stdout is a link to one).
bool is_descriptor_path(const std::string& p) {
  return p.rfind("/proc/", 0) == 0 || p.rfind("/dev/fd/", 0) == 0;
}

struct Resolved {
  std::string path;         // the last target of the chain of links
  bool descriptor = false;  // the chain passes through /proc/.../fd or /dev/fd
};

/// Follows symbolic links one at a time (the last target may not exist yet: writing a
/// dangling link creates its target).
Resolved resolve_links(const std::string& path) {
  Resolved r{path, is_descriptor_path(path)};
  for (int depth = 0; depth < 40; ++depth) {
    struct stat st {};
    if (::lstat(r.path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return r;
    std::string buf(4096, '\0');
    const ssize_t n = ::readlink(r.path.c_str(), buf.data(), buf.size());
    if (n < 0) throw IoError("cannot write '" + path + "': readlink: " + errno_text(errno));
    buf.resize(static_cast<size_t>(n));
    r.path = buf[0] == '/' ? buf : parent_of(r.path) + "/" + buf;
    r.descriptor = r.descriptor || is_descriptor_path(r.path);
    if (r.descriptor) return r;  // "pipe:[123]" and the like are no paths: open the original
  }
  throw IoError("cannot write '" + path + "': too many levels of symbolic links");
}

/// The process's umask, without changing it (umask() itself would, for every thread).
unsigned current_umask() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("Umask:", 0) == 0)
      return static_cast<unsigned>(std::strtoul(line.c_str() + 6, nullptr, 8));
  return 022;
}

const char* type_text(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

/// Writes all of `n` bytes; false with errno set on failure.
bool write_all(int fd, const char* p, size_t n, size_t* written) {
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += k;
    n -= static_cast<size_t>(k);
    *written += static_cast<size_t>(k);
  }
  return true;
}

}  // namespace

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw IoError("cannot write a file with an empty name");
  const Resolved r = resolve_links(path_);
  target_ = r.path;
  const std::string shown =
      "'" + path_ + "'" + (target_ != path_ && !r.descriptor ? " (-> '" + target_ + "')" : "");
  auto open_through = [&](const std::string& p, int extra) {
    // O_NONBLOCK: a FIFO without a reader fails with ENXIO instead of blocking for ever.
    // A reader started beside seqrec (`cat fifo & seqrec ... -o fifo`) may open it a moment
    // later, so ENXIO is retried for a bounded grace period before it becomes an error.
    constexpr int kReaderGraceMs = 5000, kStepMs = 50;
    for (int waited = 0;; waited += kStepMs) {
      fd_ = ::open(p.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | extra);
      if (fd_ >= 0 || errno != ENXIO || waited >= kReaderGraceMs) break;
      ::usleep(kStepMs * 1000);
    }
    if (fd_ < 0) {
      const int err = errno;
      if (err == ENXIO)
        throw IoError("cannot write " + shown +
                      ": it is a FIFO (named pipe) that no process is reading (waited 5 s "
                      "for one); start the reader first, or give a regular file");
      throw IoError("cannot write " + shown + ": " + errno_text(err));
    }
    const int fl = ::fcntl(fd_, F_GETFL);
    if (fl >= 0) (void)::fcntl(fd_, F_SETFL, fl & ~O_NONBLOCK);
  };
  if (r.descriptor) {  // /dev/stdout, /dev/fd/3: the process's own descriptor, in place
    open_through(path_, O_APPEND);
    return;
  }
  struct stat st {};
  if (::stat(target_.c_str(), &st) == 0) {
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
      open_through(target_, 0);
      return;
    }
    if (!S_ISREG(st.st_mode))
      throw IoError("cannot write " + shown + ": it is " + type_text(st.st_mode) +
                    "; give the name of a file (seqrec replaces regular files, and writes "
                    "through to character devices and FIFOs)");
    if (::access(target_.c_str(), W_OK) != 0)
      throw IoError("cannot write " + shown + ": " + errno_text(errno) +
                    " (the file is not writable; it is left as it is)");
    mode_ = st.st_mode & 0777;
  } else if (errno == ENOENT) {
    mode_ = 0666 & ~current_umask();
  } else {
    throw IoError("cannot write " + shown + ": " + errno_text(errno));
  }
  atomic_ = true;
  // Probe the folder: can a file be created there now? (The real temporary file is created
  // by the first write.)
  open_temp();
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  tmp_.clear();
}

void OutputFile::open_temp() {
  const std::string dir = parent_of(target_);
  std::string base = base_of(target_);
  if (base.size() > 200) base.resize(200);  // the name with its suffix stays under NAME_MAX
  std::string name = dir + "/" + base + ".tmp-XXXXXX";
  // mkostemp: O_CREAT | O_EXCL with a random suffix, so nothing planted is followed.
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string why = errno_text(err);
    struct stat st {};
    if (err == ENOENT || err == ENOTDIR)
      why = "the folder '" + dir + "' does not exist";
    else if (::stat(dir.c_str(), &st) == 0 && (err == EACCES || err == EROFS || err == EPERM))
      why = "cannot create a file in the folder '" + dir + "': " + why;
    throw IoError("cannot write '" + path_ + "': " + why);
  }
  if (::fchmod(fd, static_cast<mode_t>(mode_)) != 0) {
    // A file system without permissions (vfat): the file keeps mkostemp's 0600.
  }
  fd_ = fd;
  tmp_ = name;
}

OutputFile::~OutputFile() {
  if (!committed_) abandon();
}

void OutputFile::write(const void* data, size_t n) {
  if (committed_ || abandoned_)
    throw Error("OutputFile('" + path_ + "'): write after commit or abandon");
  if (fd_ < 0) open_temp();
  const char* p = static_cast<const char*>(data);
  if (atomic_) {
    if (!write_all(fd_, p, n, &written_)) {
      const int err = errno;
      abandon();
      throw IoError("cannot write '" + path_ + "': " + errno_text(err));
    }
    return;
  }
  // A reader that went away: EPIPE here instead of a SIGPIPE that ends the process.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  ::sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const bool ok = write_all(fd_, p, n, &written_);
  const int err = errno;
  if (!ok && err == EPIPE && !was_pending) {
    const struct timespec zero {};
    (void)::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!ok) {
    abandon();
    throw IoError("cannot write '" + path_ + "': " +
                  (err == EPIPE ? std::string("the reading process closed it") : errno_text(err)));
  }
}

void OutputFile::commit() {
  if (committed_) return;
  if (abandoned_) throw Error("OutputFile('" + path_ + "'): commit after abandon");
  if (fd_ < 0) open_temp();  // nothing written: an empty file
  auto fail = [&](const std::string& what, int err) {
    abandon();
    throw IoError("cannot write '" + path_ + "': " + what + ": " + errno_text(err));
  };
  if (!atomic_) {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0 && errno != EINTR) fail("close", errno);
    committed_ = true;
    return;
  }
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != ENOTSUP) fail("fsync", errno);
  {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0 && errno != EINTR) fail("close", errno);
  }
  // The target may have changed kind while the data was written: never replace a FIFO, a
  // device or a folder that appeared meanwhile.
  struct stat st {};
  if (::lstat(target_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    abandon();
    throw IoError("cannot write '" + path_ + "': '" + target_ +
                  "' is no longer a regular file; it was not replaced");
  }
  if (::rename(tmp_.c_str(), target_.c_str()) != 0) fail("rename", errno);
  tmp_.clear();
  committed_ = true;
  // Make the rename itself durable (best effort: some file systems refuse).
  const int dfd = ::open(parent_of(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void OutputFile::abandon() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
  if (!committed_) abandoned_ = true;
}

void write_file(const std::string& path, std::string_view text) {
  OutputFile f(path);
  f.write(text);
  f.commit();
}

const char* kind_description(FileKind kind) {
  switch (kind) {
    case FileKind::Model:
      return "a final model file";
    case FileKind::Checkpoint:
      return "a training checkpoint";
    case FileKind::Json:
      return "a JSON file";
    case FileKind::Text:
      return "a text file (an event log, a split file or other delimited text)";
    case FileKind::Other:
      return "a binary file";
  }
  return "a file";
}

std::optional<FileKind> existing_kind(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string head(4096, '\0');
  ssize_t n;
  do {
    n = ::read(fd, head.data(), head.size());
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  head.resize(static_cast<size_t>(n));
  if (head.size() >= 8 && std::memcmp(head.data(), model_file::kMagic, 8) == 0) {
    const nlohmann::json h = model_file::peek_header(path);
    return h.is_object() && h.contains("checkpoint") ? FileKind::Checkpoint : FileKind::Model;
  }
  size_t i = head.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;  // UTF-8 byte order mark
  for (const char c : head) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') return FileKind::Other;
  }
  while (i < head.size() && std::strchr(" \t\r\n", head[i]) != nullptr) ++i;
  if (i < head.size() && (head[i] == '{' || head[i] == '[')) return FileKind::Json;
  return FileKind::Text;
}

void check_output(const NamedPath& output, const std::vector<NamedPath>& inputs, FileKind kind,
                  bool force) {
  if (output.path.empty()) return;
  struct stat so {};
  if (::stat(output.path.c_str(), &so) != 0 || !S_ISREG(so.st_mode)) return;
  for (const NamedPath& in : inputs) {
    struct stat si {};
    if (in.path.empty() || ::stat(in.path.c_str(), &si) != 0) continue;
    if (si.st_dev == so.st_dev && si.st_ino == so.st_ino)
      throw InputError(output.name + " '" + output.path + "' is " + in.name +
                       (in.path == output.path ? "" : " ('" + in.path + "')") +
                       ": writing it would destroy what the command reads; give another file "
                       "name (--force does not change this)");
  }
  const std::optional<FileKind> have = existing_kind(output.path);
  if (!have || *have == kind || force) return;
  throw InputError(output.name + " '" + output.path + "' exists and is " + kind_description(*have) +
                   "; refusing to replace it with " + kind_description(kind) +
                   " (give another file name, or add --force to " + "replace it)");
}

}  // namespace seqrec::io
