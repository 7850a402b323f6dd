#include "common/sock_diag.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

#include <fmt/format.h>

#include "common/syscall.h"

namespace baton {
namespace {

SockDiagRequest blank_request(int family, std::uint16_t flags) {
  SockDiagRequest r{};
  r.header.nlmsg_len = sizeof(r);
  r.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  r.header.nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
  r.header.nlmsg_seq = 1;
  r.body.sdiag_family = static_cast<std::uint8_t>(family);
  r.body.sdiag_protocol = IPPROTO_TCP;
  // No cookie: the kernel then matches on the addresses alone.
  r.body.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  r.body.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  return r;
}

// The address bytes of an IPv4 or IPv6 address, in the form idiag_src/idiag_dst hold them.
void copy_ip(const Address& a, __be32* out) {
  if (a.family() == AF_INET) {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr, 4);
  } else {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr, 16);
  }
}

}  // namespace

Result<SockDiagRequest> tcp_lookup_request(const Address& local, const Address& remote) {
  const int family = local.family();
  if (local.transport != Transport::kTcp || remote.transport != Transport::kTcp ||
      (family != AF_INET && family != AF_INET6) || remote.family() != family) {
    return Error(EINVAL, "sock_diag lookup of " + local.to_string() + " to " + remote.to_string());
  }
  SockDiagRequest r = blank_request(family, 0);
  r.body.idiag_states = kAllTcpStates;
  r.body.id.idiag_sport = htons(static_cast<std::uint16_t>(local.port()));
  r.body.id.idiag_dport = htons(static_cast<std::uint16_t>(remote.port()));
  copy_ip(local, r.body.id.idiag_src);
  copy_ip(remote, r.body.id.idiag_dst);
  return r;
}

SockDiagRequest tcp_dump_request(int family, std::uint16_t port, std::uint32_t states,
                                 std::uint8_t extensions) {
  SockDiagRequest r = blank_request(family, NLM_F_DUMP);
  r.body.idiag_states = states;
  r.body.idiag_ext = extensions;
  r.body.id.idiag_sport = htons(port);  // the kernel skips other local ports itself
  return r;
}

Result<inet_diag_msg> parse_lookup_reply(std::span<const std::uint8_t> datagram) {
  nlmsghdr header;
  if (datagram.size() < sizeof(header)) return Error(EPROTO, "sock_diag: short reply");
  std::memcpy(&header, datagram.data(), sizeof(header));
  if (header.nlmsg_len < NLMSG_HDRLEN || header.nlmsg_len > datagram.size()) {
    return Error(EPROTO, "sock_diag: malformed reply");
  }
  const std::uint8_t* payload = datagram.data() + NLMSG_HDRLEN;
  const size_t payload_len = header.nlmsg_len - NLMSG_HDRLEN;
  if (header.nlmsg_type == NLMSG_ERROR) {
    int code = 0;
    if (payload_len < sizeof(code)) return Error(EPROTO, "sock_diag: malformed error reply");
    std::memcpy(&code, payload, sizeof(code));
    return Error(code < 0 ? -code : EPROTO, "sock_diag");
  }
  if (header.nlmsg_type != SOCK_DIAG_BY_FAMILY || payload_len < sizeof(inet_diag_msg)) {
    return Error(EPROTO, "sock_diag: unexpected reply");
  }
  inet_diag_msg msg;
  std::memcpy(&msg, payload, sizeof(msg));
  return msg;
}

Result<SockDiagSocket> SockDiagSocket::open() {
  Fd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd) return Error::from_errno("socket(NETLINK_SOCK_DIAG)");
  const auto ms = kSockDiagReceiveTimeout.count();
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return Error::from_errno("sock_diag SO_RCVTIMEO");
  }
  return SockDiagSocket(std::move(fd));
}

Status SockDiagSocket::send(const SockDiagRequest& request) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  const ssize_t n = retry_eintr(::sendto, fd_.get(), &request, sizeof(request), 0,
                                reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
  if (n < 0) return Error::from_errno("send sock_diag request");
  if (static_cast<size_t>(n) != sizeof(request)) return Error(EPROTO, "sock_diag: short send");
  return {};
}

Result<std::span<const std::uint8_t>> SockDiagSocket::receive(std::span<std::uint8_t> buffer) {
  // MSG_TRUNC: the datagram's whole length is returned, so one that did not fit is seen.
  const ssize_t n = retry_eintr(::recv, fd_.get(), buffer.data(), buffer.size(), MSG_TRUNC);
  if (n < 0) return Error::from_errno("receive sock_diag reply");
  if (static_cast<size_t>(n) > buffer.size()) {
    return Error(EMSGSIZE, fmt::format("sock_diag datagram of {} bytes", n));
  }
  return std::span<const std::uint8_t>(buffer.data(), static_cast<size_t>(n));
}

Result<inet_diag_msg> lookup_tcp_socket(const Address& local, const Address& remote) {
  auto request = tcp_lookup_request(local, remote);
  if (!request) return request.error();
  auto diag = SockDiagSocket::open();
  if (!diag) return diag.error();
  if (auto sent = diag->send(*request); !sent) return sent.error();
  // A lookup reply is one inet_diag_msg without attributes, or an error: far below this.
  std::array<std::uint8_t, 4096> buffer;
  auto reply = diag->receive(buffer);
  if (!reply) return reply.error();
  auto msg = parse_lookup_reply(*reply);
  if (!msg) return msg.error();
  // The kernel looks the 4-tuple up as it would an arriving packet: with no connection of that
  // 4-tuple it falls back to the listening socket on the local address, and answers with that.
  if (msg->id.idiag_sport != request->body.id.idiag_sport ||
      msg->id.idiag_dport != request->body.id.idiag_dport) {
    return Error(ENOENT,
                 "sock_diag: no connection " + local.to_string() + " to " + remote.to_string());
  }
  return msg;
}

}  // namespace baton
