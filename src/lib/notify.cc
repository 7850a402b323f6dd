#include "baton/notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "baton/fd.h"
#include "common/syscall.h"
#include "common/unix_socket.h"

namespace baton {

Status notify_to(std::string_view socket_name, std::string_view state) {
  if (socket_name.empty()) return Error("NOTIFY_SOCKET is empty");
  if (socket_name[0] != '/' && socket_name[0] != '@') {
    return Error("NOTIFY_SOCKET='" + std::string(socket_name) +
                 "': neither an absolute path nor @abstract");
  }
  sockaddr_un sun{};
  auto len = fill_unix_address(socket_name, sun);
  if (!len) return Error("NOTIFY_SOCKET='" + std::string(socket_name) + "': " + len.error().what());
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno("socket for NOTIFY_SOCKET");
  ssize_t n = retry_eintr(::sendto, fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                          reinterpret_cast<const sockaddr*>(&sun), *len);
  if (n < 0) return Error::from_errno("notify " + std::string(socket_name));
  return {};
}

Status notify(std::string_view state) {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (name == nullptr) return {};
  return notify_to(name, state);
}

}  // namespace baton
