// accept_probe.h: readiness proven by accepting: baton's own connection to a generation's socket.
//
// The probe binds a loopback client socket first, so its source port is known before it connects
// and can be put in the steering program (ListenerSet::add_probe): the connection then lands in
// the starting generation's own member socket, which receives nothing else. Whether the app has
// accepted it is read from the kernel with one sock_diag query for the server side of the
// connection: a connection still in the accept queue has no socket inode, an accepted one has.
// A FIN from the server side also means accepted (an app that accepts and closes at once): the
// kernel resets, never ends, a connection still queued when its listener closes.
// Nothing is sent on the connection; it is closed when the probe is destroyed.
#pragma once

#include <cstdint>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"

namespace baton {

// Where to connect to reach a listener bound at `listener`: itself, or for a wildcard address
// the loopback address of its family, same port.
Address connect_address(const Address& listener);

class AcceptProbe {
 public:
  // Binds the client socket for a probe of the TCP listener bound at `listener` (a wildcard
  // address is reached through the loopback address of its family).
  static Result<AcceptProbe> open(const Address& listener);
  std::uint16_t source_port() const { return source_port_; }
  // Its own bound address and port: what the steering program matches it by.
  const Address& source() const { return client_; }
  // Starts connecting (nonblocking).
  Status connect();
  // True once the connection is established and the server side has been accepted (or closed by
  // the app: a FIN came). Errors: the connection was refused or reset (the caller may start a
  // new probe).
  Result<bool> accepted();

 private:
  AcceptProbe() = default;
  Fd fd_;
  Address server_;  // where it connects
  Address client_;  // its own bound address
  std::uint16_t source_port_ = 0;
};

}  // namespace baton
