#include "lib/listen_env.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

#include "common/address.h"
#include "common/listen_fds.h"
#include "common/listener.h"

namespace baton {

Result<std::vector<ListenFdEntry>> parse_server_starter_port(std::string_view value) {
  std::vector<ListenFdEntry> out;
  if (value.empty()) return out;
  for (auto item : split(value, ';')) {
    if (item.empty()) continue;  // Server::Starter tolerates a trailing ';'
    size_t eq = item.rfind('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Error(fmt::format("SERVER_STARTER_PORT: '{}' is not ADDRESS=FD", std::string(item)));
    }
    long long fd = 0;
    if (!parse_decimal(item.substr(eq + 1), 3, 1 << 20, &fd)) {
      return Error(fmt::format("SERVER_STARTER_PORT: '{}': descriptor is not a number >= 3",
                               std::string(item)));
    }
    if (static_cast<int>(out.size()) == kMaxListeners) {
      return Error(fmt::format("SERVER_STARTER_PORT: more than {} descriptors", kMaxListeners));
    }
    for (const auto& e : out) {
      if (e.fd == fd) {
        return Error(fmt::format("SERVER_STARTER_PORT: descriptor {} listed twice", fd));
      }
    }
    out.push_back({std::string(item.substr(0, eq)), static_cast<int>(fd)});
  }
  return out;
}

Result<Listener> describe_listener(int fd, std::string name, ListenerOrigin origin) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return Error::from_errno(fmt::format("descriptor {} ({}): not a socket", fd, name));
  }
  sockaddr_storage ss{};
  socklen_t sl = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) {
    return Error::from_errno(fmt::format("getsockname on descriptor {} ({})", fd, name));
  }
  Transport transport = ss.ss_family == AF_UNIX ? Transport::kUnix
                        : type == SOCK_DGRAM    ? Transport::kUdp
                                                : Transport::kTcp;
  if (type == SOCK_STREAM) {
    int acc = 0;
    len = sizeof(acc);
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0 || acc == 0) {
      return Error(
          fmt::format("descriptor {} ({}): a stream socket that is not listening", fd, name));
    }
  }
  if (auto s = set_cloexec(fd, true); !s) return s.error();
  if (auto s = set_nonblocking(fd, true); !s) return s.error();
  Listener l;
  l.name = std::move(name);
  l.address = address_from_sockaddr(transport, reinterpret_cast<sockaddr*>(&ss), sl).to_string();
  l.fd = fd;
  l.type = type;
  l.origin = origin;
  return l;
}

Result<std::vector<OwnedListener>> inherit_listeners_from_env() {
  const char* fds_env = std::getenv("LISTEN_FDS");
  Result<std::vector<ListenFdEntry>> entries =
      fds_env != nullptr
          ? parse_listen_fds_env(std::getenv("LISTEN_PID"), fds_env, std::getenv("LISTEN_FDNAMES"),
                                 ::getpid())
          : parse_server_starter_port(
                std::getenv("SERVER_STARTER_PORT") ? std::getenv("SERVER_STARTER_PORT") : "");
  for (const char* v : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "SERVER_STARTER_PORT"}) {
    ::unsetenv(v);
  }
  if (!entries) return entries.error();

  // Own every open descriptor named before reporting any error, so none leaks on the error path.
  std::vector<OwnedListener> out;
  std::vector<Fd> owned;
  const ListenFdEntry* missing = nullptr;
  for (const auto& e : *entries) {
    if (::fcntl(e.fd, F_GETFD) < 0) {
      if (missing == nullptr) missing = &e;
    } else {
      owned.emplace_back(e.fd);
    }
  }
  if (missing != nullptr) {
    return Error(
        EBADF, fmt::format("inherited descriptor {} ({}) is not open", missing->fd, missing->name));
  }
  for (size_t i = 0; i < entries->size(); ++i) {
    auto info = describe_listener(owned[i].get(), (*entries)[i].name, ListenerOrigin::kInherited);
    if (!info) return info.error();
    out.push_back({std::move(*info), std::move(owned[i])});
  }
  return out;
}

}  // namespace baton
