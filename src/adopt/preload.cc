// preload.cc: libbaton_adopt.so, which lets an app that binds its own port run under baton.
//
// `baton run --adopt` starts the app with LD_PRELOAD=libbaton_adopt.so, BATON_ADOPT=1 and the
// listeners baton holds from fd 3 (LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES). Inside the app:
//
//   bind(fd, ADDR)   ADDR matching a listener baton holds (rules in match.h): the held listener is
//                    dup3()ed onto the app's fd number, keeping the app's CLOEXEC choice and
//                    applying its O_NONBLOCK choice; bind returns 0. So every generation of the app
//                    accepts from the one kernel socket baton owns, and connections queued while
//                    one generation leaves are taken by the next. Options the app set on its own
//                    socket before bind (SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY) went with that
//                    socket: baton's listener is bound already. Any other bind is untouched; a bind
//                    of an IP port baton does not hold logs one warning line.
//   listen(fd)       on an adopted socket: success, without touching it (it listens already, and
//                    the app's backlog, e.g. Python's 5, must not shrink baton's).
//   shutdown(fd)     on an adopted socket: success, without touching it. On Linux, shutdown() of a
//                    listening socket stops it listening for every process that shares it.
//   close(fd)        not interposed: the app's fd is a duplicate, so close() drops only this
//                    process's reference; baton and the other generation keep the socket.
//   getsockname(fd)  not interposed: the app's fd is baton's socket, so it reports baton's address.
//   unlink(PATH)     of a unix socket path baton holds: success, without removing it (libuv, for
//                    one, unlinks its socket file on close, which would strand the next
//                    generation).
//
// Readiness: proof that THIS process serves, although it shares its public socket with the old
// generation. With NOTIFY_SOCKET set, at its first adoption the library opens a private loopback
// listener and routes it into the app's own accept path: epoll_ctl() on the adopted fd is mirrored
// onto the private listener (same events, same epoll_data), poll()/ppoll() on the adopted fd also
// wait on it, and accept()/accept4() on the adopted fd returns a pending private connection first.
// A thread of the library then sends `GET PATH` through the private listener; only this process
// can accept it, so a 2xx/3xx answer proves this generation's event loop, accept call, HTTP parser
// and handler work. The library then sends READY=1 and stops routing. BATON_ADOPT_READY selects:
//   http:PATH (default http:/)  as above;
//   accept                      READY=1 once the app accepted a private connection (any protocol);
//   bind                        READY=1 at the first adoption (proves nothing about serving);
//   none                        the library never sends READY=1.
// When the supervisor passes its own probe listener (named "baton-probe", for `--ready http:PATH`)
// the library routes that one instead, for the whole life of the process, and sends no READY=1:
// the supervisor's own probe then reaches this generation's accept path.
//
// Notify protocol, version 1: datagrams to NOTIFY_SOCKET, KEY=VALUE lines, as sd_notify:
//   BATON_ADOPT_LOADED=1, BATON_ADOPT_PROTOCOL=1   at load (the supervisor learns the preload ran)
//   BATON_ADOPTED=NAME ADDRESS                      each adoption (NAME "-" when unnamed)
//   BATON_ADOPT_PASSTHROUGH=ADDRESS                 the app bound an IP port baton does not hold
//   BATON_ADOPT_ERROR=MESSAGE                       a configuration error (bad BATON_ADOPT_READY)
//   READY=1                                         the probe above succeeded
//   STATUS=baton-adopt: ...                         a human-readable line with each of the above
//
// Which processes adopt: only the one whose pid is LISTEN_PID, with BATON_ADOPT=1, and LISTEN_FDS
// at most kMaxHeld (anything more was not written by baton: one line, and nothing is adopted).
// At load that process keeps its listeners and variables to itself (preload_env.h): the held
// descriptors become CLOEXEC and the variables leave the environment, so helpers it forks and
// execs inherit neither; an exec in its own pid (a wrapper exec()ing the real server: a shell
// script, the pyenv shim) hands both on, so the server adopts. A child forked without exec shares
// the parent's state, so a pre-fork server's workers accept the adopted socket like the master.
//
// The library uses no C++ runtime (no exceptions, no allocation, no static guards) so it loads
// into any process without bringing libstdc++ along.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "adopt/match.h"
#include "adopt/preload_env.h"

#define BATON_EXPORT extern "C" __attribute__((visibility("default")))

