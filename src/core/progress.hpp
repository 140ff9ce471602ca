// Progress on stderr: a bar with rate and ETA on a terminal, plain periodic lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace seqrec {

class Progress {
 public:
  /// `total` units of `unit` (e.g. "events"); total <= 0 means unknown. Disabled when
  /// `enabled` is false.
  Progress(std::string label, int64_t total, std::string unit, bool enabled = true);
  ~Progress();
  /// Adds `n` done units (thread-safe enough for one caller; call from one thread).
  void add(int64_t n);
  /// Replaces the trailing text (e.g. "loss 3.21").
  void set_note(std::string note);
  /// Prints the final line (called by the destructor if not called before).
  void finish();
  double elapsed_seconds() const;

 private:
  void draw(bool final);
  std::string label_, unit_, note_;
  int64_t total_, done_ = 0;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// Peak resident set size of this process in bytes (from /proc/self/status VmHWM).
int64_t peak_rss_bytes();

}  // namespace seqrec
