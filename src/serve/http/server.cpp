#include "serve/http/server.hpp"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <new>
#include <thread>

#include "seqrec/error.hpp"
#include "serve/http/json_api.hpp"
#include "serve/http/metrics.hpp"

namespace seqrec::serve::http {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kJson = "application/json";

// A request is handled start to end on one worker thread: the time its routing began.
thread_local Clock::time_point t_request_start;
thread_local bool t_request_started = false;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void reply(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), kJson);
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(error_body(status, message), kJson);
}

/// Runs a handler, turning exceptions into JSON errors: ApiError -> its status, the core's
/// InputError -> 400, anything else -> 500 (the server itself never goes down).
template <class F>
void guarded(httplib::Response& res, F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    reply_error(res, e.status(), e.what());
  } catch (const InputError& e) {
    reply_error(res, 400, e.what());
  } catch (const std::bad_alloc&) {
    reply_error(res, 503, "out of memory");
  } catch (const std::exception& e) {
    reply_error(res, 500, std::string("internal error: ") + e.what());
  } catch (...) {
    reply_error(res, 500, "internal error");
  }
}

const char* status_text(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 408:
      return "request timeout";
    case 414:
      return "request URI too long";
    case 416:
      return "range not satisfiable";
    case 417:
      return "expectation failed";
    case 431:
      return "request header fields too large";
    case 500:
      return "internal error";
    case 503:
      return "service unavailable";
    default:
      return status < 500 ? "bad request" : "server error";
  }
}

bool known_path(const std::string& path) {
  return path == "/v1/events" || path == "/v1/recommend" || path == "/health" ||
         path == "/v1/model" || path == "/metrics" || path == "/v1/reload" ||
         path.rfind("/v1/sessions/", 0) == 0;
}

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<Recommender> rec;
  HttpOptions options;
  httplib::Server svr;
  HttpMetrics metrics;
  Clock::time_point started = Clock::now();
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> bound{false};
  int listen_fd = -1;

  void reload(httplib::Response& res) {
    guarded(res, [&] {
      try {
        ReloadResult r = rec->reload();
        if (!options.quiet)
          std::fprintf(stderr, "seqrec serve: reloaded the model (generation %llu, %s)\n",
                       static_cast<unsigned long long>(r.generation),
                       r.catalogue_changed ? "catalogue changed, sessions dropped"
                                           : "same catalogue, sessions kept");
        reply(res, 200, to_json(r));
      } catch (const Error& e) {
        const uint64_t g = rec->stats().model_generation;
        if (!options.quiet)
          std::fprintf(stderr, "seqrec serve: reload failed, still serving generation %llu: %s\n",
                       static_cast<unsigned long long>(g), e.what());
        reply_error(res, 500,
                    std::string("reload failed; still serving model generation ") +
                        std::to_string(g) + ": " + e.what());
      }
    });
  }

  void routes() {
    svr.Post("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        SessionRequest r = parse_session_request(req.body);
        res.set_content(recommendation_body(rec->add_events(r), &r.session_id), kJson);
      });
    });
    svr.Post("/v1/recommend", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        res.set_content(recommendation_body(rec->recommend(parse_items_request(req.body)), nullptr),
                        kJson);
      });
    });
    svr.Get(R"(/v1/sessions/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        const std::string id = req.matches[1];
        auto info = rec->session_info(id);
        if (!info) throw ApiError(404, "no session '" + id + "'");
        reply(res, 200, to_json(*info));
      });
    });
    svr.Delete(R"(/v1/sessions/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        const std::string id = req.matches[1];
        reply(res, 200, {{"session_id", id}, {"dropped", rec->drop_session(id)}});
      });
    });
    svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      guarded(res, [&] {
        const RecommenderStats s = rec->stats();
        reply(res, 200,
              {{"status", "ok"},
               {"model_generation", s.model_generation},
               {"live_sessions", s.live_sessions},
               {"uptime_seconds", std::chrono::duration<double>(Clock::now() - started).count()}});
      });
    });
    svr.Get("/v1/model", [this](const httplib::Request&, httplib::Response& res) {
      guarded(res, [&] { reply(res, 200, to_json(rec->model_info())); });
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      guarded(res, [&] {
        res.set_content(
            metrics.prometheus(rec->stats(), rec->model_info(),
                               std::chrono::duration<double>(Clock::now() - started).count()),
            "text/plain; version=0.0.4; charset=utf-8");
      });
    });
    svr.Post("/v1/reload",
             [this](const httplib::Request&, httplib::Response& res) { reload(res); });

    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      t_request_start = Clock::now();
      t_request_started = true;
      // `curl -X POST URL` sends no Content-Length, which httplib refuses for a POST; a
      // request without one has no body (RFC 9112), so answer the body-less reload here.
      if (req.method == "POST" && req.path == "/v1/reload" && !req.has_header("Content-Length") &&
          !req.has_header("Transfer-Encoding")) {
        reload(res);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });

    // Errors httplib answers itself (no route, body too large, bad request line) and our
    // own: give every 4xx/5xx a JSON body.
    svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                      httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      if (res.status == 404 && known_path(req.path)) {
        reply_error(res, 405, "method " + req.method + " is not allowed on " + req.path);
      } else if (res.status == 404) {
        reply_error(res, 404,
                    "no such endpoint: " + req.method + " " + req.path + " (see docs/http-api.md)");
      } else if (res.status == 400 && req.method == "POST" && !req.has_header("Content-Length") &&
                 !req.has_header("Transfer-Encoding")) {
        reply_error(res, 400, "this POST needs a JSON body (no Content-Length was sent)");
      } else if (res.status == 413) {
        reply_error(res, 413,
                    "the request body is larger than " + std::to_string(options.max_body) +
                        " bytes (--max-body)");
      } else {
        reply_error(res, res.status, status_text(res.status));
      }
      return httplib::Server::HandlerResponse::Handled;
    }));
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                 std::exception_ptr) { reply_error(res, 500, "internal error"); });
    svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      double secs = -1.0;
      if (t_request_started) {
        secs = std::chrono::duration<double>(Clock::now() - t_request_start).count();
        t_request_started = false;
      }
      metrics.record(classify(req.method, req.path), res.status, secs);
      if (options.access_log)
        std::fprintf(stderr, "%s %s %s %d %.3f ms\n", req.remote_addr.c_str(), req.method.c_str(),
                     req.path.c_str(), res.status, secs * 1e3);
    });
  }
};