namespace baton::adopt {
namespace {

// The same bound as kMaxListeners (src/common/listen_fds.h; not included: this library has no C++
// runtime): baton never passes more, so a larger LISTEN_FDS is refused rather than walked.
constexpr int kMaxHeld = 128;
constexpr int kProtocolVersion = 1;
constexpr const char kProbeName[] = "baton-probe";

enum class ReadyMode { kNone, kHttp, kAccept, kBind };

// ---- the real functions, from the next object in the lookup order -----------------------------

using BindFn = int (*)(int, const sockaddr*, socklen_t);
using ListenFn = int (*)(int, int);
using ShutdownFn = int (*)(int, int);
using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using Accept4Fn = int (*)(int, sockaddr*, socklen_t*, int);
using PollFn = int (*)(pollfd*, nfds_t, int);
using PpollFn = int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*);
using EpollCtlFn = int (*)(int, int, int, epoll_event*);
using UnlinkFn = int (*)(const char*);
using UnlinkatFn = int (*)(int, const char*, int);

struct RealFunctions {
  std::atomic<BindFn> bind{nullptr};
  std::atomic<ListenFn> listen{nullptr};
  std::atomic<ShutdownFn> shutdown{nullptr};
  std::atomic<AcceptFn> accept{nullptr};
  std::atomic<Accept4Fn> accept4{nullptr};
  std::atomic<PollFn> poll{nullptr};
  std::atomic<PpollFn> ppoll{nullptr};
  std::atomic<EpollCtlFn> epoll_ctl{nullptr};
  std::atomic<UnlinkFn> unlink{nullptr};
  std::atomic<UnlinkatFn> unlinkat{nullptr};
};
RealFunctions g_real;

// Resolves lazily too: another library's constructor may call us before ours has run.
template <typename Fn>
Fn real(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    if (fn == nullptr) {
      static const char kMsg[] = "baton-adopt: fatal: the C library has no ";
      (void)!write(2, kMsg, sizeof(kMsg) - 1);
      (void)!write(2, name, strlen(name));
      (void)!write(2, "\n", 1);
      abort();
    }
    slot.store(fn, std::memory_order_release);
  }
  return fn;
}
#define REAL(name) real(g_real.name, #name)

// ---- state: written by the constructor only, read-only afterwards (except the atomics) ---------

HeldSocket g_held[kMaxHeld];
int g_held_count = 0;
bool g_active = false;    // this process adopts (BATON_ADOPT=1, LISTEN_PID is us)
bool g_has_unix = false;  // some held socket is a unix path (unlink protection)
char g_notify_path[sizeof(sockaddr_un::sun_path)] = {};
socklen_t g_notify_len = 0;  // 0: no NOTIFY_SOCKET
ReadyMode g_ready_mode = ReadyMode::kHttp;
char g_ready_path[512] = "/";
int g_supervisor_probe = -1;  // index of the held "baton-probe" listener, or -1

std::atomic<bool> g_routing{false};     // route the private listener into the app's accept path
std::atomic<int> g_private_fd{-1};      // that listener (ours, or the supervisor's baton-probe)
std::atomic<int> g_probe_event_fd{-1};  // accept mode: the interposer signals the probe thread
sockaddr_storage g_private_addr{};
socklen_t g_private_len = 0;
char g_probe_host[128] = "localhost";  // Host header of the probe: the public address

// ---- output -------------------------------------------------------------------------------------

void log_line(const char* format, ...) __attribute__((format(printf, 1, 2)));
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

void notify(const char* format, ...) __attribute__((format(printf, 1, 2)));
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

// ---- identity of adopted sockets ----------------------------------------------------------------

// The held socket `fd` refers to (under any fd number, via any dup), or -1. Sockets are told apart
// by inode, so fd numbers that the app closes and reuses never confuse us.
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

// ---- the constructor ----------------------------------------------------------------------------

