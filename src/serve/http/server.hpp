// `seqrec serve`: the HTTP/JSON front of a Recommender. Routes, JSON errors, metrics, and
// the process around it (signals: SIGHUP reloads the model, SIGINT/SIGTERM stop
// gracefully). The API is documented in docs/http-api.md.
//
// The HTTP/1.1 server underneath is our own (event_server.hpp, request_parser.hpp): one
// epoll I/O thread reads and parses every connection, `threads` workers run the handlers
// and write the responses. Connections cost no thread: an idle keep-alive connection is a
// file descriptor and a buffer, up to `max_connections`; `threads` bounds how many requests
// are computed at once (and so how many GRU4Rec/SASRec requests can share a scoring pass).
//
// Access (access.hpp, docs/http-api.md#threat-model), checked before a request reaches an
// endpoint, in this order: the Host field (missing in HTTP/1.1 or repeated: 400; not in
// allowed_hosts: 421), a state-changing request from another site as the browser tells it
// (403), the bearer token on the endpoints of api_key_scope (401), a body that is not
// application/json (415). Reloads over HTTP are limited: one at a time (409) and
// reload_min_interval_seconds apart (429).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "seqrec/recommender.hpp"

namespace seqrec::serve::http {

/// The default number of worker threads: twice the cores, at least 8. Workers only run
/// handlers (CPU work; connections do not hold them), but GRU4Rec/SASRec requests that are
/// handled at the same time share scoring passes, so a few more workers than cores raise
/// the peak rate (GRU4Rec, 2 cores, 16 connections: 7,400 req/s with 4 workers, 9,500
/// with 8 or 16).
int default_http_threads();

struct HttpOptions {
  std::string host = "127.0.0.1";        ///< loopback by default; 0.0.0.0 for every interface
  int port = 8080;                       ///< 0 = any free port (bind() returns it)
  int threads = default_http_threads();  ///< workers running handlers (not a connection limit)
  int max_connections = 10000;           ///< open connections at most; beyond: 503 and closed
  int64_t max_body = 1 << 20;            ///< bytes; larger bodies get 413 (chunked: decoded size)
  double keep_alive_seconds = 5;         ///< idle keep-alive connections are closed after this
  double read_timeout_seconds = 10;      ///< a started request must be complete by then (408)
  double write_timeout_seconds = 10;     ///< a response must be taken by the client by then
  size_t max_request_line = 8192;        ///< bytes of the request line (414)
  size_t max_header_bytes = 32768;       ///< bytes of the header section (431)
  int max_headers = 100;                 ///< header fields (431)
  bool access_log = false;               ///< one line per request on stderr
  bool quiet = false;                    ///< no reload/overload messages on stderr
  /// Host names requests may address (HostAllowList::parse syntax; others: 421). Empty:
  /// localhost, 127.0.0.1 and [::1] (and the bound address) when bound to a loopback
  /// address, any host otherwise.
  std::string allowed_hosts;
  /// The bearer token of the protected endpoints; empty: none (every endpoint open).
  std::string api_key;
  enum class ApiKeyScope {
    Admin,  ///< reload, metrics, model info, session reads and deletes
    All     ///< every endpoint except /health
  };
  ApiKeyScope api_key_scope = ApiKeyScope::Admin;
  /// Seconds between the end of a reload and the next one accepted over HTTP (429 before).
  double reload_min_interval_seconds = 1;
};

class HttpServer {
 public:
  HttpServer(std::shared_ptr<Recommender> recommender, HttpOptions options);
  ~HttpServer();
  /// Binds the listening socket; returns the port. Throws IoError when it cannot, InputError
  /// for malformed allowed_hosts.
  int bind();
  /// After bind(): the bound address is a loopback one.
  bool loopback() const;
  /// After bind(): the Host names accepted, comma-separated ("*": any).
  std::string allowed_hosts() const;
  /// Reloads the model file as POST /v1/reload does, but is never refused (SIGHUP): it waits
  /// for a reload in flight, and an HTTP reload that arrives meanwhile gets 409. Throws as
  /// Recommender::reload().
  ReloadResult reload();
  /// Serves until stop() (blocks). Requests in flight finish before it returns.
  void run();
  /// Stops run() from any thread; safe to call repeatedly, and before run() starts.
  void stop();
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Everything `seqrec serve` takes.
struct ServeOptions {
  std::string model_path;
  HttpOptions http;
  RecommenderOptions recommender;
  std::string port_file;  ///< when set, the bound port is written there (for scripts/tests)
  /// When set, http.api_key is read from this file (read_api_key_file in access.hpp).
  std::string api_key_file;
  bool quiet = false;  ///< no startup/shutdown lines on stderr
};

/// Loads the model, serves until SIGINT/SIGTERM (SIGHUP reloads the model), returns the
/// exit code. Errors before serving (bad model, port in use) are thrown as Error.
int serve(const ServeOptions& options);

}  // namespace seqrec::serve::http
