// The progress writer on a (fake) terminal and in a log: a summary printed while a bar is
// showing starts on a line of its own instead of being appended to the bar.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "core/progress.hpp"

using seqrec::Progress;

namespace {

/// Everything written to a temporary stream so far.
std::string contents(std::FILE* f) {
  std::fflush(f);
  const long end = std::ftell(f);
  std::string s(static_cast<size_t>(end), '\0');
  std::rewind(f);
  const size_t n = std::fread(s.data(), 1, s.size(), f);
  s.resize(n);
  std::fseek(f, 0, SEEK_END);
  return s;
}

}  // namespace

TEST(Progress, TerminalSummaryStartsOnItsOwnLine) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress bar("sasrec", 100, "seqs", true, f, /*tty=*/true);
    bar.add(10);  // a terminal bar is drawn at once: an unfinished line
    const std::string drawn = contents(f);
    ASSERT_NE(drawn.find("sasrec ["), std::string::npos) << drawn;
    EXPECT_EQ(drawn.back() == '\n', false);
    bar.message("sasrec: epoch 1/2 loss 1.0");
    const std::string s = contents(f);
    const size_t at = s.find("sasrec: epoch 1/2");
    ASSERT_NE(at, std::string::npos) << s;
    // What comes right before the summary returns to the line's start and clears it.
    EXPECT_EQ(s.substr(at - 4, 4), "\r\033[K") << s;
    EXPECT_EQ(s.substr(at), "sasrec: epoch 1/2 loss 1.0\n");
    // The bar comes back on the next update, after the summary's line.
    bar.add(10);
    const std::string t = contents(f);
    EXPECT_NE(t.find("sasrec [", at), std::string::npos) << t;
    bar.finish();
  }
  std::fclose(f);
}

TEST(Progress, BreakLineEndsAnOpenBarForOtherPrinters) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Progress bar("train", 100, "events", true, f, /*tty=*/true);
  bar.add(1);
  seqrec::progress_break_line();
  std::fputs("epoch 1: validation recall@20 = 0.5\n", f);
  const std::string s = contents(f);
  const size_t at = s.find("epoch 1:");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(s.substr(at - 4, 4), "\r\033[K") << s;
  bar.finish();
  std::fclose(f);
}

TEST(Progress, LogGetsPlainLines) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress bar("gru4rec epoch 1/2", 100, "events", true, f, /*tty=*/false);
    bar.add(100);
    bar.message("a summary");
    bar.finish();
  }
  const std::string s = contents(f);
  EXPECT_EQ(s.find('\r'), std::string::npos) << s;
  EXPECT_EQ(s.find('\033'), std::string::npos) << s;
  EXPECT_NE(s.find("a summary\n"), std::string::npos);
  EXPECT_NE(s.find("gru4rec epoch 1/2 100.0%"), std::string::npos) << s;
  std::fclose(f);
}
