#include "supervisor/notify_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/syscall.h"
#include "common/unix_socket.h"

namespace baton {

NotifyMessage parse_notify(std::string_view text) {
  NotifyMessage m;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (line == "READY=1") m.ready = true;
    if (line == "STOPPING=1") m.stopping = true;
    if (line.starts_with("STATUS=")) m.status = std::string(line.substr(7));
    if (line == "BATON_ADOPT_LOADED=1") m.adopt_loaded = true;
    if (line.starts_with("BATON_ADOPTED=")) m.adopted = std::string(line.substr(14));
    if (line.starts_with("BATON_ADOPT_PASSTHROUGH=")) {
      m.adopt_passthrough = std::string(line.substr(24));
    }
    if (line.starts_with("BATON_ADOPT_ERROR=")) m.adopt_error = std::string(line.substr(18));
    start = end + 1;
  }
  return m;
}

Result<NotifySocket> NotifySocket::bind(const std::string& path) {
  sockaddr_un addr{};
  auto length = fill_unix_address(path, addr);
  if (!length) return Error("notify socket path " + path + ": " + length.error().what());
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Error::from_errno("socket for the notify socket");
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) {
    return Error::from_errno("SO_PASSCRED");
  }
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), *length) != 0) {
    return Error::from_errno("bind " + path);
  }
  return NotifySocket(std::move(fd), path);
}

NotifySocket::~NotifySocket() {
  if (fd_) ::unlink(path_.c_str());
}

std::optional<ReceivedNotify> NotifySocket::receive() {
  for (;;) {
    char buf[kMaxNotifyDatagram + 1];
    iovec iov{buf, sizeof(buf)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n =
        retry_eintr(::recvmsg, fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (n < 0) return std::nullopt;  // EAGAIN: nothing more
    std::optional<pid_t> pid;
    bool had_fds = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        pid = cred.pid;
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        had_fds = true;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          ::close(fd);
        }
      }
    }
    if (static_cast<size_t>(n) > kMaxNotifyDatagram || had_fds || !pid ||
        (msg.msg_flags & MSG_CTRUNC) != 0) {
      continue;  // dropped; see the protocol note in the header
    }
    return ReceivedNotify{*pid, parse_notify(std::string_view(buf, static_cast<size_t>(n)))};
  }
}

}  // namespace baton
