#include "supervisor/accept_probe.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include <fmt/format.h>

#include "common/listener.h"
#include "common/sock_diag.h"

namespace baton {
namespace {

bool is_wildcard(const Address& a) {
  if (a.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr.s_addr == htonl(INADDR_ANY);
  }
  const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
  return std::memcmp(&s6->sin6_addr, &in6addr_any, sizeof(in6_addr)) == 0;
}

}  // namespace

Address connect_address(const Address& listener) {
  if (!is_wildcard(listener)) return listener;
  Address loop = listener;
  if (listener.family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&loop.storage)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else {
    reinterpret_cast<sockaddr_in6*>(&loop.storage)->sin6_addr = in6addr_loopback;
  }
  return loop;
}

Result<AcceptProbe> AcceptProbe::open(const Address& listener) {
  if (listener.transport != Transport::kTcp ||
      (listener.family() != AF_INET && listener.family() != AF_INET6)) {
    return Error(EINVAL, "an accept probe needs a TCP listener");
  }
  AcceptProbe p;
  p.server_ = connect_address(listener);
  const bool v6 = listener.family() == AF_INET6;
  // From the address it connects to: the kernel then picks the same address as source.
  Address local = p.server_;
  if (v6) {
    reinterpret_cast<sockaddr_in6*>(&local.storage)->sin6_port = 0;
  } else {
    reinterpret_cast<sockaddr_in*>(&local.storage)->sin_port = 0;
  }
  p.fd_.reset(::socket(listener.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!p.fd_) return Error::from_errno("probe socket");
  if (::bind(p.fd_.get(), local.sockaddr_ptr(), local.length) != 0) {
    return Error::from_errno("bind probe socket to " + local.to_string());
  }
  auto bound = bound_address(p.fd_.get(), Transport::kTcp);
  if (!bound) return bound.error();
  p.client_ = *bound;
  p.source_port_ = static_cast<std::uint16_t>(bound->port());
  return p;
}

Status AcceptProbe::connect() {
  if (::connect(fd_.get(), server_.sockaddr_ptr(), server_.length) != 0 && errno != EINPROGRESS) {
    return Error::from_errno("probe connect to " + server_.to_string());
  }
  return {};
}

Result<bool> AcceptProbe::accepted() {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    return Error::from_errno("probe SO_ERROR");
  }
  if (err != 0) return Error(err, "probe connection to " + server_.to_string());
  tcp_info info{};
  len = sizeof(info);
  if (::getsockopt(fd_.get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) {
    return Error::from_errno("probe TCP_INFO");
  }
  if (info.tcpi_state == TCP_SYN_SENT) return false;
  // The server side sent its FIN: only an accepted socket can (a connection still queued when its
  // listener closes is reset). An app that accepts and closes at once leaves no other trace: its
  // side has no inode any more by the time of the next look.
  if (info.tcpi_state == TCP_CLOSE_WAIT) return true;
  if (info.tcpi_state != TCP_ESTABLISHED) {
    return Error(ECONNRESET, "probe connection to " + server_.to_string() + " closed");
  }
  // The server side of the connection: it has a socket inode once the app has accepted it, none
  // while it waits in the accept queue (and no record at all just before the handshake ends).
  auto server_side = lookup_tcp_socket(server_, client_);
  if (!server_side) {
    return server_side.error().code() == ENOENT ? Result<bool>(false) : server_side.error();
  }
  return server_side->idiag_inode != 0;
}

}  // namespace baton
