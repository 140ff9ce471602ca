// Who may ask what of `seqrec serve`: the checks the server applies to a parsed request
// before it reaches an endpoint (docs/http-api.md#threat-model). Pure functions on the
// request's fields, no I/O (except read_api_key_file), so each is tested on its own.
//
// - Host allow-list (HostAllowList): a request must name this server in its Host field (or
//   an absolute-form target), which defeats DNS rebinding: a page of attacker.example whose
//   name is re-pointed at 127.0.0.1 still sends `Host: attacker.example`.
// - JSON only (is_json_media_type): a request body must be `application/json`, a type a
//   browser may not send to another origin without a CORS preflight, which the server never
//   grants.
// - Cross-site requests (cross_site): a browser tells where a request comes from
//   (Sec-Fetch-Site, Origin); a state-changing request from another site is refused, which
//   covers the body-less `POST /v1/reload` that the content type cannot.
// - Bearer token (bearer_matches): `Authorization: Bearer TOKEN`, compared in constant time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "serve/http/request_parser.hpp"

namespace seqrec::serve::http {

/// Splits a Host value (`name`, `name:port`, `[v6]`, `[v6]:port`) into its host (lower-case,
/// brackets kept) and port (empty when none); false when it is not of that form.
bool split_host_port(std::string_view value, std::string* host, std::string* port);

/// The host names requests may address.
class HostAllowList {
 public:
  /// Everything allowed.
  HostAllowList() = default;
  /// From a comma-separated list: `name` (any port), `name:port`, `[::1]`, `*.example.com`
  /// (every subdomain of example.com, not example.com itself), `*` (any host). Names are
  /// compared without case. Throws InputError naming `what` for an empty list or a malformed
  /// entry.
  static HostAllowList parse(std::string_view list, const std::string& what = "allowed_hosts");
  /// localhost, 127.0.0.1 and [::1], any port (the default when listening on loopback).
  static HostAllowList loopback();
  /// Adds one entry (as in parse()); a list that allows everything still does.
  void add(std::string_view entry, const std::string& what = "allowed_hosts");

  /// The Host value `host_value` (host[:port]) names an allowed host.
  bool allows(std::string_view host_value) const;
  bool allows_any() const { return any_; }
  /// The entries, comma-separated ("*" when everything is allowed).
  std::string text() const;

 private:
  struct Entry {
    std::string host;  // lower-case; for a wildcard the suffix with its dot (".example.com")
    std::string port;  // empty: any
    bool wildcard = false;
  };
  bool any_ = true;
  std::vector<Entry> entries_;
};

/// `application/json`, optionally with `charset=utf-8` (case-insensitive, quoted or not);
/// no other parameter or charset.
bool is_json_media_type(std::string_view content_type);

/// The request comes from a page of another origin, as the browser says: `Sec-Fetch-Site`
/// other than `same-origin` or `none`; without it, an `Origin` whose host and port are not
/// those of the Host field (or `Origin: null`). A request without either (curl, scripts,
/// servers) is not cross-site.
bool cross_site(const HttpRequest& req);

/// `authorization` is `Bearer TOKEN` (scheme without case) with TOKEN equal to `key`. The
/// comparison's time depends on the lengths only, not on where the tokens differ.
bool bearer_matches(std::string_view authorization, std::string_view key);

/// The API key of `--api-key-file`: the file's first line without surrounding whitespace.
/// Throws IoError when the file cannot be read, InputError when the key is empty or holds
/// characters a header cannot carry (spaces, control characters, non-ASCII). `warnings`
/// receives advice: the file is readable by other users, the key is short.
std::string read_api_key_file(const std::string& path, std::vector<std::string>* warnings);

}  // namespace seqrec::serve::http
