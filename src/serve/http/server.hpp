// `seqrec serve`: the HTTP/JSON front of a Recommender (cpp-httplib underneath). Routes,
// JSON errors, metrics, and the process around it (signals: SIGHUP reloads the model,
// SIGINT/SIGTERM stop gracefully). The API is documented in docs/http-api.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "seqrec/recommender.hpp"

namespace seqrec::serve::http {

struct HttpOptions {
  std::string host = "127.0.0.1";  ///< loopback by default; 0.0.0.0 for every interface
  int port = 8080;                 ///< 0 = any free port (bind() returns it)
  int threads = 16;            ///< worker threads; each keep-alive connection holds one while open
  int64_t max_body = 1 << 20;  ///< bytes; larger bodies get 413
  int keep_alive_seconds = 5;  ///< idle keep-alive connections are closed after this
  bool access_log = false;     ///< one line per request on stderr
  bool quiet = false;          ///< no reload messages on stderr
};

class HttpServer {
 public:
  HttpServer(std::shared_ptr<Recommender> recommender, HttpOptions options);
  ~HttpServer();
  /// Binds the listening socket; returns the port. Throws IoError when it cannot.
  int bind();
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
  bool quiet = false;     ///< no startup/shutdown lines on stderr
};

/// Loads the model, serves until SIGINT/SIGTERM (SIGHUP reloads the model), returns the
/// exit code. Errors before serving (bad model, port in use) are thrown as Error.
int serve(const ServeOptions& options);

}  // namespace seqrec::serve::http
