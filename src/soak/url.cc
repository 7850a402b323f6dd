#include "soak/url.h"

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
  if (text.starts_with("https://")) return bad("https is not supported; soak speaks plain HTTP/1.1");
  if (text.size() < kScheme.size() ||
      std::string_view(text.substr(0, kScheme.size())) != kScheme) {
    return bad("expected http://HOST[:PORT]/PATH");
  }
  std::string_view rest = text.substr(kScheme.size());
  size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  if (authority.find('@') != std::string_view::npos) return bad("user information is not supported");
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

std::string build_request(const Url& url, bool close, const std::vector<std::string>& extra_headers) {
  std::string r = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: baton-soak\r\n",
                              url.target, url.host_header());
  for (const auto& h : extra_headers) r += h + "\r\n";
  if (close) r += "Connection: close\r\n";
  r += "\r\n";
  return r;
}

Result<std::chrono::nanoseconds> parse_duration(std::string_view text, bool allow_zero) {
  auto bad = [&] {
    return Error(fmt::format("bad duration '{}': expected e.g. 30s, 250ms, 2m, 1h", text));
  };
  size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  std::string number(text.substr(0, unit_at));
  std::string_view unit = text.substr(unit_at);
  if (number.empty() || number.front() == '.' || number.back() == '.' ||
      std::count(number.begin(), number.end(), '.') > 1) {
    return bad();
  }
  double value = std::strtod(number.c_str(), nullptr);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1e9;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "us") scale = 1e3;
  else if (unit == "m" || unit == "min") scale = 60e9;
  else if (unit == "h") scale = 3600e9;
  else return bad();
  double ns = value * scale;
  if (!std::isfinite(ns) || ns > 1e18) return bad();
  if (ns <= 0 && !allow_zero) {
    return Error(fmt::format("bad duration '{}': must be greater than zero", text));
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(ns)));
}

}  // namespace baton::soak
