#include "serve/http/metrics.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace seqrec::serve::http {

Route classify(std::string_view method, std::string_view path) {
  if (path == "/v1/events") return method == "POST" ? Route::Events : Route::Other;
  if (path == "/v1/recommend") return method == "POST" ? Route::Recommend : Route::Other;
  if (path.size() > 13 && path.substr(0, 13) == "/v1/sessions/") {
    if (method == "GET") return Route::SessionGet;
    if (method == "DELETE") return Route::SessionDelete;
    return Route::Other;
  }
  if (path == "/health") return method == "GET" ? Route::Health : Route::Other;
  if (path == "/v1/model") return method == "GET" ? Route::Model : Route::Other;
  if (path == "/metrics") return method == "GET" ? Route::Metrics : Route::Other;
  if (path == "/v1/reload") return method == "POST" ? Route::Reload : Route::Other;
  if (path == "/v1/items") return method == "POST" ? Route::ItemAdd : Route::Other;
  if (path.size() > 10 && path.substr(0, 10) == "/v1/items/")
    return method == "DELETE" ? Route::ItemDelete : Route::Other;
  return Route::Other;
}

const char* route_method(Route r) {
  switch (r) {
    case Route::Events:
    case Route::Recommend:
    case Route::Reload:
    case Route::ItemAdd:
      return "POST";
    case Route::SessionDelete:
    case Route::ItemDelete:
      return "DELETE";
    case Route::Other:
      return "";
    default:
      return "GET";
  }
}

const char* route_path(Route r) {
  switch (r) {
    case Route::Events:
      return "/v1/events";
    case Route::Recommend:
      return "/v1/recommend";
    case Route::SessionGet:
    case Route::SessionDelete:
      return "/v1/sessions/{id}";
    case Route::Health:
      return "/health";
    case Route::Model:
      return "/v1/model";
    case Route::Metrics:
      return "/metrics";
    case Route::Reload:
      return "/v1/reload";
    case Route::ItemAdd:
      return "/v1/items";
    case Route::ItemDelete:
      return "/v1/items/{id}";
    default:
      return "other";
  }
}

void HttpMetrics::record(Route route, int status, double seconds) {
  const auto r = static_cast<size_t>(route);
  if (status < 0 || status >= kStatuses) status = 0;
  counts_[r][static_cast<size_t>(status)].fetch_add(1, std::memory_order_relaxed);
  if (seconds < 0) return;
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  buckets_[r][b].fetch_add(1, std::memory_order_relaxed);
  sum_ns_[r].fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  observed_[r].fetch_add(1, std::memory_order_relaxed);
}

namespace {

void line(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void line(std::string& out, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) out.append(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  out.push_back('\n');
}

/// A label value with \, " and newlines escaped.
std::string label(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o.push_back('\\');
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o.push_back(c);
  }
  return o;
}

}  // namespace

