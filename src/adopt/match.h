// match.h: which listener baton holds answers an app's bind(), decided like a real bind would.
//
// This is the pure part of the adoption library (see preload.cc): no system calls, no allocation,
// no C++ runtime, so it can live inside the preload library and be unit tested on its own.
//
// Rules, for an app binding ADDRESS:PORT on a socket of type TYPE (stream or datagram):
//   - Port 0 (any free port) never matches: the app wants a port of its own, not baton's.
//   - Only held sockets of the same TYPE and the same address class (IP, or unix) are candidates.
//   - The best candidate wins, in this order:
//       kExact     same address and port (an IPv4 address spelt v4-mapped, ::ffff:a.b.c.d, is the
//                  same as a.b.c.d; that is how the JDK binds IPv4 on its IPv6 sockets);
//       kCovers    baton's socket is a wildcard that takes the app's address: 0.0.0.0 covers IPv4,
//                  a dual-stack [::] covers IPv4 and IPv6, a v6-only [::] covers IPv6;
//       kOverlaps  the app asks for a wildcard and baton holds some address on that port: the app
//                  serves what baton holds (a real bind would have failed with EADDRINUSE).
//     Ties go to the held socket of the app's own address family, then to the first in order.
//   - Anything else (another specific address, another port) does not match: the app binds it
//     itself, untouched.
//   - Unix sockets match by exact path (or abstract name); the caller makes relative paths
//   absolute.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>

namespace baton::adopt {

// One socket baton handed over (LISTEN_FDS), as the library sees it at load.
struct HeldSocket {
  int fd = -1;
  int type = 0;         // SOCK_STREAM or SOCK_DGRAM
  bool v6only = false;  // IPV6_V6ONLY of an AF_INET6 socket
  bool probe = false;   // the supervisor's per-generation probe listener ("baton-probe")
  dev_t dev = 0;        // identity of the socket (fstat), to recognise it under any fd number
  ino_t ino = 0;
  sockaddr_storage addr{};  // getsockname()
  socklen_t addr_len = 0;
  char name[65] = {};  // its LISTEN_FDNAMES entry ("" when unnamed)
};

enum class MatchQuality { kNone = 0, kOverlaps = 1, kCovers = 2, kExact = 3 };

struct Match {
  int index = -1;  // into the held array; -1: no match
  MatchQuality quality = MatchQuality::kNone;
};

// Finds the held socket an app's bind(sock_type, addr) should adopt. `app_family` is the domain
// of the app's socket (AF_INET6 sockets may bind v4-mapped addresses). Probe sockets never match.
Match find_match(const HeldSocket* held, int held_count, int app_family, int sock_type,
                 const sockaddr* addr, socklen_t addr_len);

// Writes a printable address ("127.0.0.1:8080", "[::]:8080", "unix:/run/x", "unix:@name") into
// `out` (always NUL-terminated, truncated to `size`). Returns `out`.
char* format_address(const sockaddr* sa, socklen_t len, char* out, size_t size);

// The port of an IP address, 0 otherwise.
int address_port(const sockaddr* sa, socklen_t len);

}  // namespace baton::adopt
