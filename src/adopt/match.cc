#include "adopt/match.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstdio>
#include <cstring>

namespace baton::adopt {
namespace {

// An IP endpoint in one shape: IPv4 addresses are kept v4-mapped, so 127.0.0.1 and
// ::ffff:127.0.0.1 compare equal.
struct IpEndpoint {
  bool valid = false;
  bool v4 = false;        // an IPv4 address (spelt either way)
  bool wildcard = false;  // 0.0.0.0 or ::
  in6_addr addr{};
  int port = 0;
};

bool is_v4_mapped(const in6_addr& a) {
  static const unsigned char kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.s6_addr, kPrefix, sizeof(kPrefix)) == 0;
}

IpEndpoint ip_endpoint(const sockaddr* sa, socklen_t len) {
  IpEndpoint e;
  if (sa == nullptr) return e;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    e.valid = true;
    e.v4 = true;
    e.port = ntohs(in->sin_port);
    e.addr.s6_addr[10] = 0xff;
    e.addr.s6_addr[11] = 0xff;
    std::memcpy(&e.addr.s6_addr[12], &in->sin_addr, 4);
    e.wildcard = in->sin_addr.s_addr == htonl(INADDR_ANY);
  } else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    e.valid = true;
    e.port = ntohs(in6->sin6_port);
    e.addr = in6->sin6_addr;
    e.v4 = is_v4_mapped(in6->sin6_addr);
    static const unsigned char kZero[4] = {0, 0, 0, 0};
    e.wildcard = e.v4 ? std::memcmp(&e.addr.s6_addr[12], kZero, 4) == 0
                      : IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
  }
  return e;
}

MatchQuality ip_quality(const IpEndpoint& want, const IpEndpoint& held, bool held_v6only) {
  if (!want.valid || !held.valid || want.port == 0 || want.port != held.port) {
    return MatchQuality::kNone;
  }
  if (want.v4 == held.v4 && std::memcmp(&want.addr, &held.addr, sizeof(in6_addr)) == 0) {
    return MatchQuality::kExact;
  }
  if (held.wildcard) {
    if (held.v4 && want.v4) return MatchQuality::kCovers;
    if (!held.v4 && !want.v4) return MatchQuality::kCovers;
    if (!held.v4 && want.v4 && !held_v6only) return MatchQuality::kCovers;
  }
  if (want.wildcard) return MatchQuality::kOverlaps;
  return MatchQuality::kNone;
}

// The bytes that name a unix socket: the path without its NUL, or the abstract name with its
// leading NUL. Returns the length (0: unnamed).
size_t unix_name(const sockaddr* sa, socklen_t len, const char** name) {
  if (sa == nullptr || sa->sa_family != AF_UNIX) return 0;
  const size_t offset = offsetof(sockaddr_un, sun_path);
  if (len <= offset) return 0;
  const char* p = reinterpret_cast<const sockaddr_un*>(sa)->sun_path;
  size_t n = len - offset;
  if (p[0] != '\0') n = strnlen(p, n);
  *name = p;
  return n;
}

}  // namespace

Match find_match(const HeldSocket* held, int held_count, int app_family, int sock_type,
                 const sockaddr* addr, socklen_t addr_len) {
  Match best;
  if (addr == nullptr) return best;
  const bool want_unix = addr->sa_family == AF_UNIX;
  IpEndpoint want = want_unix ? IpEndpoint{} : ip_endpoint(addr, addr_len);
  const char* want_name = nullptr;
  size_t want_name_len = want_unix ? unix_name(addr, addr_len, &want_name) : 0;
  if (!want_unix && !want.valid) return best;
  if (want_unix && want_name_len == 0) return best;

  bool best_same_family = false;
  for (int i = 0; i < held_count; ++i) {
    const HeldSocket& h = held[i];
    if (h.probe || h.type != sock_type) continue;
    const auto* hsa = reinterpret_cast<const sockaddr*>(&h.addr);
    MatchQuality q = MatchQuality::kNone;
    if (want_unix) {
      const char* held_name = nullptr;
      size_t n = unix_name(hsa, h.addr_len, &held_name);
      if (n == want_name_len && std::memcmp(held_name, want_name, n) == 0) q = MatchQuality::kExact;
    } else {
      q = ip_quality(want, ip_endpoint(hsa, h.addr_len), h.v6only);
    }
    if (q == MatchQuality::kNone) continue;
    bool same_family = h.addr.ss_family == app_family;
    if (q > best.quality || (q == best.quality && same_family && !best_same_family)) {
      best.index = i;
      best.quality = q;
      best_same_family = same_family;
    }
  }
  return best;
}

char* format_address(const sockaddr* sa, socklen_t len, char* out, size_t size) {
  if (size == 0) return out;
  out[0] = '\0';
  if (sa == nullptr) return out;
  char host[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    std::snprintf(out, size, "%s:%d", host, ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    std::snprintf(out, size, "[%s]:%d", host, ntohs(in6->sin6_port));
  } else if (sa->sa_family == AF_UNIX) {
    const char* name = nullptr;
    size_t n = unix_name(sa, len, &name);
    if (n == 0) {
      std::snprintf(out, size, "unix:(unnamed)");
    } else if (name[0] == '\0') {
      std::snprintf(out, size, "unix:@%.*s", static_cast<int>(n - 1), name + 1);
    } else {
      std::snprintf(out, size, "unix:%.*s", static_cast<int>(n), name);
    }
  } else {
    std::snprintf(out, size, "(family %d)", sa->sa_family);
  }
  return out;
}

int address_port(const sockaddr* sa, socklen_t len) {
  IpEndpoint e = ip_endpoint(sa, len);
  return e.valid ? e.port : 0;
}

}  // namespace baton::adopt
