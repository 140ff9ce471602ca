// A throwaway redis-server for tests: started on a free loopback port in its own folder,
// without persistence (--save '' --appendonly no), stopped at the end. Tests that need it
// skip with a message when the redis-server binary is missing (scripts/setup installs it).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace seqrec_test {

/// The redis-server binary on PATH, or "" when there is none.
inline std::string find_redis_server() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/usr/local/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    const std::string p = (d.empty() ? "." : d) + "/redis-server";
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

/// Whether a Redis on 127.0.0.1:port answers PING.
inline bool redis_answers(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
    char buf[16] = {};
    ok = ::recv(fd, buf, sizeof buf - 1, 0) > 0 && std::string(buf).rfind("+PONG", 0) == 0;
  }
  ::close(fd);
  return ok;
}

class RedisProcess {
 public:
  explicit RedisProcess(std::filesystem::path dir) : dir_(std::move(dir)) {
    binary_ = find_redis_server();
    if (binary_.empty()) return;
    std::filesystem::create_directories(dir_);
    port_ = free_loopback_port();
    start();
  }
  ~RedisProcess() { stop(SIGTERM); }
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  bool missing() const { return binary_.empty(); }
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  /// Starts it (again) on the same port; true once it answers PING.
  bool start() {
    if (binary_.empty() || pid_ > 0) return pid_ > 0;
    const std::string port = std::to_string(port_);
    const std::string log = (dir_ / ("redis_" + port + ".log")).string();
    std::vector<std::string> args = {
        binary_,        "--port", port,    "--bind",      "127.0.0.1", "--save", "",
        "--appendonly", "no",     "--dir", dir_.string(), "--logfile", log};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, binary_.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
      return false;
    }
    for (int i = 0; i < 200; ++i) {
      if (redis_answers(port_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  }
  /// Stops it with `sig` (SIGKILL: a crash) and waits for it to go.
  void stop(int sig = SIGTERM) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  /// SIGSTOP / SIGCONT: a Redis that hangs (accepts connections, answers nothing).
  void pause() const {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void resume() const {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

 private:
  std::filesystem::path dir_;
  std::string binary_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace seqrec_test
