#include "supervisor/accept_probe.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include <fmt/format.h>

#include "common/listener.h"
#include "common/syscall.h"

namespace baton {
namespace {

bool is_wildcard(const Address& a) {
  if (a.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr.s_addr == htonl(INADDR_ANY);
  }
  const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
  return std::memcmp(&s6->sin6_addr, &in6addr_any, sizeof(in6_addr)) == 0;
}

void copy_ip(const Address& a, __be32* out) {
  if (a.family() == AF_INET) {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr, 4);
  } else {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr, 16);
  }
}

// The socket inode of the TCP socket with this exact 4-tuple (local `src`, remote `dst`):
// 0 while it waits in an accept queue, non-zero once accepted; ENOENT when there is none.
Result<std::uint32_t> socket_inode(const Address& src, const Address& dst) {
  Fd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl) return Error::from_errno("sock_diag socket");
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = static_cast<__u8>(src.family());
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0U;
  msg.req.id.idiag_sport = htons(static_cast<std::uint16_t>(src.port()));
  msg.req.id.idiag_dport = htons(static_cast<std::uint16_t>(dst.port()));
  copy_ip(src, msg.req.id.idiag_src);
  copy_ip(dst, msg.req.id.idiag_dst);
  msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (retry_eintr(::send, nl.get(), &msg, sizeof(msg), 0) != static_cast<ssize_t>(sizeof(msg))) {
    return Error::from_errno("sock_diag send");
  }
  alignas(nlmsghdr) char buf[8192];
  ssize_t n = retry_eintr(::recv, nl.get(), buf, sizeof(buf), 0);
  if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) return Error::from_errno("sock_diag recv");
  const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
  if (h->nlmsg_type == NLMSG_ERROR) {
    const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    return Error(-e->error, "sock_diag");
  }
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    return Error(EPROTO, "sock_diag: unexpected reply");
  }
  return static_cast<const inet_diag_msg*>(NLMSG_DATA(h))->idiag_inode;
}

}  // namespace

Result<AcceptProbe> AcceptProbe::open(const Address& listener) {
  if (listener.transport != Transport::kTcp ||
      (listener.family() != AF_INET && listener.family() != AF_INET6)) {
    return Error(EINVAL, "an accept probe needs a TCP listener");
  }
  AcceptProbe p;
  p.server_ = listener;
  const bool v6 = listener.family() == AF_INET6;
  if (is_wildcard(listener)) {
    auto loop = parse_address(v6 ? fmt::format("[::1]:{}", listener.port())
                                 : fmt::format("127.0.0.1:{}", listener.port()));
    if (!loop) return loop.error();
    p.server_ = *loop;
  }
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
  if (info.tcpi_state != TCP_ESTABLISHED) {
    return Error(ECONNRESET, "probe connection to " + server_.to_string() + " closed");
  }
  auto inode = socket_inode(server_, client_);
  if (!inode) return inode.error().code() == ENOENT ? Result<bool>(false) : inode.error();
  return *inode != 0;
}

}  // namespace baton
