// http_parser.h: an incremental HTTP/1.1 response parser, sized for a load generator.
//
// Feed it bytes as they arrive, in pieces of any size; it reports when one response is complete.
// Framing follows RFC 9112 section 6: no body for 1xx (interim responses are skipped), 204 and 304;
// else chunked when the last transfer coding is chunked; else Content-Length; else the body runs
// to the end of the connection (finish_eof() completes it). It keeps only what framing needs
// (status, keep-alive, one optionally captured header); bodies are counted, never stored.
//
// Limits: a status or header line over 8 KiB or a head over 64 KiB is an error, so a broken
// server cannot make the client buffer without bound.
//
// Thread safety: one parser per connection; not synchronised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace baton::soak {

class ResponseParser {
 public:
  enum class State { kNeedMore, kComplete, kError };

  // Captures the value of this header (name compared case-insensitively) in every response.
  void capture_header(std::string name) { capture_name_ = std::move(name); }

  // Forgets the previous response; call before each new request's response.
  void reset();

  // Consumes up to `len` bytes. Returns kComplete when the response ended inside them (`*used`
  // says where; bytes after it belong to no request), kNeedMore when all were consumed, kError on
  // a malformed response (see error()).
  State feed(const char* data, size_t len, size_t* used);

  // The peer closed the connection: completes a body delimited by the close; anything else
  // unfinished is an error ("closed before the response" for the caller to classify).
  State finish_eof();

  int status() const { return status_; }
  // False when the response (or HTTP/1.0) says the connection closes after it.
  bool keep_alive() const { return keep_alive_; }
  // Bytes of this response seen so far (0: the server sent nothing).
  uint64_t bytes() const { return bytes_; }
  uint64_t body_bytes() const { return body_bytes_; }
  const std::string& captured() const { return captured_; }
  const std::string& error() const { return error_; }

 private:
  enum class Phase {
    kStatus,
    kHeaders,
    kBodyLength,
    kChunkSize,
    kChunkData,
    kChunkCrlf,
    kTrailers,
    kBodyEof,
    kDone
  };
  bool on_line(std::string_view line);  // false on error
  bool on_status_line(std::string_view line);
  bool on_header_line(std::string_view line);
  bool on_headers_end();
  bool fail(std::string message);

  std::string capture_name_;
  Phase phase_ = Phase::kStatus;
  std::string partial_;  // an unfinished line carried across feed() calls
  int status_ = 0;
  int minor_version_ = 1;
  bool keep_alive_ = true;
  bool chunked_ = false;
  bool has_length_ = false;
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
  bool has_transfer_encoding_ = false;
  uint64_t remaining_ = 0;  // of the body (Content-Length) or of the current chunk
  uint64_t head_bytes_ = 0;
  uint64_t bytes_ = 0;
  uint64_t body_bytes_ = 0;
  std::string captured_;
  std::string error_;
};

}  // namespace baton::soak
