#include "common/unix_socket.h"

#include <unistd.h>

#include <cstddef>
#include <cstring>

#include <fmt/format.h>

namespace baton {

Result<socklen_t> fill_unix_address(std::string_view path, sockaddr_un& out) {
  out = sockaddr_un{};
  out.sun_family = AF_UNIX;
  if (path.empty()) return Error("empty unix socket path");
  if (path.size() >= sizeof(out.sun_path)) {
    return Error(
        fmt::format("unix socket path too long (at most {} bytes)", sizeof(out.sun_path) - 1));
  }
  if (path.find('\0') != std::string_view::npos) return Error("NUL byte in unix socket path");
  std::memcpy(out.sun_path, path.data(), path.size());
  if (path[0] == '@') {  // abstract namespace: leading NUL, the length counts exactly the name
    out.sun_path[0] = '\0';
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  }
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
}

Result<ucred> peer_credentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Error::from_errno("SO_PEERCRED");
  }
  return cred;
}

bool peer_uid_allowed(uid_t uid) { return uid == 0 || uid == ::geteuid(); }

}  // namespace baton
