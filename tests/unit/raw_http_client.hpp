// A raw-socket HTTP/1.1 client for the server's tests: it sends exactly the bytes it is
// given and reads responses as they come, where a client library would hide the server's
// behaviour (pipelining, interim 100 responses, HEAD, the server closing the connection).
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace seqrec_test {

using namespace std::chrono_literals;

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  nlohmann::json body_json() const { return nlohmann::json::parse(body, nullptr, false); }
};

class RawClient {
 public:
  explicit RawClient(int port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  /// Closes with a reset (SO_LINGER 0), as a crashing client would.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  bool send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  /// Reads until `n` bytes are buffered; false on EOF, error or timeout.
  bool fill(size_t n, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (buf_.size() < n) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char tmp[65536];
      const ssize_t got = ::recv(fd_, tmp, sizeof tmp, 0);
      if (got <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(got));
    }
    return true;
  }
  /// The next response (status line, headers, Content-Length body); nullopt on EOF or timeout.
  /// `head`: a response to HEAD, which has no body whatever its Content-Length.
  std::optional<RawResponse> response(std::chrono::milliseconds timeout = 5000ms,
                                      bool head = false) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(buf_.size() + 1, timeout)) return std::nullopt;
    RawResponse r;
    const std::string header = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    if (header.compare(0, 9, "HTTP/1.1 ") != 0) return std::nullopt;
    r.status = std::stoi(header.substr(9, 3));
    size_t pos = header.find("\r\n");
    while (pos != std::string::npos && pos + 2 < header.size()) {
      const size_t next = header.find("\r\n", pos + 2);
      const std::string line =
          header.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
      const size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
      pos = next;
    }
    if (r.status >= 200 && !head) {
      const size_t len = std::stoul(r.headers.at("content-length"));
      if (!fill(len, timeout)) return std::nullopt;
      r.body = buf_.substr(0, len);
      buf_.erase(0, len);
    }
    return r;
  }
  /// The server closes the connection (EOF or reset) within `timeout`, sending nothing more.
  bool closed_by_server(std::chrono::milliseconds timeout = 3000ms) {
    if (!buf_.empty()) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char tmp[256];
    return ::recv(fd_, tmp, sizeof tmp, 0) <= 0;
  }
  const std::string& buffered() const { return buf_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

/// A GET as a loopback client sends it (`Host: 127.0.0.1`, which the server's default
/// allow-list accepts), with the header lines `extra`.
inline std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

/// A POST of a JSON body (`Content-Type: application/json`), as get().
inline std::string post(const std::string& path, const std::string& body,
                        const std::string& extra = "") {
  return "POST " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

}  // namespace seqrec_test