std::string HttpMetrics::prometheus(const RecommenderStats& s, const ServedModelInfo& m,
                                    double uptime) const {
  std::string out;
  out.reserve(8192);
  line(out, "# HELP seqrec_http_requests_total HTTP requests by route, method and status.");
  line(out, "# TYPE seqrec_http_requests_total counter");
  for (int r = 0; r < kRoutes; ++r) {
    const Route route = static_cast<Route>(r);
    for (int st = 0; st < kStatuses; ++st) {
      const uint64_t n = counts_[static_cast<size_t>(r)][static_cast<size_t>(st)].load();
      if (n == 0) continue;
      line(out, "seqrec_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu",
           route_path(route), route == Route::Other ? "other" : route_method(route), st,
           static_cast<unsigned long long>(n));
    }
  }
  line(out,
       "# HELP seqrec_http_request_duration_seconds Time from the request's headers to "
       "the end of its response, by route.");
  line(out, "# TYPE seqrec_http_request_duration_seconds histogram");
  for (int r = 0; r < kRoutes; ++r) {
    const Route route = static_cast<Route>(r);
    const auto ri = static_cast<size_t>(r);
    const uint64_t total = observed_[ri].load();
    if (total == 0) continue;
    const std::string lbl = std::string("route=\"") + route_path(route) + "\",method=\"" +
                            (route == Route::Other ? "other" : route_method(route)) + "\"";
    uint64_t cum = 0;
    for (size_t b = 0; b < kBuckets.size(); ++b) {
      cum += buckets_[ri][b].load();
      line(out, "seqrec_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu", lbl.c_str(),
           kBuckets[b], static_cast<unsigned long long>(cum));
    }
    cum += buckets_[ri][kBuckets.size()].load();
    line(out, "seqrec_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu", lbl.c_str(),
         static_cast<unsigned long long>(cum));
    line(out, "seqrec_http_request_duration_seconds_sum{%s} %.9f", lbl.c_str(),
         static_cast<double>(sum_ns_[ri].load()) * 1e-9);
    line(out, "seqrec_http_request_duration_seconds_count{%s} %llu", lbl.c_str(),
         static_cast<unsigned long long>(cum));
  }
  auto gauge = [&](const char* name, const char* type, const char* help, double v) {
    line(out, "# HELP %s %s", name, help);
    line(out, "# TYPE %s %s", name, type);
    line(out, "%s %.17g", name, v);
  };
  gauge("seqrec_sessions_live", "gauge", "Sessions held now.",
        static_cast<double>(s.live_sessions));
  gauge("seqrec_session_bytes", "gauge", "Estimated bytes of session state held now.",
        static_cast<double>(s.session_bytes));
  gauge("seqrec_sessions_created_total", "counter", "Sessions created.",
        static_cast<double>(s.sessions_created));
  gauge("seqrec_sessions_dropped_total", "counter", "Sessions dropped by a DELETE request.",
        static_cast<double>(s.sessions_dropped));
  line(out, "# HELP seqrec_session_evictions_total Sessions evicted, by reason.");
  line(out, "# TYPE seqrec_session_evictions_total counter");
  line(out, "seqrec_session_evictions_total{reason=\"lru\"} %lld",
       static_cast<long long>(s.evicted_lru));
  line(out, "seqrec_session_evictions_total{reason=\"memory\"} %lld",
       static_cast<long long>(s.evicted_memory));
  line(out, "seqrec_session_evictions_total{reason=\"ttl\"} %lld",
       static_cast<long long>(s.evicted_ttl));
  line(out, "seqrec_session_evictions_total{reason=\"reload\"} %lld",
       static_cast<long long>(s.evicted_reload));
  gauge("seqrec_events_total", "counter", "Known events added to sessions.",
        static_cast<double>(s.events));
  gauge("seqrec_unknown_items_total", "counter", "Unknown item ids in requests (skipped).",
        static_cast<double>(s.unknown_items));
  gauge("seqrec_scoring_batches_total", "counter",
        "Passes over the output layer of a dot-product model (GRU4Rec, SASRec).",
        static_cast<double>(s.scoring_batches));
  gauge("seqrec_scoring_batched_requests_total", "counter",
        "Requests scored in those passes (divided by the passes: the mean batch size).",
        static_cast<double>(s.scoring_batched_requests));
  gauge("seqrec_scoring_rescored_items_total", "counter",
        "Items scored exactly after an int8 or bf16 pass (--head-storage int8|bf16).",
        static_cast<double>(s.scoring_rescored_items));
  gauge("seqrec_ann_requests_total", "counter",
        "Requests answered through the ANN index (--retrieval ann).",
        static_cast<double>(s.ann_requests));
  gauge("seqrec_ann_exact_fallbacks_total", "counter",
        "ANN requests with fewer than K eligible candidates, scored exactly instead.",
        static_cast<double>(s.ann_exact_fallbacks));
  gauge("seqrec_session_store_failures_total", "counter",
        "Requests refused (503) because the session store could not be reached in time.",
        static_cast<double>(s.session_store_failures));
  gauge("seqrec_session_store_retries_total", "counter",
        "Session updates done again because another update of the session came first "
        "(Redis store).",
        static_cast<double>(s.session_store_retries));
  gauge("seqrec_items_added_total", "counter",
        "Items added to the live catalogue at run time (POST /v1/items).",
        static_cast<double>(s.items_added));
  gauge("seqrec_items_retired_total", "counter",
        "Items retired from the live catalogue (DELETE /v1/items/ID).",
        static_cast<double>(s.items_retired));
  gauge("seqrec_catalogue_live_items", "gauge",
        "Items that may be recommended now: trained and added, less the retired.",
        static_cast<double>(s.catalogue_live));
  gauge("seqrec_catalogue_added_live_items", "gauge", "Items added at run time and not retired.",
        static_cast<double>(s.catalogue_added_live));
  line(out, "# HELP seqrec_model_reloads_total Model reloads, by result.");
  line(out, "# TYPE seqrec_model_reloads_total counter");
  line(out, "seqrec_model_reloads_total{result=\"ok\"} %lld", static_cast<long long>(s.reloads));
  line(out, "seqrec_model_reloads_total{result=\"error\"} %lld",
       static_cast<long long>(s.reload_failures));
  line(out, "# HELP seqrec_model_info The model being served (value 1).");
  line(out, "# TYPE seqrec_model_info gauge");
  line(out, "seqrec_model_info{type=\"%s\",generation=\"%llu\"} 1", label(m.type).c_str(),
       static_cast<unsigned long long>(m.generation));
  gauge("seqrec_model_items", "gauge", "Items in the served model's catalogue.",
        static_cast<double>(m.n_items));
  gauge("seqrec_model_loaded_timestamp_seconds", "gauge",
        "Unix time at which the served model was loaded.", m.loaded_unix_seconds);
  gauge("seqrec_uptime_seconds", "gauge", "Seconds since the server started.", uptime);
  return out;
}

}  // namespace seqrec::serve::http
