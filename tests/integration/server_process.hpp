// `seqrec serve MODEL --port 0 --port-file ... ARGS` as a child process, for the tests of
// session stores across processes (test_server_stores.cpp): started, waited for until it
// listens, signalled (SIGTERM, SIGKILL) and reaped.
#pragma once

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.hpp"

extern char** environ;

namespace seqrec_test {

class ServeProcess {
 public:
  ServeProcess(const std::filesystem::path& dir, const std::string& model,
               std::vector<std::string> extra = {}) {
    static int counter = 0;
    log_ = dir / ("serve_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".log");
    const std::filesystem::path port_file = log_.string() + ".port";
    std::filesystem::remove(port_file);
    std::vector<std::string> args = {SEQREC_BINARY,      "serve",     model,
                                     "--port",           "0",         "--port-file",
                                     port_file.string(), "--threads", "8"};
    for (auto& e : extra) args.push_back(std::move(e));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    const int rc = posix_spawn(&pid_, SEQREC_BINARY, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      return;
    }
    for (int i = 0; i < 400; ++i) {
      if (std::filesystem::exists(port_file)) {
        std::ifstream(port_file) >> port_;
        if (port_ > 0) break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~ServeProcess() { stop(); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  bool alive() const { return pid_ > 0 && port_ > 0; }
  /// Whether the process is still running (not reaped).
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid_ = -1;
      return false;
    }
    return true;
  }
  int exit_code() const { return exit_code_; }
  std::string log() const { return slurp(log_); }
  /// A crash: SIGKILL, then reaped.
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = 128 + SIGKILL;
  }
  /// SIGTERM, then the exit code (-1 if it had to be killed after 10 s).
  int stop() {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = -1;
    return exit_code_;
  }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
};

}  // namespace seqrec_test
