#include "common/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "common/unix_socket.h"

namespace baton {
namespace {

constexpr std::string_view kUnixPrefix = "unix:";
constexpr std::string_view kUdpPrefix = "udp:";
constexpr size_t kMaxNameLength = 64;

Result<int> parse_port(std::string_view text, std::string_view whole) {
  int port = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port < 0 ||
      port > 65535) {
    return Error(fmt::format("bad address '{}': port must be a number from 0 to 65535", whole));
  }
  return port;
}

Result<Address> parse_unix(std::string_view path, std::string_view whole) {
  Address a;
  a.transport = Transport::kUnix;
  auto length = fill_unix_address(path, *reinterpret_cast<sockaddr_un*>(&a.storage));
  if (!length) return Error(fmt::format("bad address '{}': {}", whole, length.error().what()));
  a.length = *length;
  return a;
}

Result<Address> parse_ip(Transport transport, std::string_view text, std::string_view whole) {
  Address a;
  a.transport = transport;
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error(fmt::format("bad address '{}': expected [IPV6]:PORT", whole));
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    if (host.empty()) return Error(fmt::format("bad address '{}': empty IPv6 host", whole));
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      port_text = text;  // bare port: every interface
    } else {
      host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      if (host.find(':') != std::string::npos) {
        return Error(
            fmt::format("bad address '{}': write IPv6 hosts in brackets, [::1]:PORT", whole));
      }
      if (host.empty()) return Error(fmt::format("bad address '{}': empty host", whole));
    }
  }
  auto port = parse_port(port_text, whole);
  if (!port) return port.error();
  const auto nport = htons(static_cast<uint16_t>(*port));

  if (host.empty()) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = nport;
    a.length = sizeof(sockaddr_in6);
    return a;
  }
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
    in->sin_family = AF_INET;
    in->sin_addr = v4;
    in->sin_port = nport;
    a.length = sizeof(sockaddr_in);
    return a;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = v6;
    in6->sin6_port = nport;
    a.length = sizeof(sockaddr_in6);
    return a;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = transport == Transport::kUdp ? SOCK_DGRAM : SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    return Error(fmt::format("bad address '{}': cannot resolve host '{}': {}", whole, host,
                             gai_strerror(rc)));
  }
  // Prefer IPv4 for names such as localhost, as most clients try it first.
  const addrinfo* pick = res;
  for (const addrinfo* p = res; p != nullptr; p = p->ai_next) {
    if (p->ai_family == AF_INET) {
      pick = p;
      break;
    }
  }
  std::memcpy(&a.storage, pick->ai_addr, pick->ai_addrlen);
  a.length = pick->ai_addrlen;
  if (a.family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port = nport;
  } else {
    reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port = nport;
  }
  freeaddrinfo(res);
  return a;
}

}  // namespace

std::string Address::unix_path() const {
  if (transport != Transport::kUnix) return {};
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
  if (length <= offsetof(sockaddr_un, sun_path) || un->sun_path[0] == '\0') return {};
  return std::string(un->sun_path);
}

int Address::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

std::string Address::host_port() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof(buf));
    return fmt::format("{}:{}", buf, port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf,
              sizeof(buf));
    return fmt::format("[{}]:{}", buf, port());
  }
  if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
    if (length <= offsetof(sockaddr_un, sun_path)) return "(unnamed)";
    if (un->sun_path[0] == '\0') {
      // An abstract name: its bytes after the leading NUL, up to the address's length.
      return fmt::format(
          "@{}", std::string_view(un->sun_path + 1, length - offsetof(sockaddr_un, sun_path) - 1));
    }
    return std::string(un->sun_path);
  }
  return "(unknown)";
}

std::string Address::to_string() const {
  switch (transport) {
    case Transport::kUnix:
      return std::string(kUnixPrefix) + host_port();
    case Transport::kUdp:
      return std::string(kUdpPrefix) + host_port();
    case Transport::kTcp:
      break;
  }
  return host_port();
}

Result<Address> parse_address(std::string_view text) {
  if (text.starts_with(kUnixPrefix)) return parse_unix(text.substr(kUnixPrefix.size()), text);
  if (text.starts_with(kUdpPrefix)) {
    return parse_ip(Transport::kUdp, text.substr(kUdpPrefix.size()), text);
  }
  if (text.empty()) return Error("bad address '': empty");
  return parse_ip(Transport::kTcp, text, text);
}

Address address_from_sockaddr(Transport transport, const sockaddr* sa, socklen_t len) {
  Address a;
  a.transport = transport;
  std::memcpy(&a.storage, sa, std::min<size_t>(len, sizeof(a.storage)));
  a.length = len;
  return a;
}

bool valid_listener_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<ListenSpec> parse_listen_spec(std::string_view text) {
  ListenSpec spec;
  auto eq = text.find('=');
  // A name never contains ':' or '/', so "unix:/a=b" is a path with '=' in it, not a name.
  if (eq != std::string_view::npos &&
      text.substr(0, eq).find_first_of(":/[") == std::string::npos) {
    spec.name = std::string(text.substr(0, eq));
    if (!valid_listener_name(spec.name)) {
      return Error(fmt::format(
          "bad listener name '{}': use 1 to {} characters of letters, digits, '_', '.', '-'",
          spec.name, kMaxNameLength));
    }
    text.remove_prefix(eq + 1);
  }
  auto address = parse_address(text);
  if (!address) return address.error();
  spec.address = std::move(address).value();
  return spec;
}

}  // namespace baton
