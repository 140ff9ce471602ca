// The one way seqrec writes a file (model files, checkpoints, logs and split files, JSON
// metrics, compare's files and reports, the server's --port-file), and the one rule that
// decides whether an output may be written at all (check_output). docs/reliability.md,
// "Files: what seqrec writes and never destroys", describes both for users.
//
// What OutputFile does with each kind of path:
// - a regular file, or a path that does not exist yet: the bytes go to a new temporary
//   file created exclusively (O_EXCL, so a link planted under any name is never followed)
//   with an unpredictable name next to the target; commit() flushes it to disk and renames
//   it over the target, then syncs the folder. Readers see the old file or the new one,
//   never a part. The new file gets the old file's permission bits, or those of a normal
//   create (0666 less the umask). A read-only existing file is refused, as `>` would.
// - a symbolic link: it is followed (to its last target, which may not exist yet) and that
//   target is written atomically as above; the link stays a link.
// - a character device (/dev/null, a terminal) and /dev/stdout, /dev/stderr, /dev/fd/N,
//   /proc/self/fd/N: written through, in place (appended when the descriptor is a file).
// - a FIFO: opened without blocking, so that a FIFO nobody reads is an error now rather than
//   a hang; then written through.
// - a folder, a socket, a block device: refused with a message naming the path.
// A non-regular file is never replaced. An error, an exception or a destructor before
// commit() removes the temporary file and leaves the target as it was.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seqrec::io {

class OutputFile {
 public:
  /// Checks `path` and prepares to write it; throws IoError naming the path when it cannot
  /// be written (missing or read-only folder, read-only file, a folder, a socket, a FIFO
  /// without a reader). A device or FIFO is opened here; for a regular target the folder is
  /// probed (a temporary file created and removed), and the temporary file that receives
  /// the data is created by the first write, so that nothing is left behind if the process
  /// is killed between this check and the writing (say, during a long training).
  explicit OutputFile(std::string path);
  /// Abandons an uncommitted file (see abandon()).
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  /// Appends bytes. IoError naming the path on failure (disk full, a reader that closed its
  /// end of a FIFO: that gives an error, not a SIGPIPE).
  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  /// Finishes the file: for an atomic target, fsync, rename over the target and fsync of its
  /// folder; for a written-through one, close. Writes nothing more afterwards. IoError on
  /// failure, with the target left as it was.
  void commit();
  /// Drops what was written: the temporary file is removed, the target stays as it was (a
  /// device or FIFO keeps what was already written through). Idempotent; never throws.
  void abandon() noexcept;

  /// The path as given.
  const std::string& path() const { return path_; }
  /// True when the target is replaced atomically by a rename (regular or absent target).
  bool atomic() const { return atomic_; }
  /// Bytes written so far.
  size_t written() const { return written_; }

 private:
  void open_temp();
  std::string path_;    // as given
  std::string target_;  // what is written: the path with its symbolic links followed
  int fd_ = -1;
  bool atomic_ = false;
  bool committed_ = false;
  bool abandoned_ = false;
  bool have_mode_ = false;
  unsigned mode_ = 0;  // permission bits of the file created
  std::string tmp_;    // the temporary file, "" until created
  size_t written_ = 0;
};

/// Writes `text` to `path` through an OutputFile and commits it.
void write_file(const std::string& path, std::string_view text);

/// The kinds of file seqrec reads and writes, told apart by their first bytes.
enum class FileKind {
  Model,       ///< a model file (magic SQRCMODL, no "checkpoint" in its header)
  Checkpoint,  ///< a training checkpoint (a model file with a "checkpoint" header object)
  Json,        ///< text starting with '{' or '['
  Text,        ///< other text: an event log, a split file, delimited text, a report
  Other,       ///< binary data seqrec does not write
};

/// "a final model file", "a training checkpoint", "a JSON file", "a text file (...)", "a binary
/// file".
const char* kind_description(FileKind kind);

/// The kind of the non-empty regular file at `path` (symbolic links followed); nullopt when
/// there is no such file (absent, empty, a device, a FIFO, unreadable).
std::optional<FileKind> existing_kind(const std::string& path);

/// A path and how the user gave it, for messages: {"model.seqrec", "-o"}, {"log.tsv", "the
/// input"}.
struct NamedPath {
  std::string path;
  std::string name;
};

/// The one rule for every output of a command (InputError when broken, naming both paths):
/// 1. an output is never one of the command's inputs: not the same file (device and inode,
///    so another name, a hard link or a symbolic link to it is caught too); --force does not
///    lift this. A folder input (a prepared split) is given as the files read from it.
/// 2. an existing file of another kind than `kind` is not replaced (a model with JSON, an
///    event log with a model, a checkpoint with a final model, ...) unless `force`. Empty
///    files, devices and FIFOs are always written.
/// It checks nothing about whether the path can be written: constructing the OutputFile
/// does, and commands construct it before their long work.
void check_output(const NamedPath& output, const std::vector<NamedPath>& inputs, FileKind kind,
                  bool force);

}  // namespace seqrec::io
