#include "adopt/preload_state.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace baton::adopt {

HeldSocket g_held[kMaxHeld];
int g_held_count = 0;
bool g_active = false;
bool g_has_unix = false;
char g_notify_path[sizeof(sockaddr_un::sun_path)] = {};
socklen_t g_notify_len = 0;
ReadyMode g_ready_mode = ReadyMode::kHttp;
char g_ready_path[512] = "/";
int g_supervisor_probe = -1;

void log_line(const char* format, ...) {
  char buf[1024];
  int n = snprintf(buf, sizeof(buf), "baton-adopt[%d]: ", static_cast<int>(getpid()));
  va_list ap;
  va_start(ap, format);
  int m = vsnprintf(buf + n, sizeof(buf) - n - 1, format, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof(buf) - 2) len = sizeof(buf) - 2;
  buf[len++] = '\n';
  (void)!write(2, buf, len);  // one write: lines from several threads do not interleave
}

void notify(const char* format, ...) {
  if (g_notify_len == 0) return;
  char buf[1024];
  va_list ap;
  va_start(ap, format);
  int n = vsnprintf(buf, sizeof(buf), format, ap);
  va_end(ap);
  if (n < 0) return;
  if (n >= static_cast<int>(sizeof(buf))) n = sizeof(buf) - 1;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, g_notify_path, g_notify_len);
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + g_notify_len);
  if (sendto(fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len) <
      0) {
    log_line("cannot notify the supervisor on NOTIFY_SOCKET: %s", strerror(errno));
  }
  close(fd);
}

const char* held_name(const HeldSocket& h) { return h.name[0] != '\0' ? h.name : "-"; }

char* held_address(const HeldSocket& h, char* out, size_t size) {
  return format_address(reinterpret_cast<const sockaddr*>(&h.addr), h.addr_len, out, size);
}

// "http=127.0.0.1:8080, 127.0.0.1:8081"
void held_summary(char* out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < g_held_count && used + 1 < size; ++i) {
    if (g_held[i].probe) continue;
    char addr[160];
    held_address(g_held[i], addr, sizeof(addr));
    int n = snprintf(out + used, size - used, "%s%s%s%s", used > 0 ? ", " : "", g_held[i].name,
                     g_held[i].name[0] != '\0' ? "=" : "", addr);
    if (n < 0) break;
    used += static_cast<size_t>(n);
  }
  if (used == 0) snprintf(out, size, "nothing");
}

int held_index_of(int fd) {
  if (!g_active || fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return -1;
  for (int i = 0; i < g_held_count; ++i) {
    if (g_held[i].ino == st.st_ino && g_held[i].dev == st.st_dev) return i;
  }
  return -1;
}

bool is_adopted(int fd) {
  int i = held_index_of(fd);
  return i >= 0 && !g_held[i].probe;
}

bool is_adopted_stream(int fd) {
  int i = held_index_of(fd);
  return i >= 0 && !g_held[i].probe && g_held[i].type == SOCK_STREAM;
}
}  // namespace baton::adopt
