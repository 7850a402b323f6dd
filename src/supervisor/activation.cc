#include "supervisor/activation.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "common/listen_fds.h"
#include "common/listener.h"

namespace baton {
namespace {

// The socket's transport and bound address, as a --listen entry would spell it.
Result<Address> describe(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return Error::from_errno(fmt::format("fd {}", fd));
  }
  sockaddr_storage ss{};
  socklen_t sl = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) {
    return Error::from_errno(fmt::format("fd {}", fd));
  }
  Transport transport = ss.ss_family == AF_UNIX ? Transport::kUnix
                        : type == SOCK_DGRAM    ? Transport::kUdp
                                                : Transport::kTcp;
  if (type != SOCK_STREAM && type != SOCK_DGRAM) {
    return Error(fmt::format("fd {}: a socket of a type baton does not listen on", fd));
  }
  if (ss.ss_family == AF_UNIX && type != SOCK_STREAM) {
    return Error(fmt::format("fd {}: a unix datagram socket", fd));
  }
  return address_from_sockaddr(transport, reinterpret_cast<sockaddr*>(&ss), sl);
}

}  // namespace

Result<std::vector<std::optional<Fd>>> take_activated_listeners(
    const std::vector<ListenSpec>& specs) {
  auto entries = parse_listen_fds_env(std::getenv("LISTEN_PID"), std::getenv("LISTEN_FDS"),
                                      std::getenv("LISTEN_FDNAMES"), ::getpid());
  const bool named = std::getenv("LISTEN_FDNAMES") != nullptr;
  for (const char* v : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) ::unsetenv(v);
  if (!entries) return Error("socket activation: " + entries.error().what());

  // Own every descriptor first, so that each is closed on any error below.
  std::vector<Fd> owned;
  for (const auto& e : *entries) {
    if (::fcntl(e.fd, F_SETFD, FD_CLOEXEC) != 0) {
      return Error(
          fmt::format("socket activation: LISTEN_FDS names fd {}, which is not open", e.fd));
    }
    owned.emplace_back(e.fd);
  }
  std::vector<std::optional<Fd>> slots(specs.size());
  for (size_t i = 0; i < owned.size(); ++i) {
    const auto& e = (*entries)[i];
    auto address = describe(owned[i].get());
    if (!address) return Error("socket activation: " + address.error().what());
    std::optional<size_t> match;
    for (size_t s = 0; s < specs.size() && !match; ++s) {
      if (named && !specs[s].name.empty() && specs[s].name == e.name) match = s;
    }
    for (size_t s = 0; s < specs.size() && !match; ++s) {
      if (specs[s].address.to_string() == address->to_string()) match = s;
    }
    if (!match) {
      return Error(fmt::format(
          "socket activation: fd {} ({}{}) matches no --listen; give "
          "--listen {} (or name it after the descriptor)",
          e.fd, address->to_string(), named ? ", name " + e.name : "", address->to_string()));
    }
    if (slots[*match]) {
      return Error(fmt::format("socket activation: fds {} and another both match --listen {}", e.fd,
                               specs[*match].address.to_string()));
    }
    slots[*match] = std::move(owned[i]);
  }
  return slots;
}

}  // namespace baton
