// libFuzzer harness: the HTTP/1.1 request parser (src/serve/http/request_parser.hpp) as the
// server drives it: the bytes of one connection arrive in pieces, each call sees what the
// earlier ones did not consume plus the new piece, a complete request is taken and the
// parser reset for the next one (pipelining), an error ends the connection.
//
// Input: 4 option bytes, then the connection's bytes.
//   0    limits: small ones (so that 413/414/431 are reachable) or the server's defaults
//   1-3  seed of the piece sizes (1 byte at a time up to the whole rest)
// The oracle: the requests, and the status of the error that ends the connection, do not
// depend on how the bytes were cut into pieces. Each input is parsed twice, in the
// fuzzer's pieces and in one piece, and the outcomes compared.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.hpp"
#include "serve/http/request_parser.hpp"

using namespace seqrec::serve::http;
using seqrec::fuzz::Bytes;

namespace {

struct Outcome {
  std::vector<std::string> requests;  // a summary of each complete request
  int error = 0;                      // status of the error that ended it, 0 for none
  bool operator==(const Outcome& o) const { return requests == o.requests && error == o.error; }
};

std::string summary(const HttpRequest& r) {
  return r.method + " " + r.target + " " + r.path + " 1." + std::to_string(r.minor_version) +
         " cl=" + (r.has_content_length ? std::to_string(r.content_length) : "-") +
         " chunked=" + std::to_string(r.chunked) + " keep=" + std::to_string(r.keep_alive) +
         " continue=" + std::to_string(r.expect_continue) + " body=" + r.body;
}

/// Feeds `stream` to a parser in pieces of the sizes `next_piece` returns.
template <class NextPiece>
Outcome parse(std::string_view stream, const HttpLimits& limits, NextPiece&& next_piece) {
  Outcome out;
  RequestParser parser(limits);
  std::string buffer;  // what the connection has received and the parser not consumed
  size_t pos = 0;
  while (true) {
    size_t consumed = 0;
    const auto r = parser.feed(buffer, &consumed);
    SEQREC_FUZZ_CHECK(consumed <= buffer.size(), "consumed more than it was given");
    buffer.erase(0, consumed);
    if (r == RequestParser::Result::Error) {
      const HttpParseError& e = parser.error();
      SEQREC_FUZZ_CHECK(e.status >= 400 && e.status < 600,
                        "error status " + std::to_string(e.status));
      SEQREC_FUZZ_CHECK(!e.message.empty(), "an error has a message");
      out.error = e.status;
      return out;
    }
    if (r == RequestParser::Result::Complete) {
      HttpRequest& req = parser.request();
      SEQREC_FUZZ_CHECK(!req.method.empty() && !req.target.empty(), "a request has a method");
      SEQREC_FUZZ_CHECK(static_cast<int64_t>(req.body.size()) <= limits.max_body,
                        "body larger than max_body");
      SEQREC_FUZZ_CHECK(!req.has_content_length || req.chunked ||
                            static_cast<int64_t>(req.body.size()) == req.content_length,
                        "body length differs from Content-Length");
      SEQREC_FUZZ_CHECK(req.minor_version == 0 || req.minor_version == 1, "minor version");
      out.requests.push_back(summary(req));
      parser.reset();
      continue;  // a pipelined request may already be in the buffer
    }
    // NeedMore: nothing consumed must be lost, and the next piece arrives.
    (void)parser.wants_continue();
    (void)parser.started();
    if (pos == stream.size()) return out;
    const size_t n = std::min(next_piece(), stream.size() - pos);
    buffer.append(stream.substr(pos, n));
    pos += n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  HttpLimits limits;
  const uint8_t l = in.byte();
  if (l & 1) {
    limits.max_request_line = 16 + (l >> 1) % 64;
    limits.max_header_bytes = 32 + (l >> 3) % 128;
    limits.max_headers = 1 + (l >> 4) % 8;
    limits.max_body = (l >> 2) % 64;
  }
  uint32_t seed = in.byte() | (in.byte() << 8) | (in.byte() << 16);
  const std::string_view stream = in.rest();

  const Outcome whole = parse(stream, limits, [&] { return stream.size(); });
  const Outcome pieces = parse(stream, limits, [&] {
    seed = seed * 1103515245u + 12345u;  // a small LCG: pieces of 1..16 bytes, or larger
    const uint32_t r = seed >> 16;
    return static_cast<size_t>((r & 0x100) ? 1 + (r & 15) : 1 + (r & 1023));
  });
  const Outcome bytes = parse(stream, limits, [] { return size_t{1}; });
  if (!(whole == pieces) || !(whole == bytes)) {
    std::string w, p, b;
    for (const auto& s : whole.requests) w += "  " + s + "\n";
    for (const auto& s : pieces.requests) p += "  " + s + "\n";
    for (const auto& s : bytes.requests) b += "  " + s + "\n";
    seqrec::fuzz::fail("the outcome depends on how the bytes arrive:\nwhole (error " +
                       std::to_string(whole.error) + "):\n" + w + "pieces (error " +
                       std::to_string(pieces.error) + "):\n" + p + "byte by byte (error " +
                       std::to_string(bytes.error) + "):\n" + b);
  }
  return 0;
}
