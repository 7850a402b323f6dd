#include "common/listener.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include <fmt/format.h>

#include "common/syscall.h"

namespace baton {
namespace {

// True when something accepts connections on the unix socket at `address`.
bool unix_socket_alive(const Address& address) {
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return false;
  return ::connect(probe.get(), address.sockaddr_ptr(), address.length) == 0 ||
         errno != ECONNREFUSED;
}

// The inode and device of the file the unix socket `fd` is bound to, as the kernel's unix_diag
// tells them (UDIAG_SHOW_VFS; the reply is one datagram, read with its lengths checked).
// Errors: the kernel has no unix_diag (EPROTONOSUPPORT and the like), or a malformed reply.
Result<unix_diag_vfs> bound_file_of(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Error::from_errno("fstat socket");
  Fd diag(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!diag) return Error::from_errno("socket(NETLINK_SOCK_DIAG)");
  timeval tv{1, 0};  // the kernel answers before send returns: this bounds only the impossible
  if (::setsockopt(diag.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return Error::from_errno("sock_diag SO_RCVTIMEO");
  }
  struct {
    nlmsghdr header;
    unix_diag_req body;
  } request{};
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.body.sdiag_family = AF_UNIX;
  request.body.udiag_states = ~0U;
  request.body.udiag_ino = static_cast<__u32>(st.st_ino);
  request.body.udiag_show = UDIAG_SHOW_VFS;
  request.body.udiag_cookie[0] = request.body.udiag_cookie[1] = ~0U;  // no cookie: by inode
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (retry_eintr(::sendto, diag.get(), &request, sizeof(request), 0,
                  reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return Error::from_errno("send unix_diag request");
  }
  std::array<std::uint8_t, 1024> buffer;
  const ssize_t n = retry_eintr(::recv, diag.get(), buffer.data(), buffer.size(), MSG_TRUNC);
  if (n < 0) return Error::from_errno("receive unix_diag reply");
  const auto len = static_cast<size_t>(n);
  nlmsghdr header;
  if (len > buffer.size() || len < sizeof(header)) return Error(EPROTO, "unix_diag: bad reply");
  std::memcpy(&header, buffer.data(), sizeof(header));
  if (header.nlmsg_len < NLMSG_HDRLEN || header.nlmsg_len > len) {
    return Error(EPROTO, "unix_diag: malformed reply");
  }
  if (header.nlmsg_type == NLMSG_ERROR) {
    int code = 0;
    if (header.nlmsg_len >= NLMSG_HDRLEN + sizeof(code)) {
      std::memcpy(&code, buffer.data() + NLMSG_HDRLEN, sizeof(code));
    }
    return Error(code < 0 ? -code : EPROTO, "unix_diag");
  }
  if (header.nlmsg_type != SOCK_DIAG_BY_FAMILY) return Error(EPROTO, "unix_diag: unexpected reply");
  // Attributes follow the unix_diag_msg: the one asked for is UNIX_DIAG_VFS.
  size_t at = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(unix_diag_msg));
  while (at + sizeof(nlattr) <= header.nlmsg_len) {
    nlattr attr;
    std::memcpy(&attr, buffer.data() + at, sizeof(attr));
    if (attr.nla_len < sizeof(attr) || at + attr.nla_len > header.nlmsg_len) break;
    if (attr.nla_type == UNIX_DIAG_VFS && attr.nla_len >= NLA_HDRLEN + sizeof(unix_diag_vfs)) {
      unix_diag_vfs vfs;
      std::memcpy(&vfs, buffer.data() + at + NLA_HDRLEN, sizeof(vfs));
      return vfs;
    }
    at += NLA_ALIGN(attr.nla_len);
  }
  return Error(ENOENT, "unix_diag: the socket is bound to no file");
}

// Gives the file the socket `fd` was just bound to at `path` the mode `mode`, never following a
// name someone else can change. A user who may write the socket's directory can replace the file
// with a symlink (or another file) between bind and chmod, and a chmod by name, run as root,
// would then set the mode of whatever the link points to. So: open the name without following a
// symlink (O_PATH|O_NOFOLLOW), check that what it names is the very file the socket is bound to
// (unix_diag; where the kernel lacks it, a socket owned by this user), and change the mode
// through that descriptor (/proc/self/fd, which names the opened inode, not the path).
Status set_unix_mode(int fd, const std::string& path, mode_t mode) {
  Fd file(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!file) return Error::from_errno("open " + path);
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return Error::from_errno("fstat " + path);
  const Error replaced(EPERM, fmt::format("{} was replaced after bind (by another user?): not "
                                          "changing its mode",
                                          path));
  if (!S_ISSOCK(st.st_mode)) return replaced;
  if (auto vfs = bound_file_of(fd)) {
    // unix_diag gives the device number in the kernel's own layout (major << 20 | minor).
    const dev_t dev = makedev(vfs->udiag_vfs_dev >> 20, vfs->udiag_vfs_dev & 0xfffff);
    if (vfs->udiag_vfs_ino != st.st_ino || dev != st.st_dev) return replaced;
  } else if (st.st_uid != ::geteuid()) {
    return replaced;
  }
  if ((st.st_mode & 07777) == mode) return {};
  const std::string by_fd = fmt::format("/proc/self/fd/{}", file.get());
  if (::chmod(by_fd.c_str(), mode) != 0) {
    return Error::from_errno(fmt::format("chmod {:o} {} (through {})", mode, path, by_fd));
  }
  return {};
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

  // The mode of the socket's own inode is the one its file is created with (less the umask): the
  // file never has more permissions than asked, not even until the chmod below.
  if (!path.empty() && ::fchmod(fd.get(), options.unix_mode) != 0) {
    return Error::from_errno(fmt::format("fchmod {:o} socket for {}", options.unix_mode, where));
  }
  if (::bind(fd.get(), address.sockaddr_ptr(), address.length) != 0) {
    return Error::from_errno(fmt::format("bind {}", where));
  }
  if (options.after_bind_for_test != nullptr) options.after_bind_for_test(path);
  if (!path.empty()) {
    if (auto set = set_unix_mode(fd.get(), path, options.unix_mode); !set) return set.error();
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
