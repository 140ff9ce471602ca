#include "serve/http/access.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "seqrec/error.hpp"

namespace seqrec::serve::http {

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return !s.empty();
}

/// A registered name or IPv4 address: letters, digits, '-', '.', '_' (RFC 3986 reg-name
/// without percent-encoding or sub-delims, which no real Host value needs).
bool plain_host(std::string_view h) {
  if (h.empty()) return false;
  for (char c : h) {
    const char l = lower(c);
    if (!((l >= 'a' && l <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
      return false;
  }
  return true;
}

}  // namespace

bool split_host_port(std::string_view value, std::string* host, std::string* port) {
  std::string_view h, p;
  if (!value.empty() && value.front() == '[') {
    const size_t close = value.find(']');
    if (close == std::string_view::npos) return false;
    h = value.substr(0, close + 1);
    for (char c : h.substr(1, h.size() - 2)) {
      const char l = lower(c);
      if (!((l >= 'a' && l <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.')) return false;
    }
    if (h.size() < 3) return false;
    std::string_view rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      p = rest.substr(1);
      if (!all_digits(p)) return false;
    }
  } else {
    const size_t colon = value.find(':');
    h = value.substr(0, colon);
    if (colon != std::string_view::npos) {
      p = value.substr(colon + 1);
      if (!all_digits(p)) return false;
    }
    if (!plain_host(h)) return false;
  }
  *host = lowered(h);
  port->assign(p);
  return true;
}

HostAllowList HostAllowList::parse(std::string_view list, const std::string& what) {
  HostAllowList a;
  a.any_ = false;
  bool any_entry = false;
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view e = trim(list.substr(0, comma));
    if (!e.empty()) {
      a.add(e, what);
      any_entry = true;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  if (!any_entry)
    throw InputError(what + ": the list of host names is empty (give names, or '*' for any)");
  return a;
}

HostAllowList HostAllowList::loopback() {
  HostAllowList a;
  a.any_ = false;
  for (const char* e : {"localhost", "127.0.0.1", "[::1]"}) a.add(e);
  return a;
}

void HostAllowList::add(std::string_view entry, const std::string& what) {
  entry = trim(entry);
  if (entry == "*") {
    any_ = true;
    return;
  }
  Entry e;
  std::string_view body = entry;
  if (body.size() > 2 && body.substr(0, 2) == "*.") {
    e.wildcard = true;
    body.remove_prefix(1);  // keep the dot: ".example.com"
  }
  const std::string_view name = e.wildcard ? body.substr(1) : body;
  if (!split_host_port(name, &e.host, &e.port) || (e.wildcard && e.host.front() == '['))
    throw InputError(what + ": '" + std::string(entry) +
                     "' is not a host name (expected name, name:port, [IPv6], *.domain or *)");
  if (e.wildcard) e.host = "." + e.host;
  entries_.push_back(std::move(e));
}

bool HostAllowList::allows(std::string_view host_value) const {
  if (any_) return true;
  std::string host, port;
  if (!split_host_port(host_value, &host, &port)) return false;
  for (const Entry& e : entries_) {
    if (!e.port.empty() && e.port != port) continue;
    if (e.wildcard) {
      if (host.size() > e.host.size() &&
          host.compare(host.size() - e.host.size(), e.host.size(), e.host) == 0)
        return true;
    } else if (host == e.host) {
      return true;
    }
  }
  return false;
}

std::string HostAllowList::text() const {
  if (any_) return "*";
  std::string out;
  for (const Entry& e : entries_) {
    if (!out.empty()) out += ", ";
    out += e.wildcard ? "*" + e.host : e.host;
    if (!e.port.empty()) out += ":" + e.port;
  }
  return out;
}

bool is_json_media_type(std::string_view content_type) {
  const size_t semi = content_type.find(';');
  if (!iequals(trim(content_type.substr(0, semi)), "application/json")) return false;
  if (semi == std::string_view::npos) return true;
  std::string_view params = content_type.substr(semi + 1);
  // At most one parameter, charset=utf-8.
  if (params.find(';') != std::string_view::npos) return false;
  const size_t eq = params.find('=');
  if (eq == std::string_view::npos || !iequals(trim(params.substr(0, eq)), "charset")) return false;
  std::string_view v = trim(params.substr(eq + 1));
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return iequals(v, "utf-8") || iequals(v, "utf8");
}

bool cross_site(const HttpRequest& req) {
  if (!req.sec_fetch_site.empty())
    return !(iequals(req.sec_fetch_site, "same-origin") || iequals(req.sec_fetch_site, "none"));
  if (req.origin.empty()) return false;
  // Origin: scheme "://" host [ ":" port ], or "null" (an opaque origin: a sandboxed page, a
  // file, a redirect across sites).
  const std::string_view o = req.origin;
  const size_t sep = o.find("://");
  if (sep == std::string_view::npos) return true;
  const std::string scheme = lowered(o.substr(0, sep));
  std::string oh, op;
  if (!split_host_port(o.substr(sep + 3), &oh, &op)) return true;
  const char* default_port = scheme == "https" ? "443" : scheme == "http" ? "80" : "";
  if (op.empty()) op = default_port;
  const std::string_view host = req.authority.empty() ? std::string_view(req.host) : req.authority;
  std::string hh, hp;
  if (host.empty() || !split_host_port(host, &hh, &hp)) return true;
  if (hp.empty()) hp = default_port;
  return oh != hh || op != hp;
}

bool bearer_matches(std::string_view authorization, std::string_view key) {
  std::string_view a = trim(authorization);
  if (a.size() < 7 || !iequals(a.substr(0, 6), "Bearer") || (a[6] != ' ' && a[6] != '\t'))
    return false;
  const std::string_view token = trim(a.substr(7));
  // Every byte of the key is compared whatever the token, so the time taken tells nothing
  // about how much of a guess was right.
  volatile unsigned char diff = token.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < key.size(); ++i) {
    const unsigned char t = i < token.size() ? static_cast<unsigned char>(token[i]) : 0;
    diff = static_cast<unsigned char>(diff | (t ^ static_cast<unsigned char>(key[i])));
  }
  return diff == 0 && !key.empty();
}

std::string read_api_key_file(const std::string& path, std::vector<std::string>* warnings) {
  const std::string what = "--api-key-file '" + path + "'";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw IoError("cannot read " + what + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw IoError("cannot read " + what + ": it is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError("cannot read " + what + ": " + std::strerror(errno));
  std::string line;
  std::getline(f, line);
  if (f.bad()) throw IoError("cannot read " + what);
  std::string_view key = line;
  while (!key.empty() && std::strchr(" \t\r\n\f\v", key.front()) && key.front() != 0)
    key.remove_prefix(1);
  while (!key.empty() && std::strchr(" \t\r\n\f\v", key.back()) && key.back() != 0)
    key.remove_suffix(1);
  if (key.empty()) throw InputError(what + ": the first line is empty; it must hold the API key");
  if (key.size() > 4096) throw InputError(what + ": the API key is longer than 4096 bytes");
  for (unsigned char c : key)
    if (c <= 0x20 || c >= 0x7f)
      throw InputError(what +
                       ": the API key holds a space, a control character or a non-ASCII byte; "
                       "it must be one word of printable ASCII (e.g. openssl rand -hex 32)");
  if (warnings) {
    if (st.st_mode & (S_IRGRP | S_IROTH)) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      warnings->push_back(what + " is readable by other users (mode " + mode + "); chmod 600 it");
    }
    if (key.size() < 16)
      warnings->push_back("the API key in " + what + " has only " + std::to_string(key.size()) +
                          " characters; use at least 32 random ones (e.g. openssl rand -hex 32)");
  }
  return std::string(key);
}

}  // namespace seqrec::serve::http
