#include "serve/http/server.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <optional>
#include <thread>

#include "io/output_file.hpp"
#include "seqrec/error.hpp"
#include "serve/http/access.hpp"
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
/// InputError -> 400, the session store unreachable -> 503, a session updated concurrently
/// too often -> 409, anything else -> 500 (the server itself never goes down).
template <class F>
HttpResponse guarded(F&& f) {
  try {
    return f();
  } catch (const ApiError& e) {
    return error_response(e.status(), e.what());
  } catch (const SessionStoreUnavailable& e) {
    return error_response(503, e.what());
  } catch (const SessionConflict& e) {
    return error_response(409, e.what());
  } catch (const ItemConflict& e) {
    return error_response(409, e.what());
  } catch (const UnknownItem& e) {
    return error_response(404, e.what());
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

/// Whole seconds for a Retry-After field: at least 1.
std::string retry_after(double seconds) {
  return std::to_string(std::max<long long>(1, static_cast<long long>(std::ceil(seconds))));
}

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<Recommender> rec;
  HttpOptions options;
  HttpMetrics metrics;
  Clock::time_point started = Clock::now();
  std::unique_ptr<EventServer> server;
  std::optional<HostAllowList> given_hosts;  // --allowed-hosts, when given
  HostAllowList hosts;                       // what is applied (set by bind())
  bool bound = false;

  // Reloads: how many run now (HTTP and SIGHUP), when the last one ended and how long it took.
  std::mutex reload_mu;
  int reloads_running = 0;
  bool reloaded_before = false;
  Clock::time_point last_reload_end;
  double last_reload_seconds = 0;

  double uptime() const { return std::chrono::duration<double>(Clock::now() - started).count(); }

  /// Runs a reload, keeping the bookkeeping of the limits.
  ReloadResult run_reload() {
    const auto t0 = Clock::now();
    struct Done {
      Impl& m;
      Clock::time_point t0;
      ~Done() {
        std::lock_guard<std::mutex> lock(m.reload_mu);
        --m.reloads_running;
        m.reloaded_before = true;
        m.last_reload_end = Clock::now();
        m.last_reload_seconds = std::chrono::duration<double>(m.last_reload_end - t0).count();
      }
    } done{*this, t0};
    return rec->reload();
  }

  /// POST /v1/reload: one at a time (409), reload_min_interval_seconds apart (429).
  HttpResponse reload() {
    {
      std::lock_guard<std::mutex> lock(reload_mu);
      if (reloads_running > 0) {
        HttpResponse r =
            error_response(409, "a reload is already running; ask again once it has finished");
        r.headers.emplace_back("Retry-After", retry_after(last_reload_seconds));
        return r;
      }
      if (reloaded_before) {
        const double since = std::chrono::duration<double>(Clock::now() - last_reload_end).count();
        if (since < options.reload_min_interval_seconds) {
          char text[160];
          std::snprintf(text, sizeof text,
                        "the last reload ended %.3g s ago; reloads are at least %g s apart "
                        "(--reload-min-interval)",
                        since, options.reload_min_interval_seconds);
          HttpResponse r = error_response(429, text);
          r.headers.emplace_back("Retry-After",
                                 retry_after(options.reload_min_interval_seconds - since));
          return r;
        }
      }
      ++reloads_running;
    }
    return guarded([&] {
      try {
        ReloadResult r = run_reload();
        if (!options.quiet)
          std::fprintf(stderr, "seqrec serve: reloaded the model in %.3f s (generation %llu, %s)\n",
                       r.seconds, static_cast<unsigned long long>(r.generation),
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

  /// The endpoints that need the API key (when there is one).
  bool protected_path(const std::string& path) const {
    if (options.api_key_scope == HttpOptions::ApiKeyScope::All) return path != "/health";
    return path == "/v1/reload" || path == "/metrics" || path == "/v1/model" ||
           path.compare(0, 13, "/v1/sessions/") == 0 || path == "/v1/items" ||
           path.compare(0, 10, "/v1/items/") == 0;
  }

  /// The checks before any endpoint (access.hpp): Host, cross-site, API key. An answer
  /// refuses the request.
  std::optional<HttpResponse> refuse(const HttpRequest& req) const {
    if (req.host_count > 1) return error_response(400, "more than one Host header");
    if (req.host_count == 0 && req.minor_version >= 1)
      return error_response(400, "an HTTP/1.1 request needs a Host header");
    const std::string& host = req.authority.empty() ? req.host : req.authority;
    if (!hosts.allows_any() && (req.host_count > 0 || !req.authority.empty()) &&
        !hosts.allows(host))
      return error_response(421, "this server does not answer for the host '" + printable(host) +
                                     "' (see --allowed-hosts in docs/http-api.md)");
    const std::string& m = req.method;
    if (m != "GET" && m != "HEAD" && m != "OPTIONS" && cross_site(req))
      return error_response(
          403, "cross-site request refused: a web page of another origin may not " + m +
                   " here (see docs/http-api.md#threat-model)");
    if (!options.api_key.empty() && protected_path(req.path) &&
        !bearer_matches(req.authorization, options.api_key)) {
      const bool sent = !req.authorization.empty();
      HttpResponse r = error_response(
          401, sent ? "the API key is wrong (Authorization: Bearer TOKEN, TOKEN as in the "
                      "server's --api-key-file)"
                    : "this endpoint needs the API key: send Authorization: Bearer TOKEN "
                      "(TOKEN as in the server's --api-key-file)");
      r.headers.emplace_back(
          "WWW-Authenticate",
          sent ? "Bearer realm=\"seqrec\", error=\"invalid_token\"" : "Bearer realm=\"seqrec\"");
      return r;
    }
    return std::nullopt;
  }

  /// A request body must be JSON (415 otherwise), so that a browser cannot send one to
  /// another origin without a CORS preflight.
  static std::optional<HttpResponse> not_json(const HttpRequest& req) {
    if (is_json_media_type(req.content_type)) return std::nullopt;
    HttpResponse r = error_response(
        415, req.content_type.empty()
                 ? std::string("the request body must be JSON: send Content-Type: application/json")
                 : "the request body must be JSON: Content-Type is '" +
                       printable(req.content_type) + "', expected application/json");
    r.headers.emplace_back("Accept-Post", kJson);
    return r;
  }

  /// The routes (docs/http-api.md). Runs on a worker thread.
  HttpResponse handle(const HttpRequest& req) {
    const std::string& m = req.method;
    const std::string& path = req.path;
    const bool get = m == "GET" || m == "HEAD";  // HEAD: the GET answer without its body
    if (auto refused = refuse(req)) return std::move(*refused);
    if (!known_method(m))
      return error_response(501, "method " + m + " is not implemented (see docs/http-api.md)");
    // A request without Content-Length (or chunked) has no body (RFC 9112 §6.3): fine for
    // the body-less reload (`curl -X POST URL`), an error for every other POST.
    if (m == "POST" && !req.framed() && path != "/v1/reload")
      return error_response(400, "this POST needs a JSON body (no Content-Length was sent)");
    if (path == "/v1/events") {
      if (m != "POST") return not_allowed(req, "POST");
      if (auto bad = not_json(req)) return std::move(*bad);
      return guarded([&] {
        SessionRequest r = parse_session_request(req.body);
        HttpResponse res;
        res.body = recommendation_body(rec->add_events(r), &r.session_id);
        return res;
      });
    }
    if (path == "/v1/recommend") {
      if (m != "POST") return not_allowed(req, "POST");
      if (auto bad = not_json(req)) return std::move(*bad);
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
        const SessionStoreHealth store = rec->session_store_health();
        json st = {{"type", store.type}, {"ok", store.ok}};
        if (!store.where.empty()) st["where"] = store.where;
        if (!store.ok) st["error"] = store.error;
        // Still 200 while the store is down: the server answers what does not need it.
        return reply(200, {{"status", store.ok ? "ok" : "degraded"},
                           {"model_generation", s.model_generation},
                           {"live_sessions", s.live_sessions},
                           {"live_items", s.catalogue_live},
                           {"added_items", s.catalogue_added_live},
                           {"session_store", std::move(st)},
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
      if (!req.body.empty())  // it takes no body, but one that is sent must be JSON
        if (auto bad = not_json(req)) return std::move(*bad);
      return reload();
    }
    if (path == "/v1/items") {
      if (m != "POST") return not_allowed(req, "POST");
      if (auto bad = not_json(req)) return std::move(*bad);
      return guarded([&] {
        std::string id;
        json features;
        parse_item_request(req.body, &id, &features);
        return reply(201, to_json(rec->add_item(id, features)));
      });
    }
    if (path.size() > 10 && path.compare(0, 10, "/v1/items/") == 0) {
      if (m != "DELETE") return not_allowed(req, "DELETE");
      const std::string id = path.substr(10);
      return guarded([&] { return reply(200, to_json(rec->remove_item(id))); });
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
  if (!m.options.allowed_hosts.empty())
    m.given_hosts = HostAllowList::parse(m.options.allowed_hosts);
  m.server =
      std::make_unique<EventServer>([&m](const HttpRequest& req) { return m.handle(req); },
                                    [&m](const RequestRecord& r) { m.observe(r); }, m.options);
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  Impl& m = *impl_;
  const int port = m.server->bind();
  if (!m.bound) {
    if (m.given_hosts) {
      m.hosts = *m.given_hosts;
    } else if (m.server->loopback()) {
      // The loopback names, and the address bound if it is another one (127.0.0.2).
      m.hosts = HostAllowList::loopback();
      const std::string& h = m.options.host;
      std::string name, p;
      const std::string entry =
          h.find(':') != std::string::npos && h.front() != '[' ? "[" + h + "]" : h;
      if (split_host_port(entry, &name, &p) && p.empty() && !m.hosts.allows(entry))
        m.hosts.add(entry);
    } else {
      m.hosts = HostAllowList();
    }
    m.bound = true;
  }
  return port;
}

bool HttpServer::loopback() const {
  return impl_->server->loopback();
}

std::string HttpServer::allowed_hosts() const {
  return impl_->hosts.text();
}

ReloadResult HttpServer::reload() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.reload_mu);
    ++m.reloads_running;
  }
  return m.run_reload();
}

void HttpServer::run() {
  bind();
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

  // The API key first: a mistake in it is found before a large model is loaded.
  HttpOptions http = o.http;
  if (!o.api_key_file.empty()) {
    std::vector<std::string> warnings;
    http.api_key = read_api_key_file(o.api_key_file, &warnings);
    for (const std::string& w : warnings)
      std::fprintf(stderr, "seqrec serve: warning: %s\n", w.c_str());
  }
  const auto t0 = Clock::now();
  auto rec = std::make_shared<Recommender>(o.model_path, o.recommender);
  HttpServer server(rec, http);
  const int port = server.bind();
  // Security warnings are printed even with --quiet.
  if (!server.loopback()) {
    if (http.api_key.empty())
      std::fprintf(stderr,
                   "seqrec serve: warning: listening on %s, beyond loopback, without "
                   "--api-key-file: whoever reaches the port can reload the model, read and "
                   "delete sessions and read the metrics (docs/http-api.md#threat-model)\n",
                   http.host.empty() ? "every interface" : http.host.c_str());
    if (http.allowed_hosts.empty())
      std::fprintf(stderr,
                   "seqrec serve: warning: any Host name is accepted (no --allowed-hosts); name "
                   "the server's host names to refuse DNS-rebinding requests\n");
  }
  const ServedModelInfo info = rec->model_info();
  const std::string& snapshot = o.recommender.session_snapshot;
  if (!o.quiet && !snapshot.empty()) {
    const RecommenderStats s0 = rec->stats();
    std::fprintf(stderr, "seqrec serve: %lld sessions restored from %s",
                 static_cast<long long>(s0.sessions_restored), snapshot.c_str());
    if (s0.sessions_restore_skipped > 0)
      std::fprintf(stderr, " (%lld skipped: another catalogue, or idle beyond --session-ttl)",
                   static_cast<long long>(s0.sessions_restore_skipped));
    std::fprintf(stderr, "\n");
  }
  if (!o.quiet && o.recommender.session_store != "memory")
    std::fprintf(stderr, "seqrec serve: sessions in %s (keys %s*)\n",
                 o.recommender.session_store.c_str(), o.recommender.session_key_prefix.c_str());
  if (!o.quiet)
    std::fprintf(stderr,
                 "seqrec serve: %s model, %d items (%s) loaded in %.2f s\n"
                 "seqrec serve: listening on http://%s:%d (%d worker threads, at most %d "
                 "connections; SIGHUP reloads, SIGINT/SIGTERM stop)\n",
                 info.type.c_str(), info.n_items,
                 info.incremental ? "incremental session state" : "session histories",
                 std::chrono::duration<double>(Clock::now() - t0).count(), o.http.host.c_str(),
                 port, o.http.threads, o.http.max_connections);
  if (!o.quiet && !http.api_key.empty())
    std::fprintf(stderr, "seqrec serve: the API key is required on %s\n",
                 http.api_key_scope == HttpOptions::ApiKeyScope::All
                     ? "every endpoint but /health"
                     : "/v1/reload, /metrics, /v1/model, /v1/sessions/ID and /v1/items");

  if (!o.port_file.empty()) {
    // Written after the start-up messages, so that whoever waits for this file finds them in
    // the log. Created exclusively under a random name, then renamed: no planted link is
    // followed.
    io::write_file(o.port_file, std::to_string(port) + "\n");
  }
  std::atomic<bool> finished{false};
  std::thread signals([&] {
    const timespec wait{0, 100 * 1000 * 1000};
    bool stopping = false;
    while (!finished) {
      if (stopping) server.stop();  // again, in case run() had not started listening yet
      const int sig = sigtimedwait(&sigs, nullptr, &wait);
      if (sig == SIGHUP) {
        try {
          ReloadResult r = server.reload();
          std::fprintf(stderr,
                       "seqrec serve: SIGHUP: reloaded the model in %.3f s (generation %llu, %s)\n",
                       r.seconds, static_cast<unsigned long long>(r.generation),
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
  if (!snapshot.empty()) {
    // The requests in flight have finished: every session is in its final state.
    try {
      const int64_t n = rec->save_session_snapshot();
      if (!o.quiet)
        std::fprintf(stderr, "seqrec serve: stopped (%lld live sessions written to %s)\n",
                     static_cast<long long>(n), snapshot.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "seqrec serve: the session snapshot failed, %lld sessions lost: %s\n",
                   static_cast<long long>(s.live_sessions), e.what());
      return 1;
    }
  } else if (!o.quiet && o.recommender.session_store != "memory") {
    std::fprintf(stderr, "seqrec serve: stopped (sessions stay in %s)\n",
                 o.recommender.session_store.c_str());
  } else if (!o.quiet) {
    std::fprintf(stderr, "seqrec serve: stopped (%lld live sessions dropped)\n",
                 static_cast<long long>(s.live_sessions));
  }
  return 0;
}

}  // namespace seqrec::serve::http
