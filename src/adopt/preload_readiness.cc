#include "adopt/preload_readiness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "adopt/preload_interpose.h"
#include "adopt/preload_state.h"

namespace baton::adopt {

std::atomic<bool> g_routing{false};
std::atomic<int> g_private_fd{-1};

namespace {

std::atomic<int> g_probe_event_fd{-1};  // accept mode: the interposer signals the probe thread
sockaddr_storage g_private_addr{};
socklen_t g_private_len = 0;
char g_probe_host[128] = "localhost";  // Host header of the probe: the public address

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

void probe_accepted() {
  int efd = g_probe_event_fd.load();
  if (efd >= 0) {
    uint64_t one = 1;
    (void)!write(efd, &one, sizeof(one));
  }
}

}  // namespace

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

bool routing_for(int fd) {
  return g_routing.load(std::memory_order_acquire) && is_adopted_stream(fd);
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

}  // namespace baton::adopt
