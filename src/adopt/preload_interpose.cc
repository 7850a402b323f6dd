// preload_interpose.cc: the functions libbaton_adopt.so puts in front of the C library's (what each
// does is described in preload.cc). Each one passes the call through unless it concerns a
// listener baton holds; errno is the C library's own on every path the app can see.
#include "adopt/preload_interpose.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <atomic>
#include <cstdint>

#include "adopt/preload_adopt.h"
#include "adopt/preload_readiness.h"
#include "adopt/preload_state.h"

namespace baton::adopt {

RealFunctions g_real;

void resolve_real_functions() {
  REAL(bind), REAL(listen), REAL(shutdown), REAL(accept), REAL(accept4), REAL(poll), REAL(ppoll),
      REAL(epoll_ctl), REAL(unlink), REAL(unlinkat), REAL(read), REAL(readv), REAL(recv),
      REAL(recvfrom), REAL(recvmsg), REAL_CHK(read), REAL_CHK(recv), REAL_CHK(recvfrom);
}

}  // namespace baton::adopt

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

// The interposed functions take their parameters' names from glibc's declarations (less the
// reserved "__"), so that the two agree: `n` of listen() is the backlog.
BATON_EXPORT int listen(int fd, int n) {
  if (is_adopted_stream(fd)) return 0;  // listens already, with baton's backlog
  return REAL(listen)(fd, n);
}

namespace {

// The descriptors on which the app has read end-of-file, one bit each (those numbered below
// kEofFds; for a higher one the library cannot tell, and acts as if it had). A bit is cleared
// when accept() returns that number for a new connection.
constexpr int kEofFds = 1 << 16;
std::atomic<std::uint64_t> g_eof_read[kEofFds / 64];

void note_read(int fd, ssize_t result, size_t asked) {
  if (result != 0 || asked == 0 || fd < 0 || fd >= kEofFds) return;
  g_eof_read[fd / 64].fetch_or(std::uint64_t{1} << (fd % 64), std::memory_order_relaxed);
}

void note_accepted(int fd) {
  if (fd < 0 || fd >= kEofFds) return;
  g_eof_read[fd / 64].fetch_and(~(std::uint64_t{1} << (fd % 64)), std::memory_order_relaxed);
}

bool has_read_eof(int fd) {
  if (fd < 0 || fd >= kEofFds) return true;
  return (g_eof_read[fd / 64].load(std::memory_order_relaxed) >> (fd % 64)) & 1;
}

size_t iov_bytes(const struct iovec* iov, size_t count) {
  size_t total = 0;
  for (size_t i = 0; iov != nullptr && i < count; ++i) total += iov[i].iov_len;
  return total;
}

// A connection whose read side baton shut to take it over when its generation drains
// (docs/drain.md): its peer has not left (it is still established), yet a read says end-of-file.
// Nothing else makes that so but a shutdown(SHUT_RD) of this socket, ours or baton's.
bool read_side_shut_from_outside(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;  // not TCP
  if (info.tcpi_state != TCP_ESTABLISHED) return false;
  char c;
  return REAL(recv)(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

}  // namespace

BATON_EXPORT int shutdown(int fd, int how) {
  // A runtime that answers end-of-file by shutting its write side (Node's http server does)
  // would send the client a FIN that baton's copy cannot take back, and the client's next
  // request would fail. The write side is left open instead: the app's close() that follows
  // drops only its own reference, and baton relays the client's next request. Only when the app
  // read that end-of-file: an app that ends a response with its connection (HTTP/1.0,
  // `Connection: close`) shuts its write side without reading, and its client waits for the FIN.
  if (how != SHUT_RD && has_read_eof(fd) && read_side_shut_from_outside(fd)) return 0;
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

// The reads: passed through, noting an end-of-file for shutdown() above.
BATON_EXPORT ssize_t read(int fd, void* buf, size_t nbytes) {
  ssize_t r = REAL(read)(fd, buf, nbytes);
  note_read(fd, r, nbytes);
  return r;
}

// The fortified reads keep the C library's names (reserved, as the functions they put themselves
// in front of).
// NOLINTNEXTLINE(bugprone-reserved-identifier): glibc's name, which this must define
BATON_EXPORT ssize_t __read_chk(int fd, void* buf, size_t nbytes, size_t buflen) {
  ssize_t r = REAL_CHK(read)(fd, buf, nbytes, buflen);
  note_read(fd, r, nbytes);
  return r;
}

BATON_EXPORT ssize_t readv(int fd, const struct iovec* iovec, int count) {
  ssize_t r = REAL(readv)(fd, iovec, count);
  note_read(fd, r, count > 0 ? iov_bytes(iovec, static_cast<size_t>(count)) : 0);
  return r;
}

BATON_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  ssize_t r = REAL(recv)(fd, buf, n, flags);
  note_read(fd, r, n);
  return r;
}

// NOLINTNEXTLINE(bugprone-reserved-identifier): glibc's name, which this must define
BATON_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  ssize_t r = REAL_CHK(recv)(fd, buf, n, buflen, flags);
  note_read(fd, r, n);
  return r;
}

BATON_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr,
                              socklen_t* addr_len) {
  ssize_t r = REAL(recvfrom)(fd, buf, n, flags, addr, addr_len);
  note_read(fd, r, n);
  return r;
}

// NOLINTNEXTLINE(bugprone-reserved-identifier): glibc's name, which this must define
BATON_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags,
                                    sockaddr* addr, socklen_t* addr_len) {
  ssize_t r = REAL_CHK(recvfrom)(fd, buf, n, buflen, flags, addr, addr_len);
  note_read(fd, r, n);
  return r;
}

BATON_EXPORT ssize_t recvmsg(int fd, msghdr* message, int flags) {
  ssize_t r = REAL(recvmsg)(fd, message, flags);
  if (message != nullptr) note_read(fd, r, iov_bytes(message->msg_iov, message->msg_iovlen));
  return r;
}

BATON_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  int result;
  if (!routed_accept(fd, addr, len, 0, &result)) result = REAL(accept)(fd, addr, len);
  note_accepted(result);
  return result;
}

BATON_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  int result;
  if (!routed_accept(fd, addr, len, flags, &result)) result = REAL(accept4)(fd, addr, len, flags);
  note_accepted(result);
  return result;
}

BATON_EXPORT int poll(pollfd* fds, nfds_t nfds, int timeout) {
  int r = routed_poll(fds, nfds, [&](pollfd* f, nfds_t n) { return REAL(poll)(f, n, timeout); });
  if (r != -2) return r;
  return REAL(poll)(fds, nfds, timeout);
}

BATON_EXPORT int ppoll(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* ss) {
  int r =
      routed_poll(fds, nfds, [&](pollfd* f, nfds_t n) { return REAL(ppoll)(f, n, timeout, ss); });
  if (r != -2) return r;
  return REAL(ppoll)(fds, nfds, timeout, ss);
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
BATON_EXPORT int unlink(const char* name) {
  if (is_held_unix_path(name)) return 0;  // baton's socket file: the next generation needs it
  return REAL(unlink)(name);
}

BATON_EXPORT int unlinkat(int fd, const char* name, int flag) {
  if (fd == AT_FDCWD && (flag & AT_REMOVEDIR) == 0 && is_held_unix_path(name)) return 0;
  return REAL(unlinkat)(fd, name, flag);
}