bool parse_int(const char* s, long* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

void parse_ready_mode() {
  const char* mode = getenv("BATON_ADOPT_READY");
  if (mode == nullptr || *mode == '\0') return;  // default: http:/
  if (strcmp(mode, "none") == 0) {
    g_ready_mode = ReadyMode::kNone;
  } else if (strcmp(mode, "accept") == 0) {
    g_ready_mode = ReadyMode::kAccept;
  } else if (strcmp(mode, "bind") == 0) {
    g_ready_mode = ReadyMode::kBind;
  } else if (strncmp(mode, "http:", 5) == 0 && mode[5] == '/' &&
             strlen(mode + 5) < sizeof(g_ready_path) && strpbrk(mode, " \r\n") == nullptr) {
    g_ready_mode = ReadyMode::kHttp;
    strcpy(g_ready_path, mode + 5);
  } else {
    g_ready_mode = ReadyMode::kNone;
    log_line(
        "BATON_ADOPT_READY=%s is not http:/PATH, accept, bind or none; "
        "this generation will not declare itself ready",
        mode);
    notify(
        "BATON_ADOPT_ERROR=BATON_ADOPT_READY=%s is not http:/PATH, accept, bind or none\n"
        "STATUS=baton-adopt: bad BATON_ADOPT_READY",
        mode);
  }
}

void record_held(int fd, const char* name, size_t name_len) {
  if (g_held_count >= kMaxHeld) {
    log_line("more than %d inherited listeners; fd %d and above are not adopted", kMaxHeld, fd);
    return;
  }
  HeldSocket h;
  h.fd = fd;
  struct stat st;
  socklen_t optlen = sizeof(h.type);
  h.addr_len = sizeof(h.addr);
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
      getsockopt(fd, SOL_SOCKET, SO_TYPE, &h.type, &optlen) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&h.addr), &h.addr_len) != 0) {
    log_line("inherited fd %d is not a socket; ignoring it", fd);
    return;
  }
  h.dev = st.st_dev;
  h.ino = st.st_ino;
  if (h.addr.ss_family == AF_INET6) {
    int v6only = 0;
    optlen = sizeof(v6only);
    if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen) == 0) h.v6only = v6only != 0;
  }
  if (h.addr.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&h.addr);
    if (h.addr_len > offsetof(sockaddr_un, sun_path) && un->sun_path[0] != '\0') g_has_unix = true;
  }
  if (name_len >= sizeof(h.name)) name_len = sizeof(h.name) - 1;
  memcpy(h.name, name, name_len);
  h.name[name_len] = '\0';
  h.probe = strcmp(h.name, kProbeName) == 0;
  g_held[g_held_count++] = h;
}

__attribute__((constructor)) void baton_adopt_init() {
  // Resolve now, while single-threaded.
  REAL(bind), REAL(listen), REAL(shutdown), REAL(accept), REAL(accept4), REAL(poll), REAL(ppoll),
      REAL(epoll_ctl), REAL(unlink), REAL(unlinkat);

  const char* adopt = getenv("BATON_ADOPT");
  if (adopt == nullptr || strcmp(adopt, "1") != 0) return;
  long pid = 0, count = 0;
  if (!parse_int(getenv("LISTEN_PID"), &pid) || pid != getpid()) return;  // not ours: inert
  if (!parse_int(getenv("LISTEN_FDS"), &count) || count <= 0) return;

  const char* notify_socket = getenv("NOTIFY_SOCKET");
  if (notify_socket != nullptr && (notify_socket[0] == '/' || notify_socket[0] == '@')) {
    size_t n = strlen(notify_socket);
    if (n < sizeof(g_notify_path)) {
      memcpy(g_notify_path, notify_socket, n);
      if (g_notify_path[0] == '@') g_notify_path[0] = '\0';
      g_notify_len = static_cast<socklen_t>(n);
    }
  }
  if (count > kMaxHeld) {
    log_line("LISTEN_FDS=%ld: more than %d descriptors, not from baton; adopting nothing", count,
             kMaxHeld);
    notify("BATON_ADOPT_ERROR=LISTEN_FDS=%ld is more than %d\nSTATUS=baton-adopt: bad LISTEN_FDS",
           count, kMaxHeld);
    return;
  }

  const char* names = getenv("LISTEN_FDNAMES");
  for (long i = 0; i < count; ++i) {
    const char* name = "";
    size_t name_len = 0;
    if (names != nullptr) {
      name = names;
      const char* colon = strchr(names, ':');
      name_len = colon != nullptr ? static_cast<size_t>(colon - names) : strlen(names);
      names = colon != nullptr ? colon + 1 : nullptr;
    }
    record_held(3 + static_cast<int>(i), name, name_len);
  }
  if (g_held_count == 0) return;
  for (int i = 0; i < g_held_count; ++i) {
    if (!g_held[i].probe) continue;
    g_supervisor_probe = i;
    // The routed accept must never block on it. Only this generation accepts on this listener
    // (the supervisor connects to it), so setting O_NONBLOCK on the shared description is safe.
    int fl = fcntl(g_held[i].fd, F_GETFL);
    if (fl >= 0) fcntl(g_held[i].fd, F_SETFL, fl | O_NONBLOCK);
  }
  parse_ready_mode();
  g_active = true;
  keep_adoption_to_ourselves(getpid(), 3, static_cast<int>(count));

  char summary[512];
  held_summary(summary, sizeof(summary));
  notify("BATON_ADOPT_LOADED=1\nBATON_ADOPT_PROTOCOL=%d\nSTATUS=baton-adopt: loaded, holding %s",
         kProtocolVersion, summary);
}

