#include "core/progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace seqrec {

namespace {
std::string human_count(double v) {
  char buf[32];
  if (v >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}
// The stream whose last output is a bar's unfinished line (a terminal only), or null.
std::FILE* g_open_bar_line = nullptr;

std::string human_time(double s) {
  char buf[32];
  if (s < 0 || s > 1e7) return "?";
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, (t / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%d:%02d", t / 60, t % 60);
  return buf;
}
}  // namespace

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled)
    : Progress(std::move(label), total, std::move(unit), enabled, stderr,
               isatty(STDERR_FILENO) != 0) {}

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled, std::FILE* out,
                   bool tty)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      tty_(tty),
      out_(out),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  finish();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::add(int64_t n) {
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  // Terminals redraw often; logs get a line every 10 s. A terminal bar that is not showing
  // (none drawn yet, or cleared by message()) is drawn at once.
  const double period = tty_ ? 0.2 : 10.0;
  if ((tty_ && !drawn_) || std::chrono::duration<double>(now - last_draw_).count() >= period) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::set_note(std::string note) {
  note_ = std::move(note);
}

void Progress::message(const std::string& line) {
  if (g_open_bar_line == out_) progress_break_line();
  drawn_ = false;
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final) {
  const double el = elapsed_seconds();
  const double rate = el > 0 ? done_ / el : 0;
  std::string line = label_ + " ";
  if (total_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(done_) / total_);
    if (tty_) {
      const int width = 24, fill = static_cast<int>(frac * width);
      line += "[" + std::string(fill, '#') + std::string(width - fill, '.') + "] ";
    }
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%% ", 100 * frac);
    line += pct + human_count(done_) + "/" + human_count(total_) + " " + unit_;
    line += " " + human_count(rate) + " " + unit_ + "/s";
    if (final)
      line += " in " + human_time(el);
    else if (rate > 0)
      line += " ETA " + human_time((total_ - done_) / rate);
  } else {
    line += human_count(done_) + " " + unit_ + " " + human_count(rate) + " " + unit_ + "/s";
    if (final) line += " in " + human_time(el);
  }
  if (!note_.empty()) line += "  " + note_;
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
    drawn_ = !final;
    g_open_bar_line = final ? nullptr : out_;
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void progress_break_line() {
  if (g_open_bar_line == nullptr) return;
  std::fputs("\r\033[K", g_open_bar_line);
  std::fflush(g_open_bar_line);
  g_open_bar_line = nullptr;
}

int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace seqrec
