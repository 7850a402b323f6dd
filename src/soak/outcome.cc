#include "soak/outcome.h"

#include <cerrno>

namespace baton::soak {

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::kOk:
      return "ok";
    case Kind::kHttpStatus:
      return "http_status";
    case Kind::kRefused:
      return "refused";
    case Kind::kConnectTimeout:
      return "connect_timeout";
    case Kind::kReset:
      return "reset";
    case Kind::kClosed:
      return "closed";
    case Kind::kResponseTimeout:
      return "response_timeout";
    case Kind::kKeepaliveClosed:
      return "keepalive_closed";
    case Kind::kBadResponse:
      return "bad_response";
    case Kind::kOther:
      return "other";
  }
  return "?";
}

std::string_view kind_label(Kind kind) {
  switch (kind) {
    case Kind::kOk:
      return "ok";
    case Kind::kHttpStatus:
      return "non-2xx status";
    case Kind::kRefused:
      return "connection refused";
    case Kind::kConnectTimeout:
      return "connect timeout";
    case Kind::kReset:
      return "connection reset";
    case Kind::kClosed:
      return "closed before the response";
    case Kind::kResponseTimeout:
      return "response timeout";
    case Kind::kKeepaliveClosed:
      return "reused connection closed (retried)";
    case Kind::kBadResponse:
      return "malformed response";
    case Kind::kOther:
      return "other error";
  }
  return "?";
}

Outcome classify_connect_error(int err) {
  switch (err) {
    case ECONNREFUSED:
      return {Kind::kRefused, err};
    case ETIMEDOUT:
      return {Kind::kConnectTimeout, err};
    case ECONNRESET:
      return {Kind::kReset, err};
    default:
      return {Kind::kOther, err};
  }
}

Outcome classify_io_error(int err, uint64_t response_bytes, bool reused) {
  bool peer_gone = err == ECONNRESET || err == EPIPE || err == ECONNABORTED;
  if (peer_gone && response_bytes == 0 && reused) return {Kind::kKeepaliveClosed, err};
  if (peer_gone) return {Kind::kReset, err};
  if (err == ETIMEDOUT) return {Kind::kResponseTimeout, err};
  return {Kind::kOther, err};
}

Outcome classify_eof(uint64_t response_bytes, bool reused) {
  if (response_bytes == 0 && reused) return {Kind::kKeepaliveClosed, 0};
  return {Kind::kClosed, 0};
}

Outcome classify_status(int status) {
  if (status >= 200 && status < 300) return {Kind::kOk, status};
  return {Kind::kHttpStatus, status};
}

std::string_view status_reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

}  // namespace baton::soak
