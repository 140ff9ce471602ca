#include "serve/http/request_parser.hpp"

#include <algorithm>
#include <cstring>

namespace seqrec::serve::http {

namespace {

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
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

/// Calls f(element) for every element of a comma-separated list, trimmed, empty ones skipped.
template <class F>
void for_each_element(std::string_view list, F&& f) {
  while (true) {
    const size_t comma = list.find(',');
    std::string_view e = trim(list.substr(0, comma));
    if (!e.empty()) f(e);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

/// A repeated field is one field whose values are joined by ", " (RFC 9110 §5.3).
void append_field(std::string* field, std::string_view value) {
  if (!field->empty()) *field += ", ";
  field->append(value);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/// A printable excerpt of client bytes for an error message.
std::string excerpt(std::string_view s, size_t max = 40) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      static const char* digits = "0123456789abcdef";
      out += "\\x";
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace

bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

void RequestParser::reset() {
  phase_ = Phase::RequestLine;
  scanned_ = 0;
  header_bytes_ = 0;
  headers_ = 0;
  chunk_left_ = 0;
  body_started_ = false;
  te_seen_ = te_chunked_ = false;
  te_chunked_count_ = 0;
  te_other_.clear();
  cl_too_large_ = false;
  conn_close_ = conn_keep_alive_ = false;
  req_ = HttpRequest();
  error_ = HttpParseError();
}

bool RequestParser::wants_continue() const {
  return req_.expect_continue && !body_started_ &&
         (phase_ == Phase::Body || phase_ == Phase::ChunkSize);
}

RequestParser::Result RequestParser::fail(int status, std::string message) {
  phase_ = Phase::Failed;
  error_.status = status;
  error_.message = std::move(message);
  return Result::Error;
}

RequestParser::Result RequestParser::feed(std::string_view data, size_t* consumed) {
  size_t pos = 0;
  *consumed = 0;
  // The next line of `data` from pos (without its CR LF or LF), or false when its LF has
  // not arrived yet (then `pending` is the length so far).
  auto next_line = [&](std::string_view* line, size_t* pending) {
    const size_t from = pos + scanned_;
    const void* lf =
        from < data.size() ? std::memchr(data.data() + from, '\n', data.size() - from) : nullptr;
    if (!lf) {
      scanned_ = data.size() - pos;
      *pending = scanned_;
      return false;
    }
    const size_t end = static_cast<size_t>(static_cast<const char*>(lf) - data.data());
    *line = data.substr(pos, end - pos);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    *pending = end + 1 - pos;  // the line's bytes with its terminator
    pos = end + 1;
    scanned_ = 0;
    return true;
  };

  while (true) {
    std::string_view line;
    size_t n = 0;
    switch (phase_) {
      case Phase::RequestLine: {
        // A line over the limit, finished or not, gets the same answer (so that it does not
        // depend on how the bytes arrive): 400 when it does not start like a request, else 414.
        auto too_long = [&](std::string_view line_start) {
          // Only the bytes an unfinished line is judged on: the first limit + 1.
          const std::string_view start =
              line_start.substr(0, std::min<size_t>(64, limits_.max_request_line + 1));
          const size_t sp = start.find(' ');
          if (sp == std::string_view::npos || !is_token(start.substr(0, sp)))
            return fail(400, "malformed request line '" + excerpt(start) + "'");
          return fail(414, "the request line is longer than " +
                               std::to_string(limits_.max_request_line) + " bytes");
        };
        if (!next_line(&line, &n)) {
          // A trailing CR may belong to the line's end, which a finished line does not count.
          const size_t len = n > 0 && data[pos + n - 1] == '\r' ? n - 1 : n;
          if (len > limits_.max_request_line) return too_long(data.substr(pos));
          *consumed = pos;
          return Result::NeedMore;
        }
        if (line.empty()) {  // an empty line before the request line: skipped
          *consumed = pos;
          continue;
        }
        if (line.size() > limits_.max_request_line) return too_long(line);
        if (!parse_request_line(line)) return Result::Error;
        phase_ = Phase::Headers;
        *consumed = pos;
        continue;
      }
      case Phase::Headers:
      case Phase::Trailers: {
        const bool got = next_line(&line, &n);
        if (header_bytes_ + n > limits_.max_header_bytes)
          return fail(431, std::string(phase_ == Phase::Headers ? "the request headers are"
                                                                : "the chunked body's trailer is") +
                               " larger than " + std::to_string(limits_.max_header_bytes) +
                               " bytes");
        if (!got) {
          *consumed = pos;
          return Result::NeedMore;
        }
        header_bytes_ += n;
        *consumed = pos;
        if (line.empty()) {
          if (phase_ == Phase::Trailers) {
            phase_ = Phase::Done;
          } else if (!end_of_headers()) {
            return Result::Error;
          }
          continue;
        }
        if (++headers_ > limits_.max_headers)
          return fail(431, std::string("more than ") + std::to_string(limits_.max_headers) +
                               (phase_ == Phase::Headers ? " header fields" : " trailer fields"));
        if (line.front() == ' ' || line.front() == '\t')
          return fail(400,
                      "obsolete header line folding (a line starting with whitespace) is "
                      "not supported");
        if (phase_ == Phase::Headers) {
          if (!parse_header(line)) return Result::Error;
        } else {
          const size_t colon = line.find(':');
          if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
            return fail(400, "malformed trailer field '" + excerpt(line) + "'");
        }
        continue;
      }
      case Phase::Body: {
        const size_t avail = data.size() - pos;
        const auto need = static_cast<size_t>(req_.content_length) - req_.body.size();
        const size_t take = avail < need ? avail : need;
        if (take > 0) {
          if (req_.body.empty()) req_.body.reserve(static_cast<size_t>(req_.content_length));
          req_.body.append(data.data() + pos, take);
          pos += take;
          body_started_ = true;
        }
        *consumed = pos;
        if (req_.body.size() < static_cast<size_t>(req_.content_length)) return Result::NeedMore;
        phase_ = Phase::Done;
        continue;
      }
      case Phase::ChunkSize: {
        // One limit for a finished and an unfinished line, on the same bytes (a trailing CR
        // not counted), so that the answer does not depend on how the bytes arrive.
        constexpr size_t kMaxChunkSizeLine = 1024;
        auto too_long = [&] {
          return fail(400, "malformed chunked body: a chunk size line is longer than " +
                               std::to_string(kMaxChunkSizeLine) + " bytes");
        };
        if (!next_line(&line, &n)) {
          const size_t len = n > 0 && data[pos + n - 1] == '\r' ? n - 1 : n;
          if (len > kMaxChunkSizeLine) return too_long();
          *consumed = pos;
          return Result::NeedMore;
        }
        if (line.size() > kMaxChunkSizeLine) return too_long();
        body_started_ = true;
        if (!parse_chunk_size(line)) return Result::Error;
        *consumed = pos;
        continue;
      }
      case Phase::ChunkData: {
        const size_t avail = data.size() - pos;
        const size_t take =
            avail < static_cast<size_t>(chunk_left_) ? avail : static_cast<size_t>(chunk_left_);
        req_.body.append(data.data() + pos, take);
        pos += take;
        chunk_left_ -= static_cast<int64_t>(take);
        *consumed = pos;
        if (chunk_left_ > 0) return Result::NeedMore;
        phase_ = Phase::ChunkDataEnd;
        continue;
      }
      case Phase::ChunkDataEnd: {
        // CR LF (or a bare LF) after the chunk's data.
        const size_t avail = data.size() - pos;
        if (avail >= 1 && data[pos] == '\n') {
          pos += 1;
        } else if (avail >= 2 && data[pos] == '\r' && data[pos + 1] == '\n') {
          pos += 2;
        } else if (avail == 0 || (avail == 1 && data[pos] == '\r')) {
          *consumed = pos;
          return Result::NeedMore;
        } else {
          return fail(400, "malformed chunked body: a chunk's data is not followed by CRLF");
        }
        *consumed = pos;
        phase_ = Phase::ChunkSize;
        continue;
      }
      case Phase::Done:
        *consumed = pos;
        return Result::Complete;
      case Phase::Failed:
        return Result::Error;
    }
  }
}

bool RequestParser::parse_request_line(std::string_view line) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    fail(400, "malformed request line '" + excerpt(line) + "' (expected METHOD TARGET HTTP/1.1)");
    return false;
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) {
    fail(400, "malformed request line '" + excerpt(line) + "' (invalid method)");
    return false;
  }
  req_.method.assign(method);
  for (unsigned char c : target) {
    if (c <= 0x20 || c == 0x7f) {
      fail(400, "malformed request line '" + excerpt(line) + "' (invalid request target)");
      return false;
    }
  }
  if (target.empty()) {
    fail(400, "malformed request line '" + excerpt(line) + "' (empty request target)");
    return false;
  }
  req_.target.assign(target);
  // HTTP-version = "HTTP/" DIGIT "." DIGIT
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    fail(400, "malformed request line '" + excerpt(line) + "' (invalid HTTP version)");
    return false;
  }
  if (version[5] != '1') {
    fail(505, "HTTP version " + std::string(version.substr(5)) +
                  " is not supported (this server speaks HTTP/1.1 and HTTP/1.0)");
    return false;
  }
  // A higher minor version of HTTP/1 is treated as the highest known (RFC 9110 §2.5).
  req_.minor_version = version[7] == '0' ? 0 : 1;

  std::string_view path = target;
  if (path.front() != '/') {
    // absolute-form (`http://host:port/path`); `*` (OPTIONS) passes as the path `*`.
    const size_t scheme = path.find("://");
    if (scheme != std::string_view::npos &&
        (iequals(path.substr(0, scheme), "http") || iequals(path.substr(0, scheme), "https"))) {
      const size_t slash = path.find('/', scheme + 3);
      const size_t end = path.find_first_of("/?#", scheme + 3);
      req_.authority.assign(path.substr(
          scheme + 3, end == std::string_view::npos ? std::string_view::npos : end - scheme - 3));
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    } else if (path != "*") {
      fail(400, "malformed request target '" + excerpt(target) +
                    "' (expected a path starting with '/')");
      return false;
    }
  }
  path = path.substr(0, path.find_first_of("?#"));
  if (!percent_decode(path, &req_.path)) {
    fail(400, "malformed percent-encoding in the path '" + excerpt(path, 100) + "'");
    return false;
  }
  return true;
}

bool RequestParser::parse_header(std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    fail(400, "malformed header line '" + excerpt(line) + "' (no colon)");
    return false;
  }
  const std::string_view name = line.substr(0, colon);
  if (!is_token(name)) {
    fail(400, "malformed header field name '" + excerpt(name) + "'");
    return false;
  }
  const std::string_view value = trim(line.substr(colon + 1));
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      fail(400, "invalid character in the value of header '" + std::string(name) + "'");
      return false;
    }
  }
  if (iequals(name, "Content-Length")) {
    // 1*DIGIT; a list of identical values ("5, 5") is one value (RFC 9110 §8.6).
    bool ok = true, any = false;
    for_each_element(value, [&](std::string_view e) {
      any = true;
      int64_t v = 0;
      bool too_large = false;
      for (char c : e) {
        if (c < '0' || c > '9') {
          ok = false;
          return;
        }
        if (v > (INT64_MAX - 9) / 10)
          too_large = true;
        else
          v = v * 10 + (c - '0');
      }
      if (req_.has_content_length && (v != req_.content_length || too_large != cl_too_large_)) {
        fail(400, "conflicting Content-Length values");
        ok = false;
        return;
      }
      req_.has_content_length = true;
      req_.content_length = v;
      cl_too_large_ = too_large;
    });
    if (phase_ == Phase::Failed) return false;
    if (!ok || !any) {
      fail(400, "invalid Content-Length '" + excerpt(value) + "' (expected a number of bytes)");
      return false;
    }
  } else if (iequals(name, "Transfer-Encoding")) {
    te_seen_ = true;
    for_each_element(value, [&](std::string_view e) {
      const std::string_view coding = trim(e.substr(0, e.find(';')));
      if (iequals(coding, "chunked")) {
        ++te_chunked_count_;
        te_chunked_ = true;
      } else {
        if (te_other_.empty()) te_other_.assign(coding);
        te_chunked_ = false;  // chunked must be the last coding
      }
    });
  } else if (iequals(name, "Connection")) {
    for_each_element(value, [&](std::string_view e) {
      if (iequals(e, "close")) conn_close_ = true;
      if (iequals(e, "keep-alive")) conn_keep_alive_ = true;
    });
  } else if (iequals(name, "Host")) {
    if (req_.host_count++ == 0) req_.host.assign(value);
  } else if (iequals(name, "Content-Type")) {
    append_field(&req_.content_type, value);
  } else if (iequals(name, "Authorization")) {
    append_field(&req_.authorization, value);
  } else if (iequals(name, "Origin")) {
    append_field(&req_.origin, value);
  } else if (iequals(name, "Sec-Fetch-Site")) {
    append_field(&req_.sec_fetch_site, value);
  } else if (iequals(name, "Expect")) {
    if (!iequals(value, "100-continue")) {
      fail(417, "unsupported expectation 'Expect: " + excerpt(value) +
                    "' (only 100-continue is supported)");
      return false;
    }
    req_.expect_continue = true;
  }
  return true;
}

