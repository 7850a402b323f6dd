// preload_readiness.h: how libbaton_adopt.so proves that THIS process serves (the protocol and
// the modes are described in preload.cc, "Readiness").
//
// At the first adoption of a stream socket, start_readiness() opens a private loopback listener
// (or takes the supervisor's "baton-probe" listener) and turns routing on: while it is on, the
// interposed accept, accept4, poll, ppoll and epoll_ctl (preload_interpose.cc) route that listener
// into the app's own accept path, through the helpers below. A detached thread, with every signal
// blocked, probes through it and sends READY=1; stop_routing() then ends the routing for good
// (never, for the supervisor's probe listener). Every function here may be called from any
// thread; the routing state is atomic.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>

#include "adopt/match.h"
#include "adopt/preload_state.h"

namespace baton::adopt {

extern std::atomic<bool> g_routing;    // route the private listener into the app's accept path
extern std::atomic<int> g_private_fd;  // that listener (ours, or the supervisor's baton-probe)

// At the first adoption of a stream socket (`adopted`): set up readiness as BATON_ADOPT_READY
// says, and start routing when it needs the app's accept path.
void start_readiness(const HeldSocket& adopted);

// Routing is on and `fd` is an adopted stream socket.
bool routing_for(int fd);

// accept()/accept4() on an adopted fd while routing. Returns true when it produced the result
// (`*result`, errno set on failure); false: the caller accepts from the adopted fd as usual.
bool routed_accept(int fd, sockaddr* addr, socklen_t* len, int flags, int* result);

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

}  // namespace baton::adopt
