// SASRec's forward pass against an independent PyTorch implementation of the reference
// layout (bench/crosscheck_sasrec_torch.py: torch.nn.MultiheadAttention, layer norm on the
// queries, residual on the normed queries). Small models are trained with seqrec in every
// layout option and every item's score for random sessions, shorter and longer than
// maxlen, must agree to 1e-4 relative. Skipped when PyTorch is not installed (Debian:
// apt-get install python3-torch); CI does not install it.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli_runner.hpp"

namespace fs = std::filesystem;
using seqrec_test::CmdResult;
using seqrec_test::run;
using seqrec_test::run_shell;

TEST(CrossCheck, SasrecForwardEqualsPyTorch) {
  if (run_shell("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1").code != 0)
    GTEST_SKIP() << "PyTorch is not installed (apt-get install python3-torch); "
                    "cross-check skipped";
  const fs::path dir = fs::path(::testing::TempDir()) / "seqrec_crosscheck_torch";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string d = dir.string();
  ASSERT_EQ(run("generate --events 20000 --items 300 --seed 3 -o " + d + "/log.tsv").code, 0);
  CmdResult prep =
      run("prepare " + d + "/log.tsv --protocol sequential --cache-dir none -o " + d + "/split");
  ASSERT_EQ(prep.code, 0) << prep.out;
  const std::string script = std::string(SEQREC_SOURCE_DIR) + "/bench/crosscheck_sasrec_torch.py";
  const std::string layouts[] = {
      // the original layout, Xavier initialisation, two heads
      "--maxlen 20 --hidden-units 16 --num-heads 2",
      // Pre-LN, GELU, a separate output table, right-padding positions, four heads
      "--maxlen 12 --hidden-units 16 --num-heads 4 --norm-first true --activation gelu "
      "--shared-embedding false --positions from_start --init-std 0.02",
      // one block, SASRec+ settings
      "--preset ml1m_plus --maxlen 10 --hidden-units 8 --num-blocks 1",
  };
  int k = 0;
  for (const std::string& flags : layouts) {
    const std::string model = d + "/m" + std::to_string(k++) + ".seqrec";
    CmdResult tr = run("--threads 1 train " + d + "/split -m sasrec " + flags +
                       " --num-epochs 2 --seed 5 -o " + model);
    ASSERT_EQ(tr.code, 0) << flags << "\n" << tr.out;
    CmdResult xc =
        run_shell("/usr/bin/python3 " + script + " forward " + model + " " + SEQREC_BINARY + " 30");
    EXPECT_EQ(xc.code, 0) << flags << "\n" << xc.out;
    EXPECT_NE(xc.out.find("OK"), std::string::npos) << xc.out;
  }
  fs::remove_all(dir);
}
