// address.h: the addresses baton listens on, parsed from the user's spelling and printed back.
//
// Accepted spellings (the `--listen` flag, also the client library's default addresses):
//   8100                 TCP, every interface (IPv6 wildcard, dual-stack unless IPV6_V6ONLY)
//   127.0.0.1:8100       TCP over IPv4          [::1]:8100   TCP over IPv6
//   localhost:8100       TCP, the host resolved numerically first, then by getaddrinfo
//   unix:/run/app.sock   unix stream socket     unix:@name   abstract unix stream socket
//   udp:127.0.0.1:5353   UDP (also udp:[::1]:5353, udp:5353)
// A listen spec may carry a name first: `http=127.0.0.1:8100`. Names are what LISTEN_FDNAMES
// hands the app: 1 to 64 characters of [A-Za-z0-9_.-]. Port 0 asks the kernel for a free port.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

#include "baton/result.h"

namespace baton {

enum class Transport { kTcp, kUdp, kUnix };

struct Address {
  Transport transport = Transport::kTcp;
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int socket_type() const { return transport == Transport::kUdp ? SOCK_DGRAM : SOCK_STREAM; }
  // The unix socket path ("" for abstract or non-unix addresses).
  std::string unix_path() const;
  // The port of an IP address; 0 for unix sockets.
  int port() const;
  // The canonical spelling, e.g. "127.0.0.1:8100", "[::1]:8100", "unix:/x", "udp:[::]:53".
  std::string to_string() const;
  // The bare host:port / path, without the transport prefix.
  std::string host_port() const;
};

// Parses an address spelt as above (without a name).
Result<Address> parse_address(std::string_view text);

// Builds an Address from what getsockname() reports for a socket of the given transport.
Address address_from_sockaddr(Transport transport, const sockaddr* sa, socklen_t len);

// A named address: `[NAME=]ADDRESS`.
struct ListenSpec {
  std::string name;  // empty when the user gave none
  Address address;
};

Result<ListenSpec> parse_listen_spec(std::string_view text);

// True when `name` is a valid listener name (see above).
bool valid_listener_name(std::string_view name);

}  // namespace baton
