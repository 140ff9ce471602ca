// The options of `seqrec serve` as one table: the HTTP layer's here, the recommender's
// limits from recommender_option_specs() (seqrec/recommender.hpp). The CLI makes the flags,
// their help text and range checks from it, and to_serve_options() fills ServeOptions.
#pragma once

#include <string>
#include <vector>

#include "seqrec/config.hpp"
#include "serve/http/server.hpp"

namespace seqrec {

/// host, port, threads, max_connections, keep_alive, read_timeout, write_timeout,
/// max_body, port_file, access_log, allowed_hosts, api_key_file, api_key_scope,
/// reload_min_interval; defaults are those of serve::http::HttpOptions.
std::vector<ParamSpec> http_option_specs();
/// http_option_specs() followed by recommender_option_specs().
std::vector<ParamSpec> serve_option_specs();
/// ServeOptions for `model_path` with the values of `c` (a Config of serve_option_specs()).
serve::http::ServeOptions to_serve_options(const Config& c, const std::string& model_path);

}  // namespace seqrec
