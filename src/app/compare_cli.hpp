// The `seqrec compare` subcommand: its flags (CLI11) and the call into run_compare().
#pragma once

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace seqrec {

/// This process's command line, for reports ("seqrec" for the program path; arguments with
/// spaces or shell characters quoted).
std::string own_command_line();

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
