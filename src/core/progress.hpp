// Progress on stderr: a bar with rate and ETA on a terminal, plain periodic lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace seqrec {

class Progress {
 public:
  /// `total` units of `unit` (e.g. "events"); total <= 0 means unknown. Disabled when
  /// `enabled` is false.
  Progress(std::string label, int64_t total, std::string unit, bool enabled = true);
  /// The same, writing to `out` and drawing a terminal bar when `tty` (tests drive it
  /// with a memory stream and either flag).
  Progress(std::string label, int64_t total, std::string unit, bool enabled, std::FILE* out,
           bool tty);
  ~Progress();
  /// Adds `n` done units (thread-safe enough for one caller; call from one thread).
  void add(int64_t n);
  /// Replaces the trailing text (e.g. "loss 3.21").
  void set_note(std::string note);
  /// Prints `line` on a line of its own (e.g. an epoch summary): on a terminal the bar's
  /// unfinished line is cleared first, and the bar is drawn again by the next add().
  void message(const std::string& line);
  /// Prints the final line (called by the destructor if not called before).
  void finish();
  double elapsed_seconds() const;

 private:
  void draw(bool final);
  std::string label_, unit_, note_;
  int64_t total_, done_ = 0;
  bool enabled_, tty_, finished_ = false, drawn_ = false;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// Clears a progress bar's unfinished line on the terminal, if one is showing, so that
/// whatever is printed next starts at the beginning of a line. Code that prints to stderr
/// while a bar may be showing (a validation result, a checkpoint note) calls this first.
void progress_break_line();

/// Peak resident set size of this process in bytes (from /proc/self/status VmHWM).
int64_t peak_rss_bytes();

}  // namespace seqrec