// ---- readiness ----------------------------------------------------------------------------------

// The per-generation private listener, on loopback, of the family of the adopted socket (so a
// probe connection looks like the app's other connections: same family, same sockaddr size).
int open_private_listener(int family) {
  int fd = -1;
  if (family == AF_UNIX) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sa_family_t af = AF_UNIX;  // autobind: a fresh abstract name
    if (fd >= 0 && REAL(bind)(fd, reinterpret_cast<sockaddr*>(&af), sizeof(af)) != 0) {
      close(fd);
      fd = -1;
    }
  } else if (family == AF_INET6) {
    // [::1], or ::ffff:127.0.0.1 where IPv6 loopback is off (dual-stack sockets accept it).
    static const unsigned char kMapped[16] = {0, 0, 0,    0,    0,   0, 0, 0,
                                              0, 0, 0xff, 0xff, 127, 0, 0, 1};
    for (int attempt = 0; attempt < 2 && fd < 0; ++attempt) {
      fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0) break;
      int off = 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
      sockaddr_in6 sa{};
      sa.sin6_family = AF_INET6;
      if (attempt == 0) {
        sa.sin6_addr = in6addr_loopback;
      } else {
        memcpy(&sa.sin6_addr, kMapped, sizeof(kMapped));
      }
      if (REAL(bind)(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
      }
    }
  } else {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && REAL(bind)(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      close(fd);
      fd = -1;
    }
  }
  if (fd < 0) return -1;
  g_private_len = sizeof(g_private_addr);
  if (REAL(listen)(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&g_private_addr), &g_private_len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Ends routing: the private listener's fd number is taken over by an empty epoll instance, which
// never becomes readable. Closing the listener removes it from the app's epoll sets; keeping the
// number occupied means a racing interposer never accepts from a socket the app opened meanwhile.
void stop_routing() {
  g_routing.store(false, std::memory_order_release);
  int fd = g_private_fd.load();
  if (fd < 0) return;
  int dummy = epoll_create1(EPOLL_CLOEXEC);
  if (dummy >= 0) {
    dup3(dummy, fd, O_CLOEXEC);
    close(dummy);
  }
}

int connect_private() {
  int fd = socket(g_private_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&g_private_addr), g_private_len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// One probe: GET through the private listener. Returns the HTTP status, 0 when no valid response.
int http_probe_once() {
  int fd = connect_private();
  if (fd < 0) return 0;
  char request[1024];
  int n = snprintf(request, sizeof(request),
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: baton-adopt-probe/%d\r\n"
                   "Accept: */*\r\nConnection: close\r\n\r\n",
                   g_ready_path, g_probe_host, kProtocolVersion);
  int status = 0;
  if (n > 0 && send(fd, request, static_cast<size_t>(n), MSG_NOSIGNAL) == n) {
    // Read to the end (Connection: close) so the app never writes into a closed connection.
    char buf[4096];
    char head[16] = {};
    size_t head_len = 0;
    for (size_t total = 0; total < (1u << 20);) {
      ssize_t r = recv(fd, buf, sizeof(buf), 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      for (ssize_t i = 0; i < r && head_len < sizeof(head) - 1; ++i) head[head_len++] = buf[i];
      total += static_cast<size_t>(r);
    }
    if (head_len >= 12 && strncmp(head, "HTTP/1.", 7) == 0 && head[8] == ' ') {
      status = atoi(head + 9);
    }
  }
  close(fd);
  return status;
}

void* probe_thread(void*) {
  if (g_ready_mode == ReadyMode::kAccept) {
    int fd = connect_private();
    int efd = g_probe_event_fd.load();
    uint64_t value = 0;
    while (fd >= 0 && read(efd, &value, sizeof(value)) < 0 && errno == EINTR) {
    }
    stop_routing();
    if (fd >= 0) close(fd);
    notify("READY=1\nSTATUS=baton-adopt: ready: this process accepted a private connection");
    log_line("ready: this process accepted a private probe connection through its accept path");
    return nullptr;
  }
  int last_status = -1;
  long backoff_ms = 20;
  for (;;) {
    int status = http_probe_once();
    if (status >= 200 && status < 400) {
      stop_routing();
      notify("READY=1\nSTATUS=baton-adopt: ready: GET %s answered %d through this process's accept",
             g_ready_path, status);
      log_line("ready: GET %s answered %d through this process's own accept path", g_ready_path,
               status);
      return nullptr;
    }
    if (status != last_status) {
      if (status == 0) {
        log_line("readiness probe GET %s: no HTTP response; retrying", g_ready_path);
      } else {
        log_line("readiness probe GET %s answered %d; retrying until 2xx/3xx", g_ready_path,
                 status);
      }
      notify("STATUS=baton-adopt: waiting: GET %s -> %d", g_ready_path, status);
      last_status = status;
    }
    sleep_ms(backoff_ms);
    if (backoff_ms < 500) backoff_ms *= 2;
  }
}

// At the first adoption of a stream socket: set up readiness.
void start_readiness(const HeldSocket& adopted) {
  if (g_supervisor_probe >= 0) {
    // The supervisor probes through its own listener; route it for the life of the process.
    g_private_fd.store(g_held[g_supervisor_probe].fd);
    g_routing.store(true, std::memory_order_release);
    return;
  }
  if (g_notify_len == 0 || g_ready_mode == ReadyMode::kNone) return;
  if (g_ready_mode == ReadyMode::kBind) {
    notify("READY=1\nSTATUS=baton-adopt: ready (on bind: the app adopted baton's listener)");
    return;
  }
  held_address(adopted, g_probe_host, sizeof(g_probe_host));
  if (strncmp(g_probe_host, "unix:", 5) == 0)
    snprintf(g_probe_host, sizeof(g_probe_host), "localhost");
  int fd = open_private_listener(adopted.addr.ss_family);
  if (fd < 0) {
    log_line("cannot open the private readiness listener (%s); not declaring readiness",
             strerror(errno));
    notify("BATON_ADOPT_ERROR=cannot open the private readiness listener");
    return;
  }
  if (g_ready_mode == ReadyMode::kAccept) {
    int efd = eventfd(0, EFD_CLOEXEC);
    if (efd < 0) {
      close(fd);
      return;
    }
    g_probe_event_fd.store(efd);
  }
  g_private_fd.store(fd);
  g_routing.store(true, std::memory_order_release);

  // The thread must not take the app's signals: block them all while creating it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, probe_thread, nullptr);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    log_line("cannot start the readiness thread: %s", strerror(rc));
    stop_routing();
  }
}

// ---- adoption -----------------------------------------------------------------------------------

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

// Returns 1 when `fd` adopted a held socket, 0 when the bind should go to the kernel, -1 on error
// (errno set).
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

// ---- routing the private listener into the app's accept path ------------------------------------

bool routing_for(int fd) {
  return g_routing.load(std::memory_order_acquire) && is_adopted_stream(fd);
}

void probe_accepted() {
  int efd = g_probe_event_fd.load();
  if (efd >= 0) {
    uint64_t one = 1;
    (void)!write(efd, &one, sizeof(one));
  }
}

// accept()/accept4() on an adopted fd while routing. Returns true when it produced the result
// (`*result`, errno set on failure); false: the caller accepts from the adopted fd as usual.
bool routed_accept(int fd, sockaddr* addr, socklen_t* len, int flags, int* result) {
  if (!routing_for(fd)) return false;
  const bool blocking = (fcntl(fd, F_GETFL) & O_NONBLOCK) == 0;
  for (;;) {
    int pfd = g_private_fd.load();
    if (pfd < 0) return false;
    int conn = REAL(accept4)(pfd, addr, len, flags);
    if (conn >= 0) {
      probe_accepted();
      *result = conn;
      return true;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;  // routing ended meanwhile
    if (!blocking) return false;
    // A blocking accept: wait for either socket, as the app's accept would wait for its own.
    pollfd fds[2] = {{fd, POLLIN, 0}, {pfd, POLLIN, 0}};
    int rc = REAL(poll)(fds, 2, -1);
    if (rc < 0) {
      *result = -1;  // EINTR: as a blocking accept interrupted by a signal
      return true;
    }
    if ((fds[1].revents & POLLIN) == 0 || !g_routing.load()) return false;
  }
}

// poll()/ppoll() while routing: the first adopted fd polled for POLLIN also wakes on the private
// listener. Returns -2 when not routing (the caller polls as usual).
template <typename Wait>
int routed_poll(pollfd* fds, nfds_t nfds, Wait wait) {
  constexpr nfds_t kMaxRouted = 256;
  if (!g_routing.load(std::memory_order_acquire) || nfds == 0 || nfds >= kMaxRouted) return -2;
  nfds_t target = nfds;
  for (nfds_t i = 0; i < nfds; ++i) {
    if ((fds[i].events & POLLIN) != 0 && fds[i].fd >= 0 && is_adopted_stream(fds[i].fd)) {
      target = i;
      break;
    }
  }
  int pfd = g_private_fd.load();
  if (target == nfds || pfd < 0) return -2;
  pollfd local[kMaxRouted + 1];
  memcpy(local, fds, nfds * sizeof(pollfd));
  local[nfds] = pollfd{pfd, POLLIN, 0};
  int rc = wait(local, nfds + 1);
  if (rc < 0) return rc;
  int count = 0;
  for (nfds_t i = 0; i < nfds; ++i) {
    fds[i].revents = local[i].revents;
    if (fds[i].revents != 0) ++count;
  }
  if ((local[nfds].revents & POLLIN) != 0) {
    if (fds[target].revents == 0) ++count;
    fds[target].revents |= POLLIN;
  }
  return count;
}

}  // namespace
}  // namespace baton::adopt

// ---- the interposed functions -------------------------------------------------------------------

using namespace baton::adopt;

BATON_EXPORT int bind(int fd, const sockaddr* addr, socklen_t len) {
  if (g_active) {
    int saved = errno;
    int r = try_adopt(fd, addr, len);
    if (r == 1) {
      errno = saved;
      return 0;
    }
    if (r < 0) return -1;
    errno = saved;
  }
  return REAL(bind)(fd, addr, len);
}

BATON_EXPORT int listen(int fd, int backlog) {
  if (is_adopted_stream(fd)) return 0;  // listens already, with baton's backlog
  return REAL(listen)(fd, backlog);
}

BATON_EXPORT int shutdown(int fd, int how) {
  if (is_adopted(fd)) {
    static std::atomic<bool> logged{false};
    if (!logged.exchange(true)) {
      log_line(
          "shutdown() of adopted listener fd %d ignored: it would stop it for every "
          "generation (close() is fine)",
          fd);
    }
    return 0;
  }
  return REAL(shutdown)(fd, how);
}

BATON_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  int result;
  if (routed_accept(fd, addr, len, 0, &result)) return result;
  return REAL(accept)(fd, addr, len);
}

