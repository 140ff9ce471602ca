#include "app/serve_options.hpp"

#include <sstream>

#include "app/options.hpp"
#include "seqrec/recommender.hpp"
#include "serve/http/access.hpp"

namespace seqrec {

std::vector<ParamSpec> http_option_specs() {
  const serve::http::HttpOptions d;
  return {
      param_string("host", d.host, "address to listen on (0.0.0.0 = every interface)"),
      param_int("port", std::to_string(d.port), 0, 65535,
                "port (0 = any free port; see --port-file)"),
      param_int("threads", std::to_string(d.threads), 1, 4096,
                "worker threads running requests (default: 2 x cores, at least 8); not a limit "
                "on connections"),
      param_int("max_connections", std::to_string(d.max_connections), 1, 10000000,
                "open connections at most (beyond: 503 and closed)"),
      param_float("keep_alive", exact_text(d.keep_alive_seconds), 0.001, 1e6,
                  "seconds after which an idle keep-alive connection is closed"),
      param_float("read_timeout", exact_text(d.read_timeout_seconds), 0.001, 1e6,
                  "seconds within which a started request must be complete (else 408)"),
      param_float("write_timeout", exact_text(d.write_timeout_seconds), 0.001, 1e6,
                  "seconds a client may take to read a response before it is dropped"),
      param_int("max_body", std::to_string(d.max_body), 1, static_cast<double>(int64_t{1} << 34),
                "largest request body in bytes (larger: 413)"),
      param_string("port_file", "", "write the port to this file once listening"),
      param_bool("access_log", d.access_log ? "true" : "false", "one line per request on stderr"),
      param_string("allowed_hosts", d.allowed_hosts,
                   "Host names requests may address, comma-separated (name, name:port, "
                   "[IPv6], *.domain, *); others get 421. Default: localhost, 127.0.0.1, [::1] "
                   "when listening on loopback, any host otherwise"),
      param_string("api_key_file", "",
                   "file whose first line is the API key that requests must send as "
                   "'Authorization: Bearer KEY' (see --api-key-scope); none by default"),
      param_choice("api_key_scope",
                   d.api_key_scope == serve::http::HttpOptions::ApiKeyScope::All ? "all" : "admin",
                   {"admin", "all"},
                   "endpoints needing the API key: admin = reload, metrics, model info, session "
                   "reads and deletes; all = every endpoint but /health"),
      param_float("reload_min_interval", exact_text(d.reload_min_interval_seconds), 0, 1e6,
                  "seconds from the end of a reload before POST /v1/reload is accepted again "
                  "(earlier: 429; SIGHUP is not limited)"),
  };
}

std::vector<ParamSpec> serve_option_specs() {
  return concat_specs(http_option_specs(), recommender_option_specs());
}

serve::http::ServeOptions to_serve_options(const Config& c, const std::string& model_path) {
  serve::http::ServeOptions o;
  o.model_path = model_path;
  serve::http::HttpOptions& h = o.http;
  h.host = c.get_string("host");
  h.port = static_cast<int>(c.get_int("port"));
  h.threads = static_cast<int>(c.get_int("threads"));
  h.max_connections = static_cast<int>(c.get_int("max_connections"));
  h.keep_alive_seconds = c.get_float("keep_alive");
  h.read_timeout_seconds = c.get_float("read_timeout");
  h.write_timeout_seconds = c.get_float("write_timeout");
  h.max_body = c.get_int("max_body");
  h.access_log = c.get_bool("access_log");
  h.allowed_hosts = c.get_string("allowed_hosts");
  if (!h.allowed_hosts.empty()) serve::http::HostAllowList::parse(h.allowed_hosts);  // checks
  h.api_key_scope = c.get_string("api_key_scope") == "all"
                        ? serve::http::HttpOptions::ApiKeyScope::All
                        : serve::http::HttpOptions::ApiKeyScope::Admin;
  h.reload_min_interval_seconds = c.get_float("reload_min_interval");
  o.api_key_file = c.get_string("api_key_file");
  o.port_file = c.get_string("port_file");
  o.recommender = to_recommender_options(c);
  return o;
}

}  // namespace seqrec
