// An incremental HTTP/1.1 request parser (RFC 9112) for the server's connections: fed the
// bytes of a connection as they arrive, in pieces of any size (one byte at a time works),
// it returns a complete request, asks for more, or refuses the request with a status and
// a message. No I/O, no allocation beyond the request's own strings.
//
// What it accepts and refuses (each refusal closes the connection after its answer):
// - request line `METHOD SP target SP HTTP/1.x`, longer than max_request_line -> 414,
//   malformed -> 400, HTTP/2 or another major version -> 505; empty lines before it are
//   skipped (RFC 9112 §2.2); a bare LF ends a line as well as CRLF;
// - header section larger than max_header_bytes, or more than max_headers fields -> 431;
//   a header line without a colon, with whitespace before the colon, a control character
//   in a value, or obsolete line folding -> 400;
// - Content-Length: digits only; a repeated or comma-separated value must agree with itself
//   (else 400); larger than max_body -> 413 before any of the body is read;
// - Transfer-Encoding: `chunked` bodies are decoded (chunk extensions and trailer fields are
//   read and ignored; the decoded body counts against max_body -> 413 as soon as a chunk
//   header says it would exceed it); any other coding -> 501; both Content-Length and
//   Transfer-Encoding, or Transfer-Encoding in HTTP/1.0 -> 400 (request smuggling);
// - Expect: `100-continue` is reported (wants_continue()) so that the server sends the
//   interim response; any other expectation -> 417; ignored in HTTP/1.0 (RFC 9110 §10.1.1);
// - Connection: `close` / `keep-alive` decide keep_alive (HTTP/1.1: kept unless close;
//   HTTP/1.0: closed unless keep-alive);
// - the target's path is percent-decoded (a malformed %-escape -> 400), its query string
//   and fragment are dropped; absolute-form targets (`http://host/path`) are accepted.
//
// It judges framing only. The fields a server decides on (Host, Content-Type, Authorization,
// Origin, Sec-Fetch-Site) are recorded for it, as sent, and checked by the server
// (access.hpp): a repeated field is recorded as its values joined by ", " (RFC 9110 §5.3),
// and Host is counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace seqrec::serve::http {

struct HttpLimits {
  size_t max_request_line = 8192;   ///< bytes of `METHOD target HTTP/1.1` (else 414)
  size_t max_header_bytes = 32768;  ///< bytes of the header fields, and of chunked trailers (431)
  int max_headers = 100;            ///< header fields at most (431)
  int64_t max_body = 1 << 20;       ///< bytes of the body, decoded (413)
};

/// One parsed request. After an error the fields parsed so far are set (method and path
/// once the request line was read).
struct HttpRequest {
  std::string method;     ///< as sent (methods are case-sensitive)
  std::string target;     ///< the request target as sent
  std::string path;       ///< the target's path, percent-decoded, without query or fragment
  int minor_version = 1;  ///< HTTP/1.minor: 0 or 1
  bool has_content_length = false;
  bool chunked = false;  ///< Transfer-Encoding: chunked
  int64_t content_length = 0;
  bool keep_alive = true;        ///< the client lets the connection stay open
  bool expect_continue = false;  ///< Expect: 100-continue (HTTP/1.1, with a body)
  std::string authority;         ///< host[:port] of an absolute-form target; empty otherwise
  std::string host;              ///< the Host field's value (the first one)
  int host_count = 0;            ///< Host fields received
  std::string content_type;      ///< Content-Type (empty: none)
  std::string authorization;     ///< Authorization
  std::string origin;            ///< Origin
  std::string sec_fetch_site;    ///< Sec-Fetch-Site
  std::string body;              ///< decoded
  /// The request said how long its body is (Content-Length or chunked): without either a
  /// request has no body (RFC 9112 §6.3).
  bool framed() const { return has_content_length || chunked; }
};

struct HttpParseError {
  int status = 400;
  std::string message;
};

class RequestParser {
 public:
  enum class Result { NeedMore, Complete, Error };

  explicit RequestParser(const HttpLimits& limits) : limits_(limits) {}

  /// Parses `data`: the bytes of the connection not consumed by earlier calls (the caller
  /// drops the `*consumed` first bytes after each call), followed by any new ones. On
  /// Complete the request is in request() and the bytes after it (a pipelined request) are
  /// left unconsumed; call reset() before parsing the next. On Error see error().
  Result feed(std::string_view data, size_t* consumed);

  /// Starts over for the next request.
  void reset();
  /// Some of a request (more than empty lines) has been consumed.
  bool started() const { return phase_ != Phase::RequestLine; }
  /// The headers were read, they asked for 100-continue and none of the body was consumed.
  bool wants_continue() const;
  HttpRequest& request() { return req_; }
  const HttpParseError& error() const { return error_; }

 private:
  enum class Phase {
    RequestLine,
    Headers,
    Body,
    ChunkSize,
    ChunkData,
    ChunkDataEnd,
    Trailers,
    Done,
    Failed
  };

  Result fail(int status, std::string message);
  bool parse_request_line(std::string_view line);
  bool parse_header(std::string_view line);
  bool end_of_headers();
  bool parse_chunk_size(std::string_view line);

  HttpLimits limits_;
  Phase phase_ = Phase::RequestLine;
  size_t scanned_ = 0;  // bytes at the start of the unconsumed data known to hold no LF
  size_t header_bytes_ = 0;
  int headers_ = 0;
  int64_t chunk_left_ = 0;
  bool body_started_ = false;
  bool te_seen_ = false, te_chunked_ = false;
  int te_chunked_count_ = 0;
  std::string te_other_;  // the first transfer coding other than chunked
  bool cl_too_large_ = false;
  bool conn_close_ = false, conn_keep_alive_ = false;
  HttpRequest req_;
  HttpParseError error_;
};

/// Percent-decodes `in` (`%2F` -> `/`; `+` stays `+`); false on a malformed escape.
bool percent_decode(std::string_view in, std::string* out);

}  // namespace seqrec::serve::http
