#include "lib/listen_env.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

#include "common/address.h"
#include "common/listener.h"

namespace baton {
namespace {

// A whole decimal number in [min, max], no sign, no spaces, no leading junk.
bool parse_int(std::string_view text, long long min, long long max, long long* out) {
  if (text.empty() || text.size() > 19) return false;
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text[0] == '-' || text[0] == '+') {
    return false;
  }
  if (v < min || v > max) return false;
  *out = v;
  return true;
}

// systemd's rule for descriptor names: 1..255 printable ASCII characters, no ':'.
bool valid_fd_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (c < 0x21 || c > 0x7e || c == ':') return false;
  }
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

}  // namespace

Result<std::vector<ListenFdEntry>> parse_listen_fds_env(const char* listen_pid,
                                                        const char* listen_fds,
                                                        const char* listen_fdnames, pid_t self) {
  std::vector<ListenFdEntry> out;
  if (listen_fds == nullptr) return out;
  if (listen_pid != nullptr) {
    long long pid = 0;
    if (!parse_int(listen_pid, 1, 0x7fffffff, &pid)) {
      return Error(fmt::format("LISTEN_PID='{}': not a process id", listen_pid));
    }
    if (pid != self) return out;  // meant for another process (an ancestor)
  }
  long long count = 0;
  if (!parse_int(listen_fds, 0, 1LL << 30, &count)) {
    return Error(fmt::format("LISTEN_FDS='{}': not a count of descriptors", listen_fds));
  }
  if (count > kMaxListeners) {
    return Error(fmt::format("LISTEN_FDS={}: more than {} descriptors", count, kMaxListeners));
  }
  std::vector<std::string_view> names;
  if (listen_fdnames != nullptr) {
    names = split(listen_fdnames, ':');
    if (count == 0 && names.size() == 1 && names[0].empty()) names.clear();
    if (static_cast<long long>(names.size()) != count) {
      return Error(
          fmt::format("LISTEN_FDNAMES has {} names but LISTEN_FDS={}", names.size(), count));
    }
    for (auto n : names) {
      if (!valid_fd_name(n)) {
        return Error(
            fmt::format("LISTEN_FDNAMES: invalid name '{}' (1-255 printable characters, "
                        "no ':')",
                        std::string(n)));
      }
    }
  }
  for (int i = 0; i < count; ++i) {
    out.push_back(
        {names.empty() ? std::string("unknown") : std::string(names[i]), kListenFdsStart + i});
  }
  return out;
}

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
    if (!parse_int(item.substr(eq + 1), 3, 1 << 20, &fd)) {
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
