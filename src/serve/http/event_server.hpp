// The connection engine of `seqrec serve`: an HTTP/1.1 server on Linux epoll, independent
// of the routes (a handler turns a parsed request into a response).
//
// Threads: one I/O thread owns the listening socket and every connection. It accepts,
// reads, and parses requests incrementally (request_parser.hpp); a complete request goes
// to a queue served by `threads` worker threads, which run the handler and write the
// response themselves (non-blocking). When the socket cannot take all of it, the rest goes
// back to the I/O thread, which finishes it on EPOLLOUT. A connection has at most one
// request in flight: pipelined requests wait in its buffer and are answered in order, and
// the socket is not read while a request is being handled (so a client that floods
// requests without reading answers meets TCP flow control, not server memory). Workers hand
// connections back through a queue and an eventfd that wakes the loop.
//
// So an open connection costs a file descriptor and a small buffer, not a thread: the
// number of connections is limited by max_connections (beyond it a new connection gets a
// 503 and is closed), the number of requests handled at once by the workers.
//
// Timeouts (seconds, HttpOptions): an idle connection (no byte of a next request) is
// closed after keep_alive; a request whose first byte has arrived must be complete within
// read_timeout (else 408, slowloris); a response the client does not take within
// write_timeout is abandoned and the connection closed. After a response that closes the
// connection (an error, `Connection: close`), the server shuts down its sending side and
// reads and discards what the client still sends for up to 2 s before closing, so that
// a client still sending its body sees the answer rather than a reset.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "serve/http/request_parser.hpp"
#include "serve/http/server.hpp"

namespace seqrec::serve::http {

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::string allow;  ///< the Allow header (405 answers); empty: none
  /// Further header fields, written as given (WWW-Authenticate, Retry-After).
  std::vector<std::pair<std::string, std::string>> headers;
};

/// What the observer learns about every answered request, once its response has been
/// written (or could not be).
struct RequestRecord {
  std::string_view method;  ///< empty when the request line could not be read
  std::string_view path;    ///< percent-decoded
  std::string_view remote;  ///< the client's address
  int status = 0;
  /// From the request fully read to its response written; < 0 for requests refused while
  /// being read (parse errors, timeouts, too many connections), which never reached a handler.
  double seconds = -1;
  bool written = true;  ///< false: the client went away (or timed out) before taking it all
};

/// A JSON error answer: {"error": {"status": ..., "message": ...}} (json_api's error_body).
HttpResponse error_response(int status, const std::string& message);

/// Runs on a worker thread; may throw (-> 500). Called concurrently.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
/// Runs on the worker or the I/O thread; called concurrently.
using HttpObserver = std::function<void(const RequestRecord&)>;

class EventServer {
 public:
  /// Validates the options (InputError); creates the epoll instance (IoError).
  EventServer(HttpHandler handler, HttpObserver observer, const HttpOptions& options);
  ~EventServer();
  EventServer(const EventServer&) = delete;
  EventServer& operator=(const EventServer&) = delete;

  /// Binds and listens (SO_REUSEADDR, not SO_REUSEPORT: a port in use is an error); returns
  /// the port. Throws IoError. Calling it again returns the same port.
  int bind();
  /// The bound address is a loopback one (127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104); false
  /// before bind().
  bool loopback() const;
  /// Serves until stop(); binds first if bind() was not called. On stop: the listening
  /// socket is closed, idle and half-received connections are closed, requests in flight
  /// are finished and their responses written, then the workers are joined and it returns.
  void run();
  /// From any thread, any number of times, also before run() (which then returns at once).
  void stop();
  bool running() const;
  /// Connections open now (for tests and diagnostics).
  int connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace seqrec::serve::http
