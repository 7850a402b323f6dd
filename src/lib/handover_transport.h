// handover_transport.h: the packets of the handover socket, for both halves (handover_child.cc,
// handover_parent.cc): one seqpacket message with the descriptors that come with it, sent and
// received; a bounded wait for the next one; the socket's address. What a packet says is
// handover_protocol.h's.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <string>
#include <vector>

#include "baton/fd.h"
#include "baton/result.h"

namespace baton::handover {

using Clock = std::chrono::steady_clock;

struct UnixAddr {
  sockaddr_un sun{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&sun); }
};
// The address of the handover socket at `path`; the error names the path.
Result<UnixAddr> unix_address(const std::string& path);

// The time from now to `deadline`, never negative.
std::chrono::milliseconds time_left(Clock::time_point deadline);

// Waits until `fd` is readable; false on timeout.
Result<bool> wait_readable(int fd, std::chrono::milliseconds timeout);

// Sends one packet, with `fds` attached (SCM_RIGHTS) when there are any.
Status send_packet(int fd, const std::string& packet, const std::vector<int>& fds = {});

struct Packet {
  std::string data;  // empty: EOF
  std::vector<Fd> fds;
  bool eof = false;
};
// Receives one packet and the descriptors that came with it (all owned, CLOEXEC). A truncated
// packet or control block is an error; the descriptors that did arrive are closed.
Result<Packet> recv_packet(int fd);

}  // namespace baton::handover
