#include "manager_socket.h"

#include <poll.h>
#include <sys/socket.h>

#include <cstring>

namespace baton::test {

ManagerSocket::ManagerSocket(std::string path) : path_(std::move(path)) {
  fd_ = bind_unix(path_, SOCK_DGRAM);
  int on = 1;
  if (fd_) ::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
}

std::optional<ManagerSocket::Datagram> ManagerSocket::receive(std::chrono::milliseconds timeout) {
  pollfd pfd{fd_.get(), POLLIN, 0};
  if (timeout.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(timeout.count())) != 1) {
    return std::nullopt;
  }
  char buf[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
  iovec iov{buf, sizeof(buf)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return std::nullopt;
  Datagram d{std::string(buf, static_cast<size_t>(n)), -1};
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
      d.sender = cred.pid;
    }
  }
  seen_.push_back(d.text);
  if (d.text == "WATCHDOG=1") ++watchdog_pings_;
  return d;
}

std::optional<ManagerSocket::Datagram> ManagerSocket::next(std::chrono::milliseconds timeout,
                                                           bool skip_watchdog) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto d =
        receive(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!d) return std::nullopt;
    if (d->text.starts_with("STATUS=")) continue;
    if (skip_watchdog && d->text == "WATCHDOG=1") continue;
    return d;
  }
}

std::optional<ManagerSocket::Datagram> ManagerSocket::next_watchdog(
    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto d =
        receive(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!d || d->text == "WATCHDOG=1") return d;
  }
}

}  // namespace baton::test
