// sock_diag.h: asking the kernel about TCP sockets the way `ss` does, over NETLINK_SOCK_DIAG.
//
// The protocol (linux/sock_diag.h, linux/inet_diag.h): baton speaks first, with one datagram
// holding a netlink header (type SOCK_DIAG_BY_FAMILY) and an inet_diag_req_v2. Two requests:
//   - a lookup of one socket by its exact 4-tuple: the kernel answers with one datagram, a
//     SOCK_DIAG_BY_FAMILY message (an inet_diag_msg) or an NLMSG_ERROR (ENOENT: no such socket);
//   - a dump of every socket of one family on one local port, in the states asked for: the kernel
//     answers with as many datagrams as it takes, each holding one or more SOCK_DIAG_BY_FAMILY
//     messages (attributes follow each inet_diag_msg), the last ending with NLMSG_DONE.
// A lookup is done here whole (lookup_tcp_socket); what a dump's records hold depends on the
// attributes asked for, so their reader is the caller's (drain_watch.h).
//
// Bounds: a receive waits at most kSockDiagReceiveTimeout (the kernel queues its answer before
// send returns, so this bounds only the impossible), and a datagram larger than the caller's
// buffer is an error, never silently cut. Replies are parsed with their lengths checked.
//
// Not thread-safe: one SockDiagSocket per thread.
#pragma once

#include <linux/inet_diag.h>
#include <linux/netlink.h>

#include <chrono>
#include <cstdint>
#include <span>

#include "baton/fd.h"
#include "baton/result.h"
#include "common/address.h"

namespace baton {

inline constexpr std::chrono::milliseconds kSockDiagReceiveTimeout{1000};

// Every TCP state (a set of 1 << state bits, as idiag_states wants it).
inline constexpr std::uint32_t kAllTcpStates = ~0U;

// One request, laid out as it goes on the wire.
struct SockDiagRequest {
  nlmsghdr header;
  inet_diag_req_v2 body;
};

// The lookup of the TCP socket whose own address is `local` and whose peer is `remote` (both IP
// addresses of one family). Error: not TCP, not IP, or the families differ.
Result<SockDiagRequest> tcp_lookup_request(const Address& local, const Address& remote);

// The dump of the TCP sockets of `family` (AF_INET or AF_INET6) on local port `port` (0: any)
// whose state is in `states`, each with the attributes `extensions` asks for (bits
// 1 << (INET_DIAG_x - 1), e.g. INET_DIAG_INFO for tcp_info).
SockDiagRequest tcp_dump_request(int family, std::uint16_t port, std::uint32_t states,
                                 std::uint8_t extensions);

// What the kernel answered to a lookup: the socket's record. Errors: the kernel's NLMSG_ERROR
// with its errno (ENOENT when no socket has that 4-tuple); EPROTO for anything else, truncated
// or malformed.
Result<inet_diag_msg> parse_lookup_reply(std::span<const std::uint8_t> datagram);

// A netlink socket to the kernel's sock_diag, owned; close-on-exec.
class SockDiagSocket {
 public:
  static Result<SockDiagSocket> open();

  Status send(const SockDiagRequest& request);

  // Receives one datagram into `buffer` and returns the part of it filled. Errors: EAGAIN when
  // nothing came within kSockDiagReceiveTimeout; EMSGSIZE when the datagram did not fit.
  Result<std::span<const std::uint8_t>> receive(std::span<std::uint8_t> buffer);

 private:
  explicit SockDiagSocket(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

// The whole lookup: the kernel's record of the TCP socket whose own address is `local` and whose
// peer is `remote` (its idiag_inode is 0 while the socket waits in an accept queue). Errors as
// tcp_lookup_request, SockDiagSocket and parse_lookup_reply give them: ENOENT when there is no
// such socket (also when the kernel answers with the listener on `local` instead, as it does
// when no connection has that 4-tuple).
Result<inet_diag_msg> lookup_tcp_socket(const Address& local, const Address& remote);

}  // namespace baton
