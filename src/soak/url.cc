#include "soak/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace baton::soak {

std::string Url::authority() const {
  return ipv6_literal ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string Url::host_header() const {
  std::string h = ipv6_literal ? "[" + host + "]" : host;
  if (port != 80) h += fmt::format(":{}", port);
  return h;
}

Result<Url> parse_url(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Error(fmt::format("bad URL '{}': {}", text, why));
  };
  constexpr std::string_view kScheme = "http://";
  if (text.starts_with("https://"))
    return bad("https is not supported; soak speaks plain HTTP/1.1");
  if (text.size() < kScheme.size() || std::string_view(text.substr(0, kScheme.size())) != kScheme) {
    return bad("expected http://HOST[:PORT]/PATH");
  }
  std::string_view rest = text.substr(kScheme.size());
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  if (authority.find('@') != std::string_view::npos)
    return bad("user information is not supported");
  if (authority.empty()) return bad("no host");

  Url url;
  std::string_view port_text;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated [IPv6] host");
    url.host = std::string(authority.substr(1, close - 1));
    url.ipv6_literal = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after ]");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
    if (url.host.empty()) return bad("empty host");
    // The host goes into the Host header as written: only a real IPv6 literal may pass, so no
    // byte of it can end the header early.
    in6_addr ignored{};
    if (url.host.find('\0') != std::string::npos ||
        inet_pton(AF_INET6, url.host.c_str(), &ignored) != 1) {
      return bad("invalid IPv6 literal");
    }
  } else {
    size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
    if (url.host.empty()) return bad("empty host");
    for (char c : url.host) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
        return bad(fmt::format("invalid character '{}' in host", c));
      }
    }
  }
  if (!port_text.empty()) {
    int port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 ||
        port > 65535) {
      return bad("port must be a number from 1 to 65535");
    }
    url.port = port;
  }
  if (target.empty()) {
    url.target = "/";
  } else if (target.front() == '?') {
    url.target = "/" + std::string(target);
  } else {
    url.target = std::string(target);
  }
  for (char c : url.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return bad("spaces and control characters must be percent-encoded in the path");
    }
  }
  return url;
}

std::string build_request(const Url& url, bool close,
                          const std::vector<std::string>& extra_headers) {
  std::string r = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: baton-soak\r\n",
                              url.target, url.host_header());
  for (const auto& h : extra_headers) r += h + "\r\n";
  if (close) r += "Connection: close\r\n";
  r += "\r\n";
  return r;
}

}  // namespace baton::soak
