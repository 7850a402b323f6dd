#include "adopt/preload_adopt.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "adopt/match.h"
#include "adopt/preload_readiness.h"
#include "adopt/preload_state.h"

namespace baton::adopt {
namespace {

// Makes a relative unix path absolute (as the kernel resolves it), for matching.
const sockaddr* absolute_unix(const sockaddr* addr, socklen_t* len, sockaddr_un* out) {
  const auto* un = reinterpret_cast<const sockaddr_un*>(addr);
  size_t offset = offsetof(sockaddr_un, sun_path);
  if (*len <= offset || un->sun_path[0] == '\0' || un->sun_path[0] == '/') return addr;
  char cwd[sizeof(out->sun_path)];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return addr;
  size_t path_len = strnlen(un->sun_path, *len - offset);
  *out = sockaddr_un{};
  out->sun_family = AF_UNIX;
  int n = snprintf(out->sun_path, sizeof(out->sun_path), "%s/%.*s", cwd, static_cast<int>(path_len),
                   un->sun_path);
  if (n < 0 || static_cast<size_t>(n) >= sizeof(out->sun_path)) return addr;
  *len = static_cast<socklen_t>(offset + static_cast<size_t>(n) + 1);
  return reinterpret_cast<const sockaddr*>(out);
}

}  // namespace

int try_adopt(int fd, const sockaddr* addr, socklen_t len) {
  if (addr == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t))) return 0;
  int family = addr->sa_family;
  if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) return 0;
  int type = 0, domain = 0;
  socklen_t optlen = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) != 0) return 0;
  optlen = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen) != 0) return 0;
  sockaddr_un absolute;
  if (family == AF_UNIX) addr = absolute_unix(addr, &len, &absolute);

  char want[160];
  format_address(addr, len, want, sizeof(want));
  Match m = find_match(g_held, g_held_count, domain, type, addr, len);
  if (m.index < 0) {
    if (family != AF_UNIX && address_port(addr, len) != 0) {
      char summary[512];
      held_summary(summary, sizeof(summary));
      log_line(
          "bind %s: baton holds no listener for it (it holds %s); the app binds it itself, "
          "so it will not be handed over on reload",
          want, summary);
      notify("BATON_ADOPT_PASSTHROUGH=%s\nSTATUS=baton-adopt: the app bound %s itself", want, want);
    }
    return 0;
  }
  const HeldSocket& h = g_held[m.index];
  char have[160];
  held_address(h, have, sizeof(have));
  struct stat st;
  if (fstat(h.fd, &st) != 0 || st.st_ino != h.ino || st.st_dev != h.dev) {
    log_line("bind %s: baton's listener %s (fd %d) was closed by the app; binding it itself", want,
             have, h.fd);
    return 0;
  }

  int fd_flags = fcntl(fd, F_GETFD);
  int fl_flags = fcntl(fd, F_GETFL);
  if (fd_flags < 0 || fl_flags < 0) return -1;
  if (dup3(h.fd, fd, (fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) return -1;
  // O_NONBLOCK lives on the open file description, which every generation shares: the app's
  // choice here is every generation's, fine as long as they are the same app.
  int shared = fcntl(fd, F_GETFL);
  if (shared >= 0 && (shared & O_NONBLOCK) != (fl_flags & O_NONBLOCK)) {
    fcntl(fd, F_SETFL, (shared & ~O_NONBLOCK) | (fl_flags & O_NONBLOCK));
  }

  if (m.quality == MatchQuality::kOverlaps) {
    log_line(
        "bind %s: adopted baton's listener %s=%s (fd %d); the app asked for more, it serves "
        "what baton holds",
        want, held_name(h), have, h.fd);
  } else {
    log_line("bind %s: adopted baton's listener %s=%s (fd %d)", want, held_name(h), have, h.fd);
  }
  notify("BATON_ADOPTED=%s %s\nSTATUS=baton-adopt: adopted %s for bind %s", held_name(h), have,
         have, want);
  if (h.type == SOCK_STREAM) {
    static std::atomic<bool> readiness_started{false};  // constant-initialised: no guard
    if (!readiness_started.exchange(true)) start_readiness(h);
  }
  return 1;
}

bool is_held_unix_path(const char* path) {
  if (!g_active || !g_has_unix || path == nullptr) return false;
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof(un.sun_path)) return false;
  memcpy(un.sun_path, path, n);
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + 1);
  sockaddr_un absolute;
  const sockaddr* sa = absolute_unix(reinterpret_cast<sockaddr*>(&un), &len, &absolute);
  Match m = find_match(g_held, g_held_count, AF_UNIX, SOCK_STREAM, sa, len);
  if (m.index < 0) m = find_match(g_held, g_held_count, AF_UNIX, SOCK_DGRAM, sa, len);
  return m.index >= 0;
}

}  // namespace baton::adopt
