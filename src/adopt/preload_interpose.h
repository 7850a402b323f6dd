// preload_interpose.h: the C library's own functions behind the ones libbaton_adopt.so
// interposes (bind, listen, shutdown, accept, accept4, poll, ppoll, epoll_ctl, unlink, unlinkat,
// and the reads of a socket: read, readv, recv, recvfrom, recvmsg and their _chk forms; defined in
// preload_interpose.cc, described in preload.cc).
//
// REAL(name) is the next definition of `name` in the lookup order (dlsym RTLD_NEXT), resolved by
// the library's constructor while the process is single-threaded, and lazily before that: another
// library's constructor may call an interposed function before ours has run. A C library without
// one of them is fatal (one line on stderr, abort). Safe from any thread.
#pragma once

#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#define BATON_EXPORT extern "C" __attribute__((visibility("default")))

namespace baton::adopt {

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
using ReadFn = ssize_t (*)(int, void*, size_t);
using ReadvFn = ssize_t (*)(int, const iovec*, int);
using RecvFn = ssize_t (*)(int, void*, size_t, int);
using RecvfromFn = ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*);
using RecvmsgFn = ssize_t (*)(int, msghdr*, int);
using ReadChkFn = ssize_t (*)(int, void*, size_t, size_t);
using RecvChkFn = ssize_t (*)(int, void*, size_t, size_t, int);
using RecvfromChkFn = ssize_t (*)(int, void*, size_t, size_t, int, sockaddr*, socklen_t*);

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
  std::atomic<ReadFn> read{nullptr};
  std::atomic<ReadvFn> readv{nullptr};
  std::atomic<RecvFn> recv{nullptr};
  std::atomic<RecvfromFn> recvfrom{nullptr};
  std::atomic<RecvmsgFn> recvmsg{nullptr};
  // The C library's __read_chk, __recv_chk and __recvfrom_chk (REAL_CHK).
  std::atomic<ReadChkFn> read_chk{nullptr};
  std::atomic<RecvChkFn> recv_chk{nullptr};
  std::atomic<RecvfromChkFn> recvfrom_chk{nullptr};
};
extern RealFunctions g_real;

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
// The same for a fortified read, whose name has the C library's reserved "__" before it.
#define REAL_CHK(name) real(g_real.name##_chk, "__" #name "_chk")

// Resolves every function now (called by the constructor, single-threaded).
void resolve_real_functions();

}  // namespace baton::adopt