HttpServer::HttpServer(std::shared_ptr<Recommender> recommender, HttpOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (!recommender) throw Error("HttpServer: no recommender");
  if (options.threads < 1 || options.threads > 4096)
    throw InputError("--threads must be between 1 and 4096, got " +
                     std::to_string(options.threads));
  if (options.max_body < 1) throw InputError("--max-body must be at least 1 byte");
  if (options.port < 0 || options.port > 65535)
    throw InputError("--port must be between 0 and 65535, got " + std::to_string(options.port));
  impl_->rec = std::move(recommender);
  impl_->options = std::move(options);
  Impl& m = *impl_;
  const int threads = m.options.threads;
  m.svr.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  m.svr.set_payload_max_length(static_cast<size_t>(m.options.max_body));
  m.svr.set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which lets a second server bind a port in use
  // and silently share it: only SO_REUSEADDR (quick restarts), so a busy port is an error.
  // The callback sees only the listening socket: keep it, to raise its backlog in bind().
  m.svr.set_socket_options([&m](auto sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    m.listen_fd = static_cast<int>(sock);
  });
  m.svr.set_keep_alive_max_count(1000000);
  m.svr.set_keep_alive_timeout(m.options.keep_alive_seconds);
  m.svr.set_read_timeout(10);
  m.svr.set_write_timeout(10);
  m.routes();
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  Impl& m = *impl_;
  int port = m.options.port;
  if (port == 0) {
    port = m.svr.bind_to_any_port(m.options.host);
    if (port <= 0) throw IoError("cannot listen on " + m.options.host + " (any port)");
  } else if (!m.svr.bind_to_port(m.options.host, port)) {
    throw IoError("cannot listen on " + m.options.host + ":" + std::to_string(port) +
                  " (address in use, or not an address of this machine)");
  }
  // httplib listens with a backlog of 5 (compiled into Debian's library). When more clients
  // connect at once the kernel drops the handshake's last ACK, and their first request is
  // only retransmitted after the 200 ms minimum RTO. listen() again with a real backlog.
  if (m.listen_fd >= 0) ::listen(m.listen_fd, SOMAXCONN);
  m.bound = true;
  return port;
}

void HttpServer::run() {
  Impl& m = *impl_;
  if (!m.bound) bind();
  if (m.stop_requested) return;
  m.svr.listen_after_bind();
}

void HttpServer::stop() {
  impl_->stop_requested = true;
  impl_->svr.stop();
}

bool HttpServer::running() const {
  return impl_->svr.is_running();
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

  const auto t0 = Clock::now();
  auto rec = std::make_shared<Recommender>(o.model_path, o.recommender);
  HttpServer server(rec, o.http);
  const int port = server.bind();
  if (!o.port_file.empty()) {
    const std::string tmp = o.port_file + ".tmp";
    {
      std::ofstream f(tmp);
      f << port << "\n";
      if (!f) throw IoError("cannot write --port-file '" + o.port_file + "'");
    }
    std::filesystem::rename(tmp, o.port_file);
  }
  const ServedModelInfo info = rec->model_info();
  if (!o.quiet)
    std::fprintf(stderr,
                 "seqrec serve: %s model, %d items (%s) loaded in %.2f s\n"
                 "seqrec serve: listening on http://%s:%d (%d threads; SIGHUP reloads, "
                 "SIGINT/SIGTERM stop)\n",
                 info.type.c_str(), info.n_items,
                 info.incremental ? "incremental session state" : "session histories",
                 std::chrono::duration<double>(Clock::now() - t0).count(), o.http.host.c_str(),
                 port, o.http.threads);

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