BATON_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  int result;
  if (routed_accept(fd, addr, len, flags, &result)) return result;
  return REAL(accept4)(fd, addr, len, flags);
}

BATON_EXPORT int poll(pollfd* fds, nfds_t nfds, int timeout) {
  int r = routed_poll(fds, nfds, [&](pollfd* f, nfds_t n) { return REAL(poll)(f, n, timeout); });
  if (r != -2) return r;
  return REAL(poll)(fds, nfds, timeout);
}

BATON_EXPORT int ppoll(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* mask) {
  int r =
      routed_poll(fds, nfds, [&](pollfd* f, nfds_t n) { return REAL(ppoll)(f, n, timeout, mask); });
  if (r != -2) return r;
  return REAL(ppoll)(fds, nfds, timeout, mask);
}

BATON_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
  int rc = REAL(epoll_ctl)(epfd, op, fd, event);
  if (rc == 0 && routing_for(fd)) {
    // Mirror onto the private listener with the app's own event data, so its event reads as the
    // adopted socket's.
    int saved = errno;
    int pfd = g_private_fd.load();
    if (pfd >= 0) {
      epoll_event copy{};
      if (event != nullptr) copy = *event;
      REAL(epoll_ctl)(epfd, op, pfd, op == EPOLL_CTL_DEL ? nullptr : &copy);
    }
    errno = saved;
  }
  return rc;
}

namespace {
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
}  // namespace

BATON_EXPORT int unlink(const char* path) {
  if (is_held_unix_path(path)) return 0;  // baton's socket file: the next generation needs it
  return REAL(unlink)(path);
}

BATON_EXPORT int unlinkat(int dirfd, const char* path, int flags) {
  if (dirfd == AT_FDCWD && (flags & AT_REMOVEDIR) == 0 && is_held_unix_path(path)) return 0;
  return REAL(unlinkat)(dirfd, path, flags);
}