bool RequestParser::end_of_headers() {
  req_.keep_alive = req_.minor_version >= 1 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);
  if (req_.minor_version == 0) req_.expect_continue = false;  // RFC 9110 §10.1.1
  if (te_seen_) {
    if (req_.minor_version == 0) {
      fail(400, "Transfer-Encoding is not allowed in an HTTP/1.0 request");
      return false;
    }
    if (req_.has_content_length) {
      fail(400, "a request must not have both Content-Length and Transfer-Encoding");
      return false;
    }
    if (!te_other_.empty()) {
      fail(501, "transfer coding '" + excerpt(te_other_) +
                    "' is not supported (request bodies may only be chunked)");
      return false;
    }
    if (te_chunked_count_ != 1 || !te_chunked_) {
      fail(400, "malformed Transfer-Encoding (chunked must appear once)");
      return false;
    }
    req_.chunked = true;
    phase_ = Phase::ChunkSize;
    return true;
  }
  if (req_.has_content_length) {
    if (cl_too_large_ || req_.content_length > limits_.max_body) {
      fail(413, "the request body is larger than " + std::to_string(limits_.max_body) +
                    " bytes (--max-body)");
      return false;
    }
    if (req_.content_length > 0) {
      phase_ = Phase::Body;
      return true;
    }
  }
  req_.expect_continue = false;  // no body to wait for
  phase_ = Phase::Done;
  return true;
}

bool RequestParser::parse_chunk_size(std::string_view line) {
  // chunk-size [ BWS ; chunk-ext ] ; the extensions are ignored.
  std::string_view size = trim(line.substr(0, line.find(';')));
  if (size.empty()) {
    fail(400, "malformed chunked body: a chunk size line '" + excerpt(line) +
                  "' has no hexadecimal size");
    return false;
  }
  int64_t v = 0;
  for (char c : size) {
    const int h = hex_value(c);
    if (h < 0) {
      fail(400, "malformed chunked body: invalid chunk size '" + excerpt(size) + "'");
      return false;
    }
    if (v > limits_.max_body) break;  // already too large: stop before it can overflow
    v = v * 16 + h;
  }
  if (v == 0) {
    phase_ = Phase::Trailers;
    headers_ = 0;
    header_bytes_ = 0;
    return true;
  }
  if (v > limits_.max_body - static_cast<int64_t>(req_.body.size())) {
    fail(413, "the request body is larger than " + std::to_string(limits_.max_body) +
                  " bytes (--max-body)");
    return false;
  }
  chunk_left_ = v;
  phase_ = Phase::ChunkData;
  return true;
}

}  // namespace seqrec::serve::http
