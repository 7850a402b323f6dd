// url.h: the target of a soak run, parsed from `--url`, and the fixed request sent to it.
//
// Accepted: http://HOST[:PORT][/PATH[?QUERY]] where HOST is an IPv4 literal, a bracketed IPv6
// literal or a name (resolved once, before the run). https is refused with a clear message: the
// point of soak is counting what the server does across restarts, not measuring TLS.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "baton/result.h"
#include "common/address.h"
#include "common/duration.h"

namespace baton::soak {

struct Url {
  std::string host;  // as written, without brackets
  int port = 80;
  std::string target = "/";  // path and query, as sent on the request line
  bool ipv6_literal = false;

  // "host:port" for the Host header (port omitted when 80), brackets kept for IPv6.
  std::string host_header() const;
  // "host:port" in the spelling parse_address accepts.
  std::string authority() const;
};

// Parses an http:// URL; the error names what is wrong with it.
Result<Url> parse_url(std::string_view text);

// Builds the request every connection sends: GET, HTTP/1.1, Host, User-Agent, and
// `Connection: close` when `close` is set. `extra_headers` are "Name: value" lines, sent as is.
std::string build_request(const Url& url, bool close,
                          const std::vector<std::string>& extra_headers);

// Durations are spelled as everywhere in baton (common/duration.h).
using ::baton::parse_duration;

}  // namespace baton::soak
