// The `seqrec compare` subcommand: its flags (CLI11) and the call into run_compare().
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace seqrec {

class CompareCommand {
 public:
  /// Registers `compare` on `app`; the options live in this object.
  explicit CompareCommand(CLI::App& app);
  ~CompareCommand();
  CompareCommand(const CompareCommand&) = delete;
  CompareCommand& operator=(const CompareCommand&) = delete;

  /// Whether the command line chose `compare` (after parsing).
  bool chosen() const;
  /// Runs it; returns the exit code. Errors are thrown (seqrec::Error and friends).
  int run(int threads, bool quiet);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace seqrec
