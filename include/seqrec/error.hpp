// Errors raised by the seqrec library.
//
// Library code never calls exit(): it throws one of these, and the boundary (the CLI's
// main, the HTTP server) turns them into an exit code or an HTTP status. Every message is
// written for the user: it names the file, the line or the field, and what was expected.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace seqrec {

/// Base of every error seqrec throws on purpose.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Invalid user input: a malformed file, an unknown id, an absurd parameter.
class InputError : public Error {
 public:
  explicit InputError(const std::string& what) : Error(what) {}
  /// "FILE:LINE: MESSAGE" (LINE is 1-based; 0 leaves it out).
  InputError(const std::string& file, int64_t line, const std::string& what)
      : Error(file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + what) {}
};

/// An operating-system failure (unreadable path, disk full), with the path involved.
class IoError : public Error {
 public:
  explicit IoError(const std::string& what) : Error(what) {}
};

}  // namespace seqrec
