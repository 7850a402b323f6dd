// listener.h: creating the listening sockets baton owns.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <string>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"

namespace baton {

struct BindOptions {
  int backlog = SOMAXCONN;  // listen(2) backlog; the kernel caps it at net.core.somaxconn
  bool ipv6_only = false;   // IPV6_V6ONLY on IPv6 sockets; off: [::] also takes IPv4
  mode_t unix_mode = 0666;  // permissions of a unix socket file (like systemd's SocketMode=)
  bool reuse_port = false;  // SO_REUSEPORT; off, so a second binder of the port gets EADDRINUSE
  // Tests only: run between bind and the unix socket's mode change, to replay a race there.
  void (*after_bind_for_test)(const std::string& path) = nullptr;
};

// Creates a socket for `address`, binds it, and (for stream sockets) listens. The descriptor is
// CLOEXEC and blocking. A stale unix socket file (one nobody accepts on) is replaced; a live one
// is "address in use". TCP sockets get SO_REUSEADDR, as every server sets it (UDP ones do not:
// there it would let a second socket share the port).
// A unix socket's file gets `unix_mode` without any name being followed after bind: if the file
// was replaced in the meantime (its directory writable by another user), the error says so and
// no other file's mode changes.
Result<Fd> bind_listener(const Address& address, const BindOptions& options);

// The address a socket is bound to (the real port when bound to port 0).
Result<Address> bound_address(int fd, Transport transport);

// Sets or clears FD_CLOEXEC / O_NONBLOCK.
Status set_cloexec(int fd, bool on);
Status set_nonblocking(int fd, bool on);

}  // namespace baton
