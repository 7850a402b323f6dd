#include "supervisor/group_members.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "common/sock_diag.h"

namespace baton {
namespace {

constexpr std::uint32_t kListenState = 10;  // TCP_LISTEN (include/net/tcp_states.h)
constexpr size_t kDiagBuffer = 64 * 1024;

// Whether a record's own address is `bound`: family, port and address bytes.
bool bound_here(const inet_diag_msg& msg, const Address& bound) {
  if (msg.idiag_family != bound.family() || msg.id.idiag_if != 0) return false;
  if (ntohs(msg.id.idiag_sport) != bound.port()) return false;
  if (bound.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&bound.storage);
    return std::memcmp(msg.id.idiag_src, &in->sin_addr, 4) == 0;
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&bound.storage);
  return std::memcmp(msg.id.idiag_src, &in6->sin6_addr, 16) == 0;
}

}  // namespace

Result<bool> parse_group_datagram(std::span<const std::uint8_t> data, const Address& bound,
                                  std::vector<std::uint64_t>& inodes, size_t limit) {
  size_t offset = 0;
  while (data.size() - offset >= sizeof(nlmsghdr)) {
    nlmsghdr header;
    std::memcpy(&header, data.data() + offset, sizeof(header));
    if (header.nlmsg_len < NLMSG_HDRLEN || header.nlmsg_len > data.size() - offset) {
      return Error(EPROTO, "malformed sock_diag message");
    }
    const std::uint8_t* payload = data.data() + offset + NLMSG_HDRLEN;
    const size_t payload_len = header.nlmsg_len - NLMSG_HDRLEN;
    if (header.nlmsg_type == NLMSG_DONE) return true;
    if (header.nlmsg_type == NLMSG_ERROR) {
      int code = 0;
      if (payload_len >= sizeof(code)) std::memcpy(&code, payload, sizeof(code));
      return Error(code < 0 ? -code : EPROTO, "sock_diag");
    }
    if (header.nlmsg_type == SOCK_DIAG_BY_FAMILY && payload_len >= sizeof(inet_diag_msg)) {
      inet_diag_msg msg;
      std::memcpy(&msg, payload, sizeof(msg));
      if (bound_here(msg, bound)) {
        if (inodes.size() >= limit) {
          return Error(EOVERFLOW,
                       fmt::format("more than {} sockets on {}", limit, bound.to_string()));
        }
        inodes.push_back(msg.idiag_inode);
      }
    }
    offset += NLMSG_ALIGN(header.nlmsg_len);
    if (offset > data.size()) break;
  }
  return false;
}

Result<std::vector<std::uint64_t>> sockets_bound_to(const Address& bound) {
  const bool udp = bound.transport == Transport::kUdp;
  if ((bound.family() != AF_INET && bound.family() != AF_INET6) ||
      bound.transport == Transport::kUnix) {
    return Error(EINVAL, "sock_diag of " + bound.to_string());
  }
  auto diag = SockDiagSocket::open();
  if (!diag) return diag.error();
  auto request = tcp_dump_request(bound.family(), static_cast<std::uint16_t>(bound.port()),
                                  udp ? kAllTcpStates : 1U << kListenState, 0);
  if (udp) request.body.sdiag_protocol = IPPROTO_UDP;
  if (auto sent = diag->send(request); !sent) return sent.error();
  std::vector<std::uint64_t> inodes;
  std::vector<std::uint8_t> buf(kDiagBuffer);
  // Each datagram but the last holds at least one record, of this port or another.
  for (size_t datagrams = 0; datagrams <= kMaxGroupSockets * 16; ++datagrams) {
    auto datagram = diag->receive(buf);
    if (!datagram) return datagram.error();
    auto done = parse_group_datagram(*datagram, bound, inodes, kMaxGroupSockets);
    if (!done) return done.error();
    if (*done) return inodes;
  }
  return Error(EPROTO, "sock_diag dump did not end");
}

std::uint64_t socket_inode(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

std::vector<std::uint64_t> strangers(std::span<const std::uint64_t> seen,
                                     std::span<const std::uint64_t> ours) {
  std::vector<std::uint64_t> out;
  for (auto inode : seen) {
    if (std::find(ours.begin(), ours.end(), inode) == ours.end()) out.push_back(inode);
  }
  return out;
}

}  // namespace baton
