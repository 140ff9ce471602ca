// Cooperative interruption of long library calls (training, evaluation).
//
// A host that runs the library in a thread of its own (the Python binding, which polls for
// Ctrl-C while training runs) calls request_interrupt(); training checks the flag before every
// batch and evaluation before every scoring batch, and throws Interrupted, which unwinds
// like any other error: no model or checkpoint is written for the unfinished epoch (files
// already written were written atomically). The flag is process-wide: it stops every
// interruptible call running at the time. The CLI never sets it (a signal ends its process).
#pragma once

#include "seqrec/error.hpp"

namespace seqrec {

/// Thrown by check_interrupt() when an interrupt was requested.
class Interrupted : public Error {
 public:
  explicit Interrupted(const std::string& what) : Error(what) {}
};

/// Asks running interruptible calls to stop (async-signal-safe: one atomic store).
void request_interrupt() noexcept;
/// Clears the request (before starting a new call).
void clear_interrupt() noexcept;
/// Whether an interrupt was requested and not cleared since.
bool interrupt_requested() noexcept;
/// Throws Interrupted("WHAT interrupted") when an interrupt was requested.
void check_interrupt(const char* what);

}  // namespace seqrec
