// outcome.h: what happened to one request, decided from the socket error or parser state.
//
// Kinds (the report's vocabulary):
//   ok                  a complete 2xx response
//   http_status         a complete response with any other status (the report splits by code)
//   refused             connect() failed with ECONNREFUSED: nobody listening
//   connect_timeout     connect() did not finish within --connect-timeout (or ETIMEDOUT)
//   reset               RST from the server (ECONNRESET/EPIPE) on a fresh connection, or after
//                       part of the response arrived
//   closed              orderly close (FIN) before the response, or in the middle of it
//   response_timeout    no complete response within --timeout of sending the request
//   keepalive_closed    a REUSED keep-alive connection was closed or reset by the server before
//                       any byte of the response arrived. RFC 9110 section 9.2.2 lets a client
//                       retry an idempotent request then (browsers do, once), so this is a
//                       first-try outcome; the retry's outcome is the request's final one.
//   bad_response        the bytes received are not an HTTP/1.x response
//   other               any other local or network error (errno kept for the report)
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace baton::soak {

enum class Kind : uint8_t {
  kOk,
  kHttpStatus,
  kRefused,
  kConnectTimeout,
  kReset,
  kClosed,
  kResponseTimeout,
  kKeepaliveClosed,
  kBadResponse,
  kOther,
};
inline constexpr size_t kKindCount = 10;

// Stable machine name (JSON keys) and human label (the report).
std::string_view kind_name(Kind kind);
std::string_view kind_label(Kind kind);

// An outcome: the kind, and the status (kHttpStatus/kOk) or errno (kOther) when relevant.
struct Outcome {
  Kind kind = Kind::kOk;
  int detail = 0;
  bool retryable() const { return kind == Kind::kKeepaliveClosed; }
};

// connect() (or SO_ERROR after a non-blocking connect) failed with `err`.
Outcome classify_connect_error(int err);

// send() or recv() failed with `err` after the connection was established. `response_bytes`: bytes
// of this response received so far; `reused`: the connection already carried a complete response.
Outcome classify_io_error(int err, uint64_t response_bytes, bool reused);

// The server closed the connection (recv returned 0) before the response was complete.
Outcome classify_eof(uint64_t response_bytes, bool reused);

// A complete response with this status.
Outcome classify_status(int status);

// A short reason phrase for common status codes ("" when unknown), for the report.
std::string_view status_reason(int status);

}  // namespace baton::soak
