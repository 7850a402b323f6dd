// handover_transport.cc: see handover_transport.h.
#include "lib/handover_transport.h"

#include <poll.h>

#include <cstring>

#include <fmt/format.h>

#include "common/syscall.h"
#include "common/unix_socket.h"
#include "lib/handover_protocol.h"

namespace baton::handover {

Result<UnixAddr> unix_address(const std::string& path) {
  UnixAddr a;
  auto length = fill_unix_address(path, a.sun);
  if (!length) return Error(fmt::format("handover path '{}': {}", path, length.error().what()));
  a.length = *length;
  return a;
}

std::chrono::milliseconds time_left(Clock::time_point deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return d.count() < 0 ? std::chrono::milliseconds(0) : d;
}

Result<bool> wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  int rc = retry_eintr(::poll, &p, 1, static_cast<int>(timeout.count()));
  if (rc < 0) return Error::from_errno("poll");
  return rc > 0;
}

Status send_packet(int fd, const std::string& packet, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(packet.data()), packet.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  if (retry_eintr(::sendmsg, fd, &msg, MSG_NOSIGNAL) < 0) {
    return Error::from_errno("send handover message");
  }
  return {};
}

Result<Packet> recv_packet(int fd) {
  Packet p;
  std::string buf(kMaxPacket + 1, '\0');
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFds + 1))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = retry_eintr(::recvmsg, fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return Error::from_errno("receive handover message");
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        p.fds.emplace_back(received);
      }
    }
  }
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    return Error("handover message or its descriptors truncated");
  }
  if (n == 0) {
    p.eof = true;
    return p;
  }
  buf.resize(static_cast<size_t>(n));
  p.data = std::move(buf);
  return p;
}

}  // namespace baton::handover
