#include "common/listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

namespace baton {
namespace {

// True when something accepts connections on the unix socket at `address`.
bool unix_socket_alive(const Address& address) {
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return false;
  return ::connect(probe.get(), address.sockaddr_ptr(), address.length) == 0 ||
         errno != ECONNREFUSED;
}

}  // namespace

Result<Fd> bind_listener(const Address& address, const BindOptions& options) {
  const std::string where = address.to_string();
  Fd fd(::socket(address.family(), address.socket_type() | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno(fmt::format("socket for {}", where));

  int one = 1;
  if (address.transport != Transport::kUnix) {
    // TCP only: on UDP, SO_REUSEADDR would let a second socket bind the same port unseen.
    if (address.transport == Transport::kTcp &&
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
      return Error::from_errno(fmt::format("SO_REUSEADDR on {}", where));
    }
    if (options.reuse_port &&
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      return Error::from_errno(fmt::format("SO_REUSEPORT on {}", where));
    }
    if (address.family() == AF_INET6) {
      int v6only = options.ipv6_only ? 1 : 0;
      if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) != 0) {
        return Error::from_errno(fmt::format("IPV6_V6ONLY on {}", where));
      }
    }
  }

  const std::string path = address.unix_path();
  if (!path.empty()) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return Error(EEXIST,
                     fmt::format("bind {}: a file that is not a socket is in the way", where));
      }
      if (unix_socket_alive(address)) return Error(EADDRINUSE, fmt::format("bind {}", where));
      ::unlink(path.c_str());  // stale socket left by a process that died
    }
  }

  if (::bind(fd.get(), address.sockaddr_ptr(), address.length) != 0) {
    return Error::from_errno(fmt::format("bind {}", where));
  }
  if (!path.empty() && ::chmod(path.c_str(), options.unix_mode) != 0) {
    Error e = Error::from_errno(fmt::format("chmod {:o} {}", options.unix_mode, path));
    ::unlink(path.c_str());
    return e;
  }
  if (address.socket_type() == SOCK_STREAM && ::listen(fd.get(), options.backlog) != 0) {
    Error e = Error::from_errno(fmt::format("listen on {}", where));
    if (!path.empty()) ::unlink(path.c_str());
    return e;
  }
  return fd;
}

Result<Address> bound_address(int fd, Transport transport) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return Error::from_errno("getsockname");
  }
  return address_from_sockaddr(transport, reinterpret_cast<sockaddr*>(&ss), len);
}

Status set_cloexec(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return Error::from_errno("fcntl F_GETFD");
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (::fcntl(fd, F_SETFD, flags) != 0) return Error::from_errno("fcntl F_SETFD");
  return {};
}

Status set_nonblocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return Error::from_errno("fcntl F_GETFL");
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) return Error::from_errno("fcntl F_SETFL");
  return {};
}

}  // namespace baton
