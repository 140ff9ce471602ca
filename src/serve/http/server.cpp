#include "serve/http/server.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <new>
#include <thread>

#include "io/output_file.hpp"
#include "seqrec/error.hpp"
#include "serve/http/event_server.hpp"
#include "serve/http/json_api.hpp"
#include "serve/http/metrics.hpp"

namespace seqrec::serve::http {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kJson = "application/json";

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse reply(int status, const json& j) {
  HttpResponse r;
  r.status = status;
  r.body = dump(j);
  return r;
}

/// Runs a handler, turning exceptions into JSON errors: ApiError -> its status, the core's
/// InputError -> 400, anything else -> 500 (the server itself never goes down).
template <class F>
HttpResponse guarded(F&& f) {
  try {
    return f();
  } catch (const ApiError& e) {
    return error_response(e.status(), e.what());
  } catch (const InputError& e) {
    return error_response(400, e.what());
  } catch (const std::bad_alloc&) {
    return error_response(503, "out of memory");
  } catch (const std::exception& e) {
    return error_response(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return error_response(500, "internal error");
  }
}

/// The methods of RFC 9110 (and PATCH): others are answered 501, these 405 on a route that
/// does not take them.
bool known_method(const std::string& m) {
  return m == "GET" || m == "HEAD" || m == "POST" || m == "PUT" || m == "DELETE" ||
         m == "CONNECT" || m == "OPTIONS" || m == "TRACE" || m == "PATCH";
}

/// Client bytes for the access log: printable ASCII as is, the rest escaped.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c > 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<Recommender> rec;
  HttpOptions options;
  HttpMetrics metrics;
  Clock::time_point started = Clock::now();
  std::unique_ptr<EventServer> server;

  double uptime() const { return std::chrono::duration<double>(Clock::now() - started).count(); }

  HttpResponse reload() {
    return guarded([&] {
      try {
        ReloadResult r = rec->reload();
        if (!options.quiet)
          std::fprintf(stderr, "seqrec serve: reloaded the model (generation %llu, %s)\n",
                       static_cast<unsigned long long>(r.generation),
                       r.catalogue_changed ? "catalogue changed, sessions dropped"
                                           : "same catalogue, sessions kept");
        return reply(200, to_json(r));
      } catch (const Error& e) {
        const uint64_t g = rec->stats().model_generation;
        if (!options.quiet)
          std::fprintf(stderr, "seqrec serve: reload failed, still serving generation %llu: %s\n",
                       static_cast<unsigned long long>(g), e.what());
        return error_response(500, std::string("reload failed; still serving model generation ") +
                                       std::to_string(g) + ": " + e.what());
      }
    });
  }

  static HttpResponse not_allowed(const HttpRequest& req, const char* allow) {
    HttpResponse r = error_response(405, "method " + req.method + " is not allowed on " + req.path +
                                             " (allowed: " + allow + ")");
    r.allow = allow;
    return r;
  }

  /// The routes (docs/http-api.md). Runs on a worker thread.
  HttpResponse handle(const HttpRequest& req) {
    const std::string& m = req.method;
    const std::string& path = req.path;
    const bool get = m == "GET" || m == "HEAD";  // HEAD: the GET answer without its body
    if (!known_method(m))
      return error_response(501, "method " + m + " is not implemented (see docs/http-api.md)");
    // A request without Content-Length (or chunked) has no body (RFC 9112 §6.3): fine for
    // the body-less reload (`curl -X POST URL`), an error for every other POST.
    if (m == "POST" && !req.framed() && path != "/v1/reload")
      return error_response(400, "this POST needs a JSON body (no Content-Length was sent)");
    if (path == "/v1/events") {
      if (m != "POST") return not_allowed(req, "POST");
      return guarded([&] {
        SessionRequest r = parse_session_request(req.body);
        HttpResponse res;
        res.body = recommendation_body(rec->add_events(r), &r.session_id);
        return res;
      });
    }
    if (path == "/v1/recommend") {
      if (m != "POST") return not_allowed(req, "POST");
      return guarded([&] {
        HttpResponse res;
        res.body = recommendation_body(rec->recommend(parse_items_request(req.body)), nullptr);
        return res;
      });
    }
    if (path.size() > 13 && path.compare(0, 13, "/v1/sessions/") == 0) {
      const std::string id = path.substr(13);
      if (get) {
        return guarded([&] {
          auto info = rec->session_info(id);
          if (!info) throw ApiError(404, "no session '" + id + "'");
          return reply(200, to_json(*info));
        });
      }
      if (m == "DELETE")
        return guarded([&] {
          return reply(200, {{"session_id", id}, {"dropped", rec->drop_session(id)}});
        });
      return not_allowed(req, "GET, HEAD, DELETE");
    }
    if (path == "/health") {
      if (!get) return not_allowed(req, "GET, HEAD");
      return guarded([&] {
        const RecommenderStats s = rec->stats();
        return reply(200, {{"status", "ok"},
                           {"model_generation", s.model_generation},
                           {"live_sessions", s.live_sessions},
                           {"uptime_seconds", uptime()}});
      });
    }
    if (path == "/v1/model") {
      if (!get) return not_allowed(req, "GET, HEAD");
      return guarded([&] { return reply(200, to_json(rec->model_info())); });
    }
    if (path == "/metrics") {
      if (!get) return not_allowed(req, "GET, HEAD");
      return guarded([&] {
        HttpResponse res;
        res.body = metrics.prometheus(rec->stats(), rec->model_info(), uptime());
        res.content_type = "text/plain; version=0.0.4; charset=utf-8";
        return res;
      });
    }
    if (path == "/v1/reload") {
      if (m != "POST") return not_allowed(req, "POST");
      return reload();
    }
    if (path == "/v1/sessions/" || path == "/v1/sessions")
      return error_response(404, "no such endpoint: " + m + " " + path +
                                     " (a session is addressed as /v1/sessions/ID)");
    return error_response(404, "no such endpoint: " + m + " " + path + " (see docs/http-api.md)");
  }

  /// Every answered request: metrics, and the access log.
  void observe(const RequestRecord& r) {
    const Route route =
        r.method.empty()
            ? Route::Other
            : classify(r.method == "HEAD" ? std::string_view("GET") : r.method, r.path);
    metrics.record(route, r.status, r.seconds);
    if (!options.access_log) return;
    char ms[32] = "-";
    if (r.seconds >= 0) std::snprintf(ms, sizeof ms, "%.3f", r.seconds * 1e3);
    std::fprintf(stderr, "%s %s %s %d %s ms%s\n", std::string(r.remote).c_str(),
                 r.method.empty() ? "-" : printable(r.method).c_str(),
                 r.path.empty() ? "-" : printable(r.path).c_str(), r.status, ms,
                 r.written ? "" : " (not delivered: the client went away)");
  }
};

HttpServer::HttpServer(std::shared_ptr<Recommender> recommender, HttpOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (!recommender) throw Error("HttpServer: no recommender");
  Impl& m = *impl_;
  m.rec = std::move(recommender);
  m.options = std::move(options);
  m.server =
      std::make_unique<EventServer>([&m](const HttpRequest& req) { return m.handle(req); },
                                    [&m](const RequestRecord& r) { m.observe(r); }, m.options);
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  return impl_->server->bind();
}

void HttpServer::run() {
  impl_->server->run();
}

void HttpServer::stop() {
  impl_->server->stop();
}

bool HttpServer::running() const {
  return impl_->server->running();
}

int serve(const ServeOptions& o) {
  // Signals go to one thread that waits for them: block them here, before any thread
  // (the recommender's sweeper, the HTTP workers) exists, so every thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &sigs, &old);
  struct Restore {
    sigset_t mask;
    ~Restore() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore{old};

  // Every connection is a file descriptor: raise the soft limit towards --max-connections
  // (plus room for the model file, epoll, logs), as far as the hard limit allows.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    const rlim_t want = static_cast<rlim_t>(o.http.max_connections) + 64;
    if (nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < want) {
      nofile.rlim_cur = nofile.rlim_max == RLIM_INFINITY ? want : std::min(want, nofile.rlim_max);
      setrlimit(RLIMIT_NOFILE, &nofile);
      getrlimit(RLIMIT_NOFILE, &nofile);
      if (nofile.rlim_cur < want && !o.quiet)
        std::fprintf(stderr,
                     "seqrec serve: warning: the file descriptor limit (%llu, ulimit -n) is below "
                     "--max-connections %d; connections beyond it wait in the backlog\n",
                     static_cast<unsigned long long>(nofile.rlim_cur), o.http.max_connections);
    }
  }

  const auto t0 = Clock::now();
  auto rec = std::make_shared<Recommender>(o.model_path, o.recommender);
  HttpServer server(rec, o.http);
  const int port = server.bind();
  if (!o.port_file.empty()) {
    // Created exclusively under a random name, then renamed: no planted link is followed.
    io::write_file(o.port_file, std::to_string(port) + "\n");
  }
  const ServedModelInfo info = rec->model_info();
  if (!o.quiet)
    std::fprintf(stderr,
                 "seqrec serve: %s model, %d items (%s) loaded in %.2f s\n"
                 "seqrec serve: listening on http://%s:%d (%d worker threads, at most %d "
                 "connections; SIGHUP reloads, SIGINT/SIGTERM stop)\n",
                 info.type.c_str(), info.n_items,
                 info.incremental ? "incremental session state" : "session histories",
                 std::chrono::duration<double>(Clock::now() - t0).count(), o.http.host.c_str(),
                 port, o.http.threads, o.http.max_connections);

  std::atomic<bool> finished{false};
  std::thread signals([&] {
    const timespec wait{0, 100 * 1000 * 1000};
    bool stopping = false;
    while (!finished) {
      if (stopping) server.stop();  // again, in case run() had not started listening yet
      const int sig = sigtimedwait(&sigs, nullptr, &wait);
      if (sig == SIGHUP) {
        try {
          ReloadResult r = rec->reload();
          std::fprintf(stderr, "seqrec serve: SIGHUP: reloaded the model (generation %llu, %s)\n",
                       static_cast<unsigned long long>(r.generation),
                       r.catalogue_changed ? "catalogue changed, sessions dropped"
                                           : "same catalogue, sessions kept");
        } catch (const std::exception& e) {
          std::fprintf(stderr, "seqrec serve: SIGHUP: reload failed, old model still serving: %s\n",
                       e.what());
        }
      } else if (sig == SIGINT || sig == SIGTERM) {
        if (!o.quiet && !stopping)
          std::fprintf(stderr, "seqrec serve: %s: finishing requests in flight, then stopping\n",
                       sig == SIGINT ? "SIGINT" : "SIGTERM");
        stopping = true;
        server.stop();
      }
    }
  });
  server.run();
  finished = true;
  signals.join();
  const RecommenderStats s = rec->stats();
  if (!o.quiet)
    std::fprintf(stderr, "seqrec serve: stopped (%lld live sessions dropped)\n",
                 static_cast<long long>(s.live_sessions));
  return 0;
}

}  // namespace seqrec::serve::http
